"""Positions fetch with the model's own survey, layer, pixel scale, size and format; blank sky is
its own status; another survey's cutouts need the override (a transfer experiment, rows flagged)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from astropy.table import QTable

from conftest import run_cli
from faulty_server import FaultyServer, fake_image
from galmet.catalog.work import WorkFolder
from galmet.columns import FLAGS, STATUS, STATUS_BLANK, STATUS_OK, Flag
from galmet.data.imaging import Imaging
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_write_text
from galmet.io.fits_images import encode_fits
from galmet.io.images import encode_jpeg
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.net import build_model
from galmet.predict.positions import POSITIONS_CUTOUTS_MARKER, PositionsJob, PositionsOptions, fetch_settings
from galmet.sdss.coords import sky_positions

RA = np.array([150.1, 150.2, 150.3, 150.4])
DEC = np.array([2.1, 2.2, 2.3, 2.4])
#: Positions (rounded as the request says them) where the stand-in answers blank sky.
OUTSIDE = {f"{RA[2]:.8f},{DEC[2]:.8f}"}


class LegacyViewer:
    """A loopback stand-in of the Legacy Survey viewer's ``/viewer/cutout.jpg``: a blob JPEG of
    the requested size, or (at :data:`OUTSIDE` positions) uniformly black blank sky; every query
    is kept in ``queries``."""

    def __init__(self) -> None:
        self.queries: list[dict] = []
        viewer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                parsed = urllib.parse.urlparse(self.path)
                q = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                viewer.queries.append({"path": parsed.path, **q})
                if parsed.path not in ("/viewer/cutout.jpg", "/viewer/cutout.fits"):
                    self.send_error(404)
                    return
                size, key = int(q["size"]), f"{q['ra']},{q['dec']}"
                image = np.zeros((size, size, 3), np.uint8) if key in OUTSIDE else fake_image(key, size, size)
                if parsed.path.endswith(".fits"):  # (bands g, r, z, bluest first, in nanomaggies)
                    body = encode_fits(image[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 50.0)
                else:
                    body = encode_jpeg(image, 90)
                self.send_response(200)
                self.send_header("Content-Type", "image/fits" if parsed.path.endswith(".fits") else "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LegacyViewer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def legacy_bundle(tmp_path):
    """A tiny untrained bundle of 16 px Legacy Surveys ls-dr9-south grz JPEGs at 0.262 arcsec/px."""
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    imaging = Imaging(16, pixel_scale=0.262, fetch_size=16, data_release=None, bands="grz", survey="legacy")
    imaging = Imaging.from_dict({**imaging.to_dict(), "layer": "ls-dr9-south"})
    return save_bundle(
        tmp_path / "legacy" / "model.pt", net, {"targets": ["oh_p50"], "image_size": 16, "imaging": imaging.to_dict()}
    )


def _positions_file(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("ra,dec\n" + "".join(f"{r},{d}\n" for r, d in zip(RA, DEC, strict=True)))
    return path


def test_fetch_settings_follow_the_models_survey(legacy_bundle):
    legacy = fetch_settings(load_model(legacy_bundle))
    assert (legacy.survey, legacy.layer, legacy.format, legacy.size, legacy.scale) == (
        "legacy",
        "ls-dr9-south",
        "jpeg",
        16,
        0.262,
    )
    assert legacy.base_url == "https://www.legacysurvey.org" and legacy.data_release == ""
    sdss = fetch_settings(load_model("sdss400"))
    assert (sdss.survey, sdss.layer, sdss.format, sdss.size, sdss.data_release) == ("sdss", None, "jpeg", 128, "DR14")
    other = fetch_settings(
        load_model(legacy_bundle), survey="sdss"
    )  # a transfer experiment: the model's scale and size
    assert (other.survey, other.layer, other.scale, other.size) == ("sdss", None, 0.262, 16)
    assert fetch_settings(load_model(legacy_bundle), layer="ls-dr10").layer == "ls-dr10"
    with pytest.raises(ConfigError, match="layer"):
        fetch_settings(load_model(legacy_bundle), layer="dr99")


def test_cli_positions_fetch_the_models_layer_scale_and_size_and_blank_sky_is_outside_footprint(
    tmp_path, capsys, legacy_bundle
):
    out = tmp_path / "pred.ecsv"
    with LegacyViewer() as viewer:
        code, stdout, err = run_cli(
            capsys,
            "predict",
            legacy_bundle,
            "--positions",
            _positions_file(tmp_path),
            "--base-url",
            viewer.url,
            "--out",
            out,
            "--rate",
            "0",
            "--device",
            "cpu",
            "--no-tta",
        )
    assert code == 0, err
    assert {q["path"] for q in viewer.queries} == {"/viewer/cutout.jpg"} and len(viewer.queries) == 4
    assert {(q["layer"], q["pixscale"], q["size"]) for q in viewer.queries} == {("ls-dr9-south", "0.262", "16")}
    table = QTable.read(out)
    assert list(table[STATUS]) == [STATUS_OK, STATUS_OK, STATUS_BLANK, STATUS_OK]
    assert not np.isfinite(np.asarray(table["oh_p50_pred"][2], dtype=float))
    assert (table.meta["survey"], table.meta["layer"], table.meta["image_format"]) == ("legacy", "ls-dr9-south", "jpeg")
    assert "other_survey" not in table.meta
    assert not (np.asarray(table[FLAGS])[[0, 1, 3]] & int(Flag.OTHER_SURVEY)).any()
    assert "1 outside footprint" in stdout and "3 of 4 rows predicted" in stdout


def test_another_surveys_positions_need_the_override_and_are_flagged(tmp_path, capsys, legacy_bundle):
    csv, ecsv = tmp_path / "pred.csv", tmp_path / "pred.ecsv"
    argv = ["predict", legacy_bundle, "--positions", _positions_file(tmp_path), "--survey", "sdss"]
    argv += ["--rate", "0", "--device", "cpu", "--no-tta"]
    with FaultyServer() as srv:
        code, _, err = run_cli(capsys, *argv, "--base-url", srv.url, "--out", csv)
        assert code == 2 and not csv.exists() and not srv.counts  # refused before any request
        line = err.strip().splitlines()[-1]
        assert "error: positions: images are sdss gri jpeg; the model " in line
        assert "legacy ls-dr9-south grz jpeg images; fetch the model's own (without survey)" in line
        assert "or --allow-other-survey for a transfer experiment (its rows are flagged)" in line
        code, stdout, err = run_cli(capsys, *argv, "--base-url", srv.url, "--out", ecsv, "--allow-other-survey")
        assert code == 0, err
        assert len(srv.counts) == 4  # SkyServer's ImgCutout, at the model's scale and size
        assert {(q["scale"], q["width"]) for _, _, _, q in srv.log} == {("0.262", "16")}
    table = QTable.read(ecsv)
    assert (np.asarray(table[FLAGS]) & int(Flag.OTHER_SURVEY) != 0).all()
    assert table.meta["other_survey"].startswith("images are sdss gri jpeg") and table.meta["survey"] == "sdss"
    assert "OTHER_SURVEY 4" in stdout


def test_a_work_folder_of_another_survey_is_not_resumed(tmp_path, legacy_bundle):
    model = load_model(legacy_bundle)
    positions = sky_positions(QTable({"ra": RA, "dec": DEC}))
    work = tmp_path / "work"
    first = PositionsJob(model, positions, PositionsOptions(work_dir=work))
    work.mkdir()
    atomic_write_text(work / "positions-run.json", json.dumps(first.settings()))  # (as galmet writes it)
    PositionsJob(model, positions, PositionsOptions(work_dir=work)).check()  # the same run resumes
    other = PositionsOptions(work_dir=work, survey="sdss", allow_other_survey=True)
    with pytest.raises(ConfigError, match="holds an unfinished run with another fetch"):
        PositionsJob(model, positions, other).check()
    layer = PositionsOptions(work_dir=work, layer="ls-dr10", allow_other_survey=True)
    with pytest.raises(ConfigError, match="another fetch"):
        PositionsJob(model, positions, layer).check()
    fits = PositionsOptions(work_dir=work, format="fits", allow_other_survey=True)  # JPEGs fetched: no mixed folder
    with pytest.raises(ConfigError, match="holds an unfinished run with another fetch"):
        PositionsJob(model, positions, fits).check()


def test_kept_cutouts_of_another_format_are_not_reused(tmp_path, legacy_bundle):
    model = load_model(legacy_bundle)
    positions = sky_positions(QTable({"ra": RA, "dec": DEC}))
    keep = tmp_path / "cutouts"
    first = PositionsJob(model, positions, PositionsOptions(keep_cutouts=keep))
    keep.mkdir()
    marker = {"fetch": asdict(first.fetch), "fingerprint": first.fingerprint(), "keys": first.key_kind}
    atomic_write_text(keep / POSITIONS_CUTOUTS_MARKER, json.dumps(marker))  # (as galmet writes it)
    PositionsJob(model, positions, PositionsOptions(keep_cutouts=keep)).check()  # the same cutouts are reused
    fits = PositionsOptions(keep_cutouts=keep, format="fits", allow_other_survey=True)
    with pytest.raises(ConfigError, match=r"holds the cutouts of other positions or another imaging; choose another"):
        PositionsJob(model, positions, fits).check()


def test_a_catalogue_job_records_its_survey_and_one_from_before_surveys_reads_as_sdss(tmp_path, legacy_bundle):
    from galmet.catalog.run import _settings
    from galmet.nn.inference import InferenceOptions

    keywords = {"options": InferenceOptions(), "flags": True}
    legacy = _settings(load_model(legacy_bundle), keywords, "f", 4, "rows", 10)
    assert legacy["imaging"] == {"survey": "legacy", "layer": "ls-dr9-south", "format": "jpeg"}
    sdss = _settings(load_model(legacy_bundle), {**keywords, "survey": "sdss"}, "f", 4, "rows", 10)
    assert sdss["imaging"] == {"survey": "sdss", "layer": None, "format": "jpeg"}
    work = WorkFolder(tmp_path / "job")
    work.root.mkdir()
    before = {k: v for k, v in sdss.items() if k != "imaging"}  # a job stored before galmet knew surveys
    work.run_file.write_text(json.dumps(before))
    work.check_same(sdss)
    with pytest.raises(ConfigError, match="another survey"):
        work.check_same(legacy)


def test_positions_of_a_fits_model_fetch_cutout_fits_through_its_stretch(tmp_path, legacy_bundle):
    from galmet.predict.positions import predict_positions

    model = load_model(legacy_bundle)
    model.meta["imaging"] = {**model.meta["imaging"], "format": "fits"}  # trained on the viewer's FITS fluxes
    coords = QTable({"ra": RA, "dec": DEC})
    with LegacyViewer() as viewer:
        table = predict_positions(model, coords, base_url=viewer.url, device="cpu", rate=0, tta=False)
    assert {q["path"] for q in viewer.queries} == {"/viewer/cutout.fits"}
    assert {(q["bands"], q["layer"], q["size"]) for q in viewer.queries} == {("grz", "ls-dr9-south", "16")}
    assert list(table[STATUS]) == [STATUS_OK, STATUS_OK, STATUS_BLANK, STATUS_OK]
    assert table.meta["image_format"] == "fits" and np.isfinite(np.asarray(table["oh_p50_pred"][[0, 1, 3]])).all()


def test_synth_legacy_train_then_positions_fetch_its_own_cutouts(tmp_path, capsys):
    """The issue's path: galmet synth --survey legacy -> train -> predict MODEL --positions FILE
    --base-url ROOT fetches the viewer's cutout.jpg with the model's layer, pixel scale and size."""
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    data = tmp_path / "synth_legacy"
    argv = ("synth", "--n", 16, "--out", data, "--size", 32, "--survey", "legacy", "--no-progress")
    assert run_cli(capsys, *argv)[0] == 0
    tiny = dict(arch="resnet18", weights="none", batch_size=8, progress=False, frozen_epochs=0, cycles=[1])
    bundle = train(data, tmp_path / "run", TrainConfig(**tiny)).bundle_path
    model = load_model(bundle)
    assert (model.imaging.survey, model.imaging.bands) == ("legacy", "grz")  # training recorded the synth's survey
    out = tmp_path / "pred.ecsv"
    with LegacyViewer() as viewer:
        argv = ("predict", bundle, "--positions", _positions_file(tmp_path), "--base-url", viewer.url, "--out", out)
        code, _, err = run_cli(capsys, *argv, "--rate", "0", "--device", "cpu", "--no-tta")
    assert code == 0, err
    scale = f"{model.imaging.pixel_scale:.6g}"
    assert {(q["path"], q["layer"], q["pixscale"], q["size"]) for q in viewer.queries} == {
        ("/viewer/cutout.jpg", "ls-dr10", scale, "32")
    }
    assert list(QTable.read(out)[STATUS]) == [STATUS_OK, STATUS_OK, STATUS_BLANK, STATUS_OK]
