"""Training configuration: one dataclass with the paper's defaults, validated and saved as YAML.

The defaults reproduce Wu & Boada (2019), appendix A (see docs/training.md):

- ResNet-34, ImageNet weights, batch 256, RMSE loss, AdamW, random dihedral augmentation
  with the fastai ``max_zoom=1.1`` random zoom;
- ``paper`` recipe: 2 epochs with the body frozen (every group at lr 0.1, cosine annealed over
  each epoch), then all groups trainable at lrs 1e-3 / 1e-2 / 1e-2 with SGDR cycles of
  1, 1, 2, 4 epochs: 10 epochs in all.

Fields a resumed run may change (they do not alter the arithmetic of training) are listed in
:data:`RUNTIME_FIELDS`; every other field must match the checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galmet.columns import ARCHS
from galmet.errors import ConfigError

RECIPES = ("paper", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
#: Training losses: the paper's RMSE, or the Gaussian (beta-)negative log-likelihood of a
#: heteroscedastic head that predicts a mean and a log-variance per target.
LOSSES = ("rmse", "gaussian")

#: The paper's per-group maximum learning rates after unfreezing: (stem+layer1+layer2, layer3+layer4, head).
PAPER_LRS = (1e-3, 1e-2, 1e-2)
#: The paper's learning rate while the body is frozen (epochs 1-2).
PAPER_FROZEN_LR = 0.1
#: The paper's SGDR cycle lengths (epochs) after unfreezing.
PAPER_CYCLES = (1, 1, 2, 4)
#: Default length of the ``onecycle`` recipe, epochs.
ONECYCLE_EPOCHS = 30
#: Default maximum learning rate of the ``onecycle`` recipe (every group).
ONECYCLE_LR = 3e-3

#: Smallest --crop: the ResNet body divides the input by 32.
MIN_CROP = 8

#: Fields that may differ between a checkpoint and the run that resumes it.
RUNTIME_FIELDS = frozenset({"device", "workers", "compile", "progress"})


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes
    ----------
    recipe : {"paper", "onecycle"}
        Learning-rate schedule; see :mod:`galmet.training.recipes`.
    targets : list of str
        Catalog column(s) to regress (dex for ``oh_p50`` and ``lgm_tot_p50``).
    arch : {"resnet18", "resnet34", "resnet50"}
        torchvision ResNet body.
    weights : str
        ``"imagenet"``, ``"none"`` (random init) or a path to a local state dict.
    epochs : int or None
        Total epochs. ``None``: the recipe's own length (``paper``: ``frozen_epochs + sum(cycles)``
        = 10; ``onecycle``: 30). For ``paper`` it must equal that sum when given.
    frozen_epochs : int
        ``paper``: leading epochs with the body frozen (each its own cosine cycle).
    cycles : list of int
        ``paper``: SGDR cycle lengths in epochs after unfreezing.
    lr : list of float or None
        Per-group maximum learning rates (1 value = the same for every group, or 3 values).
        ``None``: ``paper`` 1e-3, 1e-2, 1e-2; ``onecycle`` 3e-3 for every group.
    frozen_lr : float
        ``paper``: learning rate of the frozen epochs (applied to every group; the body's
        parameters are frozen, so only the head moves).
    weight_decay : float
        AdamW decoupled weight decay (the paper gives no value; torch's default 1e-2).
    batch_size : int
        Global batch size (split evenly over DDP processes).
    size : int or None
        Required image width = height in pixels; ``None`` accepts the dataset's size.
    crop : int or None
        Train (and later predict) on the central ``crop`` x ``crop`` pixels of each image;
        ``None`` uses the whole image. The bundle records it, so prediction takes the same
        full-size images and crops them itself. On the 0.296 arcsec/pixel SDSS cutouts, 64
        pixels (19 arcsec) hold the galaxy and cost a quarter of the compute of 128.
    max_zoom : float
        Random zoom in [1, max_zoom] (probability 0.75) then a random crop back to the
        original size, as fastai's ``max_zoom``; 1 disables it.
    dihedral : bool
        Random rotations by multiples of 90 degrees and flips (per image).
    standardize_targets : bool
        Train on (y - mean) / std of the train split; the bundle stores both so predictions
        come back in target units.
    loss : {"rmse", "gaussian"}
        ``rmse``: the paper's loss and head (one output per target). ``gaussian``: a
        heteroscedastic head (a mean and a log-variance per target) trained with the Gaussian
        negative log-likelihood weighted by the detached variance to the power ``beta``
        (beta-NLL, Seitzer et al. 2022); its sigma is calibrated like any other scale.
    beta : float
        ``gaussian``: the beta of beta-NLL, in [0, 1] (0: plain NLL; 1: the mean's gradient of
        the squared error).
    seed : int
        Seeds the model init, data order, augmentation and dropout.
    valid_fraction, split_seed : float, int
        How to carve a ``valid`` split out of ``train`` when the catalog has none.
    pct_start, div_factor, final_div_factor : float
        ``onecycle``: torch ``OneCycleLR`` shape (warm-up fraction, initial = max/div_factor,
        final = initial/final_div_factor).
    device : {"auto", "cpu", "cuda"}
        Where to train; ``auto`` picks CUDA when available.
    amp : bool
        bf16 autocast on CUDA (ignored on CPU).
    compile : bool
        Wrap the model with ``torch.compile``.
    workers : int
        CPU path: DataLoader worker processes for reading batches from a memory-mapped
        cache too big for RAM; 0 gathers batches in the training process.
    skip_bad : bool
        Drop bad rows of the dataset instead of failing.
    progress : bool
        Show a tqdm bar per epoch.
    """

    recipe: str = "paper"
    targets: list[str] = field(default_factory=lambda: ["oh_p50"])
    arch: str = "resnet34"
    weights: str = "imagenet"
    epochs: int | None = None
    frozen_epochs: int = 2
    cycles: list[int] = field(default_factory=lambda: list(PAPER_CYCLES))
    lr: list[float] | None = None
    frozen_lr: float = PAPER_FROZEN_LR
    weight_decay: float = 1e-2
    batch_size: int = 256
    size: int | None = None
    crop: int | None = None
    max_zoom: float = 1.1
    dihedral: bool = True
    standardize_targets: bool = True
    loss: str = "rmse"
    beta: float = 0.5
    seed: int = 0
    valid_fraction: float = 0.2
    split_seed: int = 0
    pct_start: float = 0.25
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    workers: int = 0
    skip_bad: bool = False
    progress: bool = True

    def resolved(self) -> TrainConfig:
        """A validated copy with ``epochs`` and ``lr`` filled in; raises ConfigError."""
        c = dataclasses.replace(
            self,
            targets=list(self.targets),
            cycles=[int(v) for v in self.cycles],
            lr=None if self.lr is None else [float(v) for v in self.lr],
        )
        _check(c.recipe in RECIPES, f"recipe must be one of {', '.join(RECIPES)}, got {c.recipe!r}")
        _check(c.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {c.arch!r}")
        _check(c.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {c.device!r}")
        _check(c.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {c.loss!r}")
        _check(0 <= c.beta <= 1, f"beta must be in [0, 1], got {c.beta}")
        _check(len(c.targets) > 0, "at least one target column is needed")
        _check(len(set(c.targets)) == len(c.targets), f"target columns repeat: {c.targets}")
        _check(c.batch_size >= 2, f"batch size must be at least 2 (batch norm), got {c.batch_size}")
        _check(c.size is None or c.size >= 1, f"size must be a positive number of pixels, got {c.size}")
        _check(c.crop is None or c.crop >= MIN_CROP, f"crop must be at least {MIN_CROP} pixels, got {c.crop}")
        _check(c.crop is None or c.size is None or c.crop <= c.size, f"crop {c.crop} is larger than size {c.size}")
        _check(c.weight_decay >= 0, f"weight decay must be >= 0, got {c.weight_decay}")
        _check(c.max_zoom >= 1, f"max zoom must be >= 1, got {c.max_zoom}")
        _check(c.workers >= 0, f"workers must be >= 0, got {c.workers}")
        _check(c.frozen_lr > 0, f"frozen lr must be > 0, got {c.frozen_lr}")
        _check(0 < c.pct_start < 1, f"pct_start must be in (0, 1), got {c.pct_start}")
        _check(c.div_factor > 0 and c.final_div_factor > 0, "div factors must be > 0")
        if c.lr is not None:
            _check(len(c.lr) in (1, 3), f"lr takes 1 or 3 values (one per layer group), got {len(c.lr)}")
            _check(all(v > 0 for v in c.lr), f"learning rates must be > 0, got {c.lr}")
            if len(c.lr) == 1:
                c.lr = c.lr * 3
        if c.recipe == "paper":
            _check(c.frozen_epochs >= 0, f"frozen epochs must be >= 0, got {c.frozen_epochs}")
            _check(all(v >= 1 for v in c.cycles), f"cycle lengths must be >= 1 epoch, got {c.cycles}")
            total = c.frozen_epochs + sum(c.cycles)
            _check(total >= 1, "the paper recipe needs at least one epoch (frozen epochs or cycles)")
            if c.epochs is not None and c.epochs != total:
                raise ConfigError(
                    f"the paper recipe's length is set by --frozen-epochs and --cycles "
                    f"({c.frozen_epochs} + {'+'.join(map(str, c.cycles)) or '0'} = {total} epochs); "
                    f"got --epochs {c.epochs}"
                )
            c.epochs = total
            c.lr = c.lr or list(PAPER_LRS)
        else:
            c.epochs = ONECYCLE_EPOCHS if c.epochs is None else c.epochs
            _check(c.epochs >= 1, f"epochs must be >= 1, got {c.epochs}")
            c.lr = c.lr or [ONECYCLE_LR] * 3
        return c

    @property
    def total_epochs(self) -> int:
        """``epochs`` of a :meth:`resolved` config (where it is always set)."""
        if self.epochs is None:
            raise ConfigError("the number of epochs is set by TrainConfig.resolved(); resolve the config first")
        return self.epochs

    @property
    def group_lrs(self) -> tuple[float, ...]:
        """The 3 per-group maximum learning rates of a :meth:`resolved` config."""
        if self.lr is None:
            raise ConfigError("the learning rates are set by TrainConfig.resolved(); resolve the config first")
        return tuple(self.lr)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (for YAML and checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a dict; unknown keys raise ConfigError naming ``where``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown config keys {unknown}")
        return cls(**data)

    def training_differences(self, other: TrainConfig) -> list[str]:
        """Names of the fields (other than runtime ones) whose values differ."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in RUNTIME_FIELDS and a[k] != b[k]]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def save_config(config: TrainConfig, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``config`` (plus optional ``extra`` keys under ``run:``) as YAML, atomically."""
    import yaml

    from galmet.io.atomic import atomic_write_text

    data = config.to_dict()
    if extra:
        data = {**data, "run": extra}
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def load_config(path: str | Path) -> TrainConfig:
    """Read a config YAML written by :func:`save_config` (the ``run:`` section is ignored)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping of option names to values")
    data.pop("run", None)
    return TrainConfig.from_dict(data, where=str(path))
