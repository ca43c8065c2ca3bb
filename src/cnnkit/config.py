"""Typed configuration: defaults in code, overridden by a YAML file, then by flags.

Options are grouped by concern (data, model, optim, schedule, augment, train, eval, runtime, run) and
each function receives only its group. Unknown keys and wrong types are errors that name
the key and suggest the nearest valid one. Every number declares its valid range in its type
(`Annotated[float, Range(0, 10)]`, see cnnkit.ranges), checked for YAML, `--set` and flags alike;
NaN and infinity are refused. Values are parsed with `yaml.safe_load` (never `eval`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from cnnkit.errors import ConfigError
from cnnkit.ranges import Range, ranged

UNIT, NONNEG, POSITIVE = Range(0, 1), Range(0), Range(1)  # [0, 1]: fractions and probabilities; >= 0; >= 1


@dataclass
class DataConfig:
    dataset: str = "mnist-mini"  # a registered dataset name (`cnnkit datasets`), "folder" or "manifest"
    path: str | None = None  # image folder, or CSV/JSON manifest, for dataset "folder"/"manifest" (--data)
    root: str | None = None  # where built-in datasets live (--data-root, $CNNKIT_DATA)
    val_fraction: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = (
        0.1  # held out of train when the dataset has no validation split
    )
    test_fraction: Annotated[float, Range(0, 1, hi_open=True)] = (
        0.0  # folders/manifests without test/: hold out this fraction of train as a seeded, stratified test split (0: none)
    )
    image_size: Annotated[int | None, Range(1, 8192)] = (
        None  # resize side for folders; None: the dataset's native size (folders: 64)
    )
    channels: Annotated[int | None, Range(1, 3)] = None  # 1 or 3; None: the dataset's own (folders: 3)
    interpolation: str | None = (
        None  # folders: the resize's filter, bilinear | bicubic | ...; None: bilinear, or the pretrained weights' own (bicubic for Lite0)
    )
    subset_per_class: Annotated[int | None, POSITIVE] = (
        None  # keep only N training images per class (quick runs, few-shot)
    )
    strict: bool = False  # a bad image file is an error instead of a skipped, reported file
    task: str = "auto"  # auto (from the dataset: masks -> segment) | classify | segment: image / mask pairs | gan: a DCGAN, labels ignored (--task)
    download: bool = True  # fetch missing built-in datasets (with checksums)
    cifar100_labels: Literal["fine", "coarse"] = "fine"  # cifar100: fine (100 classes) | coarse (20 superclasses)
    label_delimiter: str | None = None  # manifests: split each label cell on this (e.g. ";") into a multi-hot label
    balance: Literal["none", "oversample", "sampler"] = (
        "none"  # none | oversample: repeat training images of rare classes up to the largest class | sampler: each epoch drawn with every class equally likely
    )
    cache: bool = True  # folders/manifests: decode once into a memory-mapped uint8 cache reused by later runs
    cache_dir: str | None = None  # where that cache lives; None: $CNNKIT_CACHE, else ~/.cache/cnnkit/decoded
    cache_max_gb: Annotated[float, NONNEG] = (
        4.0  # with stream: auto, folders/manifests whose decoded uint8 images would exceed this many GB (1e9 bytes) stream
    )
    stream: bool | str = (
        "auto"  # auto | true: read folder/manifest images from their files each epoch, decoded in DataLoader workers | false: always decode once
    )
    workers: Annotated[int, Range(0, 256)] = (
        2  # streaming: DataLoader processes decoding images (0: in the training process)
    )


@dataclass
class ModelConfig:
    name: str = "auto"  # a registered model (`cnnkit models`), a layer spec "conv(32,3)-bn-relu-gap-fc", or auto: folders of colour photos the pretrained efficientnet_lite0 (fastai-style fine_tune; training/auto.py), else fastnet_t (1 channel) / fastnet_s (3 channels) up to 64 px, resnet18 above
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra constructor arguments (e.g. small_input: true)
    pretrained: bool | str = (
        False  # published weights (torchvision / timm hub cache, Lite0 package); a string names them
    )
    weights: str | None = None  # a local .safetensors / .pth / .pt file to start from (loaded with weights_only=True)
    strict_weights: bool = True  # keys of --weights that do not fit are an error (false: load what fits)
    finetune: Literal["head", "full", "gradual", "fine_tune"] | None = (
        None  # head | full | gradual | fine_tune (the head for head_epochs, then everything); None: one rate for all (--pretrained alone: head)
    )
    backbone_lr_scale: Annotated[float, Range(0, 100)] = (
        0.1  # full / gradual / fine_tune: backbone learning rate = this x the head's
    )
    head_epochs: Annotated[int, Range(0, 10_000)] = (
        10  # fine_tune: epochs of head-only training (on features computed once, at 3x optim.lr) before the whole network trains for train.epochs
    )
    cache_features: bool = True  # head: compute the frozen backbone's features once when no augmentation is on
    frozen_stages: Annotated[int, Range(0, 1000)] = (
        0  # full / fine_tune: the backbone's first N stages (`cnnkit summary` lists them) stay frozen when the rest trains
    )


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw", "adam", "rmsprop"] = "sgd"  # sgd (momentum, Nesterov) | adamw | adam | rmsprop
    lr: Annotated[float, Range(0, 10, note="the peak learning rate")] = 0.2
    momentum: Annotated[float, Range(0, 1, hi_open=True)] = 0.9  # sgd and rmsprop
    nesterov: bool = True
    weight_decay: Annotated[float, UNIT] = 5e-4  # L2 on conv/linear weights (never on norms and biases)
    l1: Annotated[float, UNIT] = 0.0  # L1 penalty coefficient, added to the loss and reported as train_l1
    l1_params: str = "*weight"  # fnmatch pattern on parameter names the L1 penalty covers (ndim > 1 only)
    label_smoothing: Annotated[float, Range(0, 1, hi_open=True)] = 0.1
    class_weights: Literal["none", "balanced", "sqrt"] = (
        "none"  # none | balanced (inverse class frequency) | sqrt: weighted loss (multi-label: BCE pos_weight)
    )
    grad_clip: Annotated[float | None, Range(0, note="0 or null: off")] = (
        None  # clip the global gradient norm to this value
    )
    bias_lr_scale: Annotated[float, Range(0, 1000, lo_open=True)] = (
        1.0  # learning-rate multiplier for normalisation layers' shifts/scales (speed-record nets: 64); other biases keep the base rate
    )


@dataclass
class ScheduleConfig:
    name: Literal["onecycle", "triangle", "cosine", "step", "plateau", "constant"] = (
        "onecycle"  # onecycle | triangle | cosine | step | plateau | constant
    )
    warmup_fraction: Annotated[float, Range(0, 1, hi_open=True)] = (
        0.25  # onecycle, triangle: fraction of steps rising; cosine: linear warmup
    )
    initial_factor: Annotated[float, UNIT] = 0.04  # onecycle, triangle: the rate starts at this x optim.lr
    final_factor: Annotated[float, UNIT] = 1e-4  # onecycle, triangle: and ends at this x optim.lr
    step_epochs: Annotated[int, POSITIVE] = 3  # step: multiply the rate by gamma every N epochs
    gamma: Annotated[float, Range(0, 1, lo_open=True)] = 0.1  # step: decay factor
    plateau_patience: Annotated[int, NONNEG] = 2  # plateau: epochs without improvement of train.monitor before reducing
    plateau_factor: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.1  # plateau: reduction factor


@dataclass
class AugmentConfig:
    preset: str | None = (
        None  # none | light | standard | strong, chosen per dataset; keys set to non-default values win
    )
    translate: Annotated[int, Range(0, 256)] = 2  # random shift of up to N pixels (crop with zero padding)
    hflip: bool = False  # random horizontal flip (off for digits and text)
    alternate_flip: bool = False  # with hflip: each image mirrored in every other epoch (a fixed half start mirrored) instead of by chance (airbench)
    vflip: bool = False  # random vertical flip
    crop_scale: Annotated[float, UNIT] = 0.0  # random resized crop: smallest area fraction kept, e.g. 0.35 (0: off)
    rotate: Annotated[float, Range(0, 180)] = 0.0  # random rotation of up to N degrees either way (0: off)
    scale: Annotated[float, Range(0, 1, hi_open=True)] = 0.0  # random zoom by a factor in [1 - s, 1 + s] (0: off)
    shear: Annotated[float, Range(0, 90, hi_open=True)] = 0.0  # random shear of up to N degrees (0: off)
    shift: Annotated[float, UNIT] = 0.0  # random affine translation, fraction of the image side (0: off)
    brightness: Annotated[float, UNIT] = 0.0  # colour jitter: factor in [1 - b, 1 + b] (0: off)
    contrast: Annotated[float, UNIT] = 0.0  # colour jitter: factor in [1 - c, 1 + c] (0: off)
    saturation: Annotated[float, UNIT] = 0.0  # colour jitter: factor in [1 - s, 1 + s] (0: off; RGB only)
    hue: Annotated[float, Range(0, 0.5)] = 0.0  # colour jitter: hue shift in [-h, h] turns, h <= 0.5 (0: off; RGB only)
    grayscale: Annotated[float, UNIT] = 0.0  # probability of turning an RGB image gray
    blur: Annotated[float, UNIT] = 0.0  # probability of a Gaussian blur with sigma in [0.1, blur_sigma]
    blur_sigma: Annotated[float, Range(0, 100, lo_open=True)] = 1.0
    erase: Annotated[float, UNIT] = (
        0.0  # cutout / random erasing: probability of erasing one rectangle (2-33% of the area)
    )
    auto: Literal["none", "randaugment", "trivialaugment"] = (
        "none"  # automatic policy from torchvision v2: none | randaugment | trivialaugment
    )
    mixup: Annotated[float, Range(0, 100)] = (
        0.0  # mixup Beta(a, a) parameter (0: off); mixes labels: see cnnkit.data.augment.mix_batch
    )
    cutmix: Annotated[float, Range(0, 100)] = (
        0.0  # cutmix Beta(a, a) parameter (0: off); with mixup too, one of the two per batch
    )
    elastic: Annotated[float, Range(0, 64)] = (
        0.0  # --task segment: the U-Net paper's elastic deformation, N px std on a coarse 3x3 grid (0: off)
    )
    min_visible: Annotated[float, UNIT] = 0.5  # --task detect: a box cropped to under this share of its area is dropped


@dataclass
class TrainConfig:
    recipe: str = (
        "auto"  # auto: the dataset's tuned settings (`cnnkit recipes`) under the keys you set | none | a recipe name
    )
    epochs: Annotated[int, Range(1, 1_000_000)] = 8
    time_budget: Annotated[float, NONNEG] = (
        0.0  # seconds of training incl. validation (0: off); replaces epochs: steps planned from measured speed (--time-budget 10m)
    )
    time_limit: Annotated[float | None, NONNEG] = (
        None  # seconds of training incl. validation: train.epochs still sets the length, but where they would not fit, the schedule is planned to end by then (--time-limit 2m); 0: off; None: off, except the photo default's (training/auto.py)
    )
    progressive_resize: Annotated[float, UNIT] = (
        0.0  # start at this fraction of the image side (e.g. 0.75), growing to full size (0: off)
    )
    progressive_end: Annotated[float, Range(0, 1, lo_open=True)] = (
        0.6  # fraction of the epochs by which progressive resizing reaches the full size
    )
    batch_size: Annotated[int, POSITIVE] = 64
    seed: Annotated[int, Range(0, 2**63 - 1)] = 0
    checkpoint_every: Annotated[int, NONNEG] = (
        0  # also write last.ckpt every N optimiser steps (0: once per epoch only)
    )
    on_nan: Literal["stop", "skip"] = "stop"  # stop | skip: what a non-finite loss or gradient does
    ema_decay: Annotated[float, Range(0, 1, hi_open=True)] = (
        0.0  # exponential moving average of the weights (e.g. 0.999; 0: off)
    )
    lookahead: bool = False  # every 5 steps pull the weights toward their slow average (growing pull), ending on it (speed-record recipes)
    monitor: Literal["val_accuracy", "val_loss"] = (
        "val_accuracy"  # metric for best.ckpt, early stopping and plateau: val_accuracy | val_loss
    )
    early_stopping: Annotated[int, NONNEG] = 0  # stop after N epochs without improvement of monitor (0: off)
    min_delta: Annotated[float, NONNEG] = 0.0  # smallest change of monitor that counts as an improvement


@dataclass
class EvalConfig:
    batch_size: Annotated[int, POSITIVE] = 500  # images per batch when evaluating (validation, test, TTA)
    tta: Literal["none", "flip", "flip+shift", "d4"] = (
        "none"  # test-time augmentation at the final evaluation; d4: the 8 rotations and mirrors (orientation-free images)
    )


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["fp32", "bf16", "fp16", "auto"] = (
        "fp32"  # fp32 | bf16 | fp16 (fp16 on CUDA only) | auto: bf16 where the device computes it natively, else fp32
    )
    channels_last: bool = True
    num_threads: Annotated[int | None, Range(1, 1024)] = None  # CPU threads; None: PyTorch's default
    deterministic: bool = True  # deterministic algorithms where the device has them
    compile: bool = False  # torch.compile the model (falls back to eager with a message)
    devices: Annotated[int, Range(1, 1024)] = 1  # processes for DistributedDataParallel (cnnkit train --devices N)


@dataclass
class AdvConfig:
    """Adversarial training (cnnkit.robust.training; `cnnkit train --adv-train`). L∞, in pixel units of the 0-1 image."""

    method: str = "none"  # none | fgsm-rs: FGSM from a random start (Wong et al. 2020) | pgd: PGD (Madry et al. 2018)
    eps: Annotated[float, Range(0, 1, lo_open=True)] = (
        0.1  # size of the change, pixel units of the 0-1 image (--adv-eps also takes 8/255)
    )
    steps: Annotated[int, Range(1, 1000)] = 7  # pgd: attack steps per batch (fgsm-rs: one)
    step_size: Annotated[float | None, Range(0, 1, lo_open=True)] = (
        None  # None: 1.25 * eps (fgsm-rs), 2.5 * eps / steps (pgd)
    )
    warmup_epochs: Annotated[int, NONNEG] = 0  # eps grows linearly over the first N epochs (eps * epoch / N)
    fraction: Annotated[float, Range(0, 1, lo_open=True)] = (
        1.0  # share of each batch made adversarial (the rest stays clean)
    )
    mode: str = "train"  # the model's mode while attacking: train (batch statistics, frozen running ones) | eval
    robust_n: Annotated[int, NONNEG] = 500  # test images attacked at the end of the run (PGD at eps; 0: skip)
    robust_steps: Annotated[int, Range(1, 1000)] = 10  # PGD steps of that end-of-run attack


@dataclass
class RunConfig:
    name: str | None = None  # run folder name; None: <dataset>-<model>-<time>
    runs_dir: str = "runs"
    html_report: bool = True  # write report.html (self-contained) at the end of training
    tensorboard: bool = False  # write TensorBoard event files to <run>/tensorboard


@dataclass
class GanConfig:
    """A DCGAN (data.task gan; cnnkit.tasks.gan); the defaults are the paper's. train.epochs / batch_size / seed apply."""

    latent: Annotated[int, POSITIVE] = 100  # length of the noise vector z
    width: Annotated[int, POSITIVE] = (
        64  # channels of the discriminator's first layer (the generator's last hidden one)
    )
    lr: Annotated[float, Range(0, 1, lo_open=True)] = 2e-4  # Adam's rate, both networks
    beta1: Annotated[float, Range(0, 1)] = 0.5  # Adam's beta1 (0.5 steadies training, section 4)
    samples: Annotated[int, Range(1, 1024)] = 64  # images in each epoch's sample grid (one fixed noise batch)
    conditional: bool = False  # class-conditional: one-hot label joined to z in G, as extra input channels in D
    loss: Literal["bce", "hinge"] = "bce"  # bce: the paper's (non-saturating G) | hinge (Lim & Ye 2017)
    spectral_norm: bool = False  # spectral norm on the discriminator's convolutions (Miyato et al. 2018)
    ema: Annotated[float, Range(0, 1, hi_open=True)] = 0.0  # decay of an EMA of G (0: off); samples/generate use it
    score_with: str | None = None  # a cnnkit classifier of the same data: classifier-FID + class shares at the end
    score_n: Annotated[int, Range(10, 100_000)] = 2000  # images generated for those numbers
    score_every: Annotated[int, Range(0, None)] = 0  # with score_with: also every this many epochs (0: at the end only)


@dataclass
class SegmentConfig:
    """The loss of a segmentation run (data.task segment; cnnkit.tasks.segment.losses)."""

    loss: Literal["ce", "dice", "ce+dice"] = "ce"  # ce: per-pixel cross-entropy | dice: soft Dice | ce+dice: their sum
    class_weights: str = (
        "none"  # cross-entropy class weights: none | auto (inverse pixel frequency of the train masks) | a list "1,4.5"
    )
    border_weight: Annotated[float, Range(0, 1000)] = (
        0.0  # U-Net paper's w0: extra weight on pixels between touching objects (paper: 10; 0: off)
    )
    border_sigma: Annotated[float, Range(0, 1000, lo_open=True)] = 5.0  # its sigma in pixels (paper: 5)


# keys that moved when `train` was split by concern; older config.yaml files, checkpoints and --set keys still load
MOVED = {
    "train.eval_batch_size": "eval.batch_size",
    "train.tta": "eval.tta",
    "train.device": "runtime.device",
    "train.precision": "runtime.precision",
    "train.channels_last": "runtime.channels_last",
    "train.num_threads": "runtime.num_threads",
    "train.deterministic": "runtime.deterministic",
    "train.compile": "runtime.compile",
    "train.devices": "runtime.devices",
    "train.tensorboard": "run.tensorboard",
}


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    run: RunConfig = field(default_factory=RunConfig)
    adv: AdvConfig = field(default_factory=AdvConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, *, source: str = "config") -> Config:
        return typing.cast(Config, merge(cls(), upgrade(d or {}, source=source), source=source))

    def with_overrides(self, overrides: dict[str, Any], *, source: str = "flag") -> Config:
        """A copy with dotted keys (``{"optim.lr": 0.1}``) replaced."""
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            parts = key.split(".")
            node = nested
            for p in parts[:-1]:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{source} {key!r}: {p!r} is given both as a value and as a group")
            node[parts[-1]] = value
        return typing.cast(Config, merge(self, upgrade(nested, source=source), source=source))


def upgrade(d: Any, *, source: str = "config") -> Any:
    """A copy of the nested dict `d` with the keys of MOVED in their new places (older configs load)."""
    if not isinstance(d, dict):
        return d
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for old, new in MOVED.items():
        (og, ok), (ng, nk) = old.split("."), new.split(".")
        if not isinstance(out.get(og), dict) or ok not in out[og]:
            continue
        value = out[og].pop(ok)
        group = out.setdefault(ng, {})
        if not isinstance(group, dict):
            continue  # merge names the bad group
        if nk in group and group[nk] != value:
            raise ConfigError(f"{source}: {old!r} (its older name) and {new!r} are both given; keep {new!r}")
        group.setdefault(nk, value)
    return out


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{hint} Valid keys: {', '.join(valid)}."


def _check_type(value: Any, tp: Any, key: str, source: str) -> Any:
    """Return value converted to tp where lossless (int -> float), else raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return _check_literal(value, typing.get_args(tp), key, source)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, key, source)
            except ConfigError:
                pass
        literal = [a for a in args if typing.get_origin(a) is Literal]
        if literal and isinstance(value, str):  # the closed set's error says more than "expected ..."
            _check_literal(value, typing.get_args(literal[0]), key, source)
        raise ConfigError(f"{source} {key!r}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            return dict(value)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - every field type is listed above
        return value
    raise ConfigError(f"{source} {key!r}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _check_literal(value: Any, allowed: tuple[Any, ...], key: str, source: str) -> Any:
    """`value` if it is one of `allowed` (a closed set: every allowed-values check of the config is this one)."""
    if isinstance(value, str) and value in allowed:
        return value
    names = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.4)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"{source} {key!r}: {value!r} is not one of {', '.join(names)}{hint}")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is dict:
        return "a mapping"
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    return getattr(tp, "__name__", str(tp))


def merge(base: Any, updates: dict[str, Any], *, source: str, prefix: str = "") -> Any:
    """Return a copy of the dataclass `base` with `updates` (a nested dict) applied, strictly."""
    if not isinstance(updates, dict):
        raise ConfigError(f"{source} {prefix.rstrip('.') or 'top level'}: expected a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(base))
    ranges = {k: ranged(t) for k, t in typing.get_type_hints(type(base), include_extras=True).items()}
    valid = [f.name for f in dataclasses.fields(base)]
    changes = {}
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in valid:
            raise ConfigError(f"{source}: unknown key {full!r}.{_suggest(str(full), [prefix + v for v in valid])}")
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            changes[key] = merge(current, value, source=source, prefix=f"{full}.")
        else:
            changes[key] = _check_type(value, hints[key], full, source)
            key_range = ranges[key]
            if key_range is not None and changes[key] is not None:
                key_range.check(changes[key], f"{source} {full!r}")
    return dataclasses.replace(base, **changes)


def all_keys(cfg: Config | None = None) -> list[str]:
    """Every dotted key, e.g. ``optim.lr``."""
    cfg = cfg or Config()
    return [f"{g.name}.{f.name}" for g in dataclasses.fields(cfg) for f in dataclasses.fields(getattr(cfg, g.name))]


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path}: not valid YAML: {e}") from e
    return Config.from_dict(raw, source=str(path))


def save_config(cfg: Config, path: str | Path) -> None:
    # complete or not there, like every file of a run
    from cnnkit.rundir import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` value as YAML (numbers, booleans, null, lists, mappings)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
