"""A model bundle's meta: the names of its entries (:class:`MetaKey`), the one builder of a trained
network's meta (:func:`training_meta`) and the readers of what it describes.

The bundle file format (:mod:`galmet.nn.bundle`) stores the meta as a plain JSON-able dict; every
module that writes or reads an entry names it through :class:`MetaKey`, and code that uses a
loaded model reads it through :class:`~galmet.nn.inference.GalmetModel`'s properties
(``model.imaging``, ``model.label_range``, ``model.calibrations``, ...). The keys on disk are
those of every earlier galmet: old bundles read unchanged.

Torch-free: imports only the imaging description and the error types.
"""

from __future__ import annotations

import math
import os
from typing import Any

from galmet.columns import LABEL_RANGES
from galmet.data.galaxy_ids import GalaxyIdSet
from galmet.data.image_domain import ImageDomainReference
from galmet.data.imaging import Imaging
from galmet.errors import ConfigError
from galmet.paper import IMAGE_SIZE


class MetaKey:
    """The entries of a bundle's meta (plain strings, as stored on disk)."""

    #: Architecture name (one of :data:`galmet.columns.ARCHS`).
    ARCH = "arch"
    #: Number of targets; ``TARGETS`` lists their column names.
    N_TARGETS = "n_targets"
    TARGETS = "targets"
    #: A description of the regression head (for people).
    HEAD = "head"
    #: ``"rmse"`` (the paper's head) or ``"gaussian"`` (mean and log-variance per target).
    LOSS = "loss"
    #: Per-channel normalisation of the input (3 numbers each).
    NORM_MEAN = "norm_mean"
    NORM_STD = "norm_std"
    #: Pixels per side of the input images (None: any), and the central crop the network sees.
    IMAGE_SIZE = "image_size"
    CROP = "crop"
    #: Per target: prediction = raw output * scale + shift (of the bundle, or of each member).
    TARGET_SHIFT = "target_shift"
    TARGET_SCALE = "target_scale"
    #: The galmet version that wrote the bundle.
    GALMET_VERSION = "galmet_version"
    #: :meth:`galmet.data.imaging.Imaging.to_dict` of the training images.
    IMAGING = "imaging"
    #: Target -> [min, max] of the training labels.
    LABEL_RANGE = "label_range"
    #: :meth:`galmet.nn.embedding.EmbeddingReference.to_dict` (of the bundle, or of each member).
    EMBEDDING_STATS = "embedding_stats"
    #: Target -> :meth:`galmet.nn.uncertainty.Calibration.to_dict`.
    CALIBRATION = "calibration"
    #: An ensemble's per-member descriptions (:data:`MEMBER_KEYS` and ``SOURCE``).
    MEMBERS = "members"
    #: The bundle file a member of an ensemble came from.
    SOURCE = "source"
    #: Provenance of a trained network: recipe name, training config, dataset, epochs,
    #: the last epoch's validation RMSE per target.
    RECIPE = "recipe"
    CONFIG = "config"
    DATASET = "dataset"
    EPOCHS = "epochs"
    VALID_RMSE = "valid_rmse"
    #: sha256 of the bundle files whose weights this one copies unchanged (``galmet calibrate``
    #: writes a new file, the same model): a predictions table made by any of them is this model's.
    DERIVED_FROM = "derived_from"
    #: :meth:`galmet.data.galaxy_ids.GalaxyIdSet.to_dict` of the galaxies a network trained on
    #: (of the bundle, or of each member): ``galmet calibrate`` leaves them out.
    TRAINED_ON = "trained_on"
    #: :meth:`galmet.data.image_domain.ImageDomainReference.to_dict` of the training images'
    #: statistics (of the bundle, or of each member): bit ``IMAGE_OUT_OF_DOMAIN``.
    IMAGE_STATS = "image_stats"
    #: :meth:`~galmet.data.galaxy_ids.GalaxyIdSet.to_dict` of the galaxies a calibration was fitted
    #: on, kept in the ``source`` of each target's ``calibration`` entry (``galmet calibrate``, the
    #: calibration of a ``--folds`` ensemble): ``galmet evaluate`` leaves them out.
    CALIBRATED_ON = "calibrated_on"


#: Entries every member of an ensemble must share (and the imaging, compared as read).
SHARED_KEYS = (
    MetaKey.ARCH,
    MetaKey.N_TARGETS,
    MetaKey.TARGETS,
    MetaKey.NORM_MEAN,
    MetaKey.NORM_STD,
    MetaKey.IMAGE_SIZE,
    MetaKey.CROP,
)
#: Entries kept per member of an ensemble.
MEMBER_KEYS = (
    MetaKey.TARGET_SHIFT,
    MetaKey.TARGET_SCALE,
    MetaKey.VALID_RMSE,
    MetaKey.EMBEDDING_STATS,
    MetaKey.TRAINED_ON,
    MetaKey.IMAGE_STATS,
)


def training_meta(
    *,
    targets: list[str],
    target_shift: list[float],
    target_scale: list[float],
    image_size: int | None,
    crop: int | None,
    recipe: str | None,
    config: dict,
    dataset: str,
    epochs: int | None,
    valid_rmse: dict[str, float],
    loss: str,
    label_range: dict[str, list[float]],
    imaging: Imaging,
    embedding_stats: dict | None = None,
    trained_on: dict | None = None,
    image_stats: dict | None = None,
) -> dict[str, Any]:
    """The meta of a freshly trained network, for :func:`galmet.nn.bundle.save_bundle` (which
    fills in the architecture, normalisation, head and version).

    Parameters
    ----------
    targets : list of str
        Target column names, in output order.
    target_shift, target_scale : list of float
        Per target: prediction = raw output * scale + shift (target units).
    image_size : int or None
        Pixels per side of the training images as loaded (None: any).
    crop : int or None
        The central pixels the network sees (None: all).
    recipe, config, dataset, epochs
        Provenance: recipe name, :meth:`TrainConfig.to_dict`, dataset path, epochs trained.
    valid_rmse : dict
        Target -> last epoch's validation RMSE (target units); empty when none was measured.
    loss : str
        ``"rmse"`` or ``"gaussian"``.
    label_range : dict
        Target -> [min, max] of the training labels (target units).
    imaging : Imaging
        How the training images were made (:meth:`Imaging.trained_on`).
    embedding_stats : dict, optional
        :meth:`EmbeddingReference.to_dict` of the training embeddings.
    trained_on : dict, optional
        :meth:`galmet.data.galaxy_ids.GalaxyIdSet.to_dict` of the training galaxies.
    image_stats : dict, optional
        :meth:`galmet.data.image_domain.ImageDomainReference.to_dict` of the training images.
    """
    meta: dict[str, Any] = {
        MetaKey.TARGETS: list(targets),
        MetaKey.TARGET_SHIFT: [float(v) for v in target_shift],
        MetaKey.TARGET_SCALE: [float(v) for v in target_scale],
        MetaKey.IMAGE_SIZE: image_size,
        MetaKey.CROP: crop,
        MetaKey.RECIPE: recipe,
        MetaKey.CONFIG: config,
        MetaKey.DATASET: dataset,
        MetaKey.EPOCHS: epochs,
        MetaKey.VALID_RMSE: dict(valid_rmse),
        MetaKey.LOSS: loss,
        MetaKey.LABEL_RANGE: dict(label_range),
        MetaKey.IMAGING: imaging.to_dict(),
    }
    if embedding_stats is not None:
        meta[MetaKey.EMBEDDING_STATS] = embedding_stats
    if trained_on is not None:
        meta[MetaKey.TRAINED_ON] = trained_on
    if image_stats is not None:
        meta[MetaKey.IMAGE_STATS] = image_stats
    return meta


def member_metas(meta: dict) -> list[dict]:
    """The per-member descriptions of a bundle's meta: an ensemble's ``members``, else the meta itself."""
    return meta[MetaKey.MEMBERS] if MetaKey.MEMBERS in meta else [meta]


def imaging_from_meta(meta: dict, path: str | os.PathLike = "bundle") -> Imaging:
    """The :class:`Imaging` of a bundle's meta; a bundle written before galmet recorded it reads
    as the paper's imaging at its own size and crop (``Imaging(image_size=<crop or size>, crop=<crop>)``).

    Raises
    ------
    ConfigError
        One line naming ``path`` and the field, for a value that does not fit
        (:meth:`Imaging.from_dict`) or that disagrees with the bundle's ``image_size`` and ``crop``.
    """
    size, crop = meta.get(MetaKey.IMAGE_SIZE), meta.get(MetaKey.CROP)
    raw = meta.get(MetaKey.IMAGING)
    if raw is None:  # a bundle from before galmet recorded its imaging
        return Imaging(image_size=int(crop or size or IMAGE_SIZE), fetch_size=None, crop=crop)
    where = f"{path}: bundle meta imaging"
    imaging = Imaging.from_dict(raw, where)

    def bad(field: str, want: str) -> ConfigError:
        return ConfigError(f"{where}.{field} must be {want}, got {repr(raw.get(field))[:60]}")

    if imaging.crop != crop:
        raise bad("crop", f"the bundle's crop ({crop!r})")
    if imaging.fetch_size is not None and size is not None and imaging.fetch_size != size:
        raise bad("fetch_size", f"the bundle's image_size ({size!r})")
    if imaging.crop is not None and imaging.fetch_size is not None and imaging.crop > imaging.fetch_size:
        raise bad("crop", f"at most fetch_size ({imaging.fetch_size})")
    seen = imaging.crop if imaging.crop is not None else size if size is not None else imaging.fetch_size
    if seen is not None and imaging.image_size != seen:
        raise bad("image_size", f"the pixels the network sees ({seen}: the crop, else the image size)")
    return imaging


#: Longest text a descriptive meta entry may hold (recipe, dataset, head, version, a member's source).
MAX_META_TEXT = 4096


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_calibrated_on(meta: dict, path: str | os.PathLike) -> None:
    """ConfigError (one line) for a malformed ``calibrated_on`` in a calibration's ``source``."""
    cals = meta.get(MetaKey.CALIBRATION)
    for t, cal in cals.items() if isinstance(cals, dict) else ():
        source = cal.get("source") if isinstance(cal, dict) else None
        if isinstance(source, dict) and source.get(MetaKey.CALIBRATED_ON) is not None:
            where = f"{path}: bundle meta {MetaKey.CALIBRATION}.{t}.source.{MetaKey.CALIBRATED_ON}"
            GalaxyIdSet.from_dict(source[MetaKey.CALIBRATED_ON], where)


def check_described_fields(meta: dict, path: str | os.PathLike = "bundle") -> None:
    """ConfigError (one line naming ``path`` and the field) for a corrupt descriptive entry of a
    bundle's meta, so that it is never used, nor copied into a new bundle (``calibrate``,
    ``ensemble``):

    - ``label_range``: absent, or a mapping of the bundle's targets to ``[lo, hi]``, finite,
      ``lo <= hi``, inside the target's :data:`galmet.columns.LABEL_RANGES` range when it has one;
    - ``valid_rmse`` (of the bundle and of each member): absent, or target -> a number >= 0 (NaN
      allowed: no validation rows);
    - ``epochs``: absent, or an integer >= 0; ``config``: absent, or a mapping;
    - ``derived_from``: absent, or a list of sha256 hex digests;
    - ``recipe``, ``dataset``, ``head``, ``galmet_version``, a member's ``source``: absent, or
      text of at most :data:`MAX_META_TEXT` characters;
    - ``trained_on`` (of the bundle and of each member) and a calibration source's
      ``calibrated_on``: absent, or a :class:`~galmet.data.galaxy_ids.GalaxyIdSet` dict.
    """
    targets = meta.get(MetaKey.TARGETS) or []

    def bad(field: str, want: str, value: Any) -> ConfigError:
        return ConfigError(f"{path}: bundle meta {field} must be {want}, got {repr(value)[:60]}")

    ranges = meta.get(MetaKey.LABEL_RANGE)
    if ranges is not None:
        if not isinstance(ranges, dict):
            raise bad(MetaKey.LABEL_RANGE, "a mapping of targets to [min, max]", ranges)
        for t, r in ranges.items():
            lo, hi = LABEL_RANGES.get(t, (-math.inf, math.inf))
            if t not in targets:
                raise bad(f"{MetaKey.LABEL_RANGE}.{t}", f"absent: {t!r} is not a target of the model", r)
            if not (isinstance(r, (list, tuple)) and len(r) == 2 and all(_number(v) and math.isfinite(v) for v in r)):
                raise bad(f"{MetaKey.LABEL_RANGE}.{t}", "[min, max], two finite numbers", r)
            if not lo <= r[0] <= r[1] <= hi:
                raise bad(f"{MetaKey.LABEL_RANGE}.{t}", f"[min, max] with min <= max, inside {lo:g} to {hi:g}", r)
    for m in member_metas(meta):
        rmse = m.get(MetaKey.VALID_RMSE)
        if rmse is not None and (
            not isinstance(rmse, dict) or not all(_number(v) and not v < 0 for v in rmse.values())
        ):
            raise bad(MetaKey.VALID_RMSE, "a mapping of targets to numbers >= 0", rmse)
        if m.get(MetaKey.TRAINED_ON) is not None:
            GalaxyIdSet.from_dict(m[MetaKey.TRAINED_ON], f"{path}: bundle meta {MetaKey.TRAINED_ON}")
        if m.get(MetaKey.IMAGE_STATS) is not None:
            ImageDomainReference.from_dict(m[MetaKey.IMAGE_STATS], f"{path}: bundle meta {MetaKey.IMAGE_STATS}")
        source = m.get(MetaKey.SOURCE)
        if m is not meta and source is not None and not (isinstance(source, str) and len(source) <= MAX_META_TEXT):
            raise bad(
                f"{MetaKey.MEMBERS}.{MetaKey.SOURCE}", f"a file name of at most {MAX_META_TEXT} characters", source
            )
    _check_calibrated_on(meta, path)
    derived = meta.get(MetaKey.DERIVED_FROM)
    if derived is not None and not (
        isinstance(derived, list)
        and len(derived) <= 1000
        and all(isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h) for h in derived)
    ):
        raise bad(MetaKey.DERIVED_FROM, "a list of sha256 hex digests", derived)
    epochs = meta.get(MetaKey.EPOCHS)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0):
        raise bad(MetaKey.EPOCHS, "an integer >= 0", epochs)
    if meta.get(MetaKey.CONFIG) is not None and not isinstance(meta[MetaKey.CONFIG], dict):
        raise bad(MetaKey.CONFIG, "a mapping", meta[MetaKey.CONFIG])
    for field in (MetaKey.RECIPE, MetaKey.DATASET, MetaKey.HEAD, MetaKey.GALMET_VERSION):
        value = meta.get(field)
        if value is not None and not (isinstance(value, str) and len(value) <= MAX_META_TEXT):
            raise bad(field, f"text of at most {MAX_META_TEXT} characters", value)
