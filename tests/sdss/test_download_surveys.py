"""galmet download --survey legacy|ps1: the generalised downloader against the loopback survey stand-ins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, snapshot
from faulty_server import key_of, make_catalog
from galmet.data.imaging import recorded_imaging
from galmet.io.atomic import atomic_write_bytes
from galmet.io.fits_images import read_fits, read_fits_header
from galmet.io.images import read_image
from galmet.io.tables import read_table, write_table
from galmet.sdss.download import (
    SDSS_MANIFEST_COLUMNS,
    DownloadOptions,
    _galmet_manifest,
    download_cutouts,
    load_manifest,
)
from survey_servers import LEGACY_FITS, LEGACY_JPEG, PS1_FILENAMES, PS1_FITSCUT, SurveyServer
from survey_servers import download_args as cli
from survey_servers import download_options as options


def test_download_survey_legacy_on_an_sdss_catalogue_with_one_row_outside_the_footprint(tmp_path, capsys):
    """The cross-survey training set: SDSS objIDs, ra, dec and labels; Legacy Surveys JPEGs."""
    cat = make_catalog(tmp_path, 6)
    outside = int(cat.objID[2])
    plans = {key_of(cat.ra[2], cat.dec[2]): ["blank"]}
    with SurveyServer(plans=plans) as srv:
        code, out, err = run_cli(capsys, *cli(tmp_path, srv.url, "--survey", "legacy", "--max-failures", "0"))
        assert set(srv.paths()) == {LEGACY_JPEG} and len(srv.requests) == 6
        layers = {q["layer"] for _, q in srv.requests}
        scales = {q["pixscale"] for _, q in srv.requests}
    assert code == 0, err  # outside the footprint is no server failure: --max-failures 0 holds
    assert "5 ok, 1 failed" in out and "1 outside footprint" in out
    assert layers == {"ls-dr10"} and scales == {"0.262"}  # the survey's default layer and scale
    for oid in cat.objID:
        assert (tmp_path / "images" / f"{oid}.jpg").exists() is (oid != outside)
    manifest = read_table(tmp_path / "manifest.parquet")
    row = manifest.set_index("objID").loc[outside]
    assert (row.status, row.last_error.startswith("outside footprint"), bool(row.permanent)) == ("failed", True, True)
    assert (
        set(manifest.survey) == {"legacy"} and set(manifest.layer) == {"ls-dr10"} and set(manifest.format) == {"jpeg"}
    )
    imaging = recorded_imaging(tmp_path)
    assert (imaging.survey, imaging.layer, imaging.format, imaging.bands) == ("legacy", "ls-dr10", "jpeg", "grz")
    assert imaging.pixel_scale == pytest.approx(0.262)


def test_legacy_fits_then_a_rerun_fetches_nothing_and_keeps_the_outside_row_failed(tmp_path):
    cat = make_catalog(tmp_path, 4)
    plans = {key_of(cat.ra[0], cat.dec[0]): ["blank"]}
    with SurveyServer(plans=plans) as srv:
        s = download_cutouts(tmp_path, options(srv.url, survey="legacy", format="fits", layer="ls-dr9-south"))
        assert (s.ok, s.failed, s.outside) == (3, 1, 1) and set(srv.paths()) == {LEGACY_FITS}
        cube = read_fits(tmp_path / "images" / f"{cat.objID[1]}.fits", 16, bands=3)
        assert cube.dtype == np.float32 and cube.shape == (3, 16, 16)
        meta = read_fits_header(tmp_path / "images" / f"{cat.objID[1]}.fits").meta
        assert (meta["SURVEY"], meta["LAYER"], meta["BANDS"]) == ("legacy", "ls-dr9-south", "grz")
        n = len(srv.requests)
        again = download_cutouts(tmp_path, options(srv.url, survey="legacy", format="fits", layer="ls-dr9-south"))
        assert len(srv.requests) == n  # resumed: nothing fetched again
    assert (again.present, again.failed_before, again.to_fetch) == (3, 1, 0)
    assert not list((tmp_path / "images").glob("*.jpg"))


def test_a_fits_cutout_on_disk_is_decoded_before_it_is_trusted(tmp_path):
    cat = make_catalog(tmp_path, 2)
    with SurveyServer() as srv:
        download_cutouts(tmp_path, options(srv.url, survey="legacy", format="fits"))
        atomic_write_bytes(tmp_path / "images" / f"{cat.objID[0]}.fits", b"SIMPLE  = T" + b" " * 100)  # broken
        s = download_cutouts(tmp_path, options(srv.url, survey="legacy", format="fits", verify=True))
    assert (s.ok, s.present) == (1, 1)
    assert read_fits(tmp_path / "images" / f"{cat.objID[0]}.fits", 16, bands=3).shape == (3, 16, 16)


def test_download_survey_ps1_goes_filenames_then_fitscut_into_fits_cutouts(tmp_path, capsys):
    cat = make_catalog(tmp_path, 3)
    with SurveyServer(filenames_plans={key_of(cat.ra[1], cat.dec[1]): ["norows"]}) as srv:
        code, out, err = run_cli(capsys, *cli(tmp_path, srv.url, "--survey", "ps1"))
        paths = srv.paths()
    assert code == 0, err
    assert paths.count(PS1_FILENAMES) == 3 and paths.count(PS1_FITSCUT) == 6  # 3 bands of the 2 inside
    assert "2 ok, 1 failed" in out and "1 outside footprint" in out
    fits = sorted(p.name for p in (tmp_path / "images").iterdir() if not p.name.startswith("."))
    assert fits == sorted(f"{oid}.fits" for oid in (cat.objID[0], cat.objID[2]))
    assert read_fits_header(tmp_path / "images" / fits[0]).meta["PIXSCALE"] == 0.25


def test_another_layer_of_the_same_catalogue_fetches_its_own_cutouts_into_a_folder_of_its_own(tmp_path):
    """(Over the first folder's cutouts it is refused: tests/sdss/test_download_other_survey.py.)"""
    cat = make_catalog(tmp_path, 2)
    south = tmp_path / "south"
    with SurveyServer() as srv:
        download_cutouts(tmp_path, options(srv.url, survey="legacy", layer="ls-dr9-north"))
        s = download_cutouts(
            south, options(srv.url, survey="legacy", layer="ls-dr9-south"), catalog=tmp_path / "catalog.parquet"
        )
        assert s.ok == 2 and [q["layer"] for _, q in srv.requests[-2:]] == ["ls-dr9-south"] * 2
    assert read_image(south / "images" / f"{cat.objID[0]}.jpg", 16).shape == (16, 16, 3)
    assert load_manifest(south / "manifest.parquet")[int(cat.objID[0])].layer == "ls-dr9-south"
    assert load_manifest(tmp_path / "manifest.parquet")[int(cat.objID[0])].layer == "ls-dr9-north"


@pytest.mark.parametrize(
    "first, second, had, asks",
    [
        (["--survey", "legacy"], ["--survey", "legacy", "--format", "fits"], "jpeg", "fits"),
        (["--survey", "ps1"], ["--survey", "legacy", "--format", "jpeg"], "fits", "jpeg"),
        (["--survey", "ps1", "--format", "jpeg"], ["--survey", "ps1"], "jpeg", "fits"),  # PS1's default: fits
    ],
)
def test_a_second_format_in_one_dataset_folder_is_refused_before_the_disk_is_touched(
    tmp_path, capsys, first, second, had, asks
):
    make_catalog(tmp_path, 2)
    with SurveyServer() as srv:
        code, _, err = run_cli(capsys, *cli(tmp_path, srv.url, *first))
        assert code == 0, err
        before, n = snapshot(tmp_path), len(srv.requests)
        code, _, err = run_cli(capsys, *cli(tmp_path, srv.url, *second))
        assert len(srv.requests) == n  # nothing asked of the server
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"dataset {tmp_path}: its manifest.parquet records {had} cutouts and --format is {asks}; " in err
    assert f"a dataset folder holds one image format: download the {asks} cutouts into another folder" in err
    assert snapshot(tmp_path) == before


def test_a_format_whose_every_fetch_failed_before_may_be_changed(tmp_path):
    cat = make_catalog(tmp_path, 2)
    plans = {key_of(cat.ra[i], cat.dec[i]): ["404"] for i in range(2)}
    with SurveyServer(plans=plans) as srv:
        first = download_cutouts(tmp_path, options(srv.url, survey="legacy"))
    assert first.ok == 0 and not list((tmp_path / "images").glob("*.jpg"))
    with SurveyServer() as srv:
        s = download_cutouts(tmp_path, options(srv.url, survey="legacy", format="fits", retry_failed=True))
    assert s.ok == 2 and {r.format for r in load_manifest(tmp_path / "manifest.parquet").values()} == {"fits"}


def test_a_manifest_from_before_surveys_reads_as_sdss_jpeg(tmp_path):
    path = tmp_path / "manifest.parquet"
    old = pd.DataFrame(
        {"objID": [5], "status": ["ok"], "attempts": [1], "last_error": [""], "permanent": [False], "bytes": [10],
         "size": [128], "scale": [0.296], "updated": [""]},
        columns=list(SDSS_MANIFEST_COLUMNS),
    )  # fmt: skip
    write_table(old, path)
    assert _galmet_manifest(path)
    rec = load_manifest(path)[5]
    assert (rec.survey, rec.layer, rec.format) == ("sdss", None, "jpeg")
    imaging = recorded_imaging(tmp_path)
    assert (imaging.survey, imaging.layer, imaging.format) == ("sdss", None, "jpeg")


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--format", "fits"], "--format: sdss cutouts come as jpeg, not 'fits'"),
        (["--survey", "ps1", "--layer", "ls-dr10"], "--layer: ps1 has no image layers"),
        (["--survey", "legacy", "--layer", "dr8"], "--layer: legacy layer must be one of ls-dr10"),
        (["--survey", "ps1", "--scale", "0.3"], "--scale: ps1 cutouts come at the native 0.25"),
        (["--survey", "legacy", "--data-release", "DR16"], "--data-release names an SDSS SkyServer"),
    ],
)
def test_options_the_survey_lacks_are_one_line_exit_2_before_the_disk_is_touched(tmp_path, capsys, extra, says):
    make_catalog(tmp_path, 2)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli(capsys, *cli(tmp_path, "http://127.0.0.1:9", *extra))
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_load_dataset_at_positions_takes_the_survey_names(tmp_path):
    import galmet

    frame = pd.DataFrame({"ra": [150.0, 150.01], "dec": [2.0, 2.01], "oh_p50": [8.7, 8.9]})
    with SurveyServer() as srv:
        ds = galmet.load_dataset(
            frame, cutouts=tmp_path / "cut", base_url=srv.url, survey="legacy", layer="ls-dr9-north", size=16, rate=0
        )
        query = srv.requests[0][1]
    assert srv.paths()[0] == LEGACY_JPEG
    assert (query["layer"], query["pixscale"], query["size"]) == ("ls-dr9-north", "0.262", "16")
    assert len(ds) == 2
    assert recorded_imaging(tmp_path / "cut").survey == "legacy"


def test_options_take_the_surveys_defaults_and_with_survey_resets_them():
    sdss = DownloadOptions(workers=3)
    assert (sdss.base_url, sdss.scale, sdss.size, sdss.format, sdss.layer) == (
        "https://skyserver.sdss.org/dr14",
        0.296,
        128,
        "jpeg",
        None,
    )
    legacy = sdss.with_survey("legacy", format="fits")
    assert (legacy.base_url, legacy.scale, legacy.layer, legacy.format, legacy.workers) == (
        "https://www.legacysurvey.org",
        0.262,
        "ls-dr10",
        "fits",
        3,
    )
    ps1 = legacy.with_survey("ps1", size=64)
    assert (ps1.base_url, ps1.scale, ps1.size, ps1.layer, ps1.format, ps1.suffix) == (
        "https://ps1images.stsci.edu",
        0.25,
        64,
        None,
        "fits",
        ".fits",
    )
    ps1.check()
    assert legacy.with_survey(layer="ls-dr9-north").format == "fits"  # the same survey keeps its own


def test_the_failure_budget_and_the_rate_limit_hold_for_every_source(tmp_path):
    import time

    make_catalog(tmp_path / "dead", 40)
    s = download_cutouts(tmp_path / "dead", options("http://127.0.0.1:9", survey="legacy", failure_budget=5, workers=2))
    assert s.aborted and s.stop_param == "failure_budget" and s.requests < 40  # an unreachable viewer stops the run
    make_catalog(tmp_path / "rate", 2)
    with SurveyServer() as srv:
        t0 = time.monotonic()
        s = download_cutouts(tmp_path / "rate", options(srv.url, survey="ps1", rate=20.0))
        elapsed = time.monotonic() - t0
    assert s.ok == 2 and s.requests == 8 and len(srv.requests) == 8  # every PS1 request counts toward the rate
    assert elapsed >= 7 / 20 * 0.9
