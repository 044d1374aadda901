"""``galmet evaluate``: score a predictions file and write its metrics as JSON."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from galmet.io.jsonfile import provenance, write_json
from galmet.io.safety import check_output_file, inputs_of
from galmet.runs.calibration_rows import leave_out_seen
from galmet.science.calibration import label_noise_budget, uncertainty_metrics
from galmet.science.metrics import check_n_boot, select_split, summarize
from galmet.science.predictions import load_predictions


def evaluate_predictions(
    path: str | os.PathLike | pd.DataFrame,
    target: str | None = None,
    split: str | None = "test",
    dataset=None,
    json_out: str | os.PathLike | None = None,
    pred_col: str | None = None,
    true_col: str | None = None,
    overwrite: bool = False,
    n_boot: int = 2000,
    include_seen: bool = False,
) -> dict:
    """Read a predictions file, compute :func:`galmet.science.metrics.summarize`, optionally write JSON.

    The JSON (``galmet evaluate --json``) holds the metrics, the paper's values (for
    ``oh_p50``) and the provenance of the predictions file (and dataset when given); when the
    table carries calibrated error bars, ``uncertainty``
    (:func:`galmet.science.calibration.uncertainty_metrics`), and when it has the label's
    percentiles, ``label_noise`` (:func:`galmet.science.calibration.label_noise_budget`).
    ``pred_col`` / ``true_col`` name a foreign table's prediction and truth columns
    (:func:`galmet.science.predictions.foreign_columns`). An existing ``json_out`` galmet did
    not write is replaced only with ``overwrite``. ``n_boot`` resamples of the galaxies give the
    68% and 95% intervals of RMSE, NMAD and bias (``intervals``; 0: none), checked before
    anything is read.

    Rows the model saw (a non-empty ``seen`` column: galaxies that trained or calibrated it) are
    left out, and a warning says how many (``left_out_seen`` in the result), unless
    ``include_seen`` (:func:`galmet.runs.calibration_rows.leave_out_seen`).
    """
    n_boot = check_n_boot(n_boot)
    if json_out is not None:  # before anything is read: never over an input or another kind of file
        inputs = inputs_of(path, "the predictions file") + inputs_of(dataset, "the dataset")
        check_output_file(json_out, "json_out", "json", "metrics file", inputs, "metrics", overwrite=overwrite)
    df, target = load_predictions(path, target, dataset, pred_col=pred_col, true_col=true_col)
    df = select_split(df, split)
    n_all = len(df)
    df = leave_out_seen(df, include_seen, "predictions" if isinstance(path, pd.DataFrame) else str(path))
    summary = summarize(df, target, split, n_boot=n_boot)
    summary["left_out_seen"] = n_all - len(df)
    uncertainty = uncertainty_metrics(df, target, split)
    if uncertainty is not None:
        summary["uncertainty"] = uncertainty
    noise = label_noise_budget(select_split(df, split), target)
    if noise is not None:
        summary["label_noise"] = noise
    if not isinstance(path, pd.DataFrame):
        summary["predictions"] = provenance(path)
    if dataset is not None and not isinstance(dataset, pd.DataFrame):
        summary["dataset"] = str(Path(getattr(dataset, "root", dataset)).resolve())
    if json_out is not None:
        write_json(json_out, summary)
    return summary
