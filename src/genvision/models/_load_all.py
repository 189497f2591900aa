"""Import every model family so each registers itself (see ``base.register``)."""

from . import made, nade, vae  # noqa: F401
