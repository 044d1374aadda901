"""``galmet calibrate``: attach a calibration (and, optionally, embedding statistics) to a model bundle.

Read the model and a predictions table of galaxies it did not train on (the out-of-fold
predictions ``RUN/oof.parquet`` of ``galmet train --folds``, or ``galmet predict`` of an
ordinary run's ``valid`` rows), fit a split-conformal calibration per target
(:func:`galmet.science.calibration.fit_calibration`), and write a new bundle that carries it:
its predictions then have ``<target>_err`` and 68% / 95% intervals. Every input is checked before
the new bundle is written (atomically, never over the input bundle).
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet._version import __version__
from galmet.columns import FLAGS, Flag, pred_column, target_of
from galmet.data.dataset import as_dataset
from galmet.data.image_domain import ImageDomainReference
from galmet.data.labels import usable_truths
from galmet.errors import ConfigError, DataError
from galmet.io.safety import Input, check_not_run_model, check_output_file, inputs_of
from galmet.io.tables import file_sha256, read_table
from galmet.layout import BUNDLE
from galmet.nn.bundle import load_model, update_bundle
from galmet.nn.bundle_meta import MetaKey
from galmet.nn.embedding import EmbeddingReference
from galmet.nn.net import GAUSSIAN
from galmet.registry.resolve import model_input
from galmet.runs.calibration_rows import calibration_rows, calibration_source
from galmet.runs.calibration_weights import calibration_weights, check_weight_options
from galmet.science.calibration import check_bins, fit_calibration
from galmet.science.predictions import check_unique_keys, join_dataset, upgrade_columns

log = logging.getLogger(__name__)


def _check_out(model: Input, out: Path, inputs: list[Input], overwrite: bool = False) -> None:
    """Refuse (one line, before anything is read or written) an ``out`` that is not a new bundle
    file: not a .pt file, a folder, the input bundle (``model``) or another input, a training
    run's model."""
    model_path = model.path
    if out.suffix != ".pt":
        raise ConfigError(f"out {out}: a model bundle file ends in .pt", param="out")
    if out.is_dir():
        raise ConfigError(f"out {out}: is a directory; give a file such as {out / BUNDLE}", param="out")
    if out.exists() and out.resolve() == model_path.resolve():
        raise ConfigError(f"out {out}: is the input bundle; write the calibrated bundle to another file", param="out")
    inputs = [model, *inputs]
    check_output_file(out, "out", "bundle", "model bundle", inputs, overwrite=overwrite)
    check_not_run_model(out, "out")


def _check_request(model, split: str | None, method: str) -> None:
    """ConfigError for a calibration of ``model`` that cannot hold: on the train split, or by
    its own sigma when it has none."""
    if split == "train":
        raise ConfigError(
            "split train: the model saw those galaxies; calibrate on held-out (valid) rows", param="split"
        )
    if method == "sigma" and model.loss != GAUSSIAN:
        raise ConfigError(
            f"{model.path}: method sigma needs a model trained with loss gaussian", param=("method", "loss")
        )


def _out_of_fold(model, df) -> bool:
    """Whether ``df`` holds the out-of-fold rows of ``model``'s K-fold run (a ``fold`` column and
    an ensemble): each row is then held-out only for the fold model that predicted it, and is
    checked against that member's training galaxies alone (``per_fold``)."""
    return "fold" in df.columns and len(model.members) > 1


def check_predicted_by(model, provenance: dict | None, where: str) -> None:
    """Refuse predictions another model made: DataError (one line naming both sha256) when the
    table's provenance (parquet, FITS, ECSV written by ``galmet predict``; a CSV's
    ``model_sha256`` column) names a model file that is neither ``model``'s nor one it was
    derived from (``derived_from``: a calibrated copy has the same weights). A table that names
    none (one galmet did not write) cannot be checked: a warning says so."""
    sha = str((provenance or {}).get("model_sha256") or "")
    if not sha or model.path is None:
        log.warning(
            "%s: no model_sha256 in its provenance (every table galmet predict writes has one): "
            "cannot check that these are the predictions of %s",
            where,
            model.path or "the model",
        )
        return
    own = file_sha256(model.path)
    if sha not in {own, *(model.meta.get(MetaKey.DERIVED_FROM) or [])}:
        made_by = provenance.get("model") if provenance else None
        raise DataError(
            f"{where}: predictions of another model{f' ({made_by})' if made_by else ''}, sha256 {sha}; "
            f"{model.path} has sha256 {own}: calibrate on predictions this model made"
        )


def _model_predictions(
    model, predictions, dataset, allow_other_survey: bool = False, reference=None
) -> tuple[pd.DataFrame, list[str], str | None]:
    """The predictions table (the truth joined from ``dataset`` when given), the model's
    targets it predicts and, for predictions of another survey's images allowed by
    ``allow_other_survey``, what differs (:func:`check_other_survey`); DataError for another
    model's predictions (:func:`check_predicted_by`) or another target's, or a ``reference``
    dataset of another survey's images without ``allow_other_survey`` (refused before the fit)."""
    table = read_table(predictions)
    where = str(predictions)
    check_predicted_by(model, table.attrs.get("provenance"), where)
    other = check_other_survey(table, where, allow_other_survey)
    if reference is not None:
        model.check_dataset_imaging(reference, allow_other_survey=allow_other_survey)
    df = upgrade_columns(table)
    check_unique_keys(df, where)
    if dataset is not None:
        df = join_dataset(df, dataset, columns=("split", *model.targets))
    have = [t for t in (target_of(str(c)) for c in df.columns) if t]
    targets = [t for t in model.targets if pred_column(t) in df.columns]
    if not targets:
        raise DataError(
            f"{where}: holds predictions of {', '.join(have) or 'nothing'}, but the model {model.path} predicts "
            f"{', '.join(model.targets)}: a calibration from another target does not apply"
        )
    return df, targets, other


def check_other_survey(table: pd.DataFrame, where: str, allow_other_survey: bool = False) -> str | None:
    """What a predictions table of another survey's images says differs (its provenance's
    ``other_survey``, or rows flagged ``OTHER_SURVEY``), else None.

    Calibrating on them changes what the model's intervals mean (they then hold for that
    survey's images): refused (one-line DataError) unless ``allow_other_survey``, when a
    warning says so and the caller records the answer in the calibration's source."""
    said = str((table.attrs.get("provenance") or {}).get("other_survey") or "")
    flags = pd.to_numeric(table[FLAGS], errors="coerce").fillna(0).astype("int64") if FLAGS in table.columns else None
    flagged = 0 if flags is None else int(((flags & int(Flag.OTHER_SURVEY)) != 0).sum())
    if not said and not flagged:
        return None
    what = said or f"{flagged} rows flagged OTHER_SURVEY"
    if not allow_other_survey:
        raise DataError(
            f"{where}: predictions of another survey's images ({what}); a calibration on them changes what the "
            "model's intervals mean; calibrate on predictions of its own survey's images, or allow_other_survey "
            "to calibrate it for those (recorded in the calibration)",
            param="allow_other_survey",
        )
    log.warning("%s: calibrating on another survey's images (%s): recorded in the calibration", where, what)
    return what


def embedding_statistics(
    model, dataset, splits=("train", "valid"), device: str = "auto", allow_other_survey: bool = False
) -> dict[str, Any]:
    """Meta updates with the training-domain statistics of ``dataset``'s ``splits`` rows: each
    member's :class:`~galmet.nn.embedding.EmbeddingReference`, the images'
    :class:`~galmet.data.image_domain.ImageDomainReference` and the label range of the targets
    the catalogue has (for bundles trained before galmet stored them).

    For an ensemble of fold models every member is summarised on all those rows (its own training
    galaxies plus its held-out fold), which makes the threshold slightly larger, i.e. conservative.
    Another survey's images are refused unless ``allow_other_survey``
    (:meth:`galmet.nn.inference.GalmetModel.check_survey`); then the updates'
    ``other_survey_reference`` says what differs.
    """
    other = model.check_dataset_imaging(dataset, allow_other_survey=allow_other_survey)
    stretch = model.imaging.stretch  # FITS fluxes: the model's own stretch
    ds = as_dataset(dataset, targets=[], size=model.image_size, stretch=stretch).with_stretch(stretch)
    rows = ds.split_indices(list(splits))
    if len(rows) < 10:
        raise DataError(f"{ds.root}: {len(rows)} rows in splits {', '.join(splits)}: too few for embedding statistics")
    if ds.image_size != model.image_size and model.image_size is not None:
        raise DataError(f"{ds.root}: images are {ds.image_size} px, the model expects {model.image_size}")
    rows = np.sort(rows)
    images = np.asarray(ds.images()[rows])
    emb = model.embed(images, device=device, progress=None)
    refs = [EmbeddingReference.fit(e).to_dict() for e in emb]
    out: dict[str, Any] = {}
    labels = {}
    for t in model.targets:
        if t in ds.catalog.columns:  # by the label rules: a -9999 is not the bottom of the range
            y, _ = usable_truths(ds.catalog.iloc[rows], t, str(ds.root))
            if np.isfinite(y).any():
                labels[t] = [float(np.nanmin(y)), float(np.nanmax(y))]
    if labels:
        out[MetaKey.LABEL_RANGE] = {**(model.meta.get(MetaKey.LABEL_RANGE) or {}), **labels}
    fitted = ImageDomainReference.fit_images_if_possible(images)
    image_ref = fitted.to_dict() if fitted is not None else None  # None: images too small to check
    if MetaKey.MEMBERS in model.meta:
        out[MetaKey.MEMBERS] = [
            {**m, MetaKey.EMBEDDING_STATS: r, MetaKey.IMAGE_STATS: image_ref}
            for m, r in zip(model.members, refs, strict=True)
        ]
    else:
        out[MetaKey.EMBEDDING_STATS] = refs[0]
        out[MetaKey.IMAGE_STATS] = image_ref
    if other is not None:
        out[OTHER_SURVEY_REFERENCE] = other
    return out


#: Key of a calibration's source: the predictions it was fitted on are of another survey's images.
OTHER_SURVEY = "other_survey"
#: Meta key: the embedding and image statistics come from another survey's images (``reference``).
OTHER_SURVEY_REFERENCE = "other_survey_reference"


def _inputs(predictions, dataset, reference, weights) -> list[Input]:
    """The files :func:`calibrate_bundle` reads besides the model, which its ``out`` may not replace."""
    inputs = [Input(Path(predictions), "the predictions table"), *inputs_of(dataset, "the dataset")]
    inputs += inputs_of(reference, "the reference dataset")
    return inputs + inputs_of(weights, "the weights table")


#: ``--cv-plus`` values.
CV_PLUS_CHOICES = ("auto", "on", "off")


def _source(df: pd.DataFrame, predictions, other_survey: str | None = None) -> dict[str, Any]:
    """The provenance a calibration records: the file, galmet version, date and calibration rows
    (and ``other_survey`` for predictions of another survey's images)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    base = {"file": str(Path(predictions).resolve()), "galmet_version": __version__, "date": now}
    return calibration_source(df, {**base, **({OTHER_SURVEY: other_survey} if other_survey else {})})


def _check_conformal(bins, cv_plus: str) -> None:
    """ConfigError (one line) for a ``bins`` that is not K >= 1 or ``auto``, or an unknown ``cv_plus``."""
    check_bins(bins)
    if cv_plus not in CV_PLUS_CHOICES:
        raise ConfigError(f"cv_plus must be one of {', '.join(CV_PLUS_CHOICES)}, got {cv_plus!r}", param="cv_plus")


def cv_plus_members(model, df: pd.DataFrame, cv_plus: str, where: str) -> int:
    """Ensemble members for a CV+ calibration, 0 for none. ``auto``: CV+ when ``model`` is an
    ensemble of M fold models and the table's ``fold`` column holds exactly 0 .. M-1 (out-of-fold
    predictions of those members, in their order); ``on``: that is required (DataError otherwise)."""
    m = len(model.nets)
    if cv_plus == "off":
        return 0
    folds = set(pd.to_numeric(df["fold"], errors="coerce").dropna().tolist()) if "fold" in df.columns else set()
    if m > 1 and folds == set(range(m)):
        return m
    if cv_plus == "on":
        raise DataError(
            f"{where}: cv-plus on needs out-of-fold predictions of an ensemble's members: the model has {m} "
            f"member(s), the table's fold column holds {sorted(folds) or 'nothing'}",
            param="cv_plus",
        )
    return 0


def _resolve_method(model, method: str, df: pd.DataFrame, where: str) -> str:
    """``method`` with ``auto`` resolved (``sigma`` for a gaussian head, else ``absolute``);
    ConfigError (one line) for a spread calibration of an ensemble on out-of-fold rows."""
    resolved = method
    if method == "auto":
        resolved = "sigma" if model.loss == GAUSSIAN else "absolute"
    if resolved == "spread" and len(model.nets) > 1 and "fold" in df.columns:
        # Measured on 2,500 synthetic test galaxies: calibrated this way, the 5-member ensemble's
        # 68% / 95% intervals covered 79% / 99% (BENCHMARKS.md): the scales do not match.
        raise ConfigError(
            f"{where}: out-of-fold predictions carry one fold model's spread, but the model is an ensemble of "
            f"{len(model.nets)} whose spread also holds its members' disagreement, so a spread calibration does "
            "not transfer; use method absolute, or calibrate on the ensemble's own predictions of held-out galaxies",
            param="method",
        )
    return resolved


def calibrate_bundle(
    model_path: str | os.PathLike,
    predictions: str | os.PathLike,
    out: str | os.PathLike,
    method: str = "auto",
    symmetric: bool = False,
    split: str | None = "valid",
    dataset=None,
    reference=None,
    offset: float | None = None,
    device: str = "auto",
    overwrite: bool = False,
    allow_test: bool = False,
    bins: int | str = "auto",
    cv_plus: str = "auto",
    weights=None,
    test_weight: float | None = None,
    allow_other_survey: bool = False,
) -> dict[str, Any]:
    """Fit the calibration of every target of ``model_path`` found in ``predictions``; write ``out``.

    Parameters
    ----------
    model_path : path-like
        The bundle (or run directory) to calibrate.
    predictions : path-like
        Held-out predictions of that model with the truth (or ``dataset`` to join it).
    out : path-like
        The calibrated bundle to write (``.pt``; not the input; another's only with ``overwrite``).
    method, symmetric, offset
        See :func:`galmet.science.calibration.fit_calibration`; ``auto`` is ``sigma`` for a
        ``--loss gaussian`` model and ``absolute`` otherwise.
    split : str or None
        Rows of this split (default ``valid``: the held-out rows; out-of-fold tables are all
        ``valid``; None: every row); ``train`` is refused (the model saw those galaxies). Ignored
        when the table has no ``split`` column. Whatever the split says, the galaxies that
        trained a network of the model (the bundle's ``trained_on``) are left out, and the log
        says how many (:func:`galmet.runs.calibration_rows.calibration_rows`); the new bundle
        records the galaxies it was calibrated on (``calibrated_on`` in the calibration's source).
    dataset : path-like, optional
        Joins the truth (and the label's split) by objID when the table lacks it.
    reference : path-like, optional
        A dataset whose train and valid rows give the bundle new embedding statistics.
    allow_test : bool
        Accept rows of split test (refused by default: ``galmet evaluate`` scores the model on
        them, and its coverage numbers are then not held-out).
    bins, cv_plus
        Mondrian bins (``auto`` or K) and CV+ (:func:`cv_plus_members`), checked before any read.
    weights, test_weight
        Weighted conformal calibration under a covariate shift: a ``galmet domain-check --out``
        table whose ``importance_weight`` each calibration row takes (by objID, else file), and
        the weight of a new galaxy (default: the mean weight of its ``target`` rows)
        (:mod:`galmet.runs.calibration_weights`). Not with CV+ (``auto`` turns it off).
    allow_other_survey : bool
        Calibrate on (and take ``reference`` statistics from) another survey's images: :func:`check_other_survey`.

    Returns
    -------
    dict
        ``out`` (path), ``calibrations`` (target -> one-line description), ``n`` per target.

    Raises
    ------
    ConfigError, DataError
        One line, nothing written: no truth column, predictions of another target or of another
        model (:func:`check_predicted_by`), the train split, test rows without ``allow_test``,
        only galaxies the model trained on, a sigma calibration of a model without a gaussian
        head, a bad ``out``.
    """
    out = Path(out)
    _check_conformal(bins, cv_plus)
    cv_plus = check_weight_options(weights, test_weight, cv_plus)
    _check_out(model_input(model_path), out, _inputs(predictions, dataset, reference, weights), overwrite)
    model = load_model(model_path)
    _check_request(model, split, method)
    df, targets, other = _model_predictions(model, predictions, dataset, allow_other_survey, reference)
    where = str(predictions)
    resolved = _resolve_method(model, method, df, where)
    df = calibration_rows(model, df, where, split=split, allow_test=allow_test, per_fold=_out_of_fold(model, df))
    split = split if "split" in df.columns else None
    source, members = _source(df, predictions, other), cv_plus_members(model, df, cv_plus, where)
    w, tw = calibration_weights(weights, df, test_weight) if weights is not None else (None, None)
    cals = {
        t: fit_calibration(df, t, resolved, symmetric, split, offset, source, where, bins, members, w, tw)
        for t in targets
    }
    updates: dict[str, Any] = {
        MetaKey.CALIBRATION: {
            **(model.meta.get(MetaKey.CALIBRATION) or {}),
            **{t: c.to_dict() for t, c in cals.items()},
        }
    }
    if reference is not None:
        updates.update(embedding_statistics(model, reference, device=device, allow_other_survey=allow_other_survey))
    update_bundle(model.path or model_path, out, updates, overwrite=overwrite)
    return {
        "out": out,
        "calibrations": {t: c.describe() for t, c in cals.items()},
        "n": {t: c.n for t, c in cals.items()},
    }
