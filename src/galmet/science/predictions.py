"""Science analyses on top of predictions: baselines, the resolution study and the MZR.

This module also holds the shared reading of predictions tables (the ``galmet predict``
format) so every analysis command treats them the same way:

=====================  ====================================================================
column                 meaning
=====================  ====================================================================
``objID`` / ``file``   row identity (``objID`` int64 when known)
``split``              train / valid / test, when known
``<target>_pred``      prediction (dex), e.g. ``oh_p50_pred``
``<target>_pred_std``  spread of the test-time-augmented predictions (dex), optional
``<target>``           the truth, when known; else joined from ``--dataset`` by objID
``lgm_tot_p50`` ...    ``oh_p50``, ``lgm_tot_p50``, ``z``, ``ra``, ``dec`` passed through
=====================  ====================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.errors import DataError

#: Columns copied from a dataset's catalog into a predictions table when it lacks them.
PASSTHROUGH = ("split", "oh_p50", "lgm_tot_p50", "z", "ra", "dec")


def infer_target(df: pd.DataFrame, where: str = "predictions") -> str:
    """The label a predictions table predicts: ``oh_p50`` when present, else its only ``*_pred`` column."""
    if "oh_p50_pred" in df.columns:
        return "oh_p50"
    preds = [c[: -len("_pred")] for c in df.columns if str(c).endswith("_pred")]
    if len(preds) == 1:
        return preds[0]
    if not preds:
        raise DataError(f"{where}: no <target>_pred column (columns: {', '.join(map(str, df.columns))})")
    raise DataError(f"{where}: several prediction columns ({', '.join(p + '_pred' for p in preds)}); choose one with --target")


def _dataset_catalog(dataset) -> tuple[pd.DataFrame, str]:
    if isinstance(dataset, pd.DataFrame):
        return dataset, "catalog"
    if hasattr(dataset, "catalog"):
        return dataset.catalog, str(dataset.root)
    from galmet.data.dataset import load_dataset

    ds = load_dataset(dataset, targets=[], load_images=False)
    return ds.catalog, str(ds.root)


def join_dataset(df: pd.DataFrame, dataset, columns=PASSTHROUGH) -> pd.DataFrame:
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
    cat, where = _dataset_catalog(dataset)
    key = next((k for k in ("objID", "file") if k in df.columns and k in cat.columns), None)
    if key is None:
        raise DataError(f"cannot join predictions to {where}: neither has an objID (or file) column in common")
    want = [c for c in columns if c in cat.columns and (c not in df.columns or df[c].isna().all())]
    if not want:
        return df
    right = cat[[key, *want]].drop_duplicates(key)
    left = df.drop(columns=[c for c in want if c in df.columns])
    if key == "objID":
        left = left.assign(objID=pd.to_numeric(left["objID"], errors="coerce").astype("Int64"))
        right = right.assign(objID=right["objID"].astype("Int64"))
    merged = left.merge(right, on=key, how="left", validate="many_to_one")
    if key == "objID":
        merged["objID"] = merged["objID"].astype(np.int64)
    return merged


def load_predictions(
    path: str | os.PathLike | pd.DataFrame,
    target: str | None = None,
    dataset=None,
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

    Returns
    -------
    (pandas.DataFrame, str)
        The table and the target name.
    """
    from galmet.io.tables import read_table

    if isinstance(path, pd.DataFrame):
        df, where = path.copy(), "predictions"
    else:
        df, where = read_table(path), str(path)
    if len(df) == 0:
        raise DataError(f"{where}: predictions table is empty")
    target = target or infer_target(df, where)
    if f"{target}_pred" not in df.columns:
        raise DataError(f"{where}: no column {target + '_pred'!r} (columns: {', '.join(map(str, df.columns))})")
    if dataset is not None:
        df = join_dataset(df, dataset)
    if target not in df.columns or df[target].isna().all():
        hint = "; pass --dataset DATASET to join it by objID" if dataset is None else f" and the dataset has no {target!r} for these objIDs"
        raise DataError(f"{where}: no truth column {target!r}{hint}")
    return df, target


def provenance(path: str | os.PathLike) -> dict:
    """Where a file came from: its path, size (bytes), modification time (UTC ISO) and SHA-256."""
    import datetime
    import hashlib

    p = Path(path)
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    st = p.stat()
    return {
        "path": str(p.resolve()),
        "bytes": st.st_size,
        "modified": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds"),
        "sha256": h.hexdigest(),
    }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN/inf become null); return the path."""
    import json

    from galmet.io.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")
    return Path(path)


def evaluate_predictions(
    path: str | os.PathLike | pd.DataFrame,
    target: str | None = None,
    split: str | None = "test",
    dataset=None,
    json_out: str | os.PathLike | None = None,
) -> dict:
    """Read a predictions file, compute :func:`galmet.science.metrics.summarize`, optionally write JSON.

    The JSON (``galmet evaluate --json``) holds the metrics, the paper's values (for
    ``oh_p50``) and the provenance of the predictions file (and dataset when given).
    """
    from galmet.science.metrics import summarize

    df, target = load_predictions(path, target, dataset)
    summary = summarize(df, target, split)
    if not isinstance(path, pd.DataFrame):
        summary["predictions"] = provenance(path)
    if dataset is not None and not isinstance(dataset, pd.DataFrame):
        summary["dataset"] = str(Path(getattr(dataset, "root", dataset)).resolve())
    if json_out is not None:
        write_json(json_out, summary)
    return summary
