"""Import every model family so each registers itself (see ``base.register``)."""

from . import (  # noqa: F401
    colorize,
    diffusion,
    flow,
    gan,
    gated_pixelcnn,
    made,
    nade,
    pixelcnn,
    rbm,
    row_lstm,
    superres,
    translation,
    vae,
    vqvae,
)
