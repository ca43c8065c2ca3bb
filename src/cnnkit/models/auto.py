"""model.name auto: which model a run gets for its data (training/setup.py resolves it; `cnnkit models` shows it).

A folder of colour photos is decided earlier, from its files (training/auto.py): the ImageNet-pretrained
`PHOTO_MODEL`, fine-tuned, when its weights' package is installed (`photo_weights_available`)."""

PHOTO_MODEL = "efficientnet_lite0"


def photo_weights_available() -> bool:
    """Whether the pretrained Lite0's weights are importable (no network needed)."""
    from cnnkit.models.efficientnet import lite0_package_path

    return lite0_package_path() is not None


def auto_model(channels: int, size: int) -> str:
    """The fast family up to 64 px (fastnet_t for one channel, fastnet_s for colour), ResNet-18 for larger images."""
    if size <= 64:
        return "fastnet_t" if channels == 1 else "fastnet_s"
    return "resnet18"
