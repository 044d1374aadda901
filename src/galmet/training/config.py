"""Training configuration: one dataclass with the paper's defaults, validated and saved as YAML.

The defaults reproduce Wu & Boada (2019), appendix A (see docs/training.md):

- ResNet-34, ImageNet weights, batch 256, RMSE loss, AdamW, fastai 0.7's ``transforms_top_down``
  augmentation (random dihedral, rotation up to 10 degrees with p = 0.75, lighting +-0.05) with
  the ``max_zoom=1.1`` random zoom;
- ``paper`` recipe: 2 epochs with the body frozen (every group at lr 0.1, cosine annealed over
  each epoch), then all groups trainable at lrs 1e-3 / 1e-2 / 1e-2 with SGDR cycles of
  1, 1, 2, 4 epochs: 10 epochs in all.

``notebook`` is the authors' released code instead of the paper's text (batch 128, SGD with
momentum 0.9, lr 0.1 for every group, no weight decay, constant-lr first fits, fastai's SGDR
warm-up); ``onecycle`` trains from scratch. Fields left at ``None`` take their recipe's value in
:meth:`TrainConfig.resolved` (see :data:`RECIPE_DEFAULTS`).

Fields a resumed run may change (they do not alter the arithmetic of training) are listed in
:data:`RUNTIME_FIELDS`; every other field must match the checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galmet.errors import ConfigError, one_line
from galmet.io.inputs import require_regular_file
from galmet.training.config_schema import DEVICES as DEVICES  # (the choices live with the schema)
from galmet.training.config_schema import LOSSES as LOSSES
from galmet.training.config_schema import OPTIMIZERS as OPTIMIZERS
from galmet.training.config_schema import RECIPES as RECIPES
from galmet.training.config_schema import check_config_values

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

#: The authors' notebook: one lr (0.1) handed to every layer group, frozen or not.
NOTEBOOK_LR = 0.1
#: fastai 0.7's ``transforms_top_down``: RandomRotate(10 degrees, p 0.75), RandomLighting(0.05, 0.05).
FASTAI_ROTATE_DEG = 10.0
FASTAI_LIGHTING = 0.05

#: What a field left at None becomes, per recipe.
RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": {
        "optimizer": "adamw",
        "weight_decay": 1e-2,
        "batch_size": 256,
        "rotate": FASTAI_ROTATE_DEG,
        "lighting": FASTAI_LIGHTING,
        "sgdr_warmup": 0.0,
    },
    "notebook": {
        "optimizer": "sgd",
        "weight_decay": 0.0,
        "batch_size": 128,
        "rotate": FASTAI_ROTATE_DEG,
        "lighting": FASTAI_LIGHTING,
        "sgdr_warmup": 0.05,
    },
    # unchanged from before the fastai rotation and lighting were added (a documented result uses it)
    "onecycle": {
        "optimizer": "adamw",
        "weight_decay": 1e-2,
        "batch_size": 256,
        "rotate": 0.0,
        "lighting": 0.0,
        "sgdr_warmup": 0.0,
    },
}

#: What galmet did before these fields existed: a run saved by an older galmet (its checkpoint or
#: config.yaml lacks them) resumes with these, so it stays exact.
LEGACY_DEFAULTS: dict[str, Any] = {
    "optimizer": "adamw",
    "momentum": 0.9,
    "rotate": 0.0,
    "lighting": 0.0,
    "sgdr_warmup": 0.0,
}

#: Smallest --crop: the ResNet body divides the input by 32.
MIN_CROP = 8

#: Fields that may differ between a checkpoint and the run that resumes it.
RUNTIME_FIELDS = frozenset({"device", "workers", "compile", "progress"})


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes
    ----------
    recipe : {"paper", "onecycle", "notebook"}
        Learning-rate schedule; see :mod:`galmet.training.recipes`. Fields left at ``None``
        (optimizer, weight decay, batch size, rotation, lighting, warm-up, lr, epochs) take the
        recipe's value (:data:`RECIPE_DEFAULTS`).
    targets : list of str
        Catalog column(s) to regress (dex for ``oh_p50`` and ``lgm_tot_p50``).
    arch : {"resnet10", "resnet18", "resnet34", "resnet50"}
        torchvision ResNet body.
    weights : str
        ``"imagenet"``, ``"none"`` (random init) or a path to a local state dict.
    epochs : int or None
        Total epochs. ``None``: the recipe's own length (``paper``: ``frozen_epochs + sum(cycles)``
        = 10; ``onecycle``: 30). For ``paper`` it must equal that sum when given.
    frozen_epochs : int
        ``paper``: leading epochs with the body frozen (each its own cosine cycle).
    cycles : list of int
        ``paper``: SGDR cycle lengths in epochs after unfreezing. ``notebook``: the first is a
        constant-lr fit (the notebook's ``fit(lr, 1)``), the rest the SGDR cycles of its last fit.
    lr : list of float or None
        Per-group maximum learning rates (1 value = the same for every group, or 3 values).
        ``None``: ``paper`` 1e-3, 1e-2, 1e-2; ``onecycle`` 3e-3; ``notebook`` 0.1 for every group.
    frozen_lr : float
        ``paper`` and ``notebook``: learning rate of the frozen epochs (applied to every group;
        the body's parameters are frozen, so only the head moves).
    optimizer : {"adamw", "sgd"} or None
        ``paper`` and ``onecycle``: AdamW; ``notebook``: SGD with ``momentum`` (fastai 0.7's default).
    momentum : float
        SGD momentum (fastai 0.7: 0.9); AdamW ignores it.
    weight_decay : float or None
        Weight decay (decoupled for AdamW). ``None``: 1e-2 (torch's AdamW default; the paper gives
        no value), ``notebook`` 0.
    batch_size : int or None
        Global batch size (split evenly over DDP processes). ``None``: 256 (the paper), ``notebook`` 128.
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
    rotate : float or None
        fastai 0.7's ``RandomRotate``: with probability 0.75 a rotation by up to this many degrees
        (uniform); 0 disables it. ``None``: 10 (``paper``, ``notebook``), 0 (``onecycle``).
    lighting : float or None
        fastai 0.7's ``RandomLighting``: brightness and contrast changes of up to this much; 0
        disables it. ``None``: 0.05 (``paper``, ``notebook``), 0 (``onecycle``).
    sgdr_warmup : float or None
        Fraction of the first SGDR cycle of a fit held at lr / 100 (fastai 0.7's ``CosAnneal``).
        ``None``: 0.05 (``notebook``), 0 (``paper``, the text's schedule; ``onecycle``).
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
        Report progress per epoch in optimizer steps, with the loss (galmet.io.progress).
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
    optimizer: str | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    batch_size: int | None = None
    size: int | None = None
    crop: int | None = None
    max_zoom: float = 1.1
    dihedral: bool = True
    rotate: float | None = None
    lighting: float | None = None
    sgdr_warmup: float | None = None
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
        """A validated copy with ``epochs`` and ``lr`` filled in; raises ConfigError.

        Every field's type, range and choices are checked by the schema
        (:func:`~galmet.training.config_schema.check_config_values`), before and after the
        recipe's values fill the fields left at None; what is checked here is only what ties
        fields together (a crop inside the size, the paper recipe's length, ...)."""
        check_config_values(type(self), self.to_dict())
        c = dataclasses.replace(
            self,
            targets=list(self.targets),
            cycles=[int(v) for v in self.cycles],
            lr=None if self.lr is None else [float(v) for v in self.lr],
        )
        for name, value in RECIPE_DEFAULTS[c.recipe].items():
            if getattr(c, name) is None:
                setattr(c, name, value)
        _check(len(c.targets) > 0, "at least one target column is needed")
        _check(len(set(c.targets)) == len(c.targets), f"target columns repeat: {c.targets}")
        _check(c.crop is None or c.crop >= MIN_CROP, f"crop must be at least {MIN_CROP} pixels, got {c.crop}", "crop")
        _check(
            c.crop is None or c.size is None or c.crop <= c.size,
            f"crop {c.crop} is larger than size {c.size}",
            ("crop", "size"),
        )
        if c.lr is not None:
            _check(len(c.lr) in (1, 3), f"lr takes 1 or 3 values (one per layer group), got {len(c.lr)}", "lr")
            if len(c.lr) == 1:
                c.lr = c.lr * 3
        if c.recipe in ("paper", "notebook"):
            total = c.frozen_epochs + sum(c.cycles)
            _check(total >= 1, f"the {c.recipe} recipe needs at least one epoch (frozen epochs or cycles)")
            if c.epochs is not None and c.epochs != total:
                raise ConfigError(
                    f"the {c.recipe} recipe's length is set by frozen_epochs and cycles "
                    f"({c.frozen_epochs} + {'+'.join(map(str, c.cycles)) or '0'} = {total}); "
                    f"got epochs {c.epochs}",
                    param=("frozen_epochs", "cycles", "epochs"),
                )
            c.epochs = total
            c.lr = c.lr or (list(PAPER_LRS) if c.recipe == "paper" else [NOTEBOOK_LR] * 3)
        else:
            c.epochs = ONECYCLE_EPOCHS if c.epochs is None else c.epochs
            c.lr = c.lr or [ONECYCLE_LR] * 3
        check_config_values(type(c), c.to_dict())  # the recipe's values too
        return c

    @property
    def total_epochs(self) -> int:
        """``epochs`` of a :meth:`resolved` config (where it is always set)."""
        if self.epochs is None:
            raise ConfigError("the number of epochs is set by TrainConfig.resolved(); resolve the config first")
        return self.epochs

    @property
    def global_batch(self) -> int:
        """``batch_size`` of a :meth:`resolved` config (where it is always set)."""
        if self.batch_size is None:
            raise ConfigError("the batch size is set by TrainConfig.resolved(); resolve the config first")
        return int(self.batch_size)

    @property
    def decay(self) -> float:
        """``weight_decay`` of a :meth:`resolved` config (where it is always set)."""
        if self.weight_decay is None:
            raise ConfigError("the weight decay is set by TrainConfig.resolved(); resolve the config first")
        return float(self.weight_decay)

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
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise ConfigError(f"{where}: unknown config keys {unknown}")
        check_config_values(cls, data, where)
        return cls(**data)

    @classmethod
    def from_saved(cls, data: dict[str, Any], where: str = "config") -> TrainConfig:
        """A config galmet saved with a run (a checkpoint's, or a run's config.yaml): a field it
        lacks predates it and takes :data:`LEGACY_DEFAULTS`, what galmet did then (not the
        recipe's current default), so resuming an old run replays it exactly."""
        return cls.from_dict({**LEGACY_DEFAULTS, **data}, where)

    def training_differences(self, other: TrainConfig) -> list[str]:
        """Names of the fields (other than runtime ones) whose values differ."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in RUNTIME_FIELDS and a[k] != b[k]]


def _check(ok: bool, message: str, param: str | tuple[str, ...] | None = None) -> None:
    """ConfigError(``message``, ``param``) unless ``ok``."""
    if not ok:
        raise ConfigError(message, param=param)


def save_config(config: TrainConfig, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``config`` (plus optional ``extra`` keys under ``run:``) as YAML, atomically."""
    import yaml

    from galmet.io.atomic import atomic_write_text

    data = config.to_dict()
    if extra:
        data = {**data, "run": extra}
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def load_config(path: str | Path, saved_run: bool = False) -> TrainConfig:
    """Read a config YAML written by :func:`save_config` (the ``run:`` section is ignored).

    ``saved_run``: the file is a run's own ``config.yaml`` (for ``--resume``): fields it lacks
    take :data:`LEGACY_DEFAULTS` (see :meth:`TrainConfig.from_saved`) instead of the recipe's."""
    import yaml

    path = require_regular_file(path, "YAML config")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file (a YAML config is expected)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or one_line(exc)})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or one_line(exc)
        raise ConfigError(f"{path}: {at}not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping of option names to values")
    data.pop("run", None)
    if saved_run:
        return TrainConfig.from_saved(data, where=str(path))
    return TrainConfig.from_dict(data, where=str(path))


def as_train_config(config: Any, param: str = "config") -> TrainConfig | None:
    """``config`` as a :class:`TrainConfig`: None stays None, a TrainConfig is itself, a mapping
    (``{"epochs": 5}``) is :meth:`TrainConfig.from_dict` (unknown keys and bad values refused);
    anything else is a one-line ConfigError naming ``param``."""
    if config is None or isinstance(config, TrainConfig):
        return config
    if isinstance(config, Mapping):
        return TrainConfig.from_dict(dict(config), where=param)
    raise ConfigError(
        f"{param} must be a TrainConfig or a mapping of its fields, got {type(config).__name__}", param=param
    )
