"""Models: one registry (`create_model`, `list_models`), one interface (`ClassifierBase`)."""

from cnnkit._lazy import lazy_attributes

_NAMES = {
    "create_model": "cnnkit.models._registry",
    "list_models": "cnnkit.models._registry",
    "model_info": "cnnkit.models._registry",
    "register_model": "cnnkit.models._registry",
    "ClassifierBase": "cnnkit.models.base",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
