"""Import every model family so each registers itself (see ``base.register``).

The image-to-image task models still live beside their tasks (their networks are to
move to ``nn/``); they are found by module name, so this package does not import the
application layer statically, and ``list_models``/``genvision.load`` know them too.
"""

import importlib

from . import gan, gated_pixelcnn, made, nade, pixelcnn, row_lstm, vae  # noqa: F401

#: modules outside ``models/`` whose import registers models
TASK_MODEL_MODULES = ("genvision.tasks.superres.models", "genvision.tasks.colorize.models")
for _module in TASK_MODEL_MODULES:
    importlib.import_module(_module)
