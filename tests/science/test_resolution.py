"""Resolution study: re-binning and pixel replication, a tiny end-to-end study, resuming."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.errors import ConfigError


def test_parse_sizes():
    from galmet.science.resolution import parse_sizes

    assert parse_sizes("1,128, 64,64", 128) == [128, 64, 1]
    with pytest.raises(ConfigError, match="size 48 does not divide the 128-pixel images"):
        parse_sizes("48", 128)
    with pytest.raises(ConfigError, match="comma-separated integers"):
        parse_sizes("a,b")
    with pytest.raises(ConfigError, match="positive"):
        parse_sizes("0")


def test_degrade_is_block_average_native_by_default():
    from galmet.science.resolution import MIN_INPUT, degrade, input_size

    assert MIN_INPUT == 1
    assert [input_size(s) for s in (128, 64, 32, 16, 8, 4, 2, 1)] == [128, 64, 32, 16, 8, 4, 2, 1]
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    for s in (4, 2, 1):
        out = degrade(imgs, s)
        assert out.shape == (3, s, s, 3) and out.dtype == np.uint8
        f = 16 // s
        ref = imgs.reshape(3, s, f, s, f, 3).astype(float).mean(axis=(2, 4))
        assert np.array_equal(out, np.rint(ref).astype(np.uint8))


def test_degrade_replication_variant():
    from galmet.science.resolution import degrade, input_size

    assert [input_size(s, 32) for s in (128, 64, 32, 16, 8, 4, 2, 1)] == [128, 64, 32, 32, 32, 32, 32, 32]
    assert input_size(3, 32) == 33
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    out = degrade(imgs, 4, 32)
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.uint8
    block = imgs[:, :4, :4].astype(float).mean(axis=(1, 2))  # first 4x4 block of the 16 px image
    assert np.array_equal(out[:, 0, 0], np.rint(block).astype(np.uint8))
    assert (out[:, :8, :8] == out[:, :1, :1]).all()  # each re-binned pixel is an 8x8 constant block
    one = degrade(imgs, 1, 8)
    assert one.shape == (3, 8, 8, 3) and (one == one[:, :1, :1]).all()
    assert np.array_equal(degrade(imgs, 16, 8), imgs)


def test_read_resolution_errors(tmp_path):
    from galmet.errors import DataError
    from galmet.science.resolution import read_resolution

    with pytest.raises(DataError, match="no resolution table"):
        read_resolution(tmp_path)
    pd.DataFrame({"size": [8]}).to_csv(tmp_path / "resolution.csv", index=False)
    with pytest.raises(DataError, match="no column 'rmse'"):
        read_resolution(tmp_path)


@pytest.fixture
def study_dataset(tmp_path):
    return make_tiny_dataset(tmp_path / "ds", n=40, size=16, split=True)


def _argv(ds, out, sizes="16,2"):
    return [
        "resolution-study",
        str(ds),
        "--out",
        str(out),
        "--sizes",
        sizes,
        "--min-input",
        "16",
        "--recipe",
        "onecycle",
        "--epochs",
        "1",
        "--arch",
        "resnet18",
        "--weights",
        "none",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--no-progress",
        "--no-tta",
    ]


def test_tiny_study_end_to_end_and_resume(study_dataset, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    out = tmp_path / "study"
    assert main(_argv(study_dataset, out)) == 0
    tab = pd.read_csv(out / "resolution.csv")
    assert tab["size"].tolist() == [16, 2] and tab["input_size"].tolist() == [16, 16]
    assert np.isfinite(tab[["rmse", "nmad", "train_seconds"]].to_numpy()).all()
    assert (tab["n"] == 10).all()
    pred = pd.read_parquet(out / "runs" / "size_002" / "predictions.parquet")
    assert len(pred) == 10 and (pred["split"] == "test").all()
    rmse = np.sqrt(np.mean((pred["oh_p50_pred"] - pred["oh_p50"]) ** 2))
    assert tab.loc[tab["size"] == 2, "rmse"].item() == pytest.approx(rmse, rel=1e-5)
    meta = json.loads((out / "resolution.json").read_text())
    assert meta["rf_rmse"] > 0 and meta["constant_rmse"] > 0 and meta["min_input"] == 16
    assert (out / "fig4_resolution.png").is_file() and (out / "fig4_resolution.pdf").is_file()

    # finished sizes are not redone; a size whose row is lost but whose model exists is only re-scored
    import galmet.runs.resolution

    def no_training(*a, **k):
        raise AssertionError("train() must not run again")

    monkeypatch.setattr(galmet.runs.resolution, "train", no_training)
    assert main(_argv(study_dataset, out)) == 0
    for name in ("resolution.csv", "resolution_seeds.csv"):
        pd.read_csv(out / name).iloc[:1].to_csv(out / name, index=False)
    assert main(_argv(study_dataset, out)) == 0
    again = pd.read_csv(out / "resolution.csv")
    assert again["size"].tolist() == [16, 2]
    assert again["rmse"].to_numpy() == pytest.approx(tab["rmse"].to_numpy(), rel=1e-5)


def test_network_sees_native_s_by_s_inputs(study_dataset, tmp_path, monkeypatch):
    """The paper's experiment: at s = 4, 2, 1 the ResNet is trained and scored on s x s images."""
    from galmet.nn.net import GalmetNet

    seen: list[tuple[bool, tuple[int, ...]]] = []
    forward = GalmetNet.forward

    def recording_forward(self, x):
        seen.append((self.training, tuple(x.shape)))
        out = forward(self, x)
        assert out.shape == (x.shape[0], 1) and bool(out.isfinite().all())
        return out

    monkeypatch.setattr(GalmetNet, "forward", recording_forward)
    argv = [a for a in _argv(study_dataset, tmp_path / "s", sizes="4,2,1") if a not in ("--min-input", "16")]
    assert main(argv) == 0
    tab = pd.read_csv(tmp_path / "s" / "resolution.csv")
    assert tab["size"].tolist() == [4, 2, 1] and tab["input_size"].tolist() == [4, 2, 1]
    for s in (4, 2, 1):
        shapes = {shape[1:] for training, shape in seen if shape[2] == s}
        assert shapes == {(3, s, s)}, (s, shapes)
        assert any(training and shape[2] == s for training, shape in seen)  # trained (forward + backward) on s x s
        assert any(not training and shape[2] == s for training, shape in seen)  # and scored on s x s
    assert {shape[2] for _, shape in seen} == {4, 2, 1}  # never anything else
    assert np.isfinite(tab["rmse"]).all()


def test_changed_settings_refused(study_dataset, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    from galmet.io.atomic import atomic_write_text

    settings = {"min_input": 32, "target": "oh_p50", "n": 40, "config": {}}
    atomic_write_text(out / "resolution.json", json.dumps(settings))  # an earlier study's (galmet's) settings
    assert main(_argv(study_dataset, out)) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a study with different settings (min_input" in err and len(err.splitlines()) == 1


def test_bad_sizes_exit_2(study_dataset, tmp_path, capsys):
    assert main(_argv(study_dataset, tmp_path / "s", sizes="16,5")) == 2
    assert "size 5 does not divide the 16-pixel images" in capsys.readouterr().err
