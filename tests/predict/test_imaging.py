"""The model knows its imaging: recorded at training, validated on load, enforced by predict."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.data.imaging import UNKNOWN, recorded_imaging
from galmet.errors import ConfigError, DataError
from galmet.layout import BUNDLE_FORMAT
from galmet.nn.bundle import Imaging, load_model, save_bundle
from galmet.nn.net import build_model
from galmet.training.config import TrainConfig
from galmet.training.loop import train

TINY = dict(arch="resnet18", weights="none", batch_size=8, progress=False, frozen_epochs=0, cycles=[1])


def _net():
    torch.manual_seed(0)
    return build_model("resnet18", n_targets=1)


def _write_manifest(root, scales, size):
    from galmet.sdss.download import ManifestRecord, write_manifest

    records = {
        i: ManifestRecord(
            objID=i, status="ok", attempts=1, last_error="", permanent=False, bytes=10, size=size, scale=s
        )
        for i, s in enumerate(scales)
    }
    records[99] = ManifestRecord(99, "failed", 3, "HTTP 500", False, 0, 0, 0.0)
    write_manifest(root / "manifest.parquet", records)


def test_old_bundle_reads_with_documented_defaults(tmp_path):
    """A bundle written the way galmet wrote them before (no meta imaging) still loads."""
    net = _net()
    meta = {
        "arch": "resnet18",
        "n_targets": 1,
        "targets": ["oh_p50"],
        "image_size": 64,
        "target_shift": [0.0],
        "target_scale": [1.0],
    }
    path = tmp_path / "old.pt"
    torch.save({"format": BUNDLE_FORMAT, "bundle_version": 1, "meta": meta, "state_dict": net.state_dict()}, path)
    model = load_model(path)
    assert model.imaging == Imaging(
        image_size=64,
        pixel_scale=0.296,
        scale_mode="fixed",
        fetch_size=None,
        crop=None,
        data_release="DR14",
        bands="gri",
    )
    assert "imaging" not in model.meta


def test_recorded_imaging_round_trips_through_a_bundle(tmp_path):
    imaging = Imaging(image_size=48, pixel_scale=0.396, scale_mode="fixed", fetch_size=64, crop=48, data_release="DR16")
    path = save_bundle(tmp_path / "m.pt", _net(), {"image_size": 64, "crop": 48, "imaging": imaging.to_dict()})
    assert load_model(path).imaging == imaging
    assert "48x48 px" in imaging.describe() and "0.396 arcsec/px" in imaging.describe()


@pytest.mark.parametrize(
    ("imaging", "field"),
    [
        ("0.296", "imaging must be a mapping"),
        ({"image_size": 64, "colour": "red"}, "unknown field 'colour'"),
        ({"image_size": 0}, "imaging.image_size"),
        ({"image_size": 64, "pixel_scale": -1.0}, "imaging.pixel_scale"),
        ({"image_size": 64, "pixel_scale": float("nan")}, "imaging.pixel_scale"),
        ({"image_size": 64, "scale_mode": "zoomed"}, "imaging.scale_mode"),
        ({"image_size": 64, "data_release": "14"}, "imaging.data_release"),
        ({"image_size": 64, "bands": "rgb"}, "imaging.bands"),
        ({"image_size": 64, "bands": "ggi"}, "imaging.bands"),
        ({"image_size": 32}, "imaging.image_size"),  # disagrees with the bundle's image_size
        ({"image_size": 64, "fetch_size": 128}, "imaging.fetch_size"),
        ({"image_size": 64, "crop": 32}, "imaging.crop"),  # the bundle has no crop
    ],
)
def test_bad_imaging_is_refused_with_one_line(tmp_path, imaging, field):
    path = tmp_path / "bad.pt"
    meta = {"arch": "resnet18", "n_targets": 1, "targets": ["oh_p50"], "image_size": 64, "imaging": imaging}
    with pytest.raises(ConfigError, match="bundle meta") as info:  # save_bundle never writes one
        save_bundle(path, _net(), meta)
    assert field in str(info.value) and "\n" not in str(info.value) and not path.exists()
    torch.save({"format": BUNDLE_FORMAT, "bundle_version": 1, "meta": meta, "state_dict": _net().state_dict()}, path)
    with pytest.raises(ConfigError, match=field.replace("(", r"\(")):
        load_model(path)


def test_recorded_imaging_of_each_source(tmp_path):
    assert recorded_imaging(tmp_path) == UNKNOWN
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    _write_manifest(fixed, [0.396, 0.396], 64)
    (fixed / "catalog.json").write_text(json.dumps({"base_url": "https://skyserver.sdss.org/dr16"}))
    rec = recorded_imaging(fixed, 64)
    assert (rec.pixel_scale, rec.scale_mode, rec.fetch_size, rec.data_release) == (0.396, "fixed", 64, "DR16")
    assert recorded_imaging(fixed, 32).pixel_scale == pytest.approx(0.792)  # re-binned: same field of view
    by_size = tmp_path / "by_size"
    by_size.mkdir()
    _write_manifest(by_size, [0.2, 0.31], 128)
    rec = recorded_imaging(by_size, 128)
    assert (rec.pixel_scale, rec.scale_mode) == (None, "scale-by-size")
    synth = tmp_path / "synth"
    synth.mkdir()
    (synth / "synth_config.yaml").write_text(
        "generator: galmet.synthetic.render\nsize: 64\npixel_scale_arcsec: 0.592\n"
    )
    rec = recorded_imaging(synth, 64)
    assert (rec.pixel_scale, rec.fetch_size, rec.data_release) == (0.592, 64, None)
    (synth / "synth_config.yaml").write_text(": not yaml [")
    assert recorded_imaging(synth) == UNKNOWN  # unreadable: nothing recorded, nothing invented


@pytest.fixture(scope="module")
def trained_64(tmp_path_factory):
    """A model trained on 64 px images whose download manifest records 0.396 arcsec/px, DR16."""
    root = make_tiny_dataset(tmp_path_factory.mktemp("ds64") / "ds", n=20, size=64)
    _write_manifest(root, [0.396] * 3, 64)
    (root / "catalog.json").write_text(json.dumps({"base_url": "https://skyserver.sdss.org/dr16"}))
    result = train(root, root.parent / "run", TrainConfig(**TINY))
    return result.bundle_path


def test_training_records_imaging(trained_64):
    imaging = load_model(trained_64).imaging
    assert imaging == Imaging(
        image_size=64, pixel_scale=0.396, scale_mode="fixed", fetch_size=64, crop=None, data_release="DR16", bands="gri"
    )


def test_predict_refuses_other_size_with_one_line(tmp_path, capsys, trained_64):
    big = make_tiny_dataset(tmp_path / "big", n=6, size=128)
    code = main(["predict", str(trained_64), str(big), "--out", str(tmp_path / "p.csv"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "images are 128x128 px" in err and "trained on 64x64 px at 0.396 arcsec/px" in err
    assert "--skip-bad" not in err and not (tmp_path / "p.csv").exists()


def test_predict_refuses_other_pixel_scale(tmp_path, capsys, trained_64):
    other = make_tiny_dataset(tmp_path / "other", n=6, size=64)
    _write_manifest(other, [0.296] * 6, 64)
    code = main(["predict", str(trained_64), str(other), "--out", str(tmp_path / "p.csv"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "at 0.296 arcsec/px" in err and "at 0.396 arcsec/px" in err
    # the library refuses the same way
    from galmet.data.dataset import load_dataset
    from galmet.predict.dataset import predict_dataset

    with pytest.raises(DataError, match="0.296 arcsec/px"):
        predict_dataset(load_model(trained_64), load_dataset(other, targets=[]), device="cpu")


def test_predict_accepts_matching_images(tmp_path, capsys, trained_64):
    same = make_tiny_dataset(tmp_path / "same", n=6, size=64)
    code = main(["predict", str(trained_64), str(same), "--out", str(tmp_path / "p.csv"), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err


def test_embed_and_calibrate_refuse_other_size_with_one_line(tmp_path, capsys, trained_64):
    """The same refusal wherever a model meets a dataset, not only in predict."""
    from galmet.data.dataset import load_dataset
    from galmet.runs.calibrate import embedding_statistics

    big = make_tiny_dataset(tmp_path / "big", n=6, size=128)
    code = main(["embed", str(trained_64), str(big), "--out", str(tmp_path / "e.parquet"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "images are 128x128 px" in err, err
    model = load_model(trained_64)
    with pytest.raises(DataError, match="images are 128x128 px"):
        embedding_statistics(model, load_dataset(big, targets=[], load_images=False), device="cpu")
