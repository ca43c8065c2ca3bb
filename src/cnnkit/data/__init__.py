"""Datasets (one registry), the one image loader, and batched augmentation."""

from typing import TYPE_CHECKING

from cnnkit._lazy import lazy_attributes

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use
    from cnnkit.data._registry import build_dataset as build_dataset
    from cnnkit.data._registry import list_datasets as list_datasets
    from cnnkit.data._registry import register_dataset as register_dataset
    from cnnkit.data.images import ImageError as ImageError
    from cnnkit.data.images import load_image as load_image
    from cnnkit.data.types import Dataset as Dataset
    from cnnkit.data.types import Split as Split

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
