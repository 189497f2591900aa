"""Import every model family so each registers itself (see ``base.register``)."""

from . import gan, made, nade, pixelcnn, vae  # noqa: F401
