"""Model families. Importing this package registers every model with the registry."""

from .base import GenerativeModel, ModelConfig, get_model_class, list_models, load, register

__all__ = ["GenerativeModel", "ModelConfig", "get_model_class", "list_models", "load", "register"]
