"""The model knows its survey: another survey's images are refused in one line, before any is
decoded, unless allow_other_survey (a transfer experiment), when every row is flagged OTHER_SURVEY."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset, run_cli
from galmet.columns import FLAGS, Flag
from galmet.data.dataset import Dataset, load_dataset
from galmet.data.imaging import Imaging
from galmet.errors import DataError
from galmet.io.tables import read_table, table_provenance, write_table
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.net import build_model
from galmet.nn.survey_check import describe_survey, survey_differences
from galmet.predict.dataset import predict_dataset

#: What a Legacy Surveys dataset records (as galmet synth --survey legacy / download --survey legacy write it).
LEGACY = replace(Imaging.unknown(), survey="legacy", layer="ls-dr10", bands="grz", format="jpeg")
#: What an SDSS dataset records.
SDSS = replace(Imaging.unknown(), survey="sdss", bands="gri", format="jpeg")


def _records(monkeypatch, imaging: Imaging) -> None:
    """Every dataset records ``imaging`` (at its own image size): what a manifest, a synth
    config or FITS headers say once read (galmet.data.imaging.recorded_imaging)."""
    monkeypatch.setattr(Dataset, "imaging", property(lambda self: replace(imaging, image_size=self.image_size)))


def _no_decoding(monkeypatch) -> None:
    """Fail the test when an image is decoded."""

    def images(self):
        raise AssertionError("images were decoded before the survey was checked")

    monkeypatch.setattr(Dataset, "images", images)


@pytest.fixture
def legacy_bundle(tmp_path):
    """A tiny untrained bundle of 16 px Legacy Surveys ls-dr10 grz JPEG cutouts at 0.262 arcsec/px."""
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    imaging = Imaging(16, pixel_scale=None, data_release=None, bands="grz", survey="legacy", layer="ls-dr10")
    meta = {"targets": ["oh_p50"], "image_size": 16, "imaging": imaging.to_dict(), "label_range": {"oh_p50": [8, 9.5]}}
    return save_bundle(tmp_path / "legacy" / "model.pt", net, meta)


def test_survey_differences_compare_only_what_both_sides_know():
    model = Imaging(64)  # the paper's: sdss gri jpeg
    assert survey_differences(model, LEGACY) == ["survey", "bands"]  # (the model has no layer)
    assert survey_differences(model, SDSS) == []
    assert survey_differences(model, Imaging.unknown(64)) == []  # a plain folder records nothing
    assert survey_differences(model, replace(SDSS, format="fits")) == ["format"]
    legacy_model = replace(LEGACY, image_size=64)
    assert survey_differences(legacy_model, replace(LEGACY, layer="ls-dr9-south")) == ["layer"]
    assert survey_differences(legacy_model, replace(LEGACY, layer=None)) == []
    assert describe_survey(LEGACY) == "legacy ls-dr10 grz jpeg"
    assert describe_survey(Imaging.unknown()) == "unknown survey"


def test_sdss400_refuses_legacy_images_in_one_line_before_decoding(tmp_path, monkeypatch):
    data = make_tiny_dataset(tmp_path / "legacy_set")
    _records(monkeypatch, LEGACY)
    _no_decoding(monkeypatch)
    model = load_model("sdss400")
    with pytest.raises(DataError) as err:
        model.check_dataset_imaging(data)
    text = str(err.value)
    assert "\n" not in text and err.value.param == "allow_other_survey"
    assert text.startswith(f"{data}: images are legacy ls-dr10 grz jpeg; the model sdss400 was trained on sdss gri")
    assert "use a model trained on legacy images, or allow_other_survey for a transfer experiment" in text


def test_predict_cli_refuses_with_exit_2_naming_the_flag(tmp_path, monkeypatch, capsys):
    data = make_tiny_dataset(tmp_path / "legacy_set")
    _records(monkeypatch, LEGACY)
    _no_decoding(monkeypatch)
    code, out, err = run_cli(capsys, "predict", "sdss400", data, "--out", tmp_path / "p.csv", "--device", "cpu")
    assert code == 2 and not (tmp_path / "p.csv").exists()
    line = err.strip().splitlines()[-1]
    assert "legacy ls-dr10 grz" in line and "sdss400" in line and "sdss gri" in line
    assert "--allow-other-survey for a transfer experiment (its rows are flagged)" in line


def test_the_models_own_survey_and_an_unrecorded_one_predict_as_before(tmp_path, monkeypatch, legacy_bundle):
    data = make_tiny_dataset(tmp_path / "set")
    model = load_model(legacy_bundle)
    ds = load_dataset(data, targets=[], cache=False)
    plain = predict_dataset(model, ds, tta=False, device="cpu")  # records nothing: not compared
    assert Flag.OTHER_SURVEY.name not in plain.attrs["flag_checks"] and "other_survey" not in plain.attrs
    _records(monkeypatch, LEGACY)
    own = predict_dataset(model, ds, tta=False, device="cpu")
    assert Flag.OTHER_SURVEY.name in own.attrs["flag_checks"]
    assert not (own[FLAGS] & int(Flag.OTHER_SURVEY)).any()


def test_allowed_other_survey_warns_once_and_flags_every_row(tmp_path, monkeypatch, legacy_bundle, caplog):
    data = make_tiny_dataset(tmp_path / "sdss_set")
    _records(monkeypatch, SDSS)
    model = load_model(legacy_bundle)
    ds = load_dataset(data, targets=[], cache=False)
    with pytest.raises(DataError, match="images are sdss gri jpeg; the model .* legacy ls-dr10 grz jpeg images"):
        predict_dataset(model, ds, tta=False, device="cpu")
    with caplog.at_level(logging.WARNING, logger="galmet.nn.inference"):
        model.check_dataset_imaging(data, allow_other_survey=True)
        table = predict_dataset(model, ds, tta=False, device="cpu", allow_other_survey=True)
    warned = [r for r in caplog.records if "OTHER_SURVEY" in r.getMessage()]
    assert len(warned) == 1
    assert (table[FLAGS] & int(Flag.OTHER_SURVEY) != 0).all() and len(table) == 24
    assert table.attrs["other_survey"].startswith("images are sdss gri jpeg; the model ")


def test_predict_cli_with_the_override_records_and_counts_the_flag(
    tmp_path, monkeypatch, legacy_bundle, capsys, caplog
):
    data = make_tiny_dataset(tmp_path / "sdss_set")
    _records(monkeypatch, SDSS)
    out = tmp_path / "p.parquet"
    argv = ("predict", legacy_bundle, data, "--out", out, "--device", "cpu", "--no-tta", "--no-cache")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "--allow-other-survey" in err and not out.exists()
    code, _, err = run_cli(capsys, *argv, "--survey", "sdss")  # (what a dataset is, its record says)
    assert code == 2 and "--survey applies to sky positions only" in err
    caplog.clear()
    code, stdout, _ = run_cli(capsys, *argv, "--allow-other-survey")
    assert code == 0
    assert sum("every row is flagged OTHER_SURVEY" in r.getMessage() for r in caplog.records) == 1  # one warning
    table = read_table(out)
    assert (table[FLAGS] & int(Flag.OTHER_SURVEY) != 0).all()
    assert table.attrs["provenance"]["other_survey"].startswith("images are sdss gri jpeg")
    assert "OTHER_SURVEY 24" in stdout


def test_embed_refuses_and_with_the_override_records(tmp_path, monkeypatch, legacy_bundle, capsys):
    from galmet.runs.embed import embedding_table

    data = make_tiny_dataset(tmp_path / "sdss_set")
    _records(monkeypatch, SDSS)
    code, _, err = run_cli(capsys, "embed", legacy_bundle, data, "--out", tmp_path / "e.csv", "--device", "cpu")
    assert code == 2 and "--allow-other-survey" in err and "sdss gri" in err
    table = embedding_table(legacy_bundle, data, tmp_path / "e.parquet", device="cpu", allow_other_survey=True)
    assert table.attrs["other_survey"].startswith("images are sdss gri jpeg")
    assert read_table(tmp_path / "e.parquet").attrs["provenance"]["other_survey"] == table.attrs["other_survey"]


def test_explain_refuses_another_survey(tmp_path, monkeypatch, legacy_bundle, capsys):
    pytest.importorskip("captum")
    pytest.importorskip("matplotlib")
    data = make_tiny_dataset(tmp_path / "sdss_set", split=True)
    _records(monkeypatch, SDSS)
    _no_decoding(monkeypatch)
    code, _, err = run_cli(capsys, "explain", legacy_bundle, data, "--out", tmp_path / "x", "--device", "cpu")
    assert code == 2 and "--allow-other-survey" in err and "images are sdss gri jpeg" in err
    assert not (tmp_path / "x").exists()


def test_sdss400_refuses_a_download_whose_manifest_says_legacy(tmp_path, capsys):
    """No stand-in for the record: a download manifest with survey columns (galmet download --survey legacy)."""
    from galmet.sdss.download import ManifestRecord, write_manifest

    data = make_tiny_dataset(tmp_path / "legacy_download", size=128, n=4)
    ids = pd.read_parquet(data / "catalog.parquet")["objID"].tolist()
    records = {
        int(i): ManifestRecord(int(i), "ok", 1, "", False, 10, 128, 0.262, survey="legacy", layer="ls-dr10")
        for i in ids
    }
    write_manifest(data / "manifest.parquet", records)
    out = tmp_path / "p.csv"
    code, _, err = run_cli(capsys, "predict", "sdss400", data, "--out", out, "--device", "cpu", "--no-tta")
    line = err.strip().splitlines()[-1]
    assert code == 2 and not out.exists() and len(err.strip().splitlines()) == 1
    assert f"{data}: images are legacy ls-dr10 grz jpeg; the model sdss400 was trained on sdss gri jpeg images" in line


def _transfer_predictions(tmp_path, monkeypatch, legacy_bundle) -> tuple:
    """A predictions table of SDSS images by the Legacy model (allowed, flagged), with the truth."""
    data = make_tiny_dataset(tmp_path / "sdss_set")
    _records(monkeypatch, SDSS)
    model = load_model(legacy_bundle)
    table = predict_dataset(model, load_dataset(data, targets=[], cache=False), tta=False, allow_other_survey=True)
    table["oh_p50"] = pd.read_parquet(data / "catalog.parquet")["oh_p50"].to_numpy()
    table["split"] = "valid"  # (held-out rows: what a calibration takes)
    preds = tmp_path / "transfer.parquet"
    provenance = {**table_provenance(model=legacy_bundle), "other_survey": table.attrs["other_survey"]}
    write_table(table, preds, provenance=provenance)
    return data, preds


def test_calibrate_on_another_surveys_predictions_needs_the_override(tmp_path, monkeypatch, legacy_bundle, capsys):
    from galmet.runs.calibrate import calibrate_bundle

    data, preds = _transfer_predictions(tmp_path, monkeypatch, legacy_bundle)
    code, _, err = run_cli(capsys, "calibrate", legacy_bundle, preds, "--out", tmp_path / "c.pt", "--split", "all")
    assert code == 2 and "--allow-other-survey" in err and "changes what the model's intervals mean" in err
    assert not (tmp_path / "c.pt").exists()
    calibrate_bundle(legacy_bundle, preds, tmp_path / "c.pt", split=None, allow_other_survey=True)
    cal = load_model(tmp_path / "c.pt").calibrations["oh_p50"]
    assert cal.source["other_survey"].startswith("images are sdss gri jpeg")


def test_calibrate_reference_of_another_survey_is_refused(tmp_path, monkeypatch, legacy_bundle):
    from galmet.runs.calibrate import calibrate_bundle

    data, preds = _transfer_predictions(tmp_path, monkeypatch, legacy_bundle)
    table = read_table(preds)
    table[FLAGS] = np.zeros(len(table), dtype=np.int64)  # predictions of its own survey
    own = tmp_path / "own.parquet"
    write_table(table, own, provenance=table_provenance(model=legacy_bundle))
    with pytest.raises(DataError, match="allow_other_survey") as err:
        calibrate_bundle(legacy_bundle, own, tmp_path / "c.pt", split=None, reference=data)
    assert "images are sdss gri jpeg" in str(err.value) and not (tmp_path / "c.pt").exists()


def test_sdss400_refuses_galmet_synth_survey_legacy(tmp_path, capsys):
    """End to end: ``galmet synth --survey legacy`` records its survey in synth_config.yaml."""
    data = tmp_path / "synth_legacy"
    argv = ("synth", "--n", 6, "--out", data, "--size", 32, "--survey", "legacy", "--no-progress")
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert load_dataset(data, targets=[], load_images=False).imaging.survey == "legacy"
    out = tmp_path / "p.csv"
    code, _, err = run_cli(capsys, "predict", "sdss400", data, "--out", out, "--device", "cpu", "--no-tta")
    assert code == 2 and not out.exists()
    assert f"{data}: images are legacy grz jpeg; the model sdss400 was trained on sdss gri jpeg images" in err
