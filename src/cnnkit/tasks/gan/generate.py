"""Images from a trained DCGAN: the generator rebuilt from its run's last.ckpt alone (its EMA weights when the
run kept one, gan.ema), noise from a seed, one PNG per image and a grid; for a conditional run, the class of
each image (one asked class, or 0, 1, ..., K-1 in turn); walks between two latent points (`interpolate`)."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnkit.errors import ConfigError
from cnnkit.tasks.gan.grid import save_grid, save_png, to_uint8
from cnnkit.tasks.gan.model import Generator
from cnnkit.tasks.gan.run import load_gan_checkpoint, sample


def load_generator(run: str | Path, ema: bool = True) -> Generator:
    """The generator of a GAN run folder (its last.ckpt) or of a GAN checkpoint file, in eval mode (its EMA
    weights when the run kept them, unless `ema` is False); its `class_names` attribute names a conditional
    run's classes (empty otherwise)."""
    path = Path(run)
    ckpt = load_gan_checkpoint(path / "last.ckpt" if path.is_dir() else path)
    a = ckpt["gan"]
    g = Generator(a["latent"], a["channels"], a["side"], a["width"], a.get("num_classes", 0))
    ts = ckpt["train_state"]
    use_ema = ema and ts.get("generator_ema") is not None
    g.load_state_dict(ts["generator_ema"] if use_ema else ts["generator_net"])
    g.class_names = list(a.get("class_names") or [])
    return g.eval()


def class_index(g: Generator, cls: str | int | None) -> int | None:
    """The class asked by index or name (None: none asked); errors name --class and the choices."""
    if cls is None:
        return None
    if not g.num_classes:
        raise ConfigError("--class: this GAN run is not class-conditional (train it with --conditional)")
    names = g.class_names
    if str(cls) in names:
        return names.index(str(cls))
    if str(cls).isdigit() and int(cls) < g.num_classes:
        return int(cls)
    raise ConfigError(f"--class {cls}: not a class of this run; give 0-{g.num_classes - 1} or one of {names}")


def labels_for(g: Generator, n: int, cls: int | None) -> torch.Tensor | None:
    """(n,) labels for a conditional generator: `cls` each time, or 0, 1, ..., K-1, 0, ...; None otherwise."""
    if not g.num_classes:
        return None
    return torch.full((n,), cls) if cls is not None else torch.arange(n) % g.num_classes


def generate(g: Generator, n: int, seed: int = 0, cls: int | None = None) -> torch.Tensor:
    """(n, C, H, W) images in [-1, 1] from n noise vectors drawn with `seed` (and `cls`'s labels, conditional)."""
    z = torch.randn(n, g.latent, generator=torch.Generator().manual_seed(seed))
    return sample(g, z, labels_for(g, n, cls))


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016) of rows z0, z1 (W, D) at fractions t (F,) -> (W, F, D); t = 0 gives
    z0 and t = 1 gives z1. Gaussian noise lives near a sphere: slerp stays there, a straight line cuts inside."""
    cos = torch.nn.functional.cosine_similarity(z0, z1, dim=1).clamp(-1 + 1e-7, 1 - 1e-7)  # (W,)
    theta = torch.acos(cos)[:, None, None]  # (W, 1, 1)
    t = t[None, :, None]  # (1, F, 1)
    a = torch.sin((1 - t) * theta) / torch.sin(theta)
    b = torch.sin(t * theta) / torch.sin(theta)
    return a * z0[:, None] + b * z1[:, None]


def interpolate(
    g: Generator, walks: int, frames: int, seed: int = 0, cls: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`walks` slerp walks of `frames` steps each between two latent points drawn with `seed`: (images
    (walks * frames, C, H, W) in [-1, 1], row by row, and the endpoints (2, walks, latent)). A conditional
    walk keeps one class: `cls`, or the walk's index modulo K."""
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(walks, g.latent, generator=gen), torch.randn(walks, g.latent, generator=gen)
    z = slerp(z0, z1, torch.linspace(0, 1, frames)).reshape(walks * frames, g.latent)
    labels = labels_for(g, walks, cls)
    labels = labels.repeat_interleave(frames) if labels is not None else None
    return sample(g, z, labels), torch.stack([z0, z1])


def write_images(images: torch.Tensor, out: Path, nrow: int | None = None) -> list[Path]:
    """out/000000.png ... one per image, and out/grid.png (`nrow` images a row; default: square); returns the
    paths written (grid last)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(out / f"{i:06d}.png")
        save_png(to_uint8(img), paths[-1])
    save_grid(images, out / "grid.png", nrow)
    return [*paths, out / "grid.png"]


def write_interpolation(images: torch.Tensor, frames: int, out: Path) -> Path:
    """out/interpolation.png: one walk per row, `frames` columns."""
    out.mkdir(parents=True, exist_ok=True)
    save_grid(images, out / "interpolation.png", nrow=frames)
    return out / "interpolation.png"
