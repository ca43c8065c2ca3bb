"""Models: one registry (`create_model`, `list_models`), one interface (`ClassifierBase`)."""

from typing import TYPE_CHECKING

from cnnkit._lazy import lazy_attributes

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use
    from cnnkit.models._registry import create_model as create_model
    from cnnkit.models._registry import list_models as list_models
    from cnnkit.models._registry import model_info as model_info
    from cnnkit.models._registry import register_model as register_model
    from cnnkit.models.base import ClassifierBase as ClassifierBase

_NAMES = {
    "create_model": "cnnkit.models._registry",
    "list_models": "cnnkit.models._registry",
    "model_info": "cnnkit.models._registry",
    "register_model": "cnnkit.models._registry",
    "ClassifierBase": "cnnkit.models.base",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
