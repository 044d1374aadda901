"""The paper's network (torchvision ResNet body + fastai-0.7 head), layer groups, model bundles.

- :func:`build_model`: ``GalmetNet`` = torchvision ResNet-18/34/50 without avgpool/fc (``.body``)
  followed by the fastai 0.7 head (``.head``): concat(adaptive max pool, adaptive avg pool) ->
  flatten -> BatchNorm1d(2C) -> Dropout(0.25) -> Linear(2C, 512) -> ReLU -> BatchNorm1d(512) ->
  Dropout(0.5) -> Linear(512, n_targets), C = the body's output channels (512 or 2048).
- :func:`layer_groups`: the paper's three groups, (1) stem + layer1 + layer2, (2) layer3 + layer4,
  (3) head; :func:`freeze_body` freezes the body as fastai 0.7 did (BatchNorm statistics included).
- :func:`save_bundle` / :func:`load_model`: one ``model.pt`` file, loaded with
  ``torch.load(weights_only=True)`` (no arbitrary pickle), returning a :class:`GalmetModel`
  whose :meth:`GalmetModel.predict` takes uint8 (N, H, W, 3) images.
- :func:`save_ensemble`: several compatible bundles (e.g. the fold models of a cross-validated
  run) in one file; :func:`load_model` reads it the same way and predictions average the members.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from galmet.io.atomic import atomic_path
from galmet.nn.augment import IMAGENET_MEAN, IMAGENET_STD, center_crop, dihedral_view, to_model_input
from galmet.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ARCHS = ("resnet18", "resnet34", "resnet50")
BUNDLE_FORMAT = "galmet-bundle"
# Version 2 adds meta "crop" and ensembles (meta "members" + "state_dicts"), which a version-1
# reader would misread; bundles that use neither are still written as version 1.
BUNDLE_VERSION = 2
BUNDLE_NAME = "model.pt"
HEAD_DESCRIPTION = (
    "concat(AdaptiveMaxPool2d(1), AdaptiveAvgPool2d(1)) -> Flatten -> BatchNorm1d(2C) -> Dropout(0.25) -> "
    "Linear(2C, 512) -> ReLU -> BatchNorm1d(512) -> Dropout(0.5) -> Linear(512, n_targets)"
)
#: Stem modules of a torchvision ResNet, in forward order (layer group 1 with layer1, layer2).
_STEM = ("conv1", "bn1", "relu", "maxpool")


class AdaptiveConcatPool2d(nn.Module):
    """fastai's pooling: adaptive max pool and adaptive avg pool to 1x1, concatenated (max first).

    (N, C, H, W) -> (N, 2C, 1, 1).
    """

    def __init__(self) -> None:
        super().__init__()
        self.mp = nn.AdaptiveMaxPool2d(1)
        self.ap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mp(x), self.ap(x)], 1)


def make_head(in_channels: int, n_targets: int = 1) -> nn.Sequential:
    """The fastai 0.7 regression head for a body with ``in_channels`` output channels.

    Linear weights are Kaiming-normal initialised, as fastai 0.7's ``ConvLearner`` did.
    """
    head = nn.Sequential(
        AdaptiveConcatPool2d(),
        nn.Flatten(),
        nn.BatchNorm1d(2 * in_channels),
        nn.Dropout(0.25),
        nn.Linear(2 * in_channels, 512),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(512),
        nn.Dropout(0.5),
        nn.Linear(512, n_targets),
    )
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return head


class GalmetNet(nn.Module):
    """ResNet body + regression head: float (N, 3, H, W) -> float (N, n_targets).

    Attributes
    ----------
    body : nn.Sequential
        The torchvision ResNet's children except ``avgpool`` and ``fc``, by name
        (``conv1, bn1, relu, maxpool, layer1 .. layer4``).
    head : nn.Sequential
        See :func:`make_head`.
    arch : str
        ``resnet18``, ``resnet34`` or ``resnet50``.
    body_frozen : bool
        Set by :func:`freeze_body`; while True, :meth:`train` keeps the body's BatchNorm
        layers in eval mode (running statistics frozen), as fastai 0.7 did.
    """

    def __init__(self, body: nn.Sequential, head: nn.Sequential, arch: str) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.arch = arch
        self.body_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def train(self, mode: bool = True) -> "GalmetNet":
        super().train(mode)
        if mode and self.body_frozen:
            for m in self.body.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


def _resnet(arch: str) -> nn.Module:
    import torchvision

    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    return getattr(torchvision.models, arch)(weights=None)


def build_model(arch: str = "resnet34", n_targets: int = 1, weights: str | os.PathLike = "none") -> GalmetNet:
    """Build the paper's network.

    Parameters
    ----------
    arch : {"resnet18", "resnet34", "resnet50"}
        torchvision ResNet used as the body.
    n_targets : int
        Outputs of the final linear layer (one per target column).
    weights : {"none", "imagenet"} or path
        ``none``: random init. ``imagenet``: torchvision's ``IMAGENET1K_V1`` weights (downloaded,
        or read from the torch hub cache; :class:`ConfigError` saying how to get them when that
        fails). A path: a local torchvision ResNet state dict, or a galmet bundle whose body is
        reused. The head is always freshly initialised.

    Returns
    -------
    GalmetNet
    """
    if int(n_targets) < 1:
        raise ConfigError(f"n_targets must be at least 1, got {n_targets}")
    resnet = _resnet(arch)
    channels = resnet.fc.in_features
    body = nn.Sequential(OrderedDict((name, m) for name, m in resnet.named_children() if name not in ("avgpool", "fc")))
    model = GalmetNet(body, make_head(channels, int(n_targets)), arch)
    w = str(weights)
    if w == "none":
        return model
    state = imagenet_state_dict(arch) if w == "imagenet" else _local_body_state(Path(w))
    _load_body(model, state, "ImageNet weights" if w == "imagenet" else w)
    return model


def imagenet_cache_file(arch: str) -> tuple[str, Path]:
    """(download URL, torch hub cache path) of torchvision's IMAGENET1K_V1 weights for ``arch``."""
    import torchvision

    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    url = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for ``arch``, via its weights API.

    The torch hub cache (``$TORCH_HOME/hub/checkpoints``) is used when the file is there;
    torch only checks the hash of files it downloads. Set ``GALMET_OFFLINE=1`` to never try the
    network. Any failure raises a one-line :class:`ConfigError` with the URL and cache path.
    """
    import torchvision

    url, cached = imagenet_cache_file(arch)
    how = (f"download {url} into {cached} (or set TORCH_HOME), or pass --weights PATH to a local "
           f"state dict, or --weights none")
    if not cached.is_file() and os.environ.get("GALMET_OFFLINE"):
        raise ConfigError(f"ImageNet weights for {arch} are not in the torch cache and GALMET_OFFLINE is set: {how}")
    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - URLError, hash mismatch, corrupt cache all end the same way
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot get ImageNet weights for {arch} ({type(exc).__name__}: {reason}): {how}") from exc


def _safe_load(path: Path, what: str) -> Any:
    """torch.load with weights_only=True; any failure -> one-line ConfigError naming ``path``."""
    if not path.exists():
        raise ConfigError(f"{path}: no such {what}")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a {what} file")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning adds nothing to the refusal
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConfigError(f"{path}: not a plain-weights {what} (refusing to unpickle arbitrary objects)") from exc
    except Exception as exc:  # noqa: BLE001 - a damaged file makes the unpickler raise almost anything
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"{path}: cannot read {what} ({type(exc).__name__}: {first[:200]})") from exc


def _local_body_state(path: Path) -> dict[str, torch.Tensor]:
    obj = _safe_load(path, "weights file")
    if isinstance(obj, dict) and obj.get("format") == BUNDLE_FORMAT:
        obj = obj.get("state_dict")
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{path}: not a state dict (expected a torchvision ResNet state dict or a galmet bundle)")
    if any(k.startswith("body.") for k in obj):
        return {k[len("body."):]: v for k, v in obj.items() if k.startswith("body.")}
    return dict(obj)


def _load_body(model: GalmetNet, state: dict[str, torch.Tensor], source: str) -> None:
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = model.body.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise ConfigError(f"{source}: weights do not fit a {model.arch} body ({what}; "
                          f"{len(missing)} missing, {len(unexpected)} unexpected keys)")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ConfigError(f"{source}: weights do not fit a {model.arch} body "
                              f"({k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)})")
    model.body.load_state_dict(state)


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The paper's three parameter groups: [stem + layer1 + layer2, layer3 + layer4, head].

    Every parameter of the model appears in exactly one group. Accepts a ``GalmetNet`` or one
    wrapped by DistributedDataParallel / torch.compile.
    """
    net = unwrap(model)
    body = net.body
    g1 = [p for name in (*_STEM, "layer1", "layer2") for p in getattr(body, name).parameters()]
    g2 = [p for name in ("layer3", "layer4") for p in getattr(body, name).parameters()]
    g3 = list(net.head.parameters())
    return [g1, g2, g3]


def freeze_body(model: nn.Module, frozen: bool = True) -> None:
    """Freeze (or unfreeze) the body: ``requires_grad`` off for all its parameters.

    While frozen, the body's BatchNorm layers also stay in eval mode (running mean/var
    frozen) even after ``model.train()``, as fastai 0.7 did for non-trainable layers; so
    epochs 1-2 of the paper recipe change only the head. The head is never frozen.
    """
    net = unwrap(model)
    for p in net.body.parameters():
        p.requires_grad_(not frozen)
    net.body_frozen = bool(frozen)
    net.train(net.training)


def unwrap(model: nn.Module) -> GalmetNet:
    """The ``GalmetNet`` inside a DistributedDataParallel and/or torch.compile wrapper."""
    while not isinstance(model, GalmetNet):
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            raise TypeError(f"expected a GalmetNet, got {type(model).__name__}")
    return model


# --------------------------------------------------------------------------------------- bundles


def save_bundle(path: str | os.PathLike, model: nn.Module, meta: dict) -> Path:
    """Write a model bundle (one file, atomically) that :func:`load_model` reads back.

    Parameters
    ----------
    path : path-like
        Output file, conventionally ``RUN/model.pt``.
    model : GalmetNet
        Possibly wrapped (DDP, torch.compile); its weights are copied to the CPU.
    meta : dict
        JSON-able description. ``targets`` (list of column names) is required unless
        ``n_targets`` is 1; the rest is filled in when absent: ``arch``, ``n_targets``,
        ``targets``, ``head``, ``norm_mean``/``norm_std``, ``image_size`` (None = any),
        ``crop`` (None, or the central pixels the network sees),
        ``target_shift``/``target_scale`` (prediction = raw output * scale + shift),
        ``galmet_version``. Anything else (recipe, provenance) is kept as given.
    """
    from galmet import __version__

    net = unwrap(model)
    n_out = net.head[-1].out_features
    meta = dict(meta)
    if meta.setdefault("arch", net.arch) != net.arch:
        raise ConfigError(f"{path}: meta arch {meta['arch']!r} does not match the model ({net.arch})")
    meta.setdefault("n_targets", n_out)
    targets = meta.setdefault("targets", ["oh_p50"] if n_out == 1 else [f"target{i}" for i in range(n_out)])
    if isinstance(targets, str):
        targets = meta["targets"] = [targets]
    if len(targets) != n_out or meta["n_targets"] != n_out:
        raise ConfigError(f"{path}: meta lists {len(targets)} targets but the model has {n_out} outputs")
    meta.setdefault("head", HEAD_DESCRIPTION)
    meta.setdefault("norm_mean", list(IMAGENET_MEAN))
    meta.setdefault("norm_std", list(IMAGENET_STD))
    meta.setdefault("image_size", None)
    meta["target_shift"] = [float(v) for v in meta.get("target_shift", [0.0] * n_out)]
    meta["target_scale"] = [float(v) for v in meta.get("target_scale", [1.0] * n_out)]
    if len(meta["target_shift"]) != n_out or len(meta["target_scale"]) != n_out:
        raise ConfigError(f"{path}: target_shift/target_scale need {n_out} values each")
    meta.setdefault("galmet_version", __version__)
    meta.setdefault("crop", None)
    version = BUNDLE_VERSION if meta["crop"] is not None else 1
    bundle = {"format": BUNDLE_FORMAT, "bundle_version": version, "meta": meta, "state_dict": _cpu_state(net)}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(bundle, tmp)
    return path


def _cpu_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``net``'s weights on the CPU, as a bundle stores them."""
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


#: Meta fields every member of an ensemble must share.
_SHARED_META = ("arch", "n_targets", "targets", "norm_mean", "norm_std", "image_size", "crop")
#: Meta fields kept per member of an ensemble.
_MEMBER_META = ("target_shift", "target_scale", "valid_rmse")


def save_ensemble(path: str | os.PathLike, members: list, meta: dict | None = None) -> Path:
    """Write several compatible model bundles as one ensemble bundle that :func:`load_model` reads.

    Parameters
    ----------
    path : path-like
        Output file (written atomically).
    members : list of path-like or GalmetModel
        Bundles with the same architecture, targets, normalisation, image size and crop
        (typically the fold models of ``galmet train --folds``); an ensemble given as a member
        contributes all of its members.
    meta : dict, optional
        Extra JSON-able description (e.g. the cross-validation scores).

    Predictions of the ensemble are the mean over members (and over the TTA views); each
    member keeps its own target standardisation.
    """
    models = [m if isinstance(m, GalmetModel) else load_model(m) for m in members]
    if sum(len(m.nets) for m in models) < 2:
        raise ConfigError(f"{path}: an ensemble needs at least 2 member networks, got "
                          f"{sum(len(m.nets) for m in models)}")
    first = models[0]
    out = {k: first.meta.get(k) for k in _SHARED_META}
    for m in models:
        for k in _SHARED_META:
            if m.meta.get(k) != out[k]:
                raise ConfigError(f"{m.path}: its {k} ({m.meta.get(k)!r}) differs from {first.path}'s ({out[k]!r})")
    from galmet import __version__

    out.update({"head": HEAD_DESCRIPTION, "galmet_version": __version__, "recipe": first.meta.get("recipe"),
                "config": first.meta.get("config")})
    out.update(meta or {})
    out["members"], states = [], []
    for m in models:
        source = str(m.path) if m.path else None
        for net, member in zip(m.nets, m.meta["members"] if "members" in m.meta else [m.meta]):
            out["members"].append({**{k: member.get(k) for k in _MEMBER_META}, "source": member.get("source", source)})
            states.append(_cpu_state(net))
    bundle = {"format": BUNDLE_FORMAT, "bundle_version": BUNDLE_VERSION, "meta": out, "state_dicts": states}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(bundle, tmp)
    return path


def load_model(path: str | os.PathLike, device: str = "cpu") -> "GalmetModel":
    """Load a model bundle written by :func:`save_bundle` (or a run directory holding ``model.pt``).

    Uses ``torch.load(weights_only=True)``: a file holding arbitrary Python objects is refused,
    never executed. Anything unreadable (missing, corrupt, not a galmet bundle, a newer
    bundle version, weights that do not fit the stated architecture) raises a one-line
    :class:`ConfigError` naming the file.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / BUNDLE_NAME).is_file():
            raise ConfigError(f"{path}: directory holds no {BUNDLE_NAME} (an unfinished training run?); give the bundle file")
        path = path / BUNDLE_NAME
    if not path.exists():
        raise ConfigError(f"{path}: no such model bundle")
    obj = _safe_load(path, "galmet model bundle")
    if not isinstance(obj, dict) or obj.get("format") != BUNDLE_FORMAT:
        raise ConfigError(f"{path}: not a galmet model bundle (no 'format': '{BUNDLE_FORMAT}' entry)")
    version = obj.get("bundle_version")
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"{path}: bad bundle_version {version!r}")
    if version > BUNDLE_VERSION:
        raise ConfigError(f"{path}: bundle version {version} is newer than this galmet reads ({BUNDLE_VERSION}); upgrade galmet")
    meta = obj.get("meta")
    states = obj.get("state_dicts") if "state_dicts" in obj else [obj.get("state_dict")]
    if not isinstance(meta, dict) or not isinstance(states, list) or not states \
            or not all(isinstance(s, dict) for s in states):
        raise ConfigError(f"{path}: galmet bundle lacks its meta or state_dict")
    if "state_dicts" in obj and (not isinstance(meta.get("members"), list) or len(meta["members"]) != len(states)):
        raise ConfigError(f"{path}: ensemble bundle lists {len(meta.get('members') or [])} members "
                          f"but holds {len(states)} weight sets")
    arch = meta.get("arch")
    if arch not in ARCHS:
        raise ConfigError(f"{path}: unknown architecture {arch!r} in bundle (this galmet knows {', '.join(ARCHS)})")
    n_targets = meta.get("n_targets")
    targets = meta.get("targets")
    if not isinstance(n_targets, int) or not isinstance(targets, list) or len(targets) != n_targets:
        raise ConfigError(f"{path}: bundle meta has inconsistent n_targets/targets ({n_targets!r}, {targets!r})")
    nets = []
    for state in states:
        net = build_model(arch, n_targets, "none")
        expected = net.state_dict()
        if set(state) != set(expected) or any(tuple(state[k].shape) != tuple(v.shape) for k, v in expected.items()):
            bad = sorted(set(state) ^ set(expected)) or [k for k, v in expected.items()
                                                         if tuple(state[k].shape) != tuple(v.shape)]
            raise ConfigError(f"{path}: weights do not match a {arch} with {n_targets} outputs (first mismatch: {bad[0]})")
        net.load_state_dict(state)
        nets.append(net.eval())
    return GalmetModel(nets, meta, path).to(device)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU -> ConfigError."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name}: not a device (use auto, cpu or cuda)") from exc


class GalmetModel:
    """A trained network (or an ensemble of them) with everything needed to use it: targets,
    normalisation, image size, crop.

    Attributes
    ----------
    nets : list of GalmetNet
        In eval mode: one for a single model, the members of an ensemble.
    meta : dict
        The bundle's description (see :func:`save_bundle`; an ensemble's per-member target
        standardisation is in ``meta["members"]``).
    path : Path or None
        Where it was loaded from.
    """

    def __init__(self, net: GalmetNet | list[GalmetNet], meta: dict, path: Path | None = None) -> None:
        self.nets = [n.eval() for n in (net if isinstance(net, list) else [net])]
        self.meta = meta
        self.path = path

    def __repr__(self) -> str:
        members = f", members={len(self.nets)}" if len(self.nets) > 1 else ""
        return (f"GalmetModel({self.arch}, targets={self.targets}, image_size={self.image_size}, "
                f"crop={self.crop}{members}, path={self.path})")

    @property
    def net(self) -> GalmetNet:
        """The network (an ensemble's first member)."""
        return self.nets[0]

    def _member_scaling(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(target_scale, target_shift) of each member: prediction = raw output * scale + shift."""
        t = len(self.targets)
        metas = self.meta["members"] if "members" in self.meta else [self.meta]
        return [(np.asarray(m.get("target_scale") or [1.0] * t, dtype=np.float64),
                 np.asarray(m.get("target_shift") or [0.0] * t, dtype=np.float64)) for m in metas]

    @property
    def arch(self) -> str:
        return self.meta["arch"]

    @property
    def targets(self) -> list[str]:
        return list(self.meta["targets"])

    @property
    def image_size(self) -> int | None:
        size = self.meta.get("image_size")
        return None if size is None else int(size)

    @property
    def crop(self) -> int | None:
        """The central crop (pixels) the network sees, or None for the whole image."""
        crop = self.meta.get("crop")
        return None if crop is None else int(crop)

    def to(self, device: str | torch.device) -> "GalmetModel":
        for net in self.nets:
            net.to(resolve_device(device))
        return self

    def _check_images(self, images) -> None:
        where = f"{self.path or 'model'}"
        if isinstance(images, torch.Tensor):
            dtype_ok, shape = images.dtype == torch.uint8, tuple(images.shape)
        elif isinstance(images, np.ndarray):
            dtype_ok, shape = images.dtype == np.uint8, images.shape
        else:
            raise DataError(f"{where}: images must be a uint8 numpy array (N, H, W, 3), got {type(images).__name__}")
        if not dtype_ok:
            raise DataError(f"{where}: images must be uint8 (N, H, W, 3), got dtype {images.dtype}")
        s = self.image_size
        if len(shape) != 4 or shape[3] != 3 or (s is not None and shape[1:3] != (s, s)):
            want = f"(N, {s}, {s}, 3)" if s is not None else "(N, H, W, 3)"
            raise DataError(f"{where}: images have shape {shape}, this model expects {want}")

    def predict(self, images, tta: bool = True, batch_size: int = 256, device: str = "auto",
                return_std: bool = False, progress: bool | None = None):
        """Predict the targets of uint8 images.

        Parameters
        ----------
        images : numpy.ndarray or torch.Tensor
            uint8 (N, H, W, 3), H = W = the bundle's image size. A numpy memmap works (read
            batch by batch); a uint8 tensor already on the device avoids the host copy.
        tta : bool
            Average the raw outputs over the 8 dihedral views (rotations by 90 degrees and
            flips) instead of using the image as is.
        batch_size : int
            Images per forward pass (each TTA view is its own pass of this size).
        device : {"auto", "cpu", "cuda"}
            Where to run; channels_last everywhere, and bf16 autocast on CUDA.
        return_std : bool
            Also return the population standard deviation over the 8 views (and, for an
            ensemble, over its members), in target units; NaN for one model without TTA.
        progress : bool, optional
            tqdm bar over batches; default: when there are more than 20 batches.

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, numpy.ndarray)
            float64 (N,) for a one-target model, else (N, T); with ``return_std`` a pair.
        """
        self._check_images(images)
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        dev = resolve_device(device)
        # channels_last helps on CPU (oneDNN) as much as on CUDA (tensor cores)
        nets = [net.to(dev, memory_format=torch.channels_last).eval() for net in self.nets]
        cuda = dev.type == "cuda"
        n, t = len(images), len(self.targets)
        # Each member's raw outputs go to target units with its own standardisation (float64: the
        # shift is ~9 dex, the spread ~1e-3); then mean and spread over members x views.
        scaling = [tuple(torch.as_tensor(a, device=dev) for a in pair) for pair in self._member_scaling()]
        mean_out = torch.empty((n, t), dtype=torch.float64, device=dev)
        std_out = torch.full((n, t), float("nan"), dtype=torch.float64, device=dev)
        norm = (tuple(self.meta.get("norm_mean", IMAGENET_MEAN)), tuple(self.meta.get("norm_std", IMAGENET_STD)))
        starts = range(0, n, batch_size)
        show = progress if progress is not None else len(starts) > 20
        if show:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="predicting", unit="batch")
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            for start in starts:
                xb = _to_device(images[start:start + batch_size], dev)
                x = to_model_input(center_crop(xb, self.crop), *norm)
                views = []
                for net, (scale, shift) in zip(nets, scaling):
                    raw = [net(dihedral_view(x, i)) for i in range(8)] if tta else [net(x)]
                    views += [r.double() * scale + shift for r in raw]
                views = torch.stack(views)  # (members x views, B, T), target units
                mean_out[start:start + len(x)] = views.mean(0)
                if len(views) > 1:
                    std_out[start:start + len(x)] = views.std(0, correction=0)
        pred = mean_out.cpu().numpy()
        std = std_out.cpu().numpy()
        if t == 1:
            pred, std = pred[:, 0], std[:, 0]
        return (pred, std) if return_std else pred


def _to_device(batch, dev: torch.device) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch.to(dev, non_blocking=True)
    if dev.type == "cuda":
        # One copy from the (possibly memory-mapped) array straight into pinned memory; the
        # caching host allocator keeps it alive until the asynchronous upload has finished.
        pinned = torch.empty(batch.shape, dtype=torch.uint8, pin_memory=True)
        pinned.numpy()[...] = batch
        return pinned.to(dev, non_blocking=True)
    batch = np.ascontiguousarray(batch)
    if not batch.flags.writeable:  # a read-only memmap slice: torch wants memory it may own
        batch = batch.copy()
    return torch.from_numpy(batch)
