"""Reading predictions tables (the ``galmet predict`` format), the same way for every analysis:

=====================  ====================================================================
column                 meaning
=====================  ====================================================================
``objID`` / ``file``   row identity (``objID`` int64 when known)
``split``              train / valid / test, when known
``<target>_pred``      prediction (dex), e.g. ``oh_p50_pred``
``<target>_spread``    spread over the TTA views and ensemble members (dex), optional; a table
                       written before the rename has ``<target>_pred_std``, read as ``_spread``
``<target>_err`` ...   calibrated 1-sigma and 68% / 95% intervals, optional
``<target>``           the truth, when known; else joined from ``--dataset`` by objID
``flags``              prediction-time :class:`galmet.columns.Flag` bits, optional
``truth_flags``        :class:`galmet.columns.TruthFlag` bits, optional; moved out of an older
                       table's ``flags`` (bit 2) by :func:`upgrade_columns`
``lgm_tot_p50`` ...    ``oh_p50``, ``lgm_tot_p50``, ``z``, ``ra``, ``dec`` passed through
=====================  ====================================================================

Foreign tables (e.g. the authors' ``prediction`` / ``oh_p50``) are read by naming their
columns: :func:`foreign_columns` (``galmet evaluate --pred-col/--true-col``).
"""

from __future__ import annotations

import os

import pandas as pd

from galmet.columns import (
    DEFAULT_TARGET,
    FLAGS,
    PASSTHROUGH,
    SPLIT,
    TRUTH_FLAGS,
    TruthFlag,
    check_value,
    float_array,
    legacy_spread_column,
    objid_array,
    spread_column,
    target_of,
)
from galmet.data.dataset import as_dataset
from galmet.data.labels import no_truth
from galmet.errors import DataError
from galmet.io.tables import read_table

#: Columns copied from a dataset's catalog into a predictions table when it lacks them.
JOINED = (SPLIT, *PASSTHROUGH)


def upgrade_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` in today's columns: the spread columns of older tables (``<target>_pred_std``) renamed
    to ``<target>_spread``, and the truth's bit (2, ``LABEL_OUT_OF_RANGE``) of an older table's
    ``flags`` moved to ``truth_flags`` (:func:`split_truth_flags`)."""
    renames = {}
    for col in df.columns:
        target = target_of(str(col))
        if target and legacy_spread_column(target) in df.columns and spread_column(target) not in df.columns:
            renames[legacy_spread_column(target)] = spread_column(target)
    return split_truth_flags(df.rename(columns=renames) if renames else df)


def split_truth_flags(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the :class:`galmet.columns.TruthFlag` bits of its ``flags`` column moved to a
    ``truth_flags`` column: tables written before the two were kept apart held
    ``LABEL_OUT_OF_RANGE`` (bit 2) in ``flags``. The ``truth_flags`` column is added when a row
    has the bit or the table's ``flag_checks`` lists the check; a table that has ``truth_flags``
    already, or no ``flags``, is returned as it is."""
    if FLAGS not in df.columns or TRUTH_FLAGS in df.columns:
        return df
    truth_mask = int(TruthFlag.LABEL_OUT_OF_RANGE)
    flags = pd.to_numeric(df[FLAGS], errors="coerce").fillna(0).astype("int64")
    moved = flags & truth_mask
    checks = [str(c) for c in df.attrs.get("flag_checks", [])]
    ran = TruthFlag.LABEL_OUT_OF_RANGE.name in checks
    if not ran and not moved.any():
        return df
    out = df.assign(**{FLAGS: flags & ~truth_mask, TRUTH_FLAGS: moved})
    out.attrs = dict(df.attrs)
    if checks:
        out.attrs["flag_checks"] = sorted(set(checks), key=check_value)
    return out


def infer_target(df: pd.DataFrame, where: str = "predictions") -> str:
    """The label a predictions table predicts: ``oh_p50`` when present, else its only ``*_pred`` column."""
    if "oh_p50_pred" in df.columns:
        return "oh_p50"
    preds = [c[: -len("_pred")] for c in df.columns if str(c).endswith("_pred")]
    if len(preds) == 1:
        return preds[0]
    if not preds:
        raise DataError(f"{where}: no <target>_pred column (columns: {', '.join(map(str, df.columns))})")
    raise DataError(
        f"{where}: several prediction columns ({', '.join(p + '_pred' for p in preds)}); choose one with target",
        param="target",
    )


def foreign_columns(
    df: pd.DataFrame,
    where: str = "predictions",
    target: str | None = None,
    pred_col: str | None = None,
    true_col: str | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Rename a foreign table's prediction and truth columns to galmet's ``<target>_pred`` and
    ``<target>`` (e.g. the authors' files: ``prediction`` and ``oh_p50``).

    Parameters
    ----------
    df : pandas.DataFrame
        The table as read.
    target : str, optional
        The label name to use; default: ``true_col`` when given, else ``oh_p50`` when only
        ``pred_col`` is given, else inferred later (:func:`infer_target`).
    pred_col, true_col : str, optional
        The columns holding the prediction and the truth (dex).

    Returns
    -------
    (pandas.DataFrame, str or None)
        The table with galmet's column names, and the target (None when neither column was given
        and no ``target`` either).

    Raises
    ------
    DataError
        A named column is absent (the message lists the table's columns), or renaming it would
        hide another column of the table.
    """
    if pred_col is None and true_col is None:
        return df, target
    columns = ", ".join(map(str, df.columns))
    for option, col in (("pred_col", pred_col), ("true_col", true_col)):
        if col is not None and col not in df.columns:
            raise DataError(f"{where}: no column {col!r} ({option}); the table's columns: {columns}", param=option)
    if pred_col is not None and pred_col == true_col:
        raise DataError(
            f"{where}: pred_col and true_col are the same column {pred_col!r}", param=("pred_col", "true_col")
        )
    target = target or true_col or DEFAULT_TARGET
    renames = {}
    if pred_col is not None and pred_col != f"{target}_pred":
        renames[pred_col] = f"{target}_pred"
    if true_col is not None and true_col != target:
        renames[true_col] = target
    for old, new in renames.items():
        if new in df.columns and new not in renames:
            raise DataError(
                f"{where}: the table already has a column {new!r}; it would be hidden by {old!r} "
                f"(give target another name, or leave out the option that names {old!r})",
                param="target",
            )
    return df.rename(columns=renames), target


def dataset_catalog(dataset) -> tuple[pd.DataFrame, str]:
    """(catalogue, name) of a dataset given as a path, a Dataset or a catalogue DataFrame (no images read)."""
    if isinstance(dataset, pd.DataFrame):
        return dataset, "catalog"
    ds = as_dataset(dataset, targets=[], load_images=False)
    return ds.catalog, str(ds.root)


def join_dataset(df: pd.DataFrame, dataset, columns=JOINED) -> pd.DataFrame:
    """Fill missing (or all-NaN) ``columns`` of a predictions table from a dataset's catalog.

    Parameters
    ----------
    df : pandas.DataFrame
        Predictions table with an ``objID`` (or ``file``) column.
    dataset : path-like, galmet.data.dataset.Dataset or pandas.DataFrame
        The dataset (or its catalog) to join, on ``objID`` when both have it, else on ``file``.
    columns : sequence of str
        Columns to bring over when the catalog has them.
    """
    cat, where = dataset_catalog(dataset)
    key = next((k for k in ("objID", "file") if k in df.columns and k in cat.columns), None)
    if key is None:
        raise DataError(f"cannot join predictions to {where}: neither has an objID (or file) column in common")
    want = [c for c in columns if c in cat.columns and (c not in df.columns or df[c].isna().all())]
    if not want:
        return df
    right = cat[[key, *want]].drop_duplicates(key)
    left = df.drop(columns=[c for c in want if c in df.columns])
    if key == "objID":  # exact 64-bit IDs on both sides, never rounded through float
        left = left.assign(objID=objid_array(left["objID"], "predictions"))
        right = right.assign(objID=objid_array(right["objID"], where))
    return left.merge(right, on=key, how="left", validate="many_to_one")


def check_unique_keys(df: pd.DataFrame, where: str = "predictions") -> None:
    """Refuse a predictions table that holds a galaxy twice (it would be scored or calibrated twice).

    The key is ``objID`` when the table has one (missing cells ignored), else ``file``. Galmet
    refuses rather than collapsing: two rows of one galaxy are a concatenated or corrupted table,
    and which of them is right is not galmet's to guess.

    Raises
    ------
    DataError
        One line naming the first duplicated key, its rows and how many keys repeat.
    """
    for key in ("objID", "file"):
        if key in df.columns and df[key].notna().any():
            col = df[key].reset_index(drop=True)
            dup = col.duplicated(keep=False) & col.notna()
            if dup.any():
                first = col[dup].iloc[0]
                rows = [int(i) for i in col.index[col == first][:2]]
                n = int(col[dup].nunique())
                raise DataError(
                    f"{where}: {key} {first} appears more than once (rows {rows[0]} and {rows[1]}; "
                    f"{n} {key}s repeat): each galaxy must be in a predictions table once"
                )
            return


def load_predictions(
    path: str | os.PathLike | pd.DataFrame,
    target: str | None = None,
    dataset=None,
    pred_col: str | None = None,
    true_col: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """Read a predictions table and make sure it has the truth for ``target``.

    Parameters
    ----------
    path : path-like or pandas.DataFrame
        A parquet / CSV / FITS predictions file (or an already loaded table).
    target : str, optional
        Label name; default: inferred with :func:`infer_target`.
    dataset : path-like or Dataset, optional
        Joined by objID to supply the truth and pass-through columns the file lacks.
    pred_col, true_col : str, optional
        A foreign table's prediction and truth columns (see :func:`foreign_columns`).

    Returns
    -------
    (pandas.DataFrame, str)
        The table and the target name.
    """
    if isinstance(path, pd.DataFrame):
        df, where = path.copy(), "predictions"
    else:
        df, where = read_table(path), str(path)
    df = upgrade_columns(df)
    if len(df) == 0:
        raise DataError(f"{where}: predictions table is empty")
    check_unique_keys(df, where)
    df, target = foreign_columns(df, where, target, pred_col, true_col)
    target = target or infer_target(df, where)
    if f"{target}_pred" not in df.columns:
        raise DataError(f"{where}: no column {target + '_pred'!r} (columns: {', '.join(map(str, df.columns))})")
    if dataset is not None:
        df = join_dataset(df, dataset)
    for col in (f"{target}_pred", target):
        if col in df.columns and df[col].dtype.kind not in "fiu":
            df[col] = float_array(df[col], where, col)  # text that is not a number: one line naming the row
    if target not in df.columns or df[target].isna().all():
        hint = (
            "; pass dataset to join it by objID"
            if dataset is None
            else f" and the dataset has no {target!r} for these objIDs"
        )
        what = no_truth(df, target)
        raise DataError(f"{where}: {what}{hint}", param="dataset" if dataset is None else None)
    return df, target
