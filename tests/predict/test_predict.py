"""Prediction over datasets and image folders, and the ``galmet predict`` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.data.dataset import load_dataset
from galmet.io.tables import read_table
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.net import build_model
from galmet.predict.dataset import predict_dataset


@pytest.fixture
def bundle(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    return save_bundle(tmp_path / "run" / "model.pt", net, {"targets": ["oh_p50"], "image_size": 16})


@pytest.fixture
def split_dataset(tmp_path):
    return make_tiny_dataset(tmp_path / "ds", n=16, size=16, split=True)


def test_predict_dataset_columns_and_values(bundle, split_dataset):
    model = load_model(bundle)
    ds = load_dataset(split_dataset, targets=[])
    df = predict_dataset(model, ds, tta=True, batch_size=5, device="cpu")
    assert list(df.columns) == [
        "objID",
        "split",
        "oh_p50_pred",
        "oh_p50_spread",
        "oh_p50",
        "lgm_tot_p50",
        "z",
        "ra",
        "dec",
        "flags",
        "seen",
    ]
    assert (df["seen"] == "").all()  # a bundle that records no training galaxies: none marked
    assert df["objID"].tolist() == ds.catalog["objID"].tolist()
    np.testing.assert_array_equal(df["oh_p50"], ds.catalog["oh_p50"])
    direct = model.predict(np.asarray(ds.images()), tta=True, device="cpu")
    np.testing.assert_allclose(df["oh_p50_pred"], direct, rtol=1e-5)
    assert (df["oh_p50_spread"] > 0).all()
    plain = predict_dataset(model, ds, tta=False, device="cpu")
    assert plain["oh_p50_spread"].isna().all()


def _run(capsys, *argv):
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".fits"])
def test_cli_writes_each_format(tmp_path, capsys, bundle, split_dataset, suffix):
    out = tmp_path / f"pred{suffix}"
    code, stdout, err = _run(
        capsys, bundle.parent, split_dataset, "--out", out, "--device", "cpu", "--split", "test", "--batch-size", "3"
    )
    assert code == 0, err
    df = read_table(out)
    assert {"objID", "split", "oh_p50_pred", "oh_p50_spread", "oh_p50", "ra", "dec"} <= set(df.columns)
    assert len(df) == 4 and set(df["split"].astype(str)) == {"test"}
    assert "wrote 4 predictions" in stdout and "RMSE of oh_p50: test" in stdout


def test_cli_image_folder_no_tta(tmp_path, capsys, bundle, split_dataset):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, p in enumerate(sorted((split_dataset / "images").iterdir())[:3]):
        (folder / f"galaxy_{i}.jpg").write_bytes(p.read_bytes())
    out = tmp_path / "p.csv"
    code, _, err = _run(capsys, bundle, folder, "--out", out, "--no-tta", "--device", "cpu")
    assert code == 0, err
    df = pd.read_csv(out)
    # CSV: its model in a column
    assert list(df.columns) == ["file", "oh_p50_pred", "oh_p50_spread", "flags", "seen", "model_sha256"]
    assert df["file"].tolist() == [f"galaxy_{i}.jpg" for i in range(3)] and df["oh_p50_spread"].isna().all()


def test_cli_bad_inputs_exit_2_and_keep_old_output(tmp_path, capsys, bundle, split_dataset):
    out = tmp_path / "p.parquet"
    from galmet.io.tables import write_table

    write_table(pd.DataFrame({"objID": [1], "oh_p50_pred": [9.0]}), out)  # an earlier run's predictions
    previous = out.read_bytes()
    wrong = make_tiny_dataset(tmp_path / "big", n=4, size=24)
    cases = [
        ((tmp_path / "missing.pt", split_dataset), "no such model bundle"),
        ((bundle, wrong), "images are 24x24 px, the model"),
        ((bundle, tmp_path / "nowhere"), "no such dataset directory"),
        ((bundle, split_dataset, "--split", "nosuch"), "no rows in split nosuch"),
        ((bundle,), "give INPUT"),
        ((bundle, split_dataset, "--ra", "10"), "--ra and --dec go together"),
        ((bundle, split_dataset, "--batch-size", "0"), "--batch-size"),
    ]
    if not torch.cuda.is_available():
        cases.append(((bundle, split_dataset, "--device", "cuda"), "CUDA is not available"))
    for argv, msg in cases:
        code, _, err = _run(capsys, *argv, "--out", out)
        assert code == 2, (argv, err)
        assert msg in err and err.count("\n") == 1, (argv, err)
        assert out.read_bytes() == previous
    code, _, err = _run(capsys, bundle, split_dataset, "--out", tmp_path / "p.txt")
    assert code == 2 and "unknown table format" in err


def test_cli_skip_bad_drops_wrong_size_images(tmp_path, capsys, bundle, split_dataset):
    from galmet.io.images import encode_jpeg

    victim = sorted((split_dataset / "images").iterdir())[0]
    victim.write_bytes(encode_jpeg(np.zeros((8, 8, 3), np.uint8)))
    out = tmp_path / "p.parquet"
    code, stdout, err = _run(capsys, bundle, split_dataset, "--out", out, "--skip-bad", "--no-cache")
    assert code == 0, err
    assert len(pd.read_parquet(out)) == 15 and "skipped 1 bad rows" in stdout


def test_cli_sky_position(tmp_path, capsys, bundle):
    from faulty_server import FaultyServer

    out = tmp_path / "one.csv"
    with FaultyServer() as srv:
        code, _, err = _run(
            capsys, bundle, "--ra", "185.5", "--dec", "15.25", "--base-url", srv.url, "--out", out, "--device", "cpu"
        )
        assert code == 0, err
        assert sum(srv.counts.values()) == 1
    df = pd.read_csv(out)
    assert list(df.columns) == ["ra", "dec", "oh_p50_pred", "oh_p50_spread", "flags", "status", "error", "model_sha256"]
    assert df["ra"].tolist() == [185.5] and np.isfinite(df["oh_p50_pred"]).all() and df["status"].tolist() == ["ok"]
    with FaultyServer(default_plan=("404",)) as srv:  # the row stays, with its status; nothing was predicted: 1
        code, stdout, err = _run(capsys, bundle, "--ra", "1", "--dec", "2", "--base-url", srv.url, "--out", out)
    assert code == 1 and pd.read_csv(out)["status"].tolist() == ["fetch failed"]


@pytest.mark.gpu
def test_cuda_prediction_matches_cpu(bundle):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = load_model(bundle)
    imgs = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    cpu = model.predict(imgs, device="cpu", batch_size=16)
    gpu = model.predict(imgs, device="cuda", batch_size=16)
    on_device = model.predict(torch.from_numpy(imgs).cuda(), device="cuda", batch_size=16)
    np.testing.assert_allclose(gpu, cpu, atol=0.05 * np.abs(cpu).max() + 1e-3)  # bf16 autocast
    np.testing.assert_allclose(on_device, gpu, rtol=1e-6)


def test_cli_table_of_positions(tmp_path, capsys, bundle):
    from faulty_server import FaultyServer, key_of

    table = tmp_path / "targets.csv"
    pd.DataFrame(
        {"objID": [11, 22, 33], "ra": [10.0, 20.0, 30.0], "dec": [1.0, 2.0, 3.0], "oh_p50": [8.5, 8.9, 9.0]}
    ).to_csv(table, index=False)
    out = tmp_path / "pred.parquet"
    with FaultyServer(plans={key_of(20.0, 2.0): ["404"]}) as srv:
        code, stdout, err = _run(capsys, bundle, table, "--base-url", srv.url, "--out", out, "--device", "cpu")
        assert code == 0, err
        df = pd.read_parquet(out)
        assert list(df.columns) == [
            *["objID", "ra", "dec", "oh_p50", "oh_p50_pred", "oh_p50_spread", "flags", "status", "error"]
        ]
        assert df["objID"].tolist() == [11, 22, 33] and df["status"].tolist() == ["ok", "fetch failed", "ok"]
        assert "HTTP 404" in df["error"][1] and np.isnan(df["oh_p50_pred"][1])
        assert "not predicted: 1 fetch failed" in stdout and "RMSE of oh_p50: all" in stdout
        code, stdout, err = _run(
            capsys, bundle, table, "--base-url", srv.url, "--out", out, "--device", "cpu", "--skip-bad"
        )
    assert code == 0, err
    assert pd.read_parquet(out)["objID"].tolist() == [11, 33]
    (tmp_path / "noradec.csv").write_text("objID,x\n1,2\n")
    code, _, err = _run(capsys, bundle, tmp_path / "noradec.csv", "--out", out)
    assert code == 2 and "no ra column" in err
    code, _, err = _run(capsys, bundle, table, "--out", out, "--split", "test")
    assert code == 2 and "--split applies to dataset directories only" in err


def test_cli_on_real_sample_catalog_csv(tmp_path, capsys, sdss_sample):
    torch.manual_seed(0)
    path = save_bundle(tmp_path / "m.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 128})
    out = tmp_path / "real.parquet"
    code, stdout, err = _run(capsys, path, sdss_sample, "--out", out, "--split", "test", "--no-tta", "--device", "cpu")
    assert code == 0, err
    df = pd.read_parquet(out)
    truth = pd.read_csv(sdss_sample / "catalog.csv").set_index("objID")
    assert len(df) == (truth["split"] == "test").sum() and (df["split"] == "test").all()
    np.testing.assert_allclose(df["oh_p50"], truth.loc[df["objID"], "oh_p50"].to_numpy(), rtol=1e-6)
    assert np.isfinite(df["oh_p50_pred"]).all() and "RMSE of oh_p50: test" in stdout


def test_fastai_tta_is_the_original_plus_four_augmented_views(bundle, split_dataset):
    from galmet.nn.augment import augment_batch, to_model_input
    from galmet.nn.inference import PAPER_AUGMENTATION

    model = load_model(bundle)
    assert model.augmentation == PAPER_AUGMENTATION  # no training config in this bundle: the paper's
    images = np.array(load_dataset(split_dataset, targets=[]).images())
    pred, std = model.predict(images, tta=True, tta_mode="fastai", tta_seed=5, device="cpu", return_std=True)
    again = model.predict(images, tta=True, tta_mode="fastai", tta_seed=5, device="cpu")
    other = model.predict(images, tta=True, tta_mode="fastai", tta_seed=6, device="cpu")
    assert np.array_equal(pred, again) and not np.allclose(pred, other)
    # by hand: the image as it is plus 4 draws of the training augmentation from a generator seeded 5
    net = model.net.eval()
    x = torch.from_numpy(images)
    g = torch.Generator().manual_seed(5)
    with torch.inference_mode():
        views = [to_model_input(x)] + [
            augment_batch(x, g, dihedral=True, max_zoom=1.1, rotate_deg=10.0, lighting_change=0.05) for _ in range(4)
        ]
        outs = torch.stack([net(v).double() for v in views])[..., 0].numpy()
    np.testing.assert_allclose(pred, outs.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, outs.std(0), rtol=1e-4)
    dihedral = model.predict(images, tta=True, device="cpu")
    assert not np.allclose(pred, dihedral)
    with pytest.raises(Exception, match="tta_mode must be one of"):
        model.predict(images, tta_mode="random")


def test_cli_tta_mode_fastai(tmp_path, capsys, bundle, split_dataset):
    out = tmp_path / "p.csv"
    code, printed, _ = _run(capsys, bundle, split_dataset, "--out", out, "--tta-mode", "fastai", "--device", "cpu")
    assert code == 0 and "fastai TTA, 1 + 4 views" in printed
    df = read_table(out)
    assert np.isfinite(df["oh_p50_pred"]).all() and (df["oh_p50_spread"] > 0).all()


def test_predict_dataset_takes_inference_options_and_the_old_keywords(bundle, split_dataset):
    from galmet.errors import ConfigError
    from galmet.nn.inference import InferenceOptions

    model = load_model(bundle)
    ds = load_dataset(split_dataset, targets=[])
    by_keywords = predict_dataset(model, ds, tta=False, batch_size=5, device="cpu", flags=False)
    by_options = predict_dataset(model, ds, InferenceOptions(tta=False, batch_size=5, device="cpu"), flags=False)
    overridden = predict_dataset(model, ds, InferenceOptions(tta=True, device="cpu"), tta=False, flags=False)
    positional = predict_dataset(model, ds, False, device="cpu", flags=False)  # (model, dataset, tta) of old
    for table in (by_options, overridden, positional):
        pd.testing.assert_frame_equal(table, by_keywords)
    with pytest.raises(ConfigError) as info:
        predict_dataset(model, ds, batch_size=0)
    assert info.value.param == "batch_size"
    with pytest.raises(TypeError, match="unknown inference option"):
        predict_dataset(model, ds, tta_modes="fastai")


def test_the_public_api_is_exported_and_load_dataset_shows_its_signature():
    import inspect

    import galmet
    import galmet.predict
    from galmet.predict.flags import flag_rows
    from galmet.predict.output import write_positions_table

    assert galmet.predict.flag_rows is flag_rows and galmet.write_positions_table is write_positions_table
    assert galmet.predict.write_positions_table is write_positions_table
    params = inspect.signature(galmet.load_dataset).parameters
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values())
    assert {"targets", "on_error", "size", "cache", "cutouts", "download", "workers", "rate"} <= set(params)
    from galmet.data.dataset import load_dataset as folder_loader

    for name, p in inspect.signature(folder_loader).parameters.items():  # the folder loader's own defaults
        if name not in ("path", "on_error", "size"):
            assert params[name].default == p.default, name


def test_a_circle_between_the_predict_command_and_its_helpers_breaks_the_cli_contract(tmp_path):
    """cli.positions once imported cli.commands.predict inside a function (and back): the cli
    contract in pyproject.toml refuses it."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("importlinter")
    root = Path(__file__).resolve().parents[2]
    project = tmp_path / "project"
    shutil.copytree(root / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(root / "pyproject.toml", project / "pyproject.toml")
    helper = project / "src" / "galmet" / "cli" / "predict_output.py"
    helper.write_text(
        helper.read_text() + "\n\ndef _back():\n    from galmet.cli.commands import predict\n\n    return predict\n"
    )
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode != 0
    assert "galmet.cli.predict_output is not allowed to import galmet.cli.commands" in out.stdout


@pytest.mark.parametrize("command", ["predict", "embed"])
@pytest.mark.parametrize("suffix", ["fits", "fits.gz"])
def test_a_fits_out_refuses_a_file_name_it_cannot_hold_before_predicting(
    command, suffix, tmp_path, capsys, monkeypatch
):
    from galmet.io.images import encode_jpeg
    from galmet.nn.inference import GalmetModel

    torch.manual_seed(0)
    model = save_bundle(tmp_path / "m.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.jpg", "név.jpg"):
        (folder / name).write_bytes(encode_jpeg(np.zeros((16, 16, 3), np.uint8)))

    def never(*args, **kwargs):
        raise AssertionError("the model ran before the output was checked")

    monkeypatch.setattr(GalmetModel, "predict", never)
    monkeypatch.setattr(GalmetModel, "embed", never)
    out = tmp_path / f"o.{suffix}"
    argv = [command, str(model), str(folder), "--out", str(out), "--device", "cpu"]
    code = main(argv + (["--no-cache"] if command == "predict" else []))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "n\\xe9v.jpg" in err and "--out" in err, err
    assert not out.exists()
