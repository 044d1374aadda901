"""Issue 21, class C: prediction tables carry their model's sha256 (parquet, FITS, ECSV in their
metadata, CSV as a ``model_sha256`` column) and `galmet calibrate MODEL PRED` refuses predictions
another model made, naming both hashes. A calibrated copy of the model (same weights) accepts its
source's predictions; a table that names no model (made by hand) is accepted with a warning that
it cannot be checked."""

from __future__ import annotations

import logging

import pytest
import torch

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.io.tables import file_sha256, read_table
from galmet.nn.bundle import save_bundle
from galmet.nn.net import build_model


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("prov")
    ds = make_tiny_dataset(root / "ds", n=24, size=16)
    torch.manual_seed(0)
    # an untrained net outputs ~0.4: shifted and scaled into oh_p50's range, or its predictions
    # would not be predictions of oh_p50 (the label rules leave them out of calibrate)
    meta = {"targets": ["oh_p50"], "image_size": 16, "target_shift": [8.7], "target_scale": [0.1]}
    a = save_bundle(root / "a.pt", build_model("resnet18"), dict(meta))
    b = save_bundle(root / "b.pt", build_model("resnet18"), dict(meta))
    for model in (a, b):
        for suffix in ("parquet", "fits", "ecsv", "csv"):
            out = root / f"{model.stem}.{suffix}"
            argv = ["predict", model, ds, "--out", out, "--device", "cpu", "--no-tta"]
            assert main([str(x) for x in argv]) == 0
    return root, a, b


@pytest.mark.parametrize("suffix", ["parquet", "fits", "ecsv", "csv"])
def test_predictions_carry_the_models_sha256(env, suffix):
    root, a, _ = env
    prov = read_table(root / f"a.{suffix}").attrs["provenance"]
    assert prov["model_sha256"] == file_sha256(a) and (suffix == "csv" or prov["model"] == "a.pt")


@pytest.mark.parametrize("suffix", ["parquet", "fits", "ecsv", "csv"])
def test_calibrate_refuses_another_models_predictions_naming_both_hashes(env, suffix, tmp_path, capsys):
    root, a, b = env
    out = tmp_path / "cal.pt"
    code = main(["calibrate", str(a), str(root / f"b.{suffix}"), "--out", str(out), "--split", "all"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert file_sha256(a) in err and file_sha256(b) in err and "another model" in err
    assert not out.exists()
    # its own predictions calibrate, and a calibrated copy (same weights) takes them too (the
    # tiny dataset's test rows are allowed: these bundles record no training galaxies)
    own = ["--split", "all", "--allow-test-rows"]
    assert main(["calibrate", str(a), str(root / f"a.{suffix}"), "--out", str(out), *own]) == 0
    again = tmp_path / "cal2.pt"
    assert main(["calibrate", str(out), str(root / f"a.{suffix}"), "--out", str(again), *own]) == 0


def test_a_table_naming_no_model_cannot_be_checked_and_says_so(env, tmp_path, caplog):
    root, a, _ = env
    hand_made = tmp_path / "hand.csv"
    read_table(root / "b.csv").drop(columns="model_sha256").to_csv(hand_made, index=False)
    with caplog.at_level(logging.WARNING):
        argv = ["calibrate", str(a), str(hand_made), "--out", str(tmp_path / "c.pt"), "--split", "all"]
        code = main([*argv, "--allow-test-rows"])
    assert code == 0
    assert "cannot check that these are the predictions of" in caplog.text


@pytest.mark.parametrize("suffix", ["parquet", "fits", "ecsv", "csv"])
def test_positions_tables_carry_the_models_sha256_and_calibrate_checks_it(env, suffix, tmp_path, capsys):
    import galmet
    from faulty_server import FaultyServer

    u = pytest.importorskip("astropy.units")
    from astropy.coordinates import SkyCoord

    root, a, b = env
    out = tmp_path / f"pos.{suffix}"
    with FaultyServer() as srv:
        coords = SkyCoord([10.0, 11.0] * u.deg, [5.0, 6.0] * u.deg)
        galmet.predict_positions(b, coords, out=out, base_url=srv.url, device="cpu", rate=0, tta=False)
    assert read_table(out).attrs["provenance"]["model_sha256"] == file_sha256(b)
    code = main(["calibrate", str(a), str(out), "--out", str(tmp_path / "c.pt"), "--split", "all"])
    err = capsys.readouterr().err
    assert code == 2 and file_sha256(b) in err and err.count("\n") == 1, err
