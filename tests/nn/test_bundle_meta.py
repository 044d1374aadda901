"""The bundle meta has one owner (nn/bundle_meta.py) and the imaging one type (data/imaging.py);
the keys on disk are those of every earlier galmet."""

from __future__ import annotations

import pytest
import torch

from galmet import paper
from galmet.data.imaging import UNKNOWN, Imaging
from galmet.errors import ConfigError
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.bundle_meta import MetaKey, imaging_from_meta, member_metas, training_meta
from galmet.nn.net import build_model

#: The keys galmet's training has always written (the bundle format must not change).
TRAINED_KEYS = {
    "targets",
    "target_shift",
    "target_scale",
    "image_size",
    "crop",
    "recipe",
    "config",
    "dataset",
    "epochs",
    "valid_rmse",
    "loss",
    "label_range",
    "imaging",
    "embedding_stats",
}
IMAGING_KEYS = {
    "image_size",
    "pixel_scale",
    "scale_mode",
    "fetch_size",
    "crop",
    "data_release",
    "bands",
    "survey",
    "layer",
    "format",
    "stretch",
}


def _meta(**kw):
    args = dict(
        targets=["oh_p50"],
        target_shift=[9.0],
        target_scale=[0.1],
        image_size=64,
        crop=None,
        recipe="paper",
        config={"arch": "resnet18"},
        dataset="/data/ds",
        epochs=3,
        valid_rmse={"oh_p50": 0.09},
        loss="rmse",
        label_range={"oh_p50": [8.0, 9.3]},
        imaging=UNKNOWN.trained_on(64),
        embedding_stats={"any": "dict"},
    )
    return training_meta(**{**args, **kw})


def test_training_meta_writes_the_historical_keys():
    meta = _meta()
    assert set(meta) == TRAINED_KEYS
    assert set(meta[MetaKey.IMAGING]) == IMAGING_KEYS
    assert meta["imaging"] == {
        "image_size": 64,
        "pixel_scale": None,
        "scale_mode": "fixed",
        "fetch_size": 64,
        "crop": None,
        "data_release": None,
        "bands": "gri",
        "survey": "sdss",
        "layer": None,
        "format": "jpeg",
        "stretch": None,
    }
    assert "embedding_stats" not in _meta(embedding_stats=None)


def test_a_trained_meta_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    crop = Imaging(64, pixel_scale=0.4, data_release="DR16").trained_on(64, crop=48)
    meta = _meta(crop=48, imaging=crop, embedding_stats=None)
    model = load_model(save_bundle(tmp_path / "m.pt", build_model("resnet18", 1), meta))
    assert model.imaging == crop and model.imaging.image_size == 48 and model.crop == 48
    assert model.label_range == {"oh_p50": (8.0, 9.3)}
    assert model.members == [model.meta] and member_metas(model.meta) == [model.meta]
    assert model.norm[0] == pytest.approx((0.485, 0.456, 0.406))


def test_imaging_defaults_are_the_papers():
    imaging = Imaging(image_size=paper.IMAGE_SIZE)
    assert (imaging.pixel_scale, imaging.data_release, imaging.bands) == (
        paper.PIXEL_SCALE_ARCSEC,
        paper.DATA_RELEASE,
        paper.BANDS,
    )
    assert imaging_from_meta({"image_size": 128}) == imaging  # a bundle from before imaging was recorded
    assert all(getattr(UNKNOWN, f) is None for f in IMAGING_KEYS)


def test_imaging_round_trips_through_its_dict_and_ignores_source():
    imaging = Imaging(64, pixel_scale=0.3, fetch_size=64, data_release="DR16", source="manifest.parquet")
    assert Imaging.from_dict(imaging.to_dict()) == imaging
    assert "source" not in imaging.to_dict()
    with pytest.raises(ConfigError, match="here has unknown field 'source'"):
        Imaging.from_dict({**imaging.to_dict(), "source": "x"}, "here")
    with pytest.raises(ConfigError, match=r"^here\.image_size must be an integer from 1 to 4096 pixels"):
        Imaging.from_dict({"image_size": None}, "here")
