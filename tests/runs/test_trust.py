"""Trustworthy predictions end to end: calibrated bundles from --folds and galmet calibrate, the
gaussian head, out-of-domain and image flags, embeddings, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_TRAIN, make_tiny_dataset, run_cli
from galmet.cli.main import main
from galmet.columns import Flag, TruthFlag
from galmet.data.dataset import load_dataset, write_catalog
from galmet.data.quality import image_flags
from galmet.io.images import encode_jpeg
from galmet.nn.bundle import load_model, update_bundle
from galmet.nn.embedding import EmbeddingReference, ood_ratio

UNC = ["oh_p50_err", "oh_p50_lo68", "oh_p50_hi68", "oh_p50_lo95", "oh_p50_hi95"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """56 galaxies of 16 px (about 10 test, 46 train/valid) and a 3-fold run on them."""
    root = tmp_path_factory.mktemp("trust")
    ds = make_tiny_dataset(root / "ds", n=56, size=16)
    assert main(["train", str(ds), "--out", str(root / "cv"), "--folds", "3", "--epochs", "2", *TINY_TRAIN]) == 0
    return root, ds


def test_folds_run_is_calibrated_and_predictions_carry_error_bars(data, capsys):
    root, ds = data
    model = load_model(root / "cv")
    cal = model.calibrations["oh_p50"]
    oof = pd.read_parquet(root / "cv" / "oof.parquet")
    assert cal.method == "absolute" and cal.n == len(oof) >= 40
    np.testing.assert_allclose(cal.scores, np.sort(oof["oh_p50"] - oof["oh_p50_pred"]))
    refs = model.embedding_references()
    assert refs is not None and len(refs) == 3 and all(r.points.shape[1] == 512 for r in refs)
    lo, hi = model.label_range["oh_p50"]
    assert lo >= 8.4 and hi <= 9.2 and hi > lo
    code, out, err = run_cli(capsys, "predict", root / "cv", ds, "--out", root / "pred.parquet", "--device", "cpu")
    assert code == 0, err
    assert "no calibrated error bars" not in out and "flags:" in out
    df = pd.read_parquet(root / "pred.parquet")
    assert set(UNC) <= set(df.columns) and {"oh_p50_spread", "ood_score", "flags"} <= set(df.columns)
    assert (df["oh_p50_lo95"] <= df["oh_p50_lo68"]).all() and (df["oh_p50_lo68"] < df["oh_p50_hi68"]).all()
    assert (df["oh_p50_hi68"] <= df["oh_p50_hi95"]).all()
    np.testing.assert_allclose(df["oh_p50_err"], (df["oh_p50_hi68"] - df["oh_p50_lo68"]) / 2)
    fits = root / "pred.fits"
    assert run_cli(capsys, "predict", root / "cv", ds, "--out", fits, "--device", "cpu", "--split", "test")[0] == 0
    from galmet.io.tables import read_table

    back = read_table(fits)
    assert set(UNC) <= set(back.columns) and np.isfinite(back["oh_p50_err"]).all()
    # the same numbers through the Python API
    images = np.asarray(load_dataset(ds).images())
    res = model.predict_uncertainty(images, device="cpu")
    np.testing.assert_allclose(res.err[:, 0], df["oh_p50_err"])
    np.testing.assert_allclose(res.interval(95)[1][:, 0], df["oh_p50_hi95"])
    code, out, err = run_cli(capsys, "evaluate", root / "pred.parquet", "--split", "all")
    assert code == 0, err
    assert "calibrated uncertainties of oh_p50" in out and "per tercile" in out and "PIT histogram" in out


def test_calibrate_command_writes_a_calibrated_bundle(data, capsys, tmp_path):
    root, ds = data
    fold0 = root / "cv" / "fold0"
    assert not load_model(fold0).calibrations
    # fold 0's held-out galaxies, predicted by fold 0 alone
    oof = pd.read_parquet(root / "cv" / "oof.parquet")
    pred = tmp_path / "valid.csv"
    oof[oof["fold"] == 0].to_csv(pred, index=False)
    code, out, err = run_cli(capsys, "calibrate", fold0, pred, "--out", tmp_path / "cal.pt", "--method", "spread")
    assert code == 0, err
    assert "spread split-conformal" in out
    model = load_model(tmp_path / "cal.pt")
    assert model.calibrations["oh_p50"].method == "spread" and model.calibrations["oh_p50"].offset > 0
    a, b = torch.load(fold0 / "model.pt", weights_only=True), torch.load(tmp_path / "cal.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])  # weights untouched
    # an older table's _pred_std is read as the spread
    legacy = tmp_path / "legacy.csv"
    pd.read_csv(pred).rename(columns={"oh_p50_spread": "oh_p50_pred_std"}).to_csv(legacy, index=False)
    assert run_cli(capsys, "calibrate", fold0, legacy, "--out", tmp_path / "cal2.pt", "--method", "spread")[0] == 0
    # --reference recomputes the out-of-domain statistics
    code, _, err = run_cli(capsys, "calibrate", fold0, pred, "--out", tmp_path / "cal3.pt", "--reference", ds)
    assert code == 0, err
    cal3 = load_model(tmp_path / "cal3.pt")
    assert cal3.embedding_references()[0].n_train == len(oof)
    assert cal3.label_range["oh_p50"] == (oof["oh_p50"].min(), oof["oh_p50"].max())


def test_calibrate_bad_input_is_one_line_exit_2_and_writes_nothing(data, capsys, tmp_path):
    root, ds = data
    fold0 = root / "cv" / "fold0"
    pred = tmp_path / "valid.parquet"
    assert run_cli(capsys, "predict", fold0, ds, "--out", pred, "--device", "cpu")[0] == 0
    table = pd.read_parquet(pred)
    no_truth = tmp_path / "no_truth.parquet"
    table.drop(columns=["oh_p50"]).to_parquet(no_truth)
    other = tmp_path / "mass.parquet"
    table.rename(columns={"oh_p50_pred": "lgm_tot_p50_pred", "oh_p50_spread": "lgm_tot_p50_spread"}).to_parquet(other)
    out = tmp_path / "out.pt"
    cases = [
        ((fold0, no_truth), "no truth column 'oh_p50' to calibrate on"),
        ((fold0, other), "a calibration from another target does not apply"),
        ((fold0, pred, "--split", "train"), "--split train: the model saw those galaxies"),
        ((fold0, pred, "--method", "sigma"), "needs a model trained with --loss gaussian"),
        ((tmp_path / "nope.pt", pred), "no such model bundle"),
        ((fold0, tmp_path / "nope.csv"), "table file not found"),
        ((fold0, pred, "--offset", "-1"), "argument --offset: must be in [0, 10]"),
        ((root / "cv", root / "cv" / "oof.parquet", "--method", "spread"), "a spread calibration does not transfer"),
    ]
    for args, msg in cases:
        code, _, err = run_cli(capsys, "calibrate", *args, "--out", out)
        assert code == 2 and msg in err and err.count("\n") == 1, (args, err)
        assert not out.exists()
    code, _, err = run_cli(capsys, "calibrate", fold0, pred, "--out", fold0 / "model.pt")
    assert code == 2 and "is the input bundle" in err
    code, _, err = run_cli(capsys, "calibrate", fold0, pred, "--out", tmp_path / "x.txt")
    assert code == 2 and "ends in .pt" in err


def test_a_bundle_holding_another_targets_calibration_is_refused(data, capsys, tmp_path):
    root, ds = data
    bundle = torch.load(root / "cv" / "model.pt", weights_only=True)
    cal = dict(bundle["meta"]["calibration"]["oh_p50"], target="lgm_tot_p50")
    bundle["meta"]["calibration"] = {"lgm_tot_p50": cal}
    torch.save(bundle, tmp_path / "foreign.pt")
    code, _, err = run_cli(capsys, "predict", tmp_path / "foreign.pt", ds, "--out", tmp_path / "p.csv")
    assert code == 2 and "it comes from another model" in err and err.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()


def test_flags_blank_noise_and_far_labels(data, capsys, tmp_path):
    root, _ = data
    ds = make_tiny_dataset(tmp_path / "odd", n=12, size=16, seed=5)
    cat = pd.read_parquet(ds / "catalog.parquet")
    ids = cat["objID"].tolist()
    rng = np.random.default_rng(0)
    (ds / "images" / f"{ids[0]}.jpg").write_bytes(encode_jpeg(np.zeros((16, 16, 3), np.uint8), 95))
    (ds / "images" / f"{ids[1]}.jpg").write_bytes(encode_jpeg(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), 95))
    cat.loc[2, "oh_p50"] = 9.95  # far above the 8.4-9.2 the model was trained on (still a valid label)
    write_catalog(ds, cat)
    out = tmp_path / "p.parquet"
    code, stdout, err = run_cli(capsys, "predict", root / "cv", ds, "--out", out, "--device", "cpu")
    assert code == 0, err
    df = pd.read_parquet(out)
    flags = df.set_index("objID")["flags"]
    assert flags[ids[0]] & Flag.IMAGE_EMPTY and flags[ids[1]] & Flag.IMAGE_EMPTY
    assert flags[ids[1]] & Flag.EMBEDDING_OUT_OF_DOMAIN  # noise is far from every training galaxy
    truth = df.set_index("objID")["truth_flags"]
    assert truth[ids[2]] & TruthFlag.LABEL_OUT_OF_RANGE
    assert not (df["flags"].to_numpy() & int(TruthFlag.LABEL_OUT_OF_RANGE)).any()
    normal = flags.loc[ids[3:]].to_numpy()
    assert not (normal & int(Flag.IMAGE_EMPTY | Flag.IMAGE_SATURATED | Flag.IMAGE_OFF_CENTRE)).any()
    ood = df.set_index("objID")["ood_score"]
    assert ood[ids[1]] > 1 > ood.loc[ids[3:]].median()
    assert "IMAGE_EMPTY 2" in stdout and "not checked: PHOTOMETRIC_CUTS" in stdout
    # a prediction outside the (here artificially narrow) training label range
    narrow = update_bundle(root / "cv", tmp_path / "narrow.pt", {"label_range": {"oh_p50": [8.0, 8.01]}})
    assert run_cli(capsys, "predict", narrow, ds, "--out", out, "--device", "cpu")[0] == 0
    assert (pd.read_parquet(out)["flags"].to_numpy() & int(Flag.PRED_OUT_OF_RANGE)).all()


def test_image_checks_on_made_up_images():
    size = 64
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    galaxy = np.exp(-(xx**2 + yy**2) / (2 * 4.0**2))[..., None] * np.array([200, 170, 140]) + 8
    rng = np.random.default_rng(0)
    base = np.clip(galaxy + rng.normal(0, 2, (size, size, 3)), 0, 255).astype(np.uint8)
    saturated = base.copy()
    saturated[28:36, 28:36] = 255
    shifted = np.roll(base, 12, axis=1)
    blank = np.zeros_like(base)
    noise = rng.integers(0, 256, base.shape, dtype=np.uint8)
    got = image_flags(np.stack([base, saturated, shifted, blank, noise]))
    assert got.tolist() == [0, Flag.IMAGE_SATURATED, Flag.IMAGE_OFF_CENTRE, Flag.IMAGE_EMPTY, Flag.IMAGE_EMPTY]


def test_real_cutouts_raise_no_image_flag(sdss_sample):
    ds = load_dataset(sdss_sample, targets=[])
    assert not image_flags(ds.images()).any()


def test_embedding_reference_round_trip_and_ratio():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(600, 16)).astype(np.float32)
    ref = EmbeddingReference.fit(train, max_points=200)
    again = EmbeddingReference.from_dict(ref.to_dict())
    np.testing.assert_allclose(again.points, ref.points)
    assert again.threshold == ref.threshold and again.n_train == 600
    inside = ood_ratio([ref], rng.normal(size=(1, 2000, 16)).astype(np.float32))
    far = ood_ratio([ref], (rng.normal(size=(1, 50, 16)) + 6).astype(np.float32))
    assert 0.005 < np.mean(inside > 1) < 0.03 and (far > 1).all()


def test_embed_command(data, capsys, tmp_path):
    root, ds = data
    out = tmp_path / "emb.parquet"
    code, stdout, err = run_cli(capsys, "embed", root / "cv", ds, "--out", out, "--split", "test", "--device", "cpu")
    assert code == 0, err
    df = pd.read_parquet(out)
    assert sum(c.startswith("emb_") for c in df.columns) == 512 and "ood_score" in df.columns
    assert (df["split"] == "test").all() and "512 embedding features" in stdout
    code, _, err = run_cli(capsys, "embed", root / "cv", ds, "--out", out, "--member", "all", "--device", "cpu")
    assert code == 0 and len(pd.read_parquet(out)) == 3 * 56 and "member" in pd.read_parquet(out).columns
    bad_cases = ((["--member", "7"], "the model has 3 member(s)"), (["--out", tmp_path / "e.txt"], "unknown table"))
    for bad, msg in bad_cases:
        args = ["embed", root / "cv", ds, "--out", tmp_path / "e.parquet", *bad]
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and msg in err and err.count("\n") == 1


def test_gaussian_head_trains_predicts_sigma_and_calibrates_on_it(tmp_path, capsys):
    ds = make_tiny_dataset(tmp_path / "ds", n=72, size=16)  # 12 valid rows
    run = tmp_path / "g"
    code, _, err = run_cli(capsys, "train", ds, "--out", run, "--loss", "gaussian", "--epochs", "3", *TINY_TRAIN)
    assert code == 0, err
    assert torch.load(run / "model.pt", weights_only=True)["bundle_version"] == 3
    model = load_model(run)
    assert model.loss == "gaussian" and model.n_outputs == 2
    pred = tmp_path / "valid.parquet"
    assert run_cli(capsys, "predict", run, ds, "--out", pred, "--split", "valid", "--device", "cpu")[0] == 0
    df = pd.read_parquet(pred)
    assert (df["oh_p50_sigma"] > 0).all() and np.isfinite(df["oh_p50_pred"]).all()
    code, out, err = run_cli(capsys, "calibrate", run, pred, "--out", tmp_path / "cal.pt")
    assert code == 0, err
    assert "sigma split-conformal" in out
    res = load_model(tmp_path / "cal.pt").predict_uncertainty(np.asarray(load_dataset(ds).images()), device="cpu")
    # locally adaptive: the error bar follows the head's sigma
    assert np.corrcoef(res.err[:, 0], np.hypot(res.sigma[:, 0], res.spread[:, 0]))[0, 1] > 0.99


def test_gaussian_resume_is_bitwise_identical(tmp_path):
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    ds = make_tiny_dataset(tmp_path / "ds", n=32, size=16)
    config = TrainConfig(arch="resnet18", weights="none", batch_size=8, progress=False, loss="gaussian")
    config.frozen_epochs, config.cycles = 1, [1, 1]
    full = train(ds, tmp_path / "full", config)

    class Stop(Exception):
        pass

    def interrupt(info):
        if info.epoch == 2 and info.step == 1:
            raise Stop

    with pytest.raises(Stop):
        train(ds, tmp_path / "cut", config, on_step=interrupt)
    resumed = train(ds, tmp_path / "cut", None, resume=True)
    a = torch.load(full.bundle_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.bundle_path, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_each_fold_member_records_the_galaxies_it_trained_on(data):
    from galmet.data.galaxy_ids import GalaxyIdSet

    root, _ = data
    model = load_model(root / "cv")
    folds = pd.read_csv(root / "cv" / "folds.csv", dtype={"name": str})
    for k, member in enumerate(model.members):
        seen = GalaxyIdSet.from_dict(member["trained_on"])
        mine = folds["fold"] != k
        assert len(seen) == int(mine.sum())
        inside = seen.contains(folds["name"])
        assert inside[mine.to_numpy()].all() and not inside[~mine.to_numpy()].any()


def test_out_of_fold_rows_calibrate_per_fold_and_the_ensemble_records_them(data):
    from galmet.data.galaxy_ids import GalaxyIdSet
    from galmet.errors import DataError
    from galmet.runs.calibration_rows import calibration_rows

    root, _ = data
    model = load_model(root / "cv")
    oof = pd.read_parquet(root / "cv" / "oof.parquet")
    on = GalaxyIdSet.from_dict(model.calibrations["oh_p50"].source["calibrated_on"])
    assert len(on) == len(oof) and on.contains(oof["objID"].astype(str)).all()
    # each out-of-fold row trained the other fold models: kept only when checked against its own fold's
    kept = calibration_rows(model, oof, "oof", split=None, per_fold=True)
    assert len(kept) == len(oof) and kept.attrs["trained_sets"] == 3
    with pytest.raises(DataError, match="out-of-fold rows trained the other fold models"):
        calibration_rows(model, oof, "oof", split=None)
    shifted = oof.assign(fold=(oof["fold"] + 1) % 3)  # a row checked against a member that trained on it
    with pytest.raises(DataError, match="nothing to calibrate on"):
        calibration_rows(model, shifted, "oof", split=None, per_fold=True)


def test_the_ensemble_recalibrates_on_its_out_of_fold_rows_but_not_on_its_training_galaxies(data, capsys, tmp_path):
    root, ds = data
    oof = pd.read_parquet(root / "cv" / "oof.parquet")
    # out-of-fold rows: each held-out for the fold model that predicted it (what train --folds fits on)
    code, _, err = run_cli(capsys, "calibrate", root / "cv", root / "cv" / "oof.parquet", "--out", tmp_path / "a.pt")
    assert code == 0, err
    cal = load_model(tmp_path / "a.pt").calibrations["oh_p50"]
    np.testing.assert_allclose(cal.scores, load_model(root / "cv").calibrations["oh_p50"].scores)
    # the ensemble's own predictions of its training galaxies, split column dropped: refused
    pred = tmp_path / "own.parquet"
    assert run_cli(capsys, "predict", root / "cv", ds, "--out", pred, "--device", "cpu", "--no-tta")[0] == 0
    own = pd.read_parquet(pred)
    own[own["split"] != "test"].drop(columns="split").to_parquet(tmp_path / "own_nosplit.parquet")
    code, _, err = run_cli(
        capsys, "calibrate", root / "cv", tmp_path / "own_nosplit.parquet", "--out", tmp_path / "b.pt"
    )
    assert code == 2 and err.count("\n") == 1 and f"all {len(oof)} rows are galaxies" in err, err
    assert not (tmp_path / "b.pt").exists()
