"""model.name auto: which model a run gets for its data (training/setup.py resolves it; `cnnkit models` shows it)."""


def auto_model(channels: int, size: int) -> str:
    """The fast family up to 64 px (fastnet_t for one channel, fastnet_s for colour), ResNet-18 for larger images."""
    if size <= 64:
        return "fastnet_t" if channels == 1 else "fastnet_s"
    return "resnet18"
