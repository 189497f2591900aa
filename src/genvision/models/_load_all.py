"""Import every model family so each registers itself (see ``base.register``)."""

from . import gan, gated_pixelcnn, made, nade, pixelcnn, row_lstm, vae  # noqa: F401
