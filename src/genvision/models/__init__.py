"""Model families. Importing this package registers every model with the registry.

``base`` holds the protocol and the registry; ``_load_all`` then imports every family
(each imports ``.base``, already loaded, and registers itself), so any import of
``genvision.models`` or one of its modules leaves :func:`list_models` complete.
"""

from . import _load_all  # noqa: F401  (after .base: the families register into it)
from .base import GenerativeModel, ModelConfig, get_model_class, list_models, load, register

__all__ = ["GenerativeModel", "ModelConfig", "get_model_class", "list_models", "load", "register"]
