"""A permanent failure is one request's: another survey, layer, size or scale fetches the row again."""

from __future__ import annotations

import pytest

from conftest import run_cli
from faulty_server import key_of, make_catalog
from galmet.errors import ConfigError
from galmet.sdss.download import download_cutouts, load_manifest
from survey_servers import SurveyServer
from survey_servers import download_options as options


def requests_for(srv: SurveyServer, ra, dec) -> int:
    """Requests the server got for the position (every route)."""
    return sum(n for (_, key), n in srv.counts.items() if key == key_of(ra, dec))


def record(root, oid):
    return load_manifest(root / "manifest.parquet")[int(oid)]


def test_a_legacy_outside_footprint_row_is_fetched_when_the_folder_then_downloads_ps1(tmp_path, capsys):
    """A folder whose rows only failed holds no survey's cutouts: it may switch (the rows are fetched)."""
    cat = make_catalog(tmp_path, 3)
    outside = int(cat.objID[0])
    with SurveyServer(default_plan=("blank",)) as srv:
        first = download_cutouts(tmp_path, options(srv.url, survey="legacy"))
    assert (first.ok, first.outside) == (0, 3)
    before = record(tmp_path, outside)
    assert (before.status, before.permanent, before.survey) == ("failed", True, "legacy")
    argv = ["download", tmp_path, "--base-url", None, "--survey", "ps1", "--format", "jpeg", "--size", "16"]
    argv += ["--rate", "0", "--timeout", "2", "--no-progress"]
    with SurveyServer() as srv:
        code, out, err = run_cli(capsys, *[srv.url if a is None else a for a in argv])
        sent = requests_for(srv, cat.ra[0], cat.dec[0])
    assert code == 0, err
    assert "3 ok, 0 failed" in out and "0 failed before" in out and "--retry-failed" not in out + err
    after = record(tmp_path, outside)
    assert (after.status, after.survey, after.format) == ("ok", "ps1", "jpeg")
    assert sent == 2 and after.attempts == before.attempts + sent  # filenames + fitscut; the count kept
    assert (tmp_path / "images" / f"{outside}.jpg").is_file()


def test_ls_dr9_north_then_south_fetches_the_rows_north_had_no_imaging_for(tmp_path):
    """North gave no cutout (all outside its footprint): the folder may switch to south, which
    fetches them. (Over north's cutouts, south is refused: tests/sdss/test_download_other_survey.py.)"""
    cat = make_catalog(tmp_path, 3)
    key = key_of(cat.ra[1], cat.dec[1])
    with SurveyServer(plans={key: ["blank", "ok"]}, default_plan=("blank", "ok")) as srv:
        north = download_cutouts(tmp_path, options(srv.url, survey="legacy", layer="ls-dr9-north"))
        assert (north.ok, north.outside) == (0, 3)
        south = download_cutouts(tmp_path, options(srv.url, survey="legacy", layer="ls-dr9-south"))
        assert srv.counts[("cutout", key)] == 2
    assert (south.ok, south.failed, south.failed_before) == (3, 0, 0)
    rec = record(tmp_path, cat.objID[1])
    assert (rec.status, rec.layer, rec.attempts) == ("ok", "ls-dr9-south", 2)


def test_a_permanent_failure_of_the_same_request_stays_failed_until_retry_failed(tmp_path):
    """The switch's own failure is then a fact about the new request: skipped, as today."""
    cat = make_catalog(tmp_path, 1)
    with SurveyServer(default_plan=("404",)) as srv:
        download_cutouts(tmp_path, options(srv.url, survey="legacy", layer="ls-dr9-north"))
        south = download_cutouts(tmp_path, options(srv.url, survey="legacy", layer="ls-dr9-south"))
        assert (south.failed, south.failed_before) == (1, 0)  # asked again, failed again (south's 404 now)
        n = len(srv.requests)
        again = download_cutouts(tmp_path, options(srv.url, survey="legacy", layer="ls-dr9-south"))
        assert len(srv.requests) == n and (again.present, again.failed_before, again.to_fetch) == (0, 1, 0)
        retried = download_cutouts(tmp_path, options(srv.url, survey="legacy", layer="ls-dr9-south", retry_failed=True))
        assert retried.failed == 1 and len(srv.requests) == n + 1
    assert record(tmp_path, cat.objID[0]).attempts == 3


@pytest.mark.parametrize("change", [{"size": 24}, {"scale": 0.5}, {"survey": "sdss"}])
def test_another_size_scale_or_survey_fetches_a_row_that_failed_for_good(tmp_path, change):
    cat = make_catalog(tmp_path, 1)
    key = key_of(cat.ra[0], cat.dec[0])
    with SurveyServer(plans={key: ["404"]}) as srv:
        first = download_cutouts(tmp_path, options(srv.url, survey="legacy"))
        assert first.failed == 1
        same = download_cutouts(tmp_path, options(srv.url, survey="legacy"))
        assert (same.failed_before, same.to_fetch) == (1, 0)
    if change.get("survey") == "sdss":  # SkyServer's ImgCutout: the FaultyServer stand-in
        from faulty_server import FaultyServer

        with FaultyServer() as srv:
            s = download_cutouts(tmp_path, options(srv.url, **change))
    else:
        with SurveyServer() as srv:
            s = download_cutouts(tmp_path, options(srv.url, survey="legacy", **change))
    assert (s.ok, s.failed_before) == (1, 0)
    assert record(tmp_path, cat.objID[0]).attempts == 2


def test_load_dataset_at_positions_does_not_reuse_another_layers_cutouts_folder(tmp_path):
    """The positions paths refuse a cutouts folder of another request before any fetch, so they
    never skip a row for another request's permanent failure."""
    import pandas as pd

    import galmet

    frame = pd.DataFrame({"ra": [150.0, 150.01], "dec": [2.0, 2.01]})
    folder = tmp_path / "cut"
    kw = dict(cutouts=folder, survey="legacy", size=16, rate=0)
    with SurveyServer(plans={key_of(150.0, 2.0): ["blank"]}) as srv:
        ds = galmet.load_dataset(frame, base_url=srv.url, layer="ls-dr9-north", **kw)
        assert len(ds) == 1
        n = len(srv.requests)
        with pytest.raises(ConfigError, match="holds the cutouts of other positions or settings"):
            galmet.load_dataset(frame, base_url=srv.url, layer="ls-dr9-south", **kw)
        assert len(srv.requests) == n


def test_a_cutout_of_other_settings_goes_when_this_runs_fetch_of_it_fails(tmp_path):
    """A 16-pixel cutout is no 24-pixel one: the folder must not offer it, nor a rerun adopt it."""
    cat = make_catalog(tmp_path, 2)
    stale = tmp_path / "images" / f"{cat.objID[0]}.jpg"
    with SurveyServer(plans={key_of(cat.ra[0], cat.dec[0]): ["ok", "blank"]}) as srv:
        download_cutouts(tmp_path, options(srv.url, survey="legacy"))
        assert stale.is_file()
        bigger = download_cutouts(tmp_path, options(srv.url, survey="legacy", size=24))
        assert (bigger.ok, bigger.outside) == (1, 1) and not stale.exists()
        again = download_cutouts(tmp_path, options(srv.url, survey="legacy", size=24))
    assert (again.present, again.failed_before) == (1, 1)
    rec = record(tmp_path, cat.objID[0])
    assert (rec.status, rec.size, rec.last_error.startswith("outside footprint")) == ("failed", 24, True)
