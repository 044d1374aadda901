"""A transfer run (allow_other_survey) is marked row by row in embed's table, whatever its format,
and in explain's arrays, summary and figure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import make_tiny_dataset, run_cli
from galmet.columns import FLAGS, Flag
from galmet.data.dataset import Dataset
from galmet.data.imaging import Imaging
from galmet.io.tables import read_table
from galmet.nn.bundle import save_bundle
from galmet.nn.net import build_model

#: What an SDSS dataset records.
SDSS = replace(Imaging.unknown(), survey="sdss", bands="gri", format="jpeg")


@pytest.fixture
def sdss_images(tmp_path, monkeypatch):
    """A tiny SDSS gri JPEG dataset (16 px, with splits): every dataset records SDSS imaging."""
    monkeypatch.setattr(Dataset, "imaging", property(lambda self: replace(SDSS, image_size=self.image_size)))
    return make_tiny_dataset(tmp_path / "sdss_set", n=8, split=True)


def _bundle(path, survey: str, bands: str, layer: str | None):
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    imaging = Imaging(16, pixel_scale=None, data_release=None, bands=bands, survey=survey, layer=layer)
    meta = {"targets": ["oh_p50"], "image_size": 16, "imaging": imaging.to_dict(), "label_range": {"oh_p50": [8, 9.5]}}
    return save_bundle(path / "model.pt", net, meta)


@pytest.fixture
def legacy_bundle(tmp_path):
    """A tiny untrained bundle of 16 px Legacy Surveys ls-dr10 grz JPEG cutouts."""
    return _bundle(tmp_path / "legacy", "legacy", "grz", "ls-dr10")


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_embed_marks_every_row_of_a_transfer_run(tmp_path, sdss_images, legacy_bundle, capsys, suffix):
    if suffix == ".fits":
        pytest.importorskip("astropy")
    out = tmp_path / f"e{suffix}"
    argv = ("embed", legacy_bundle, sdss_images, "--out", out, "--device", "cpu", "--split", "test")
    code, _, err = run_cli(capsys, *argv, "--allow-other-survey")
    assert code == 0, err
    flags = read_table(out)[FLAGS].to_numpy()
    assert len(flags) == 2 and (flags & int(Flag.OTHER_SURVEY) == int(Flag.OTHER_SURVEY)).all()


def test_embed_of_the_models_own_survey_is_not_marked(tmp_path, sdss_images):
    from galmet.runs.embed import embedding_table

    bundle = _bundle(tmp_path / "sdss", "sdss", "gri", None)
    table = embedding_table(bundle, sdss_images, tmp_path / "e.csv", device="cpu")
    assert (read_table(tmp_path / "e.csv")[FLAGS] == 0).all() and "other_survey" not in table.attrs
    assert Flag.OTHER_SURVEY.name not in table.attrs["flag_checks"]


def test_explain_records_a_transfer_run(tmp_path, sdss_images, legacy_bundle, monkeypatch):
    pytest.importorskip("captum")
    pytest.importorskip("matplotlib")
    import galmet.runs.explain as module

    captions: list[str] = []
    save = module.save_figure

    def saving(fig, *args, **kwargs):
        captions.extend(t.get_text() for t in fig.texts)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(module, "save_figure", saving)
    out = tmp_path / "x"
    res = module.explain(legacy_bundle, sdss_images, out, n=2, device="cpu", formats=("png",), allow_other_survey=True)
    said = res["other_survey"]
    assert said.startswith("images are sdss gri jpeg")
    with np.load(tmp_path / "x" / "attribution_gradcam.npz") as z:
        assert str(z["other_survey"]) == said
    assert any(said in c for c in captions)


def test_explain_of_the_models_own_survey_records_none(tmp_path, sdss_images):
    pytest.importorskip("captum")
    pytest.importorskip("matplotlib")
    from galmet.runs.explain import explain

    bundle = _bundle(tmp_path / "sdss", "sdss", "gri", None)
    res = explain(bundle, sdss_images, tmp_path / "x", n=2, device="cpu", formats=("png",))
    assert "other_survey" not in res
    with np.load(tmp_path / "x" / "attribution_gradcam.npz") as z:
        assert str(z["other_survey"]) == ""
