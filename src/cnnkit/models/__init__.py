"""Models: one registry (`create_model`, `list_models`), one interface (`ClassifierBase`)."""

from cnnkit.models._registry import create_model, list_models, model_info, register_model
from cnnkit.models.base import ClassifierBase

__all__ = ["ClassifierBase", "create_model", "list_models", "model_info", "register_model"]
