"""The model bundle format: one ``model.pt`` file holding a trained network or an ensemble.

- :func:`save_bundle` / :func:`load_model`: one file, loaded with ``torch.load(weights_only=True)``
  (no arbitrary pickle), returning a :class:`~galmet.nn.inference.GalmetModel` whose
  :meth:`~galmet.nn.inference.GalmetModel.predict` takes uint8 (N, H, W, 3) images.
- :func:`save_ensemble`: several compatible bundles (e.g. the fold models of a cross-validated
  run) in one file; :func:`load_model` reads it the same way and predictions average the members.

This module is the format's one owner: nothing else reads or writes bundle files.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from galmet._version import __version__
from galmet.columns import ARCHS
from galmet.data.imaging import MAX_PIXELS, Imaging
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_path
from galmet.io.safety import check_output_file, model_input
from galmet.io.tables import file_sha256
from galmet.layout import BUNDLE, BUNDLE_FORMAT
from galmet.nn.augment import IMAGENET_MEAN, IMAGENET_STD
from galmet.nn.bundle_meta import (
    MEMBER_KEYS,
    SHARED_KEYS,
    MetaKey,
    check_described_fields,
    imaging_from_meta,
    member_metas,
)
from galmet.nn.inference import GalmetModel
from galmet.nn.net import GAUSSIAN, HEAD_DESCRIPTION, GalmetNet, build_model, n_outputs, outputs_per_target, unwrap
from galmet.nn.uncertainty import read_calibrations
from galmet.nn.weights import safe_load
from galmet.paper import BANDS, DATA_RELEASE, PIXEL_SCALE_ARCSEC
from galmet.registry.resolve import resolve_model

# Version 2 adds meta "crop" and ensembles (meta "members" + "state_dicts"), which a version-1
# reader would misread; bundles that use neither are still written as version 1. Version 3 marks
# a heteroscedastic head (meta "loss": "gaussian", two outputs per target), which an older reader
# would refuse with a confusing weight mismatch. The optional meta entries "calibration",
# "embedding_stats", "label_range" and "imaging" are ignored by older readers and need no new version.
BUNDLE_VERSION = 3

#: The paper's imaging, assumed for bundles that predate ``imaging`` (aliases of :mod:`galmet.paper`).
DEFAULT_PIXEL_SCALE = PIXEL_SCALE_ARCSEC
DEFAULT_DATA_RELEASE = DATA_RELEASE
DEFAULT_BANDS = BANDS

__all__ = [
    "BUNDLE_VERSION",
    "Imaging",
    "MetaKey",
    "check_bundle_meta",
    "cpu_state",
    "imaging_from_meta",
    "copy_bundle",
    "load_model",
    "save_bundle",
    "save_ensemble",
    "update_bundle",
]


def _version_for(meta: dict) -> int:
    """The oldest bundle version that describes ``meta`` (so older readers keep reading what they can)."""
    if meta.get(MetaKey.LOSS) == GAUSSIAN:
        return 3
    return 2 if meta.get(MetaKey.CROP) is not None or MetaKey.MEMBERS in meta else 1


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
        ``galmet_version``. ``imaging`` (:meth:`Imaging.to_dict`: pixel scale, scale mode,
        sizes, crop, data release, bands) describes the images the model expects; without it
        the bundle reads with the defaults of :class:`Imaging`. ``loss`` = ``"gaussian"`` marks a
        heteroscedastic head (two outputs per target: mean, log-variance). Optional:
        ``label_range`` (target -> [min, max] of the training labels), ``embedding_stats``
        (:class:`galmet.nn.embedding.EmbeddingReference` as a dict), ``calibration`` (target ->
        :class:`galmet.nn.uncertainty.Calibration` as a dict). Anything else (recipe,
        provenance) is kept as given.
    """
    net = unwrap(model)
    per = outputs_per_target(meta.get(MetaKey.LOSS))
    n_out = n_outputs(net) // per
    meta = dict(meta)
    if meta.setdefault(MetaKey.ARCH, net.arch) != net.arch:
        raise ConfigError(f"{path}: meta arch {meta['arch']!r} does not match the model ({net.arch})")
    meta.setdefault(MetaKey.N_TARGETS, n_out)
    targets = meta.setdefault(MetaKey.TARGETS, ["oh_p50"] if n_out == 1 else [f"target{i}" for i in range(n_out)])
    if isinstance(targets, str):
        targets = meta[MetaKey.TARGETS] = [targets]
    if len(targets) * per != n_outputs(net) or meta[MetaKey.N_TARGETS] != n_out:
        raise ConfigError(f"{path}: meta lists {len(targets)} targets but the model has {n_outputs(net)} outputs")
    read_calibrations(meta, list(targets), str(path))
    meta.setdefault(MetaKey.HEAD, HEAD_DESCRIPTION)
    meta.setdefault(MetaKey.NORM_MEAN, list(IMAGENET_MEAN))
    meta.setdefault(MetaKey.NORM_STD, list(IMAGENET_STD))
    meta.setdefault(MetaKey.IMAGE_SIZE, None)
    meta[MetaKey.TARGET_SHIFT] = [float(v) for v in meta.get(MetaKey.TARGET_SHIFT, [0.0] * n_out)]
    meta[MetaKey.TARGET_SCALE] = [float(v) for v in meta.get(MetaKey.TARGET_SCALE, [1.0] * n_out)]
    if len(meta[MetaKey.TARGET_SHIFT]) != n_out or len(meta[MetaKey.TARGET_SCALE]) != n_out:
        raise ConfigError(f"{path}: target_shift/target_scale need {n_out} values each")
    meta.setdefault(MetaKey.GALMET_VERSION, __version__)
    meta.setdefault(MetaKey.CROP, None)
    check_bundle_meta(meta, path)  # never write a bundle load_model would refuse
    bundle = {"format": BUNDLE_FORMAT, "bundle_version": _version_for(meta), "meta": meta, "state_dict": cpu_state(net)}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(bundle, tmp)
    return path


def cpu_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``net``'s weights on the CPU, as a bundle stores them."""
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


#: Meta fields every member of an ensemble must share (and :class:`Imaging`, compared as read).
_SHARED_META = SHARED_KEYS
#: Meta fields kept per member of an ensemble.
_MEMBER_META = MEMBER_KEYS


def save_ensemble(path: str | os.PathLike, members: list, meta: dict | None = None, overwrite: bool = False) -> Path:
    """Write several compatible model bundles as one ensemble bundle that :func:`load_model` reads.

    Predictions of the ensemble are the mean over members (and over the TTA views); each
    member keeps its own target standardisation.

    Parameters
    ----------
    path : path-like
        Output file (written atomically).
    members : list of path-like or GalmetModel
        Bundles with the same architecture, targets, normalisation, image size and crop
        (typically the fold models of ``galmet train --folds``); an ensemble given as a member
        contributes all of its members.
    meta : dict, optional
        Extra JSON-able description (e.g. the cross-validation scores, a ``calibration`` of the
        ensemble). The members' own calibrations do not carry over (an ensemble's residuals are
        not a member's); their training label ranges are merged.
    overwrite : bool
        Replace an existing ``path`` that galmet did not write.
    """
    sources = [m.path if isinstance(m, GalmetModel) else m for m in members]
    inputs = [model_input(p, f"the member {p}") for p in sources if p is not None]
    # before reading the members
    check_output_file(path, "path", "bundle", "model bundle", inputs, overwrite=overwrite)
    models = [m if isinstance(m, GalmetModel) else load_model(m) for m in members]
    _check_distinct_members(models)
    if sum(len(m.nets) for m in models) < 2:
        raise ConfigError(
            f"{path}: an ensemble needs at least 2 member networks, got {sum(len(m.nets) for m in models)}"
        )
    first = models[0]
    out: dict[str, Any] = {k: first.meta.get(k) for k in _SHARED_META}
    for m in models:
        for k in _SHARED_META:
            if m.meta.get(k) != out[k]:
                raise ConfigError(f"{m.path}: its {k} ({m.meta.get(k)!r}) differs from {first.path}'s ({out[k]!r})")
        if m.loss != first.loss:
            raise ConfigError(f"{m.path}: its loss ({m.loss}) differs from {first.path}'s ({first.loss})")
        if m.imaging != first.imaging:
            raise ConfigError(
                f"{m.path}: its imaging ({m.imaging.describe()}) differs from "
                f"{first.path}'s ({first.imaging.describe()})"
            )
    out.update(
        {
            MetaKey.HEAD: HEAD_DESCRIPTION,
            MetaKey.GALMET_VERSION: __version__,
            MetaKey.RECIPE: first.meta.get(MetaKey.RECIPE),
            MetaKey.CONFIG: first.meta.get(MetaKey.CONFIG),
            MetaKey.LOSS: first.loss,
        }
    )
    if MetaKey.IMAGING in first.meta:  # a recorded imaging carries over; the defaults of older bundles need no copy
        out[MetaKey.IMAGING] = first.imaging.to_dict()
    ranges = [m.label_range for m in models]
    if all(ranges):
        out[MetaKey.LABEL_RANGE] = {
            t: [min(r[t][0] for r in ranges), max(r[t][1] for r in ranges)]
            for t in out[MetaKey.TARGETS]
            if all(t in r for r in ranges)
        }
    out.update(meta or {})
    read_calibrations(out, list(out[MetaKey.TARGETS]), str(path))
    out[MetaKey.MEMBERS], states = [], []
    for m in models:
        source = str(m.path) if m.path else None
        for net, member in zip(m.nets, member_metas(m.meta), strict=True):
            kept = {k: member.get(k) for k in _MEMBER_META}
            out[MetaKey.MEMBERS].append({**kept, MetaKey.SOURCE: member.get(MetaKey.SOURCE, source)})
            states.append(cpu_state(net))
    bundle = {"format": BUNDLE_FORMAT, "bundle_version": _version_for(out), "meta": out, "state_dicts": states}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(bundle, tmp)
    return path


def weights_fingerprint(net: nn.Module) -> str:
    """sha256 (hex) of a network's weights: every tensor of its state dict, by name, as bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(cpu_state(net).items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_distinct_members(models: list[GalmetModel]) -> None:
    """ConfigError naming both bundles when two member networks of an ensemble have the same
    weights: the same file given twice (``ensemble run run``, a run folder and its model.pt), a
    copy, a calibrated copy, or a fold model beside the ensemble that already holds it. An
    ensemble of copies is one model counted twice, with a spread of 0."""
    seen: dict[str, str] = {}
    for m in models:
        for k, net in enumerate(m.nets):
            key = weights_fingerprint(net)
            name = f"{m.path or 'a model'}" + (f" (member {k})" if len(m.nets) > 1 else "")
            if key in seen:
                raise ConfigError(
                    f"{name}: has the same weights as {seen[key]}; an ensemble needs distinct models, each given once"
                )
            seen[key] = name


def load_model(path: str | os.PathLike, device: str = "cpu") -> GalmetModel:
    """Load a model bundle written by :func:`save_bundle` (or a run directory holding ``model.pt``),
    or a registered model by name (``load_model("sdss400")``; see ``galmet models``).

    An existing path wins; else ``path`` is looked up in the registry (a url model is downloaded
    once into the user cache and verified by sha256); else a one-line ConfigError lists the known
    names (:func:`galmet.registry.resolve_model`). The model's ``name`` and ``card`` say which
    registered model it is (None for a plain bundle).
    """
    resolved = resolve_model(path)
    model = _load_file(resolved.path, device)
    model.name = resolved.name or (resolved.card.name if resolved.card is not None else None)
    model.card = resolved.card.to_dict() if resolved.card is not None else None
    return model


def _load_file(path: str | os.PathLike, device: str = "cpu") -> GalmetModel:
    """Load the bundle file (or run directory) ``path``.

    Uses ``torch.load(weights_only=True)``: a file holding arbitrary Python objects is refused,
    never executed. Anything unreadable (missing, corrupt, not a galmet bundle, a newer
    bundle version, weights that do not fit the stated architecture) raises a one-line
    :class:`ConfigError` naming the file.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / BUNDLE).is_file():
            raise ConfigError(
                f"{path}: directory holds no {BUNDLE} (an unfinished training run?); give the bundle file"
            )
        path = path / BUNDLE
    if not path.exists():
        raise ConfigError(f"{path}: no such model bundle")
    obj = safe_load(path, "galmet model bundle")
    if not isinstance(obj, dict) or obj.get("format") != BUNDLE_FORMAT:
        raise ConfigError(f"{path}: not a galmet model bundle (no 'format': '{BUNDLE_FORMAT}' entry)")
    version = obj.get("bundle_version")
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"{path}: bad bundle_version {version!r}")
    if version > BUNDLE_VERSION:
        raise ConfigError(
            f"{path}: bundle version {version} is newer than this galmet reads ({BUNDLE_VERSION}); upgrade galmet"
        )
    meta = obj.get("meta")
    states = obj.get("state_dicts") if "state_dicts" in obj else [obj.get("state_dict")]
    if (
        not isinstance(meta, dict)
        or not isinstance(states, list)
        or not states
        or not all(isinstance(s, dict) for s in states)
    ):
        raise ConfigError(f"{path}: galmet bundle lacks its meta or state_dict")
    members = meta.get(MetaKey.MEMBERS)
    if "state_dicts" in obj and (not isinstance(members, list) or len(members) != len(states)):
        raise ConfigError(
            f"{path}: ensemble bundle lists {len(members or [])} members but holds {len(states)} weight sets"
        )
    check_bundle_meta(meta, path)
    arch, n_targets, targets = meta[MetaKey.ARCH], meta[MetaKey.N_TARGETS], list(meta[MetaKey.TARGETS])
    n_out = n_targets * outputs_per_target(meta.get(MetaKey.LOSS))
    nets: list[GalmetNet] = []
    for state in states:
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            raise ConfigError(f"{path}: its weights are not a mapping of names to tensors")
        net = build_model(arch, n_out, "none")
        expected = net.state_dict()
        if set(state) != set(expected) or any(tuple(state[k].shape) != tuple(v.shape) for k, v in expected.items()):
            bad = sorted(set(state) ^ set(expected)) or [
                k for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)
            ]
            raise ConfigError(f"{path}: weights do not match a {arch} with {n_out} outputs (first mismatch: {bad[0]})")
        bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise ConfigError(f"{path}: its weights hold NaN or infinite values ({bad[0]}); a diverged training?")
        net.load_state_dict(state)
        nets.append(net.eval())
    read_calibrations(meta, targets, str(path))  # a foreign or malformed calibration fails here, not later
    model = GalmetModel(nets, meta, path)
    model.embedding_references()
    return model.to(device)


def _finite_list(value, n: int, nonzero: bool = False) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        and (not nonzero or all(v != 0 for v in value))
    )


def check_bundle_meta(meta: dict, path: str | os.PathLike = "bundle") -> None:
    """Raise ConfigError (one line naming ``path`` and the field) for bundle metadata that does
    not fit the format: ``arch`` one of :data:`~galmet.columns.ARCHS`; ``n_targets`` 1 to 16 and
    ``targets`` that many distinct non-empty names; ``norm_mean``/``norm_std`` 3 finite numbers
    (std > 0); ``image_size`` null or 1-4096 pixels; ``crop`` null or 1 to ``image_size``;
    ``target_shift``/``target_scale`` (of the bundle, or of each ensemble member) ``n_targets``
    finite numbers, the scale non-zero; ``imaging`` absent or an :class:`Imaging` that agrees
    with ``image_size`` and ``crop`` (see :func:`imaging_from_meta`); the descriptive entries
    (``label_range``, ``valid_rmse``, ``epochs``, ...) by :func:`check_described_fields`."""

    def bad(field: str, want: str) -> ConfigError:
        shown = repr(meta.get(field))
        return ConfigError(f"{path}: bundle meta {field} must be {want}, got {shown[:60]}")

    if meta.get(MetaKey.ARCH) not in ARCHS:
        raise ConfigError(
            f"{path}: unknown architecture {meta.get('arch')!r} in bundle (this galmet knows {', '.join(ARCHS)})"
        )
    n = meta.get(MetaKey.N_TARGETS)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 16:
        raise bad(MetaKey.N_TARGETS, "an integer from 1 to 16")
    targets = meta.get(MetaKey.TARGETS)
    if (
        not isinstance(targets, list)
        or len(targets) != n
        or not all(isinstance(t, str) and t.strip() for t in targets)
        or len(set(targets)) != n
    ):
        raise ConfigError(f"{path}: bundle meta has inconsistent n_targets/targets ({n!r}, {str(targets)[:60]})")
    if meta.get(MetaKey.LOSS) not in (None, "rmse", GAUSSIAN):
        raise ConfigError(f"{path}: unknown loss {meta.get('loss')!r} in bundle (this galmet knows rmse, {GAUSSIAN})")
    for field in (MetaKey.NORM_MEAN, MetaKey.NORM_STD):
        if field in meta and not _finite_list(meta[field], 3, nonzero=field == MetaKey.NORM_STD):
            raise bad(field, "3 finite numbers" + (", none zero" if field == MetaKey.NORM_STD else ""))
    if MetaKey.NORM_STD in meta and any(v <= 0 for v in meta[MetaKey.NORM_STD]):
        raise bad(MetaKey.NORM_STD, "3 positive numbers")
    size = meta.get(MetaKey.IMAGE_SIZE)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PIXELS):
        raise bad(MetaKey.IMAGE_SIZE, f"null or an integer from 1 to {MAX_PIXELS} pixels")
    crop = meta.get(MetaKey.CROP)
    limit = size or MAX_PIXELS
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= limit):
        raise bad(MetaKey.CROP, f"null or an integer from 1 to {limit} pixels")
    imaging_from_meta(meta, path)
    members = member_metas(meta)
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise bad(MetaKey.MEMBERS, "a list of member descriptions")
    check_described_fields(meta, path)
    for m in members:
        for field, nonzero in ((MetaKey.TARGET_SHIFT, False), (MetaKey.TARGET_SCALE, True)):
            value = m.get(field)
            if value is not None and not _finite_list(value, n, nonzero):
                where = "" if m is meta else " of a member"
                raise ConfigError(
                    f"{path}: bundle meta {field}{where} must be {n} finite numbers"
                    f"{' (none zero)' if nonzero else ''}, got {repr(value)[:60]}"
                )


def update_bundle(src: str | os.PathLike, dst: str | os.PathLike, meta_updates: dict, overwrite: bool = False) -> Path:
    """Copy the bundle ``src`` to ``dst`` with entries of its meta replaced (written atomically).

    The weights are copied unchanged. Used to attach a calibration or embedding statistics to an
    existing bundle (``galmet calibrate``); the result is checked by :func:`load_model`'s rules
    before anything is written, and ``dst`` may not be ``src`` (a command never overwrites its input).

    The new bundle's ``derived_from`` lists the sha256 of ``src`` (and of the bundles ``src``
    came from): the weights are the same, so predictions made by those files are its own.

    Parameters
    ----------
    src : path-like
        A model bundle or a run directory holding one.
    dst : path-like
        The new bundle file.
    meta_updates : dict
        Meta entries to set (JSON-able); a value of None removes the entry.
    overwrite : bool
        Replace an existing ``dst`` that galmet did not write.
    """
    model = load_model(src)  # validates src
    src_path = model.path if model.path is not None else Path(src)
    dst = Path(dst)
    if dst.is_dir():
        raise ConfigError(f"{dst}: is a directory; give the file to write the bundle to (e.g. {dst / BUNDLE})")
    if dst.exists() and dst.resolve() == Path(src_path).resolve():
        raise ConfigError(f"{dst}: is the input bundle; write the calibrated bundle to another file")
    check_output_file(dst, "dst", "bundle", "model bundle", [model_input(src_path)], overwrite=overwrite)
    obj = safe_load(Path(src_path), "galmet model bundle")
    meta = dict(obj["meta"])
    # the same weights in a new file: predictions of src (and of what src came from) are this model's
    lineage = [file_sha256(src_path), *(meta.get(MetaKey.DERIVED_FROM) or [])]
    meta[MetaKey.DERIVED_FROM] = list(dict.fromkeys(lineage))[:1000]
    for k, v in meta_updates.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    check_bundle_meta(meta, dst)
    read_calibrations(meta, list(meta[MetaKey.TARGETS]), str(dst))
    obj = {**obj, "meta": meta, "bundle_version": max(int(obj["bundle_version"]), _version_for(meta))}
    with atomic_path(dst) as tmp:
        torch.save(obj, tmp)
    return dst


def copy_bundle(src: str | os.PathLike, dst: str | os.PathLike, half: bool = False) -> Path:
    """Copy the bundle ``src`` (a file or a run directory) to the file ``dst``, written atomically.

    ``half=True`` stores the floating-point weights as float16 (half the bytes; :func:`load_model`
    casts them back to float32 when it loads them into the network); integer buffers (BatchNorm's
    ``num_batches_tracked``) and the meta are unchanged. The copy is read back by
    :func:`load_model`'s rules before it takes ``dst``'s name, so a weight beyond float16's range
    (it would become infinite) is refused and nothing is written. The caller checks ``dst``
    (:mod:`galmet.io.safety`) first.
    """
    model = _load_file(src)  # validates src
    obj = safe_load(Path(model.path or src), "galmet model bundle")
    if half:
        obj = {**obj, **{k: _halved(obj[k]) for k in ("state_dict", "state_dicts") if k in obj}}
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        torch.save(obj, tmp)
        _load_file(tmp)
    return dst


def _halved(states):
    """A state dict (or a list of them) with its floating tensors as float16."""
    if isinstance(states, list):
        return [_halved(s) for s in states]
    return {k: v.half() if v.is_floating_point() else v for k, v in states.items()}
