"""Calibration provenance: ``galmet calibrate`` leaves out the model's own training galaxies
whatever the table says, refuses test rows without --allow-test-rows, and records the galaxies
that calibrated the bundle; ``galmet predict`` marks them (column ``seen``) and ``galmet
evaluate`` leaves them out unless --include-seen."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_TRAIN, make_tiny_dataset, run_cli
from galmet.cli.main import main
from galmet.data.galaxy_ids import GalaxyIdSet
from galmet.errors import ConfigError
from galmet.nn.bundle import load_model, update_bundle


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """An ordinary run on 64 tiny galaxies and its predictions of every row (with the split)."""
    root = tmp_path_factory.mktemp("prov")
    ds = make_tiny_dataset(root / "ds", n=64, size=16)
    assert main(["train", str(ds), "--out", str(root / "run"), "--epochs", "1", *TINY_TRAIN]) == 0
    pred = root / "pred.parquet"
    assert main(["predict", str(root / "run"), str(ds), "--out", str(pred), "--device", "cpu", "--no-tta"]) == 0
    return root, ds, pred


def _table(env, where, split=None, drop_split=False):
    root, _, pred = env
    df = pd.read_parquet(pred)
    if split is not None:
        df = df[df["split"].isin(split)]
    if drop_split:
        df = df.drop(columns=["split"])
    path = root / where
    df.to_parquet(path)
    return path, df


def test_predictions_mark_the_training_rows_seen(env):
    _, _, pred = env
    df = pd.read_parquet(pred)
    assert set(df["split"]) == {"train", "valid", "test"}
    assert (df["seen"] == np.where(df["split"] == "train", "train", "")).all()


def test_own_training_rows_without_split_column_are_refused(env, capsys, tmp_path):
    path, _ = _table(env, "train_only.parquet", split=["train"], drop_split=True)
    code, _, err = run_cli(capsys, "calibrate", env[0] / "run", path, "--out", tmp_path / "c.pt")
    assert code == 2 and "rows are galaxies" in err and "trained on" in err and err.count("\n") == 1, err
    assert not (tmp_path / "c.pt").exists()


def test_training_rows_are_left_out_whatever_the_split_says(env, capsys, tmp_path, caplog):
    # the split column dropped: every row but the training galaxies calibrates
    path, df = _table(env, "no_split.parquet", split=["train", "valid"], drop_split=True)
    n_train, n_valid = (
        int((pd.read_parquet(env[2])["split"] == "train").sum()),
        len(df) - int((pd.read_parquet(env[2])["split"] == "train").sum()),
    )
    with caplog.at_level(logging.INFO):
        code, _, err = run_cli(capsys, "calibrate", env[0] / "run", path, "--out", tmp_path / "a.pt")
    assert code == 0, err
    assert f"left out {n_train} of {len(df)} rows: galaxies the model trained on" in caplog.text
    cal = load_model(tmp_path / "a.pt").calibrations["oh_p50"]
    assert cal.n == n_valid and cal.source["trained_sets"] == 1
    # --split all: the same
    path, _ = _table(env, "train_valid.parquet", split=["train", "valid"])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code, _, err = run_cli(capsys, "calibrate", env[0] / "run", path, "--out", tmp_path / "b.pt", "--split", "all")
    assert code == 0, err
    assert f"left out {n_train} of {len(df)} rows" in caplog.text
    assert load_model(tmp_path / "b.pt").calibrations["oh_p50"].n == n_valid


def test_test_rows_need_the_override_and_the_bundle_records_its_calibration_galaxies(env, capsys, tmp_path):
    root, ds, pred = env
    full = pd.read_parquet(pred)
    for split in ("all", "test"):
        code, _, err = run_cli(capsys, "calibrate", root / "run", pred, "--out", tmp_path / "c.pt", "--split", split)
        assert code == 2 and "rows of --split test" in err and "--allow-test-rows" in err, err
        assert err.count("\n") == 1 and not (tmp_path / "c.pt").exists()
    args = ("calibrate", root / "run", pred, "--out", tmp_path / "c.pt", "--split", "all", "--allow-test-rows")
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    model = load_model(tmp_path / "c.pt")
    on = GalaxyIdSet.from_dict(model.calibrations["oh_p50"].source["calibrated_on"])
    held = full["split"] != "train"
    assert len(on) == int(held.sum())
    inside = on.contains(full["objID"].astype(str))
    assert inside[held.to_numpy()].all() and not inside[~held.to_numpy()].any()
    # it survives a copy of the bundle, and a corrupt record is refused on load
    again = load_model(update_bundle(tmp_path / "c.pt", tmp_path / "copy.pt", {}))
    assert again.calibrations["oh_p50"].source["calibrated_on"] == model.calibrations["oh_p50"].source["calibrated_on"]
    bundle = torch.load(tmp_path / "c.pt", weights_only=True)
    bundle["meta"]["calibration"]["oh_p50"]["source"]["calibrated_on"]["hashes_b64"] = "!!"
    torch.save(bundle, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="calibrated_on: malformed"):
        load_model(tmp_path / "bad.pt")


def test_predict_marks_calibration_rows_and_evaluate_leaves_seen_rows_out(env, capsys, tmp_path, caplog):
    root, ds, _ = env
    assert run_cli(capsys, "calibrate", root / "run", env[2], "--out", tmp_path / "c.pt")[0] == 0  # valid rows
    out = tmp_path / "p.parquet"
    assert run_cli(capsys, "predict", tmp_path / "c.pt", ds, "--out", out, "--device", "cpu", "--no-tta")[0] == 0
    df = pd.read_parquet(out)
    want = df["split"].map({"train": "train", "valid": "calibration", "test": ""})
    assert (df["seen"] == want).all()
    with caplog.at_level(logging.WARNING):
        code, stdout, err = run_cli(capsys, "evaluate", out, "--split", "all")
    assert code == 0, err
    n_seen = int((df["seen"] != "").sum())
    assert f"left out {n_seen} rows the model saw" in caplog.text and "--include-seen" in caplog.text
    assert f"{len(df) - n_seen}" in stdout
    from galmet.runs.evaluate import evaluate_predictions

    assert evaluate_predictions(out, split="all")["n"] == len(df) - n_seen
    assert evaluate_predictions(out, split="all", include_seen=True)["n"] == len(df)
    assert evaluate_predictions(out, split="test")["left_out_seen"] == 0
    code, _, err = run_cli(capsys, "evaluate", out, "--split", "valid")
    assert code == 2 and "nothing held-out to score" in err and "--include-seen" in err and err.count("\n") == 1
    assert run_cli(capsys, "evaluate", out, "--split", "valid", "--include-seen")[0] == 0


def test_a_bundle_without_training_records_falls_back_to_the_split_rule(env, capsys, tmp_path, caplog):
    root, _, pred = env
    old = update_bundle(root / "run", tmp_path / "old.pt", {"trained_on": None})
    path, _ = _table(env, "tv.parquet", split=["train", "valid"], drop_split=True)
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(capsys, "calibrate", old, path, "--out", tmp_path / "c.pt")
    assert code == 0, err
    assert "training rows cannot be checked" in caplog.text
    assert load_model(tmp_path / "c.pt").calibrations["oh_p50"].source["trained_sets"] == 0
