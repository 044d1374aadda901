"""The model bundle format: one ``model.pt`` file holding a trained network or an ensemble.

- :func:`save_bundle` / :func:`load_model`: one file, loaded with ``torch.load(weights_only=True)``
  (no arbitrary pickle), returning a :class:`~galmet.nn.inference.GalmetModel` whose
  :meth:`~galmet.nn.inference.GalmetModel.predict` takes uint8 (N, H, W, 3) images.
- :func:`save_ensemble`: several compatible bundles (e.g. the fold models of a cross-validated
  run) in one file; :func:`load_model` reads it the same way and predictions average the members.

This module is the format's one owner: nothing else reads or writes bundle files.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from galmet._version import __version__
from galmet.columns import ARCHS
from galmet.data.imaging import SCALE_MODES
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_path
from galmet.io.safety import check_output_file, model_input
from galmet.layout import BUNDLE, BUNDLE_FORMAT
from galmet.nn.augment import IMAGENET_MEAN, IMAGENET_STD
from galmet.nn.inference import GalmetModel
from galmet.nn.net import GAUSSIAN, HEAD_DESCRIPTION, GalmetNet, build_model, n_outputs, outputs_per_target, unwrap
from galmet.nn.uncertainty import read_calibrations
from galmet.nn.weights import safe_load

# Version 2 adds meta "crop" and ensembles (meta "members" + "state_dicts"), which a version-1
# reader would misread; bundles that use neither are still written as version 1. Version 3 marks
# a heteroscedastic head (meta "loss": "gaussian", two outputs per target), which an older reader
# would refuse with a confusing weight mismatch. The optional meta entries "calibration",
# "embedding_stats", "label_range" and "imaging" are ignored by older readers and need no new version.
BUNDLE_VERSION = 3

#: Pixel scale (arcsec) of the SDSS cutouts the paper used, assumed for bundles that predate ``imaging``.
DEFAULT_PIXEL_SCALE = 0.296
DEFAULT_DATA_RELEASE = "DR14"
DEFAULT_BANDS = "gri"
_DATA_RELEASE = re.compile(r"DR[1-9][0-9]?")


@dataclass(frozen=True)
class Imaging:
    """How the images a model was trained on were made: what ``predict`` must feed it.

    Stored in a bundle's meta as ``imaging`` (a dict of these fields); bundles written before
    galmet recorded it read as ``Imaging(image_size=<the bundle's>, pixel_scale=0.296,
    scale_mode="fixed", fetch_size=None, crop=<the bundle's>, data_release="DR14", bands="gri")``.

    Attributes
    ----------
    image_size : int
        Pixels per side the network was trained on, after the crop.
    pixel_scale : float or None
        Arcsec per pixel of the cutouts as fetched (None: unknown, or per galaxy with
        ``scale-by-size``).
    scale_mode : {"fixed", "scale-by-size"}
        One pixel scale for all cutouts, or the authors' scale = 2 petroR90_r / 0.396 / size.
    fetch_size : int or None
        Pixels per side of the cutouts as fetched, before any crop (None: unknown).
    crop : int or None
        The central pixels the network sees (None: the whole cutout).
    data_release : str or None
        The SDSS data release of the cutouts (``"DR14"``; None: synthetic or unknown).
    bands : str
        The bands shown as R, G, B, reddest first reversed: ``"gri"`` (i -> R, r -> G, g -> B).
    """

    image_size: int
    pixel_scale: float | None = DEFAULT_PIXEL_SCALE
    scale_mode: str = "fixed"
    fetch_size: int | None = None
    crop: int | None = None
    data_release: str | None = DEFAULT_DATA_RELEASE
    bands: str = DEFAULT_BANDS

    def to_dict(self) -> dict:
        """The JSON-able form a bundle stores."""
        return asdict(self)

    def describe(self) -> str:
        """One line for people: ``64x64 px (fetched 128, central crop 64) at 0.296 arcsec/px, fixed, DR14, gri``."""
        size = f"{self.image_size}x{self.image_size} px"
        if self.crop is not None:
            size += f" (central crop {self.crop} of {self.fetch_size or '?'} px cutouts)"
        scale = f"{self.pixel_scale:.4g} arcsec/px" if self.pixel_scale is not None else "unknown arcsec/px"
        return f"{size} at {scale}, {self.scale_mode}, {self.data_release or 'no data release'}, {self.bands}"


def imaging_from_meta(meta: dict, path: str | os.PathLike = "bundle") -> Imaging:
    """The :class:`Imaging` of a bundle's meta (the documented defaults when it has none).

    Raises
    ------
    ConfigError
        One line naming ``path`` and the field, for a value that does not fit (see
        :func:`check_bundle_meta`).
    """
    size, crop = meta.get("image_size"), meta.get("crop")
    raw = meta.get("imaging")
    if raw is None:  # a bundle from before galmet recorded its imaging
        return Imaging(image_size=int(crop or size or 128), fetch_size=None, crop=crop)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: bundle meta imaging must be a mapping, got {repr(raw)[:60]}")
    unknown = sorted(set(raw) - set(Imaging.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{path}: bundle meta imaging has unknown field {unknown[0]!r}")

    def bad(field: str, want: str) -> ConfigError:
        return ConfigError(f"{path}: bundle meta imaging.{field} must be {want}, got {repr(raw.get(field))[:60]}")

    def pixels(field: str, optional: bool) -> int | None:
        v = raw.get(field)
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096:
            raise bad(field, ("null or " if optional else "") + "an integer from 1 to 4096 pixels")
        return v

    image_size, fetch_size, icrop = pixels("image_size", False), pixels("fetch_size", True), pixels("crop", True)
    scale = raw.get("pixel_scale")
    if scale is not None and (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not (math.isfinite(scale) and 0 < scale <= 100)
    ):
        raise bad("pixel_scale", "null or a number of arcsec per pixel in (0, 100]")
    mode = raw.get("scale_mode", "fixed")
    if mode not in SCALE_MODES:
        raise bad("scale_mode", " or ".join(SCALE_MODES))
    release = raw.get("data_release")
    if release is not None and not (isinstance(release, str) and _DATA_RELEASE.fullmatch(release)):
        raise bad("data_release", "null or an SDSS data release like 'DR14'")
    bands = raw.get("bands", DEFAULT_BANDS)
    if not (isinstance(bands, str) and len(bands) == 3 and set(bands) <= set("ugriz") and len(set(bands)) == 3):
        raise bad("bands", "three distinct SDSS bands (e.g. 'gri')")
    if icrop != crop:
        raise bad("crop", f"the bundle's crop ({crop!r})")
    if fetch_size is not None and size is not None and fetch_size != size:
        raise bad("fetch_size", f"the bundle's image_size ({size!r})")
    if icrop is not None and fetch_size is not None and icrop > fetch_size:
        raise bad("crop", f"at most fetch_size ({fetch_size})")
    seen = icrop if icrop is not None else size if size is not None else fetch_size
    if seen is not None and image_size != seen:
        raise bad("image_size", f"the pixels the network sees ({seen}: the crop, else the image size)")
    return Imaging(
        image_size=int(image_size or 0),
        pixel_scale=None if scale is None else float(scale),
        scale_mode=mode,
        fetch_size=fetch_size,
        crop=icrop,
        data_release=release,
        bands=bands,
    )


def _version_for(meta: dict) -> int:
    """The oldest bundle version that describes ``meta`` (so older readers keep reading what they can)."""
    if meta.get("loss") == GAUSSIAN:
        return 3
    return 2 if meta.get("crop") is not None or "members" in meta else 1


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
    per = outputs_per_target(meta.get("loss"))
    n_out = n_outputs(net) // per
    meta = dict(meta)
    if meta.setdefault("arch", net.arch) != net.arch:
        raise ConfigError(f"{path}: meta arch {meta['arch']!r} does not match the model ({net.arch})")
    meta.setdefault("n_targets", n_out)
    targets = meta.setdefault("targets", ["oh_p50"] if n_out == 1 else [f"target{i}" for i in range(n_out)])
    if isinstance(targets, str):
        targets = meta["targets"] = [targets]
    if len(targets) * per != n_outputs(net) or meta["n_targets"] != n_out:
        raise ConfigError(f"{path}: meta lists {len(targets)} targets but the model has {n_outputs(net)} outputs")
    read_calibrations(meta, list(targets), str(path))
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
_SHARED_META = ("arch", "n_targets", "targets", "norm_mean", "norm_std", "image_size", "crop")
#: Meta fields kept per member of an ensemble.
_MEMBER_META = ("target_shift", "target_scale", "valid_rmse", "embedding_stats")


def save_ensemble(path: str | os.PathLike, members: list, meta: dict | None = None) -> Path:
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
    """
    sources = [m.path if isinstance(m, GalmetModel) else m for m in members]
    inputs = [model_input(p, f"the member {p}") for p in sources if p is not None]
    check_output_file(path, "--out", "bundle", "model bundle", inputs)  # before reading the members
    models = [m if isinstance(m, GalmetModel) else load_model(m) for m in members]
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
            "head": HEAD_DESCRIPTION,
            "galmet_version": __version__,
            "recipe": first.meta.get("recipe"),
            "config": first.meta.get("config"),
            "loss": first.loss,
        }
    )
    if "imaging" in first.meta:  # a recorded imaging carries over; the defaults of older bundles need no copy
        out["imaging"] = first.imaging.to_dict()
    ranges = [m.label_range for m in models]
    if all(ranges):
        out["label_range"] = {
            t: [min(r[t][0] for r in ranges), max(r[t][1] for r in ranges)]
            for t in out["targets"]
            if all(t in r for r in ranges)
        }
    out.update(meta or {})
    read_calibrations(out, list(out["targets"]), str(path))
    out["members"], states = [], []
    for m in models:
        source = str(m.path) if m.path else None
        for net, member in zip(m.nets, m.meta["members"] if "members" in m.meta else [m.meta], strict=True):
            out["members"].append({**{k: member.get(k) for k in _MEMBER_META}, "source": member.get("source", source)})
            states.append(cpu_state(net))
    bundle = {"format": BUNDLE_FORMAT, "bundle_version": _version_for(out), "meta": out, "state_dicts": states}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(bundle, tmp)
    return path


def load_model(path: str | os.PathLike, device: str = "cpu") -> GalmetModel:
    """Load a model bundle written by :func:`save_bundle` (or a run directory holding ``model.pt``).

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
    if "state_dicts" in obj and (not isinstance(meta.get("members"), list) or len(meta["members"]) != len(states)):
        raise ConfigError(
            f"{path}: ensemble bundle lists {len(meta.get('members') or [])} members "
            f"but holds {len(states)} weight sets"
        )
    check_bundle_meta(meta, path)
    arch, n_targets, targets = meta["arch"], meta["n_targets"], list(meta["targets"])
    n_out = n_targets * outputs_per_target(meta.get("loss"))
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
    with ``image_size`` and ``crop`` (see :func:`imaging_from_meta`)."""

    def bad(field: str, want: str) -> ConfigError:
        shown = repr(meta.get(field))
        return ConfigError(f"{path}: bundle meta {field} must be {want}, got {shown[:60]}")

    if meta.get("arch") not in ARCHS:
        raise ConfigError(
            f"{path}: unknown architecture {meta.get('arch')!r} in bundle (this galmet knows {', '.join(ARCHS)})"
        )
    n = meta.get("n_targets")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 16:
        raise bad("n_targets", "an integer from 1 to 16")
    targets = meta.get("targets")
    if (
        not isinstance(targets, list)
        or len(targets) != n
        or not all(isinstance(t, str) and t.strip() for t in targets)
        or len(set(targets)) != n
    ):
        raise ConfigError(f"{path}: bundle meta has inconsistent n_targets/targets ({n!r}, {str(targets)[:60]})")
    if meta.get("loss") not in (None, "rmse", GAUSSIAN):
        raise ConfigError(f"{path}: unknown loss {meta.get('loss')!r} in bundle (this galmet knows rmse, {GAUSSIAN})")
    for field in ("norm_mean", "norm_std"):
        if field in meta and not _finite_list(meta[field], 3, nonzero=field == "norm_std"):
            raise bad(field, "3 finite numbers" + (", none zero" if field == "norm_std" else ""))
    if "norm_std" in meta and any(v <= 0 for v in meta["norm_std"]):
        raise bad("norm_std", "3 positive numbers")
    size = meta.get("image_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4096):
        raise bad("image_size", "null or an integer from 1 to 4096 pixels")
    crop = meta.get("crop")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= (size or 4096)):
        raise bad("crop", f"null or an integer from 1 to {size or 4096} pixels")
    imaging_from_meta(meta, path)
    members = meta["members"] if "members" in meta else [meta]
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise bad("members", "a list of member descriptions")
    for m in members:
        for field, nonzero in (("target_shift", False), ("target_scale", True)):
            value = m.get(field)
            if value is not None and not _finite_list(value, n, nonzero):
                where = "" if m is meta else " of a member"
                raise ConfigError(
                    f"{path}: bundle meta {field}{where} must be {n} finite numbers"
                    f"{' (none zero)' if nonzero else ''}, got {repr(value)[:60]}"
                )


def update_bundle(src: str | os.PathLike, dst: str | os.PathLike, meta_updates: dict) -> Path:
    """Copy the bundle ``src`` to ``dst`` with entries of its meta replaced (written atomically).

    The weights are copied unchanged. Used to attach a calibration or embedding statistics to an
    existing bundle (``galmet calibrate``); the result is checked by :func:`load_model`'s rules
    before anything is written, and ``dst`` may not be ``src`` (a command never overwrites its input).

    Parameters
    ----------
    src : path-like
        A model bundle or a run directory holding one.
    dst : path-like
        The new bundle file.
    meta_updates : dict
        Meta entries to set (JSON-able); a value of None removes the entry.
    """
    model = load_model(src)  # validates src
    src_path = model.path if model.path is not None else Path(src)
    dst = Path(dst)
    if dst.is_dir():
        raise ConfigError(f"{dst}: is a directory; give the file to write the bundle to (e.g. {dst / BUNDLE})")
    if dst.exists() and dst.resolve() == Path(src_path).resolve():
        raise ConfigError(f"{dst}: is the input bundle; write the calibrated bundle to another file")
    obj = safe_load(Path(src_path), "galmet model bundle")
    meta = dict(obj["meta"])
    for k, v in meta_updates.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    check_bundle_meta(meta, dst)
    read_calibrations(meta, list(meta["targets"]), str(dst))
    obj = {**obj, "meta": meta, "bundle_version": max(int(obj["bundle_version"]), _version_for(meta))}
    with atomic_path(dst) as tmp:
        torch.save(obj, tmp)
    return dst
