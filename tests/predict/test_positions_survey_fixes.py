"""Positions runs of survey-aware models: a transfer run fetches at the model's own pixel scale
(its survey's default when the bundle records none), kept FITS cutouts form a usable dataset, a
FITS model of a survey that serves no FITS is refused in one line, and a faint FITS cutout is
predicted (outside the footprint is decided on the fluxes)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from astropy.table import QTable

import survey_servers
from conftest import run_cli
from faulty_server import FaultyServer, key_of
from galmet.columns import STATUS, STATUS_BLANK, STATUS_NOT_IN_ARCHIVE, STATUS_OK
from galmet.data.imaging import Imaging
from galmet.data.stretch import default_stretch
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_write_bytes
from galmet.io.fits_images import encode_fits, read_fits, read_fits_header
from galmet.layout import CATALOG_PARQUET, IMAGES_DIR
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.net import build_model
from galmet.predict.positions import BLANK_RANGE, PositionsJob, PositionsOptions, fetch_settings, predict_positions
from galmet.sdss.coords import sky_positions
from survey_servers import LEGACY_FITS, LEGACY_JPEG, SurveyServer

RA = np.array([150.1, 150.2, 150.3])
DEC = np.array([2.1, 2.2, 2.3])


def _bundle(tmp_path, name: str, **imaging_fields) -> object:
    """A tiny untrained 16 px bundle whose imaging is ``imaging_fields`` (survey, bands, format ...)."""
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    base = Imaging(16, pixel_scale=0.262, fetch_size=16, data_release=None).to_dict()
    imaging = Imaging.from_dict({**base, **imaging_fields})
    meta = {"targets": ["oh_p50"], "image_size": 16, "imaging": imaging.to_dict()}
    return save_bundle(tmp_path / name / "model.pt", net, meta)


@pytest.fixture
def legacy_fits(tmp_path):
    """A 16 px Legacy Surveys ls-dr10 grz FITS model at 0.262 arcsec/px."""
    return _bundle(tmp_path, "legacy_fits", survey="legacy", layer="ls-dr10", bands="grz", format="fits")


def _positions_file(tmp_path, ra=RA, dec=DEC):
    path = tmp_path / "targets.csv"
    path.write_text("ra,dec\n" + "".join(f"{r},{d}\n" for r, d in zip(ra, dec, strict=True)))
    return path


# --- defect 3: a transfer run fetches at the model's own pixel scale --------------------------
def test_a_transfer_of_a_model_without_a_recorded_scale_fetches_at_its_own_surveys_default(caplog):
    model = load_model("sdss400")
    assert model.imaging.pixel_scale is None  # (the shipped bundle records none)
    with caplog.at_level(logging.INFO, logger="galmet.predict.positions"):
        legacy = fetch_settings(model, survey="legacy")
    assert (legacy.survey, legacy.scale, legacy.size) == ("legacy", 0.296, 128)  # not Legacy's own 0.262
    assert "fetching legacy jpeg cutouts of 128 px at 0.296 arcsec/pixel" in caplog.text
    assert "the model records none: its survey sdss's default" in caplog.text
    with pytest.raises(ConfigError, match=r"pixel scale \(the bundle records none: sdss's default\) is 0.296"):
        fetch_settings(model, survey="ps1")  # PS1 cuts at 0.25 only: no silent change of scale


def test_cli_transfer_of_sdss400_requests_the_models_scale_and_says_so(tmp_path, capsys, caplog):
    out = tmp_path / "pred.ecsv"
    argv = ["predict", "sdss400", "--positions", _positions_file(tmp_path, RA[:1], DEC[:1]), "--out", out]
    argv += ["--survey", "legacy", "--allow-other-survey", "--rate", "0", "--device", "cpu", "--no-tta"]
    with SurveyServer() as srv, caplog.at_level(logging.INFO, logger="galmet.predict.positions"):
        code, _, err = run_cli(capsys, *argv, "--base-url", srv.url)
    assert code == 0, err
    assert [(p, q["pixscale"], q["size"]) for p, q in srv.requests] == [(LEGACY_JPEG, "0.296", "128")]
    assert "at 0.296 arcsec/pixel (the model records none: its survey sdss's default)" in caplog.text
    assert QTable.read(out).meta["pixel_scale"] == pytest.approx(0.296)


# --- defect 4: kept FITS cutouts are a dataset and an archive -----------------------------------
@pytest.mark.parametrize("work", ["given", "temporary"])
def test_kept_fits_cutouts_are_a_dataset_and_a_reusable_archive(tmp_path, capsys, legacy_fits, work):
    kept = tmp_path / "kept"
    coords = QTable({"ra": RA, "dec": DEC})
    out = tmp_path / "first.ecsv" if work == "given" else None  # (out: a work folder beside it)
    with SurveyServer(plans={key_of(RA[1], DEC[1]): ["blank"]}) as srv:
        first = predict_positions(
            legacy_fits, coords, out=out, base_url=srv.url, keep_cutouts=kept, device="cpu", rate=0, tta=False
        )
    assert list(first[STATUS]) == [STATUS_OK, STATUS_BLANK, STATUS_OK]
    assert sorted(p.suffix for p in (kept / IMAGES_DIR).glob("[!.]*")) == [".fits"] * 2
    assert len(QTable.read(kept / CATALOG_PARQUET)) == 2  # every kept cutout is catalogued, and only those
    code, _, err = run_cli(capsys, "info", kept)
    assert code == 0, err
    # the kept folder as the next run's archive: nothing fetched; a FITS of zero flux there is blank sky
    blank = sorted((kept / IMAGES_DIR).glob("*.fits"))[0]
    zeros = np.zeros_like(read_fits(blank, 16, 3))
    blank.write_bytes(encode_fits(zeros, read_fits_header(blank).meta))  # (its header as it was)
    again = predict_positions(legacy_fits, coords, archive=kept, device="cpu", tta=False)
    status = np.asarray(again[STATUS])
    assert status[1] == STATUS_NOT_IN_ARCHIVE  # (blank sky: never kept)
    assert sorted(status[[0, 2]]) == [STATUS_OK, STATUS_BLANK]
    ok = status == STATUS_OK
    np.testing.assert_allclose(np.asarray(again["oh_p50_pred"])[ok], np.asarray(first["oh_p50_pred"])[ok], rtol=1e-5)


def test_the_cleanup_removes_fits_cutouts_left_in_the_work_folder(tmp_path, legacy_fits):
    work = tmp_path / "work"
    positions = sky_positions(QTable({"ra": RA, "dec": DEC}))
    with SurveyServer() as srv:
        job = PositionsJob(load_model(legacy_fits), positions, PositionsOptions(work_dir=work, base_url=srv.url))
        job.opts.download.rate = 0
        job.run()
    left = work / "cutouts" / IMAGES_DIR / f"{int(job.keys[0])}.fits"  # (as an interrupted shard leaves one)
    atomic_write_bytes(left, encode_fits(np.ones((3, 16, 16), np.float32)))  # (galmet's own file)
    job.cleanup()
    assert not work.exists()


# --- defect 7: a FITS model of a survey that serves no FITS ------------------------------------
def test_an_sdss_fits_model_at_positions_is_refused_in_one_line_naming_the_model(tmp_path, capsys):
    bundle = _bundle(tmp_path, "sdss_fits", survey="sdss", bands="gri", format="fits", pixel_scale=0.396)
    argv = ["predict", bundle, "--positions", _positions_file(tmp_path), "--out", tmp_path / "p.csv"]
    with FaultyServer() as srv:
        code, _, err = run_cli(capsys, *argv, "--base-url", srv.url, "--rate", "0", "--device", "cpu")
        assert not srv.counts  # refused before any request
    line = err.strip().splitlines()[-1]
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert line == (
        f"galmet predict: error: {bundle}: the model was trained on sdss fits fluxes; SkyServer serves sdss "
        "cutouts as jpeg only, so it cannot predict at sky positions (predict a FITS dataset instead)"
    )
    assert "--format" not in line
    with pytest.raises(ConfigError, match="--format|format: sdss cutouts come as jpeg, not 'fits'"):
        fetch_settings(load_model(bundle), format="fits")  # one the user asks for: named as before


# --- defect 8: a faint FITS cutout is predicted, blank sky is decided on the fluxes --------------
def test_a_faint_fits_cutout_is_predicted_not_called_outside_the_footprint(tmp_path, monkeypatch, legacy_fits):
    bright = survey_servers.fake_flux
    monkeypatch.setattr(survey_servers, "fake_flux", lambda key, size, band: bright(key, size, band) * 1e-3)
    faint = np.stack([survey_servers.fake_flux(key_of(RA[0], DEC[0]), 16, b) for b in range(3)])
    stretched = default_stretch("legacy").apply(faint)
    assert int(stretched.max()) - int(stretched.min()) <= BLANK_RANGE  # dark as blank sky once stretched
    coords = QTable({"ra": RA, "dec": DEC})
    with SurveyServer(plans={key_of(RA[1], DEC[1]): ["blank"]}) as srv:
        table = predict_positions(legacy_fits, coords, base_url=srv.url, device="cpu", rate=0, tta=False)
    assert {p for p, _ in srv.requests} == {LEGACY_FITS}
    assert list(table[STATUS]) == [STATUS_OK, STATUS_BLANK, STATUS_OK]  # (zero flux: the source's own test)
    assert np.isfinite(np.asarray(table["oh_p50_pred"])[[0, 2]]).all()
