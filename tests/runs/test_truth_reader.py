"""Class C of issue 21: one truth reader applies the label rules in every command that reads a
truth. A sentinel (-9999), a missing value (NaN), an infinity, a fill value (1e30) or text in the
truth column: commands that score or calibrate leave the row out and count it; commands that fit
refuse it in one line naming the row and column; text is refused everywhere. None of them uses
the value as a number."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset, run_cli

#: The bad truths, as a CSV cell holds them.
BAD = {"sentinel": "-9999", "nan": "", "inf": "inf", "fill": "1e30", "text": "abc"}
ROW = 5
N = 60


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A 60-galaxy dataset (16 px), predictions of its metallicity and mass, an untrained bundle."""
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    root = tmp_path_factory.mktemp("truths")
    ds = make_tiny_dataset(root / "ds", n=N, size=16, split=True)
    cat = pd.read_parquet(ds / "catalog.parquet")
    rng = np.random.default_rng(0)
    z = pd.DataFrame({"objID": cat.objID, "split": "valid", "oh_p50": cat.oh_p50})
    z["oh_p50_pred"] = cat.oh_p50 + rng.normal(0, 0.05, N)
    m = pd.DataFrame({"objID": cat.objID, "lgm_tot_p50": cat.lgm_tot_p50})
    m["lgm_tot_p50_pred"] = cat.lgm_tot_p50 + rng.normal(0, 0.1, N)
    m.to_parquet(root / "mass.parquet")
    bundle = save_bundle(root / "m.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    return root, ds, z, bundle


def _bad_table(env, kind: str):
    """The predictions CSV with row ROW's truth replaced by BAD[kind]."""
    root, _, z, _ = env
    df = z.astype({"oh_p50": object})
    df.loc[ROW, "oh_p50"] = BAD[kind]
    path = root / f"z_{kind}.csv"
    df.to_csv(path, index=False)
    return path


def _clean_rmse(env) -> float:
    z = env[2].drop(index=ROW)
    return float(np.sqrt(np.mean((z.oh_p50_pred - z.oh_p50) ** 2)))


def _evaluate(env, pred, tmp_path, capsys):
    code, _, err = run_cli(capsys, "evaluate", pred, "--split", "all", "--json", tmp_path / "m.json")
    if code == 0:
        got = json.loads((tmp_path / "m.json").read_text())
        assert got["rmse"] == pytest.approx(_clean_rmse(env))
        return code, err, got["n"]
    return code, err, None


def _systematics(env, pred, tmp_path, capsys):
    out = tmp_path / "sys"
    argv = ["systematics", pred, "--dataset", env[1], "--out", out, "--split", "all", "--bootstrap", "20"]
    code, _, err = run_cli(capsys, *argv)
    if code == 0:
        got = json.loads((out / "systematics.json").read_text())
        biases = pd.read_csv(out / "systematics.csv")["bias"].abs()
        assert biases.max() < 1  # not +10008 dex
        return code, err, got["n"]
    return code, err, None


def _mzr(env, pred, tmp_path, capsys):
    out = tmp_path / "mzr"
    argv = ["mzr", "--metallicity", pred, "--mass", env[0] / "mass.parquet", "--out", out, "--split", "all"]
    code, _, err = run_cli(capsys, *argv, "--no-rf")
    if code == 0:
        return code, err, json.loads((out / "mzr_metrics.json").read_text())["n"]
    return code, err, None


def _figures(env, pred, tmp_path, capsys):
    from galmet.runs.figures import _shown_predictions

    code, _, err = run_cli(capsys, "figures", pred, "--out", tmp_path / "fig", "--split", "all", "--format", "png")
    if code == 0:
        df, _ = _shown_predictions(pred, None, None, "all")
        assert df["oh_p50"].between(7, 10).all()
        return code, err, len(df)
    return code, err, None


def _calibrate(env, pred, tmp_path, capsys):
    from galmet.nn.bundle import load_model

    out = tmp_path / "cal.pt"
    code, _, err = run_cli(capsys, "calibrate", env[3], pred, "--out", out, "--split", "all")
    if code == 0:
        cal = load_model(out).calibrations["oh_p50"]
        assert np.abs(cal.scores).max() < 1  # no -9999 residual in the intervals
        return code, err, cal.n
    return code, err, None


def _report(env, pred, tmp_path, capsys):
    from galmet.report.facts import cnn_rows

    df, _, _ = cnn_rows({"predictions": pred})
    if df is None:
        return 2, "", None
    assert df["oh_p50"].between(7, 10).all()
    return 0, "", len(df)


SCORING = {
    "evaluate": _evaluate,
    "systematics": _systematics,
    "mzr": _mzr,
    "figures": _figures,
    "calibrate": _calibrate,
    "report": _report,
}


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("command", list(SCORING))
def test_scoring_commands_leave_out_a_bad_truth_and_refuse_text(env, command, kind, tmp_path, capsys):
    pred = _bad_table(env, kind)
    code, err, n = SCORING[command](env, pred, tmp_path, capsys)
    if kind == "text":
        assert code == 2 and n is None
        if command != "report":
            assert err.count("\n") == 1 and f"row {ROW}" in err and "oh_p50" in err and "'abc'" in err, err
    else:
        assert code == 0, err
        assert n == N - 1


#: Commands that fit to truths: argv after the dataset.
TINY = ["--arch", "resnet18", "--weights", "none", "--batch-size", "8", "--no-progress", "--device", "cpu"]
ONECYCLE = ["--recipe", "onecycle", "--epochs", "1"]
FITTING = {
    "train": lambda ds, out: ["train", ds, "--out", out, *ONECYCLE, *TINY],
    "train --folds": lambda ds, out: ["train", ds, "--out", out, "--folds", "2", *ONECYCLE, *TINY],
    "lr-find": lambda ds, out: ["lr-find", ds, "--out", out, "--steps", "4", *TINY],
    "resolution-study": lambda ds, out: (
        ["resolution-study", ds, "--out", out, "--sizes", "8", "--min-input", "8"] + [*ONECYCLE, *TINY]
    ),
    "baseline": lambda ds, out: ["baseline", ds, "--out", out, "--n-estimators", "5", "--jobs", "1"],
}


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("command", list(FITTING))
def test_fitting_commands_refuse_a_bad_truth_naming_the_row(command, kind, tmp_path, capsys):
    from galmet.data.dataset import write_catalog

    ds = tmp_path / "ds"
    make_tiny_dataset(ds, n=N, size=16, split=True)
    cat = pd.read_parquet(ds / "catalog.parquet")
    if kind == "text":
        cat["oh_p50"] = cat["oh_p50"].astype(str)
    cat.loc[ROW, "oh_p50"] = BAD[kind] if kind == "text" else float(BAD[kind] or "nan")
    write_catalog(ds, cat)
    code, _, err = run_cli(capsys, *FITTING[command](ds, tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1, err
    assert f"objID {cat.objID[ROW]}" in err and "label oh_p50" in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_every_command_that_reads_truths_is_covered():
    """A new command that reads a truth column joins one of the two lists above."""
    from galmet.cli.main import _command_modules

    reading = {"evaluate", "systematics", "mzr", "figures", "calibrate", "report", "train", "lr-find", "explain"}
    reading |= {"resolution-study", "baseline"}
    names = {m.NAME for m in _command_modules()}
    assert reading <= names
    covered = set(SCORING) | {c.split()[0] for c in FITTING} | {"explain"}
    assert reading <= covered


@pytest.mark.parametrize("kind", list(BAD))
def test_explain_controls_refuse_a_bad_truth_naming_the_galaxy(env, kind, tmp_path, capsys):
    pytest.importorskip("captum")
    from galmet.data.dataset import write_catalog

    ds = tmp_path / "ds"
    make_tiny_dataset(ds, n=N, size=16, split=True)
    cat = pd.read_parquet(ds / "catalog.parquet")
    if kind == "text":
        cat["oh_p50"] = cat["oh_p50"].astype(str)
    cat.loc[ROW, "oh_p50"] = BAD[kind] if kind == "text" else float(BAD[kind] or "nan")
    write_catalog(ds, cat)
    argv = ["explain", env[3], ds, "--out", tmp_path / "x", "--controls", "--split", "all", "--device", "cpu"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    assert (f"row {ROW}" if kind == "text" else f"objID {cat.objID[ROW]}") in err and "oh_p50" in err, err
    assert not (tmp_path / "x").exists()


def _bad_prediction_table(env, kind: str):
    """The predictions CSV with row ROW's prediction (oh_p50_pred) replaced by BAD[kind]."""
    root, _, z, _ = env
    df = z.astype({"oh_p50_pred": object})
    df.loc[ROW, "oh_p50_pred"] = BAD[kind]
    path = root / f"zp_{kind}.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("command", list(SCORING))
def test_scoring_commands_leave_out_a_bad_prediction_and_refuse_text(env, command, kind, tmp_path, capsys):
    """Item 6: the label rules apply to a predicted value too: counted and left out, never used."""
    pred = _bad_prediction_table(env, kind)
    code, err, n = SCORING[command](env, pred, tmp_path, capsys)
    if kind == "text":
        assert code == 2 and n is None
        if command != "report":
            assert err.count("\n") == 1 and f"row {ROW}" in err and "oh_p50_pred" in err and "'abc'" in err, err
    else:
        assert code == 0, err
        assert n == N - 1  # and the checks of SCORING[command]: the value was never used


def test_a_finite_prediction_outside_the_range_is_scored_not_hidden(env, tmp_path):
    """A wild but real prediction (6.0 dex for oh_p50) counts in the scores: leaving it out would
    hide a model's worst errors; only non-predictions (sentinels, fill values, NaN, inf) leave."""
    from galmet.data.labels import usable_rows

    z = env[2].copy()
    z.loc[ROW, "oh_p50_pred"] = 6.0
    kept, excluded = usable_rows(z, ["oh_p50"])
    assert len(kept) == len(z.dropna(subset=["oh_p50"])) and "oh_p50_pred" not in excluded
    z.loc[ROW, "oh_p50_pred"] = -9999.0
    kept, excluded = usable_rows(z, ["oh_p50"])
    assert excluded["oh_p50_pred"]["invalid"] == 1


def _write(env, df, name: str):
    path = env[0] / name
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command", list(SCORING))
def test_scoring_commands_refuse_a_galaxy_twice(env, command, tmp_path, capsys):
    """Item 7: a table concatenated with itself is refused, naming the first repeated objID."""
    z = env[2]
    pred = _write(env, pd.concat([z, z.iloc[[ROW]]], ignore_index=True), "z_dup.csv")
    code, err, n = SCORING[command](env, pred, tmp_path, capsys)
    assert code == 2 and n is None
    if command != "report":
        assert err.count("\n") == 1 and f"objID {z.objID[ROW]} appears more than once" in err, err


def test_duplicate_file_keys_are_refused_without_objid(env):
    from galmet.errors import DataError
    from galmet.science.predictions import check_unique_keys

    df = pd.DataFrame({"file": ["a.jpg", "b.jpg", "a.jpg"], "oh_p50_pred": [8.5, 8.6, 8.7]})
    with pytest.raises(DataError, match="file a.jpg appears more than once .rows 0 and 2"):
        check_unique_keys(df)
    check_unique_keys(df.iloc[:2])


SPLIT_ARGV = {
    "evaluate": lambda env, p, t: ["evaluate", p, "--json", t / "m.json"],
    "systematics": lambda env, p, t: ["systematics", p, "--dataset", env[1], "--out", t / "s", "--bootstrap", "10"],
    "mzr": lambda env, p, t: [
        "mzr",
        "--metallicity",
        p,
        "--mass",
        env[0] / "mass.parquet",
        "--out",
        t / "z",
        "--no-rf",
    ],
    "figures": lambda env, p, t: ["figures", p, "--out", t / "f", "--format", "png"],
    "calibrate": lambda env, p, t: ["calibrate", env[3], p, "--out", t / "cal.pt"],
}


@pytest.mark.parametrize("nulls", ["all", "one"])
@pytest.mark.parametrize("command", list(SPLIT_ARGV))
def test_a_null_split_is_one_line_naming_the_row(env, command, nulls, tmp_path, capsys):
    """Item 9: an empty split cell (all of them, or one) is one line naming the row, not a traceback."""
    z = env[2].astype({"split": object})
    z.loc[ROW if nulls == "one" else slice(None), "split"] = None
    pred = _write(env, z, f"z_split_{nulls}.csv")
    code, _, err = run_cli(capsys, *SPLIT_ARGV[command](env, pred, tmp_path), "--split", "valid")
    first = ROW if nulls == "one" else 0
    if command == "systematics" and nulls == "all":  # an all-empty split is joined from the dataset
        assert "Traceback" not in err and err.count("\n") <= 1, err
        return
    assert code == 2 and err.count("\n") == 1 and f"row {first} has an empty split cell" in err, err


@pytest.mark.parametrize("command", ["evaluate", "calibrate"])
def test_an_all_missing_truth_column_is_named_as_such(env, command, tmp_path, capsys):
    """Item 21: a truth column that is there but empty is not 'no truth column'."""
    z = env[2].assign(oh_p50=np.nan)
    pred = _write(env, z, "z_nan_truth.csv")
    code, err, _ = SCORING[command](env, pred, tmp_path, capsys)
    assert code == 2 and "truth column 'oh_p50' is missing (empty or NaN) in all 60 rows" in err, err
