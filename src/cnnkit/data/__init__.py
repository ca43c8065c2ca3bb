"""Datasets (one registry), the one image loader, and batched augmentation."""

from cnnkit._lazy import lazy_attributes

_NAMES = {
    "build_dataset": "cnnkit.data._registry",
    "list_datasets": "cnnkit.data._registry",
    "register_dataset": "cnnkit.data._registry",
    "ImageError": "cnnkit.data.images",
    "load_image": "cnnkit.data.images",
    "Dataset": "cnnkit.data.types",
    "Split": "cnnkit.data.types",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
