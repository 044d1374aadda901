"""Issue 21 item 14: the systematics figure draws bootstrap intervals that miss their estimate
(few resamples) as zero-length bars, so the smallest --bootstrap the CLI accepts works."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.science.plots.systematics import interval_yerr


def test_interval_yerr_is_never_negative():
    got = interval_yerr([1.0, 1.0, 1.0, 1.0], [1.2, 0.5, 0.8, np.nan], [1.5, 0.9, 1.1, 1.3])
    assert (got >= 0).all()
    assert got.tolist() == [[0.0, 0.5, pytest.approx(0.2), 0.0], [0.5, 0.0, pytest.approx(0.1), pytest.approx(0.3)]]


@pytest.mark.parametrize("n_boot", [10, 11])
def test_systematics_at_the_minimum_bootstrap(tmp_path, n_boot, capsys):
    ds = make_tiny_dataset(tmp_path / "ds", n=60, size=16, split=True)
    cat = pd.read_parquet(ds / "catalog.parquet")
    rng = np.random.default_rng(3)
    pred = pd.DataFrame({"objID": cat.objID, "oh_p50": cat.oh_p50, "oh_p50_pred": cat.oh_p50 + rng.normal(0, 0.1, 60)})
    pred.to_csv(tmp_path / "p.csv", index=False)
    out = tmp_path / "sys"
    argv = ["systematics", tmp_path / "p.csv", "--dataset", ds, "--out", out, "--split", "all"]
    code = main([str(a) for a in [*argv, "--bootstrap", n_boot]])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "systematics.json").read_text())["n"] == 60
    assert list(out.glob("*.png")) or list(out.glob("*.pdf"))
