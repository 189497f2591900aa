"""Import every model family so each registers itself (see ``base.register``)."""

from . import vae  # noqa: F401
