"""galmet baseline on a catalogue without magnitudes: the constant mean alone, the forest skipped in one line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.errors import ConfigError
from galmet.runs.baseline import format_baselines, run_baselines

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdss_sample"


def expected_constant_rmse(catalog: pd.DataFrame) -> float:
    fit = catalog["split"].isin(["train", "valid"])
    test = catalog["split"] == "test"
    mean = catalog.loc[fit, "oh_p50"].mean()
    return float(np.sqrt(np.mean((catalog.loc[test, "oh_p50"] - mean) ** 2)))


def skipped_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "random forest" in r.getMessage()]


def test_the_real_sample_gets_the_constant_mean_and_one_line_about_the_forest(tmp_path, capsys, caplog):
    if not (SAMPLE / "catalog.csv").is_file():
        pytest.skip(f"the real SDSS sample is not at {SAMPLE}")
    out = tmp_path / "base"
    with caplog.at_level(logging.WARNING):
        rc = main(["baseline", str(SAMPLE), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    lines = skipped_lines(caplog)
    assert len(lines) == 1
    assert "no magnitude column(s) modelMag_g, modelMag_r, modelMag_i" in lines[0]
    assert f"galmet catalog --objids {SAMPLE / 'catalog.csv'}" in lines[0]
    assert "constant mean" in text and "random forest" not in text
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert written == ["baseline_metrics.json", "constant_predictions.parquet"]
    metrics = json.loads((out / "baseline_metrics.json").read_text())
    assert metrics["rf"] is None and "modelMag_g" in metrics["rf_skipped"] and metrics["fit_seconds"] is None
    catalog = pd.read_csv(SAMPLE / "catalog.csv")
    assert metrics["constant"]["n"] == 100
    assert metrics["constant"]["rmse"] == pytest.approx(expected_constant_rmse(catalog), rel=1e-6)


def test_without_magnitudes_scikit_learn_is_not_needed(tmp_path, monkeypatch):
    ds = make_tiny_dataset(tmp_path / "ds", n=40, split=True)
    catalog = pd.read_parquet(ds / "catalog.parquet")[["objID", "oh_p50", "split"]]
    catalog.to_parquet(ds / "catalog.parquet")

    def no_sklearn():
        raise ConfigError("scikit-learn is not installed")

    monkeypatch.setattr("galmet.runs.baseline.require_sklearn", no_sklearn)
    result = run_baselines(ds, tmp_path / "out", bands="ugriz")
    assert result["rf"] is None and "modelMag_u, modelMag_g, modelMag_r, modelMag_i, modelMag_z" in result["rf_skipped"]
    assert result["constant"]["rmse"] == pytest.approx(expected_constant_rmse(catalog), rel=1e-6)
    assert set(result["files"]) == {"constant"}
    table = format_baselines(result)
    assert "constant mean" in table and "random forest" not in table


def test_partial_magnitudes_still_name_the_missing_ones_and_nan_magnitudes_still_fail(tmp_path):
    ds = make_tiny_dataset(tmp_path / "ds", n=30, split=True)
    catalog = pd.read_parquet(ds / "catalog.parquet").drop(columns=["modelMag_r", "modelMag_i"])
    catalog.to_parquet(ds / "catalog.parquet")
    result = run_baselines(ds, tmp_path / "out", bands="gri")
    assert result["rf"] is None and "column(s) modelMag_r, modelMag_i:" in result["rf_skipped"]
    catalog["modelMag_r"], catalog["modelMag_i"] = 17.0, np.nan  # present but not numbers: an error, as before
    catalog.to_parquet(ds / "catalog.parquet")
    from galmet.errors import DataError

    with pytest.raises(DataError, match="modelMag_i is not a finite number"):
        run_baselines(ds, tmp_path / "out2", bands="gri")
