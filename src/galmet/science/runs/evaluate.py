"""``galmet evaluate``: score a predictions file and write its metrics as JSON."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from galmet.io.jsonfile import provenance, write_json
from galmet.io.safety import check_output_file, inputs_of
from galmet.science.metrics import summarize
from galmet.science.predictions import load_predictions


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
    if json_out is not None:  # before anything is read: never over an input or another kind of file
        inputs = inputs_of(path, "the predictions file") + inputs_of(dataset, "the dataset")
        check_output_file(json_out, "--json", "json", "metrics", inputs)
    df, target = load_predictions(path, target, dataset)
    summary = summarize(df, target, split)
    if not isinstance(path, pd.DataFrame):
        summary["predictions"] = provenance(path)
    if dataset is not None and not isinstance(dataset, pd.DataFrame):
        summary["dataset"] = str(Path(getattr(dataset, "root", dataset)).resolve())
    if json_out is not None:
        write_json(json_out, summary)
    return summary
