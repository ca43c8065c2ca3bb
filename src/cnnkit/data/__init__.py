"""Datasets (one registry), the one image loader, and batched augmentation."""

from cnnkit.data._registry import build_dataset, list_datasets, register_dataset
from cnnkit.data.images import ImageError, load_image
from cnnkit.data.types import Dataset, Split

__all__ = ["Dataset", "ImageError", "Split", "build_dataset", "list_datasets", "load_image", "register_dataset"]
