"""Images from a trained DCGAN: the generator rebuilt from its run's last.ckpt alone, noise from a seed,
one PNG per image and a grid."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnkit.tasks.gan.grid import save_grid, save_png, to_uint8
from cnnkit.tasks.gan.model import Generator
from cnnkit.tasks.gan.run import load_gan_checkpoint, sample


def load_generator(run: str | Path) -> Generator:
    """The generator of a GAN run folder (its last.ckpt) or of a GAN checkpoint file, in eval mode."""
    path = Path(run)
    ckpt = load_gan_checkpoint(path / "last.ckpt" if path.is_dir() else path)
    a = ckpt["gan"]
    g = Generator(a["latent"], a["channels"], a["side"], a["width"])
    g.load_state_dict(ckpt["train_state"]["generator_net"])
    return g.eval()


def generate(g: Generator, n: int, seed: int = 0) -> torch.Tensor:
    """(n, C, H, W) images in [-1, 1] from n noise vectors drawn with `seed`."""
    z = torch.randn(n, g.latent, generator=torch.Generator().manual_seed(seed))
    return sample(g, z)


def write_images(images: torch.Tensor, out: Path) -> list[Path]:
    """out/000000.png ... one per image, and out/grid.png; returns the paths written (grid last)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(out / f"{i:06d}.png")
        save_png(to_uint8(img), paths[-1])
    save_grid(images, out / "grid.png")
    return [*paths, out / "grid.png"]
