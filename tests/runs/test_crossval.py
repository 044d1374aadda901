"""K-fold cross-validated training (galmet train --folds) and ensemble bundles, on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.data.dataset import load_dataset
from galmet.errors import ConfigError, DataError
from galmet.nn.bundle import load_model, save_ensemble
from galmet.runs.crossval import assign_folds, cross_validate
from galmet.training.config import TrainConfig
from galmet.training.loop import train

TINY = dict(arch="resnet18", weights="none", batch_size=8, progress=False, recipe="onecycle", epochs=1, device="cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """40 galaxies, 16 px: 7 test, 33 train/valid."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", n=40, size=16)


@pytest.fixture(scope="module")
def cv_run(tiny, tmp_path_factory):
    run = tmp_path_factory.mktemp("cv") / "run"
    return cross_validate(tiny, run, TrainConfig(**TINY), folds=3, fold_seed=1)


def test_assign_folds_is_balanced_seeded_and_checks_its_input():
    f = assign_folds(23, 5, seed=3)
    assert sorted(np.bincount(f)) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(f, assign_folds(23, 5, seed=3))
    assert not np.array_equal(f, assign_folds(23, 5, seed=4))
    with pytest.raises(ConfigError, match="at least 2"):
        assign_folds(23, 1, seed=0)
    with pytest.raises(DataError, match="too few for 5 folds"):
        assign_folds(9, 5, seed=0)


def test_every_training_galaxy_is_predicted_once_by_the_model_that_never_saw_it(tiny, cv_run):
    ds = load_dataset(tiny, valid_fraction=0.0)
    pool = set(ds.catalog.loc[ds.split_indices("train"), "objID"])
    test = set(ds.catalog.loc[ds.split_indices("test"), "objID"])
    oof = cv_run.oof
    assert set(oof["objID"]) == pool and len(oof) == len(pool) and not test & set(oof["objID"])
    folds = pd.read_csv(cv_run.run_dir / "folds.csv")
    assert len(folds) == len(pool) and sorted(folds["fold"].unique()) == [0, 1, 2]
    for k in range(3):
        # fold k's run validated on exactly its held-out galaxies
        cfg = (cv_run.run_dir / f"fold{k}" / "config.yaml").read_text()
        held = oof[oof["fold"] == k]
        assert f"n_valid: {len(held)}" in cfg and f"n_train: {len(pool) - len(held)}" in cfg
        member = load_model(cv_run.run_dir / f"fold{k}")
        images = ds.subset(np.flatnonzero(ds.catalog["objID"].isin(held["objID"]).to_numpy())).images()
        np.testing.assert_allclose(held["oh_p50_pred"].to_numpy(), member.predict(np.asarray(images)), atol=1e-6)
    scores = json.loads((cv_run.run_dir / "cv.json").read_text())
    m = scores["targets"]["oh_p50"]
    rmse = float(np.sqrt(np.mean((oof["oh_p50"] - oof["oh_p50_pred"]) ** 2)))
    assert m["rmse"] == pytest.approx(rmse) and len(m["rmse_per_fold"]) == 3 and scores["n"] == len(pool)
    # the out-of-fold RMSE, NMAD and bias carry their bootstrap intervals, around the values
    for key in ("rmse", "nmad", "bias"):
        b = m["intervals"][key]
        assert b["value"] == pytest.approx(m[key]) and b["lo95"] <= b["lo68"] <= b["hi68"] <= b["hi95"]
        assert b["lo95"] < b["hi95"] and b["se"] > 0


def test_ensemble_bundle_averages_its_members(tiny, cv_run):
    ens = load_model(cv_run.bundle_path)
    assert len(ens.nets) == 3 and ens.meta["cross_validation"]["folds"] == 3
    members = [load_model(cv_run.run_dir / f"fold{k}") for k in range(3)]
    x = np.asarray(load_dataset(tiny).images()[:6])
    for tta in (False, True):
        pred, std = ens.predict(x, tta=tta, return_std=True)
        np.testing.assert_allclose(pred, np.mean([m.predict(x, tta=tta) for m in members], axis=0), atol=1e-6)
        assert np.all(std > 0)  # spread over members (and views)
    assert torch.load(cv_run.bundle_path, weights_only=True)["bundle_version"] == 2


def test_resume_keeps_finished_folds_and_gives_the_same_result(tiny, tmp_path):
    run = tmp_path / "run"
    first = cross_validate(tiny, run, TrainConfig(**TINY), folds=2)
    fold0 = (run / "fold0" / "model.pt").read_bytes()
    # an interruption during fold 1: its bundle and the summary files were never written
    for name in ("fold1/model.pt", "oof.parquet", "cv.json", "model.pt"):
        (run / name).unlink()
    again = cross_validate(tiny, run, TrainConfig(**TINY), folds=2, resume=True)
    assert (run / "fold0" / "model.pt").read_bytes() == fold0
    pd.testing.assert_frame_equal(first.oof, again.oof)
    with pytest.raises(ConfigError, match="differ from the run being resumed"):
        cross_validate(tiny, run, TrainConfig(**TINY), folds=3, resume=True)
    with pytest.raises(ConfigError, match="is not empty"):
        cross_validate(tiny, run, TrainConfig(**TINY), folds=2)


def test_save_ensemble_refuses_incompatible_members(tiny, tmp_path):
    a = train(tiny, tmp_path / "a", TrainConfig(**TINY)).bundle_path
    b = train(tiny, tmp_path / "b", TrainConfig(**TINY, crop=8)).bundle_path
    with pytest.raises(ConfigError, match="crop"):
        save_ensemble(tmp_path / "e.pt", [a, b])
    with pytest.raises(ConfigError, match="at least 2"):
        save_ensemble(tmp_path / "e.pt", [a])
    assert not (tmp_path / "e.pt").exists()


def test_cli_folds_errors_are_one_line(tiny, tmp_path, capsys):
    base = [
        str(tiny),
        "--arch",
        "resnet18",
        "--weights",
        "none",
        "--recipe",
        "onecycle",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    code = main(["train", *base, "--out", str(tmp_path / "r1"), "--folds", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--folds must be at least 2" in err
    assert not (tmp_path / "r1" / "model.pt").exists()
    code = main(["train", *base, "--out", str(tmp_path / "r2"), "--folds", "40"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "too few for 40 folds" in err


def test_ensemble_command_flattens_ensembles(tiny, cv_run, tmp_path, capsys):
    single = train(tiny, tmp_path / "one", TrainConfig(**TINY, seed=5)).bundle_path
    out = tmp_path / "ens.pt"
    assert main(["ensemble", str(cv_run.run_dir), str(single), "--out", str(out)]) == 0
    assert "an ensemble of 4 resnet18 networks from 2 bundles" in capsys.readouterr().out
    ens = load_model(out)
    assert len(ens.nets) == 4 and len(ens.meta["members"]) == 4
    x = np.asarray(load_dataset(tiny).images()[:4])
    parts = [load_model(cv_run.bundle_path), load_model(single)]
    expected = (3 * parts[0].predict(x, tta=False) + parts[1].predict(x, tta=False)) / 4
    np.testing.assert_allclose(ens.predict(x, tta=False), expected, atol=1e-6)
    assert main(["ensemble", str(single), "--out", str(tmp_path / "e1.pt")]) == 2
    assert "at least 2 member networks" in capsys.readouterr().err


def test_cli_reproduces_the_library_run_exactly(tiny, tmp_path, capsys):
    """The documented CV command (`galmet train ... --folds K`) is the library call, bit for bit: the
    restructure's check that the CLI still reproduces a cross-validation run (a short equivalent of
    the real-sample run in BENCHMARKS.md). Both run here, on the same number of threads: CPU results
    depend on it."""
    api = cross_validate(tiny, tmp_path / "api", TrainConfig(**TINY), folds=2, fold_seed=1)
    run = tmp_path / "cli"
    argv = [
        "train",
        str(tiny),
        "--out",
        str(run),
        "--recipe",
        "onecycle",
        "--weights",
        "none",
        "--arch",
        "resnet18",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--folds",
        "2",
        "--split-seed",
        "1",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    b = api.scores["targets"]["oh_p50"]["intervals"]["rmse"]
    assert f"[{b['lo95']:.4f}, {b['hi95']:.4f}]" in capsys.readouterr().out  # printed with its interval
    pd.testing.assert_frame_equal(pd.read_parquet(run / "oof.parquet"), api.oof, check_exact=True)
    for k in range(2):
        ours, theirs = (
            torch.load(r / f"fold{k}" / "model.pt", weights_only=True)["state_dict"] for r in (run, api.run_dir)
        )
        assert all(torch.equal(ours[n], theirs[n]) for n in ours), f"fold {k} weights differ"


def test_ensemble_is_calibrated_with_cv_plus(tiny, cv_run):
    ens = load_model(cv_run.bundle_path)
    cal = ens.calibrations["oh_p50"]
    assert cal.cv_plus and cal.members == 3 and "CV+ over 3 fold members" in cal.describe()
    x = np.asarray(load_dataset(tiny).images()[:6])
    res = ens.predict_uncertainty(x, tta=False, device="cpu")
    lo, hi = res.interval(68)
    assert np.all(np.isfinite(lo)) and np.all(hi > lo)
    pred, _, _, members = ens.predict_members(x, tta=False, device="cpu")
    np.testing.assert_allclose(members.mean(0)[:, 0], pred, atol=1e-9)
