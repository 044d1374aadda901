"""The ``flags`` column of a predictions table: why a prediction should not be trusted.

:func:`flag_rows` runs every check that can run for a model and its rows and sets the bits of
:class:`galmet.columns.Flag` (0: no check raised anything); ``table.attrs["flag_checks"]`` lists
the checks that ran. Bits read from the catalogue's truth (:class:`galmet.columns.TruthFlag`) go
to their own ``truth_flags`` column (:func:`truth_bits`), so that selecting unflagged rows never
selects on the truth. Used by :func:`galmet.predict.dataset.predict_dataset` and
:func:`galmet.predict.positions.predict_positions`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.columns import FLAGS, IMAGE_OOD_SCORE, OOD_SCORE, TRUTH_FLAGS, Flag, TruthFlag, check_value, pred_column
from galmet.data.quality import image_flags
from galmet.nn.inference import GalmetModel
from galmet.sdss.catalog import Cuts, cut_mask

#: Images embedded at a time for the out-of-domain flag.
OOD_CHUNK = 4096


def flag_rows(
    table: pd.DataFrame,
    model: GalmetModel,
    images,
    catalog: pd.DataFrame | None = None,
    batch_size: int = 256,
    device: str = "auto",
    pixel_scale: float | None = None,
    ood_score: np.ndarray | None = None,
    other_survey: bool | None = None,
) -> pd.DataFrame:
    """``table`` with the ``flags`` column (and ``ood_score`` when the model has embedding statistics,
    ``truth_flags`` when the catalogue has the truth).

    Bits (:class:`galmet.columns.Flag`): the prediction outside the model's training label range
    (bundles that record it); the embedding farther from the
    training embeddings than 99% of the training galaxies (bundles with embedding statistics);
    the image's statistics farther from the training images' than 99% of those (bundles with
    image statistics; column ``image_ood_score``); the image checks of
    :func:`galmet.data.quality.image_flags`; the paper's photometric cuts
    (when ``catalog`` has all their columns); another survey's images (``other_survey``).
    ``truth_flags`` (:class:`galmet.columns.TruthFlag`):
    the catalogue's label outside the training label range (:func:`truth_bits`).
    ``table.attrs["flag_checks"]`` lists the checks that ran, of both kinds.

    Parameters
    ----------
    table : pandas.DataFrame
        A predictions table of ``images`` (same rows, same order).
    images : numpy.ndarray
        uint8 (N, H, W, 3), the images predicted.
    catalog : pandas.DataFrame, optional
        The rows' catalogue (truths, photometry).
    batch_size, device
        Of the embedding pass (:meth:`galmet.nn.inference.GalmetModel.embed`).
    pixel_scale : float, optional
        Arcsec per pixel of the images (default: the SDSS field of view over the image size).
    ood_score : numpy.ndarray, optional
        float (N,): the embedding scores already taken in the prediction pass
        (:attr:`galmet.nn.uncertainty.UncertainPrediction.ood_score`); None: an embedding pass
        of its own (:func:`ood_scores`).
    other_survey : bool, optional
        The images are another survey's than the model's, predicted all the same
        (``allow_other_survey``): ``OTHER_SURVEY`` on every row. False: the survey was compared
        and is the model's; None: the images record no survey, the check could not run.
    """
    n = len(table)
    cat = catalog if catalog is not None else pd.DataFrame(index=range(n))
    bits, checks = range_bits(table, model)
    score = ood_score if ood_score is not None else ood_scores(model, images, batch_size, device)
    if score is not None:
        table = table.assign(**{OOD_SCORE: score})
    bits, checks = _merge((bits, checks), embedding_bits(n, score))
    image_score = image_ood_scores(model, images)
    if image_score is not None:
        table = table.assign(**{IMAGE_OOD_SCORE: image_score})
        bits |= np.where(image_score > 1, int(Flag.IMAGE_OUT_OF_DOMAIN), 0)
        checks.append(Flag.IMAGE_OUT_OF_DOMAIN.name or "")
    bits |= image_flags(images, pixel_scale)
    checks += [f.name or "" for f in (Flag.IMAGE_EMPTY, Flag.IMAGE_SATURATED, Flag.IMAGE_OFF_CENTRE)]
    cut = cut_bits(cat)
    if cut is not None:
        bits |= cut
        checks.append(Flag.PHOTOMETRIC_CUTS.name or "")
    bits, checks = _merge((bits, checks), other_survey_bits(n, other_survey))
    table = table.assign(**{FLAGS: bits})
    truth = truth_bits(table, model, cat)
    if truth is not None:
        table = table.assign(**{TRUTH_FLAGS: truth})
        checks.append(TruthFlag.LABEL_OUT_OF_RANGE.name or "")
    table.attrs["flag_checks"] = sorted(set(checks), key=check_value)
    return table


def embedding_bits(n: int, score: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """(int64 (n,) bits, checks that ran): ``EMBEDDING_OUT_OF_DOMAIN`` where ``score`` (the
    embedding's ``ood_score``) > 1; nothing (and no check) when the model has no embedding statistics."""
    if score is None:
        return np.zeros(n, dtype=np.int64), []
    bits = np.where(np.asarray(score) > 1, int(Flag.EMBEDDING_OUT_OF_DOMAIN), 0).astype(np.int64)
    return bits, [Flag.EMBEDDING_OUT_OF_DOMAIN.name or ""]


def other_survey_bits(n: int, other_survey: bool | None) -> tuple[np.ndarray, list[str]]:
    """(int64 (n,) bits, checks that ran): ``OTHER_SURVEY`` on every row when ``other_survey``;
    False: the survey was compared and is the model's (the check ran); None: it could not run."""
    bits = np.full(n, int(Flag.OTHER_SURVEY) if other_survey else 0, dtype=np.int64)
    return bits, [] if other_survey is None else [Flag.OTHER_SURVEY.name or ""]


def _merge(a: tuple[np.ndarray, list[str]], b: tuple[np.ndarray, list[str]]) -> tuple[np.ndarray, list[str]]:
    """Two (bits, checks) pairs as one."""
    return a[0] | b[0], a[1] + b[1]


def range_bits(table: pd.DataFrame, model: GalmetModel) -> tuple[np.ndarray, list[str]]:
    """(int64 (N,) bits, checks that ran): predictions outside the model's training label range
    (``model.label_range``; nothing for bundles that do not record it). Prediction-time only: the
    truth's check is :func:`truth_bits`."""
    bits = np.zeros(len(table), dtype=np.int64)
    for t, (lo, hi) in model.label_range.items():
        p = table[pred_column(t)].to_numpy(dtype=float)
        bits |= np.where((p < lo) | (p > hi), int(Flag.PRED_OUT_OF_RANGE), 0)
    return bits, [Flag.PRED_OUT_OF_RANGE.name or ""] if model.label_range else []


def truth_bits(table: pd.DataFrame, model: GalmetModel, catalog: pd.DataFrame) -> np.ndarray | None:
    """int64 (N,) :class:`galmet.columns.TruthFlag` bits: ``LABEL_OUT_OF_RANGE`` where the
    catalogue's label lies outside the model's training label range (missing labels: 0). None when
    the check cannot run: no recorded label range, or no truth column for any of its targets."""
    targets = [t for t in model.label_range if t in catalog.columns]
    if not targets:
        return None
    bits = np.zeros(len(table), dtype=np.int64)
    for t in targets:
        lo, hi = model.label_range[t]
        y = pd.to_numeric(catalog[t], errors="coerce").to_numpy(dtype=float)
        bits |= np.where((y < lo) | (y > hi), int(TruthFlag.LABEL_OUT_OF_RANGE), 0)
    return bits


def ood_scores(model: GalmetModel, images, batch_size: int = 256, device: str = "auto") -> np.ndarray | None:
    """float (N,): each image's embedding distance over the training 99th percentile (> 1: out of
    the training domain); None when the bundle has no embedding statistics."""
    refs = model.embedding_references()
    if refs is None:
        return None
    from galmet.nn.embedding import ood_ratio

    # in chunks: an ensemble's embeddings of a large set (members x N x 512 floats) need not fit in memory
    return np.concatenate(
        [
            ood_ratio(refs, model.embed(images[s : s + OOD_CHUNK], batch_size=batch_size, device=device))
            for s in range(0, len(images), OOD_CHUNK)
        ]
    )


def image_ood_scores(model: GalmetModel, images) -> np.ndarray | None:
    """float (N,): each image's statistics' distance from the training images' over the training
    99th percentile (> 1: out of the training domain); None when the bundle has no image statistics."""
    ref = model.image_domain_reference()
    if ref is None:
        return None
    return np.concatenate([ref.score(images[s : s + OOD_CHUNK]) for s in range(0, len(images), OOD_CHUNK)])


def cut_bits(catalog: pd.DataFrame) -> np.ndarray | None:
    """int64 (N,): ``PHOTOMETRIC_CUTS`` where a row fails the paper's cuts; None when ``catalog``
    lacks one of their columns (the check cannot run)."""
    cuts = Cuts()
    needed = {c for cols, _, _ in cuts.terms() for c in cols}
    if not needed <= set(catalog.columns):
        return None
    keep, _ = cut_mask(catalog, cuts)
    return np.where(keep, 0, int(Flag.PHOTOMETRIC_CUTS)).astype(np.int64)
