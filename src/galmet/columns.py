"""Column names and their rules: prediction columns, identities, pass-through, label ranges.

A predictions table (``galmet predict``) has one row per image:

=========================  ============================================================
column                     meaning
=========================  ============================================================
``objID`` / ``file``       row identity: the SDSS objID (exact int64), else the image file
``split``                  train / valid / test (dataset directories with a catalogue)
``<target>_pred``          prediction, target units (dex for ``oh_p50``, ``lgm_tot_p50``)
``<target>_spread``        spread of the predictions over TTA views and ensemble members
                           (not an error bar: see ``_err``); read from ``_pred_std`` in
                           tables written before it was renamed
``<target>_sigma``         the heteroscedastic head's own 1-sigma (``--loss gaussian``),
                           before calibration
``<target>_err``           calibrated 1-sigma: half the width of the 68% interval (only
                           when the model bundle carries a calibration)
``<target>_lo68`` ...      the calibrated central 68% and 95% intervals: ``_lo68``,
                           ``_hi68``, ``_lo95``, ``_hi95``
``ood_score``              embedding distance to the training set over its 99th percentile
``flags``                  why a prediction should not be trusted (:class:`Flag` bits,
                           computed from the image and the prediction only)
``truth_flags``            what is wrong with the row's truth (:class:`TruthFlag` bits; only
                           when the catalogue has the truth): never use it to select rows
``seen``                   ``train`` / ``calibration`` for a galaxy that trained or calibrated
                           the model (its bundle records them), else empty: not held-out
``<target>``               the truth, when the catalogue has it
:data:`PASSTHROUGH`        catalogue columns copied for joins and analyses
=========================  ============================================================
"""

from __future__ import annotations

import enum
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from galmet.errors import DataError

#: The SDSS photometric object ID, an exact 64-bit integer.
OBJID = "objID"
#: Columns holding SDSS identifiers, exact 64-bit integers (matched without regard to case).
ID_INTEGER_COLUMNS = (OBJID, "specObjID")
#: Image file of a row, relative to its dataset (image folders without objIDs).
FILE = "file"
#: Columns that identify a row, in order of preference.
ID_COLUMNS = (OBJID, FILE)
SPLIT = "split"
#: The paper's label: MPA-JHU median 12 + log(O/H), dex.
METALLICITY = "oh_p50"
#: MPA-JHU median log stellar mass, dex (solar masses).
STELLAR_MASS = "lgm_tot_p50"
DEFAULT_TARGET = METALLICITY
#: The 16th and 84th percentiles of a label's own likelihood, where the MPA-JHU catalogue gives them:
#: half their difference is the label's 1-sigma measurement uncertainty.
LABEL_PERCENTILES = {METALLICITY: ("oh_p16", "oh_p84")}
#: Catalogue columns copied into every predictions table when present (truths for analyses,
#: positions for joins, the label's own uncertainty).
PASSTHROUGH = (METALLICITY, STELLAR_MASS, "z", "ra", "dec", *LABEL_PERCENTILES[METALLICITY])
#: Physically allowed range (inclusive) of each known label or truth column; values outside
#: (such as MPA-JHU's -9999 for "missing") are not labels: the rules and the one reader that
#: applies them are :mod:`galmet.data.labels`.
LABEL_RANGES = {
    METALLICITY: (7.0, 10.0),
    STELLAR_MASS: (5.0, 13.0),
    # MPA-JHU percentiles of the same quantities
    "oh_p16": (7.0, 10.0),
    "oh_p84": (7.0, 10.0),
    "oh_p2p5": (7.0, 10.0),
    "oh_p97p5": (7.0, 10.0),
    "lgm_tot_p16": (5.0, 13.0),
    "lgm_tot_p84": (5.0, 13.0),
    # log specific star-formation rate (yr^-1): MPA-JHU's and the synthetic catalogue's
    "specsfr_tot_p50": (-20.0, -5.0),
    "log_ssfr": (-20.0, -5.0),
    # log star-formation rate (Msun/yr)
    "sfr_tot_p50": (-10.0, 5.0),
}
#: torchvision ResNets galmet builds bodies from. ``resnet10`` is torchvision's ``ResNet`` with one
#: basic block per stage (4.9 M parameters against ResNet-18's 11.2 M); it has no ImageNet weights.
ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50")
#: Architectures torchvision publishes ImageNet weights for.
IMAGENET_ARCHS = ("resnet18", "resnet34", "resnet50")

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
#: Largest integer a float64 holds exactly; objIDs (~1.2e18) stored as floats have lost digits.
_FLOAT_EXACT = 2**53


def is_id_column(name: Any) -> bool:
    """True for a column that holds SDSS identifiers (``objID``, ``specObjID``, any case)."""
    return isinstance(name, str) and name.lower() in {c.lower() for c in ID_INTEGER_COLUMNS}


def pred_column(target: str) -> str:
    """Column holding the predictions of ``target``."""
    return f"{target}_pred"


def spread_column(target: str) -> str:
    """Column holding the spread of ``target``'s predictions over TTA views and ensemble members."""
    return f"{target}_spread"


def legacy_spread_column(target: str) -> str:
    """The name :func:`spread_column` had before it was renamed (read, never written)."""
    return f"{target}_pred_std"


def sigma_column(target: str) -> str:
    """Column holding the heteroscedastic head's own (uncalibrated) 1-sigma of ``target``."""
    return f"{target}_sigma"


def err_column(target: str) -> str:
    """Column holding the calibrated 1-sigma of ``target``: half the width of its 68% interval."""
    return f"{target}_err"


#: Central interval levels every calibrated prediction carries, with their column tags.
INTERVAL_LEVELS = {68: 0.68, 95: 0.95}


def interval_columns(target: str, level: int) -> tuple[str, str]:
    """(lower, upper) columns of the calibrated central ``level`` per cent interval, e.g.
    ``("oh_p50_lo68", "oh_p50_hi68")``."""
    if level not in INTERVAL_LEVELS:
        raise ValueError(f"interval level must be one of {sorted(INTERVAL_LEVELS)}, got {level}")
    return f"{target}_lo{level}", f"{target}_hi{level}"


def uncertainty_columns(target: str) -> list[str]:
    """Every calibrated-uncertainty column of ``target``, in table order."""
    cols = [err_column(target)]
    for level in INTERVAL_LEVELS:
        cols += interval_columns(target, level)
    return cols


#: Column of the out-of-domain and image-problem bits (:class:`Flag`).
FLAGS = "flags"
#: Column of the bits computed from the catalogue's truth (:class:`TruthFlag`), kept apart from
#: :data:`FLAGS` so that selecting unflagged rows never selects on the truth.
TRUTH_FLAGS = "truth_flags"
#: Column of the embedding's k-NN distance to the training embeddings over the training galaxies'
#: 99th percentile of the same distance (> 1: bit ``EMBEDDING_OUT_OF_DOMAIN``).
OOD_SCORE = "ood_score"
#: Column of the image statistics' Mahalanobis distance from the training images' over the training
#: images' 99th percentile of the same distance (> 1: bit ``IMAGE_OUT_OF_DOMAIN``;
#: :mod:`galmet.data.image_domain`).
IMAGE_OOD_SCORE = "image_ood_score"
#: Column saying whether the model saw a row's galaxy: :data:`SEEN_TRAIN` (it trained a network of
#: the model), :data:`SEEN_CALIBRATION` (it calibrated the error bars), ``""`` (held-out).
SEEN = "seen"
SEEN_TRAIN = "train"
SEEN_CALIBRATION = "calibration"


# --- per-row outcome of prediction at sky positions (galmet.predict.positions) ----------------------
#: Column of each row's outcome: one of :data:`STATUSES`.
STATUS = "status"
#: Column of why a row was not predicted ("" for an ``ok`` row).
ERROR = "error"
#: Predicted.
STATUS_OK = "ok"
#: ra/dec missing or off the sky.
STATUS_INVALID = "invalid position"
#: HTTP errors, timeouts, connection failures after the retries.
STATUS_FETCH = "fetch failed"
#: The server sent something other than the cutout to the last try.
STATUS_BAD = "bad image"
#: A blank cutout: SDSS has no imaging there.
STATUS_BLANK = "outside footprint"
#: Predicting from a local cutout archive without a server: no archived cutout within the match radius.
STATUS_NOT_IN_ARCHIVE = "not in archive"
#: Statuses in the order summaries list them.
STATUSES = (STATUS_OK, STATUS_FETCH, STATUS_BAD, STATUS_BLANK, STATUS_INVALID, STATUS_NOT_IN_ARCHIVE)
#: The outcome columns, last in a positions table, in this order.
OUTCOME_COLUMNS = (STATUS, ERROR)


class Flag(enum.IntFlag):
    """Bits of the ``flags`` column: why a prediction should not be trusted (0 = none raised).

    A bit is only raised by a check that could run: a model bundle without a training label
    range or embedding statistics, or a catalogue without the columns of the paper's cuts,
    leaves the corresponding bits at 0 (``galmet predict`` says which checks ran).

    Every bit is known at prediction time, from the image, the prediction and the catalogue's
    photometry: none looks at the truth, so "unflagged" rows are not selected on it. Bit 2 is
    unused: it was ``LABEL_OUT_OF_RANGE``, which read the truth and now lives in the
    ``truth_flags`` column (:class:`TruthFlag`; :func:`galmet.science.predictions.upgrade_columns`
    moves it out of older tables).
    """

    #: The prediction lies outside the range of the labels the model was trained on.
    PRED_OUT_OF_RANGE = 1
    #: The penultimate-layer embedding is farther from the training embeddings than 99% of the
    #: training galaxies are (k-nearest-neighbour distance; statistics stored in the bundle).
    EMBEDDING_OUT_OF_DOMAIN = 4
    #: Almost no pixel near the centre rises above the sky: a blank or noise-only cutout.
    IMAGE_EMPTY = 8
    #: Pixels near the centre are saturated (white in all three channels).
    IMAGE_SATURATED = 16
    #: The light near the centre is not centred: the source is off the cutout's centre.
    IMAGE_OFF_CENTRE = 32
    #: The catalogue row fails one of the paper's photometric cuts (only when it has the columns).
    PHOTOMETRIC_CUTS = 64
    #: The image's hand-made statistics (sky, noise and its correlation, colours, concentration:
    #: :mod:`galmet.data.image_stats`) lie farther from the training images' than 99% of the
    #: training images do (Mahalanobis distance; statistics stored in the bundle). Catches another
    #: survey, rendering, depth, pixel scale or a simulation, which the embedding check misses.
    IMAGE_OUT_OF_DOMAIN = 128
    #: The images are another survey's (or layer's, bands', format's) than the model was trained
    #: on, predicted all the same for a transfer experiment (``allow_other_survey``): set on every
    #: row of such a run (:meth:`galmet.nn.inference.GalmetModel.check_survey`).
    OTHER_SURVEY = 256


class TruthFlag(enum.IntFlag):
    """Bits of the ``truth_flags`` column: what is unusual about a row's truth (0 = nothing).

    Computed from the catalogue's label, so known only where the truth is: describe the sample
    with them, never select the rows a statistic is computed on by them (that selects on the
    truth). Values do not overlap :class:`Flag`'s, so old tables' bits keep their meaning.
    """

    #: The catalogue's own label (the truth) lies outside the training label range.
    LABEL_OUT_OF_RANGE = 2


def check_value(name: str) -> int:
    """The bit value of a check named in ``flag_checks``: a :class:`Flag` or :class:`TruthFlag`
    name (sort key of the list; an unknown name sorts last)."""
    for kind in (Flag, TruthFlag):
        if name in kind.__members__:
            return int(kind[name].value)
    return 1 << 62


#: Unit of each known column, as astropy parses it (``""``: dimensionless; a column not listed
#: has no unit). Logarithmic quantities are ``dex`` of their physical unit: ``dex(solMass)`` is
#: what astropy writes for ``u.dex(u.Msun)``. Prediction and uncertainty columns derive theirs
#: from their target (:func:`column_unit`).
COLUMN_UNITS: dict[str, str] = {
    METALLICITY: "dex",
    "oh_p16": "dex",
    "oh_p84": "dex",
    "oh_p2p5": "dex",
    "oh_p97p5": "dex",
    STELLAR_MASS: "dex(solMass)",
    "lgm_tot_p16": "dex(solMass)",
    "lgm_tot_p84": "dex(solMass)",
    "specsfr_tot_p50": "dex(1 / yr)",
    "log_ssfr": "dex(1 / yr)",
    "sfr_tot_p50": "dex(solMass / yr)",
    "ra": "deg",
    "dec": "deg",
    "z": "",
    "zErr": "",
    "petroR50_r": "arcsec",
    "petroR90_r": "arcsec",
    "petroMag_r": "mag",
    **{f"modelMag_{b}": "mag" for b in "ugriz"},
    **{f"modelMagErr_{b}": "mag" for b in "ugriz"},
    OOD_SCORE: "",
    IMAGE_OOD_SCORE: "",
}
#: Suffixes of columns in their target's unit (predictions, interval bounds) ...
_SAME_UNIT_SUFFIXES = ("_pred", "_lo68", "_hi68", "_lo95", "_hi95")
#: ... and of differences of it (spreads, 1-sigmas): plain ``dex`` for a ``dex(...)`` target.
_DIFFERENCE_SUFFIXES = ("_spread", "_pred_std", "_sigma", "_err")


def column_unit(name: str) -> str | None:
    """The unit of column ``name`` (astropy string; ``""`` dimensionless), or None for none known.

    ``oh_p50_pred``, ``oh_p50_lo68`` -> ``dex``; ``lgm_tot_p50_pred`` -> ``dex(solMass)`` but
    ``lgm_tot_p50_err`` -> ``dex`` (a difference of logarithms); ``ra`` -> ``deg``; ``z`` -> ``""``.
    """
    if name in COLUMN_UNITS:
        return COLUMN_UNITS[name]
    for suffix in _SAME_UNIT_SUFFIXES + _DIFFERENCE_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in COLUMN_UNITS:
            unit = COLUMN_UNITS[base]
            return "dex" if suffix in _DIFFERENCE_SUFFIXES and unit.startswith("dex") else unit
    return None


def describe_flags(value: int, kind: type[enum.IntFlag] = Flag) -> str:
    """The names of the ``kind`` bits (:class:`Flag` or :class:`TruthFlag`) set in ``value``, joined
    by ``|`` (``""`` for 0)."""
    return "|".join(f.name for f in kind if int(value) & f.value and f.name)


def target_of(pred_col: str) -> str | None:
    """The target of a prediction column name (``oh_p50_pred`` -> ``oh_p50``), or None."""
    suffix = "_pred"
    return pred_col[: -len(suffix)] if pred_col.endswith(suffix) and len(pred_col) > len(suffix) else None


def objid_array(values: Any, where: str = "catalog", column: str = OBJID) -> np.ndarray:
    """Exact int64 objIDs from a column of integers or integer strings.

    Parameters
    ----------
    values : array-like
        A pandas Series or array: integer dtype, strings of digits (optionally ``.0``), or
        floats only when every value is an integer below 2**53 (so no digit was lost).
    where : str
        The file or table named in error messages.

    Returns
    -------
    numpy.ndarray
        int64 (N,).

    Raises
    ------
    DataError
        One line naming the first row that is missing, not an integer, in scientific
        notation, out of the int64 range, or a float that cannot hold it exactly.
    """
    kind = getattr(getattr(values, "dtype", None), "kind", None)
    if kind in ("i", "u") and not hasattr(getattr(values, "dtype", None), "na_value"):
        out = np.asarray(values)  # (before any object array: a million IDs are not a million Python ints)
        if out.dtype.kind == "u" and out.size and out.max() > _INT64_MAX:
            i = int(np.argmax(out > _INT64_MAX))
            raise DataError(f"{where}: row {i}: {column} {out[i]} is beyond the 64-bit integer range")
        return out.astype(np.int64)
    arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values, dtype=object)
    if len(arr) and all(isinstance(v, str) for v in arr):
        try:  # the common case, a column of digit strings, in one pass
            return np.fromiter((int(v) for v in arr), dtype=np.int64, count=len(arr))
        except (ValueError, OverflowError):
            pass  # the loop below names the first bad row
    result = np.empty(len(arr), dtype=np.int64)
    for i, v in enumerate(arr):
        result[i] = _one_objid(v, i, where, column)
    return result


def float_array(values: Any, where: str = "table", column: str = "value") -> np.ndarray:
    """float64 values of a numeric column; missing cells become NaN.

    Raises
    ------
    DataError
        One line naming the first row that holds something other than a number (text such as
        ``'abc'``, a boolean), rather than letting it turn silently into NaN.
    """

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    if series.dtype.kind in "fiu":
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if series.dtype.kind == "b":
        raise DataError(f"{where}: column {column} holds booleans, expected numbers")
    num = pd.to_numeric(series, errors="coerce")
    for i in np.flatnonzero(num.isna().to_numpy() & series.notna().to_numpy()).tolist():
        v = series.iloc[i]
        if isinstance(v, (bool, np.bool_)) or (
            isinstance(v, str) and v.strip().lower() not in ("", "nan", "none", "null", "na", "<na>")
        ):
            raise DataError(f"{where}: row {i}: {column} {v!r} is not a number")
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


def _one_objid(v: Any, i: int, where: str, column: str) -> int:
    def bad(why: str) -> DataError:
        return DataError(f"{where}: row {i}: {column} {v!r} {why}")

    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        raise bad("is missing")
    if isinstance(v, (bool, np.bool_)):
        raise bad("is not an integer")
    if isinstance(v, (int, np.integer)):
        n = int(v)
    elif isinstance(v, (float, np.floating)):
        if float(v) != int(v):
            raise bad("is not an integer")
        if abs(v) > _FLOAT_EXACT:
            raise bad(
                "is stored as a floating-point number, which has lost its last digits; "
                "write objIDs as integers (or text) in the file"
            )
        n = int(v)
    else:
        text = str(v).strip()
        if not text or text.lower() in ("nan", "none", "<na>", "null"):
            raise bad("is missing")
        if "e" in text.lower():
            raise bad("is in scientific notation, which has lost its last digits; write the full integer")
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise bad("is not an integer") from None
        if not d.is_finite() or d != d.to_integral_value():  # "inf", "snan", "12.5"
            raise bad("is not an integer")
        n = int(d)
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise bad("is beyond the 64-bit integer range")
    return n
