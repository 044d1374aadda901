"""The HTML report: self-contained, paper numbers beside ours, every section found."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from galmet.cli.main import main


def _run_dir(tmp_path, n=300):
    rng = np.random.default_rng(0)
    t = rng.normal(8.9, 0.15, n)
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame(
        {"objID": np.arange(n), "split": "test", "oh_p50_pred": t + rng.normal(0, 0.08, n), "oh_p50": t}
    ).to_parquet(run / "predictions.parquet")
    (run / "config.yaml").write_text("recipe: paper\narch: resnet34\nrun:\n  dataset: /data/synth\n  n_train: 10\n")
    pd.DataFrame({"epoch": [1, 2], "train_rmse_oh_p50": [0.2, 0.1], "valid_rmse_oh_p50": [0.15, 0.12]}).to_csv(
        run / "history.csv", index=False
    )
    return run


def test_report_from_predictions_only(tmp_path):
    from galmet.science.runs.report import write_report

    run = _run_dir(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    text = out.read_text()
    assert "<h2>Metrics</h2>" in text and "0.085" in text and "0.067" in text  # paper beside ours
    assert "recipe: paper" in text and "/data/synth" in text  # config and provenance
    assert "sha256" in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "report must not reference external URLs"
    assert text.count("data:image/png;base64,") == 1  # the training history plot


def test_report_cli_embeds_figures_and_sections(tmp_path):
    run = _run_dir(tmp_path)
    assert main(["evaluate", str(run / "predictions.parquet"), "--json", str(run / "metrics.json")]) == 0
    assert main(["figures", str(run / "predictions.parquet"), "--out", str(run / "figures"), "--format", "png"]) == 0
    (run / "baseline").mkdir()
    (run / "baseline" / "baseline_metrics.json").write_text(
        json.dumps(
            {
                "target": "oh_p50",
                "bands": "gri",
                "rf": {"n": 10, "rmse": 0.13, "nmad": 0.1, "bias": 0.0, "paper": {"rmse": 0.13}},
                "constant": {"n": 10, "rmse": 0.2, "nmad": 0.18, "bias": 0.01},
            }
        )
    )
    (run / "res").mkdir()
    pd.DataFrame(
        {
            "size": [32, 8],
            "input_size": [32, 32],
            "rmse": [0.1, 0.12],
            "nmad": [0.08, 0.1],
            "n": [10, 10],
            "train_seconds": [5.0, 4.0],
        }
    ).to_csv(run / "res" / "resolution.csv", index=False)
    (run / "res" / "resolution.json").write_text(json.dumps({"rf_rmse": 0.13, "constant_rmse": 0.2, "bands": "gri"}))
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(run), "--out", str(out), "--title", "My run"]) == 0
    text = out.read_text()
    for section in ("Metrics", "Baselines", "Resolution study", "Figures", "Configuration", "Provenance"):
        assert f"<h2>{section}</h2>" in text
    assert "<title>My run</title>" in text
    assert text.count("data:image/png;base64,") == 3  # fig2, fig3, history
    assert "Figure 3." in text and "random forest (gri)" in text


def test_report_empty_dir_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing to report" in err and len(err.splitlines()) == 1


def test_report_missing_dir_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_report_shows_cross_validation_scores(tmp_path):
    from galmet.science.runs.report import write_report

    run = _run_dir(tmp_path)
    cv = {
        "folds": 5,
        "fold_seed": 0,
        "n": 400,
        "tta": True,
        "targets": {
            "oh_p50": {
                "rmse": 0.10084,
                "nmad": 0.0906,
                "bias": -0.0073,
                "rmse_fold_sem": 0.0032,
                "rmse_per_fold": [0.1076, 0.0923, 0.1022, 0.107, 0.0942],
            }
        },
    }
    (run / "cv.json").write_text(json.dumps(cv))
    text = write_report(run).read_text()
    section = text[text.index("<h2>Cross-validation</h2>") :]
    assert "5-fold cross-validation" in section and "(TTA x8)" in section
    assert "0.1008" in section and "0.0032" in section and "-0.0073" in section and "0.1076, 0.0923" in section
