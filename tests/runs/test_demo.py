"""``galmet demo`` end to end, at a tiny scale."""

from __future__ import annotations

import json

import numpy as np

from galmet.cli.main import main


def test_demo_runs_end_to_end_and_refuses_foreign_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--n", "80", "--size", "32", "--epochs", "1", "--device", "cpu"])
    assert code == 0
    text = capsys.readouterr().out
    assert "test RMSE (dex): CNN" in text
    assert "'galmet predict sdss400 --ra" in text  # the closing hint names the shipped model
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    b = metrics["intervals"]["rmse"]  # the headline RMSE is printed with its 95% interval
    assert f"CNN {metrics['rmse']:.3f} [{b['lo95']:.3f}, {b['hi95']:.3f}]" in text
    # error bars calibrated on the validation galaxies, carried by the test predictions
    assert "calibration: oh_p50: absolute split-conformal" in text and "the 68% / 95% intervals cover" in text
    for rel in (
        "mosaic.png",
        "report.html",
        "run/model.pt",
        "run/model_calibrated.pt",
        "run/predictions.parquet",
        "run/metrics.json",
        "run/figures/fig3_pred_vs_true.png",
        "data/catalog.parquet",
    ):
        assert (out / rel).is_file(), rel
    assert not (out / "run" / "checkpoint.pt").exists()  # the finished run dropped its optimizer state
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["rmse"]) and metrics["n"] > 0
    assert 0 <= metrics["uncertainty"]["68"]["coverage"] <= 1
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "http://" not in html.replace("http://www.w3.org", "")

    # rerunning into the same demo folder replaces it; a foreign non-empty folder is refused
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    assert main(["demo", "--out", str(foreign), "--n", "60", "--size", "32", "--epochs", "1"]) == 2
    assert (foreign / "thesis.tex").read_text() == "keep me"
    assert "not a previous galmet demo" in capsys.readouterr().err
