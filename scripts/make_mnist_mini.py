"""Build the bundled mnist-mini dataset from the full MNIST IDX files.

    python scripts/make_mnist_mini.py ../shared/datasets/mnist src/cnnkit/data/assets/mnist_mini

A fixed, class-balanced subset: for each digit, TRAIN_PER_CLASS images drawn from the
training split and TEST_PER_CLASS from the test split with a seeded generator, sorted
back into file order. The result is written in the canonical (gzip'd) IDX format.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cnnkit.data.idx import read_idx, write_idx
from cnnkit.data.mnist import background_is_white

TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
SEED = 20261122


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def main(src: str, dst: str) -> None:
    src_dir, dst_dir = Path(src), Path(dst)
    dst_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for split, prefix, per_class in (("train", "train", TRAIN_PER_CLASS), ("test", "t10k", TEST_PER_CLASS)):
        images = read_idx(src_dir / f"{prefix}-images-idx3-ubyte.gz", ndim=3)
        labels = read_idx(src_dir / f"{prefix}-labels-idx1-ubyte.gz", ndim=1)
        if background_is_white(images):  # the copy in ../shared is stored inverted: restore MNIST's polarity
            print(f"{prefix}: inverting pixel polarity back to MNIST's black background")
            images = 255 - images
        idx = pick(labels, per_class, rng)
        write_idx(dst_dir / f"{prefix}-images-idx3-ubyte.gz", images[idx])
        write_idx(dst_dir / f"{prefix}-labels-idx1-ubyte.gz", labels[idx])
        print(f"{split}: {len(idx)} images, {np.bincount(labels[idx]).tolist()} per class")


if __name__ == "__main__":
    main(*sys.argv[1:3])
