"""Score a GAN run with a cnnkit classifier of the same data (tasks/gan/fid.py): classifier-FID of n generated
images against the real test split, the real-train-vs-real-test floor (n training images), the untrained
generator's distance as the ceiling, and the class shares of the generated images; for a conditional run, the
share of images the classifier puts in the class they were generated for (`asked_class_share`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
from cnnkit.config import Config
from cnnkit.data import build_dataset
from cnnkit.errors import ConfigError
from cnnkit.rundir import atomic_write_text
from cnnkit.tasks.gan.fid import class_shares, classifier_features, frechet_distance
from cnnkit.tasks.gan.generate import generate, labels_for, load_generator
from cnnkit.tasks.gan.grid import to_uint8
from cnnkit.tasks.gan.model import build_pair
from cnnkit.tasks.gan.run import load_gan_checkpoint


def score_run(
    run: str | Path, classifier: str | Path, n: int = 2000, seed: int = 0, cls: int | None = None, ema: bool = True
) -> dict[str, Any]:
    """The numbers above for the GAN run folder `run`, judged by the classifier checkpoint (or run folder);
    `cls`: a conditional run's images all of that class (default: the classes in turn); `ema` False: the
    generator's own weights even when the run kept an EMA of them."""
    run = Path(run)
    cfg = Config.from_dict(load_gan_checkpoint(run / "last.ckpt")["config"])
    g = load_generator(run, ema=ema)
    clf_path = resolve_checkpoint(classifier)
    clf = load_checkpoint(clf_path)
    shape = (clf["input"]["channels"], *clf["input"]["size"])
    if shape != (g.channels, g.side, g.side):
        raise ConfigError(
            f"{clf_path}: the classifier takes {shape} images, the generator makes {(g.channels, g.side, g.side)}"
        )
    model = model_from_checkpoint(clf).eval()
    mean, std = clf["input"]["mean"], clf["input"]["std"]
    data = build_dataset(cfg.data, cfg.train.seed)
    real = data.test if data.test is not None else data.val
    pick = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:n]
    f_real, _ = classifier_features(model, real.images, mean, std)
    f_train, _ = classifier_features(model, data.train.images[pick], mean, std)
    f_gen, p_gen = classifier_features(model, to_uint8(generate(g, n, seed, cls)), mean, std)
    torch.manual_seed(cfg.train.seed)
    untrained = build_pair(g.latent, g.channels, g.side, g.width, g.num_classes)[0]
    f_untrained, _ = classifier_features(model, to_uint8(generate(untrained, n, seed, cls)), mean, std)
    asked = labels_for(g, n, cls)
    extra = {"asked_class_share": float((p_gen == asked).double().mean())} if asked is not None else {}
    return {
        "classifier": str(clf_path),
        "n_generated": n,
        "n_real": len(real),
        "fid": frechet_distance(f_gen, f_real),
        "fid_real_floor": frechet_distance(f_train, f_real),
        "fid_untrained_ceiling": frechet_distance(f_untrained, f_real),
        "class_shares": dict(zip(data.class_names, class_shares(p_gen, len(clf["class_names"])), strict=False)),
        **extra,
        "note": "classifier FID: Frechet distance on this cnnkit classifier's features (not Inception's)",
    }


def describe(q: dict[str, Any]) -> str:
    """One paragraph of the numbers of `score_run`."""
    shares = " ".join(f"{k}:{100 * v:.0f}%" for k, v in q["class_shares"].items())
    text = (
        f"classifier-FID {q['fid']:.3f} (real-vs-real floor {q['fid_real_floor']:.3f}, untrained generator "
        f"{q['fid_untrained_ceiling']:.3f}); classes of the generated images: {shares}"
    )
    if "asked_class_share" in q:
        text += f"; in the class asked for: {100 * q['asked_class_share']:.1f}%"
    return text


def score_into_run(run_dir: Path, classifier: str | Path, n: int = 2000, epoch: int = 0) -> dict[str, Any]:
    """score_run's numbers for a GAN run's weights after `epoch`, in run_dir/quality.json (gan.score_with), with
    `history`: the FID and class shares of every epoch scored so far (gan.score_every)."""
    q = score_run(run_dir, classifier, n=n)
    path = run_dir / "quality.json"
    try:
        history = json.loads(path.read_text()).get("history", [])
    except (OSError, ValueError):
        history = []
    history = [h for h in history if h.get("epoch") != epoch]
    history.append({"epoch": epoch, "fid": q["fid"], "class_shares": list(q["class_shares"].values())})
    q = {"epoch": epoch, **q, "history": history}
    atomic_write_text(path, json.dumps(q, indent=2) + "\n")
    return q
