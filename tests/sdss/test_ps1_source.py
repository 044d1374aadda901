"""Pan-STARRS1 cutouts (galmet.sdss.ps1): ps1filenames then fitscut, against a loopback stand-in."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faulty_server import key_of
from galmet.errors import ConfigError
from galmet.io.fits_images import decode_fits, fits_header
from galmet.sdss.ps1 import ASINH_A, PS1Error, exposure_time, linear_flux, nanomaggies, parse_filenames
from galmet.sdss.sources import OutsideFootprint, cutout_source
from galmet.sdss.transport import BadBody, RetryPolicy, WrongAnswer
from survey_servers import PS1_FILENAMES, PS1_FITSCUT, SurveyServer, fake_flux, fits_bytes, ps1_file

RA, DEC = 210.8, 54.3
KEY = key_of(RA, DEC)


def source(url: str, fmt: str | None = None, retries: int = 2):
    return cutout_source("ps1", url, None, fmt, timeout=2.0, policy=RetryPolicy(retries=retries, backoff_base=0.001))


def test_the_first_request_is_ps1filenames_under_the_service_root():
    payload = cutout_source("ps1").get_cutout(RA, DEC, 0.25, 128, get_query_payload=True)
    assert payload.url == "https://ps1images.stsci.edu/cgi-bin/ps1filenames.py"
    assert payload.params == {"ra": "210.80000000", "dec": "54.30000000", "filters": "gri"}
    assert cutout_source("ps1").format == "fits"  # the survey's default


def test_a_colour_jpeg_is_i_r_g_as_red_green_blue():
    with SurveyServer() as srv:
        body, image, attempts = source(srv.url, "jpeg").get_cutout(RA, DEC, 0.25, 16)
        assert srv.paths() == [PS1_FILENAMES, PS1_FITSCUT]
        query = srv.requests[1][1]
    assert query["format"] == "jpg" and query["size"] == "16"
    assert (query["red"], query["green"], query["blue"]) == tuple(ps1_file(KEY, b) for b in "irg")
    assert body.startswith(b"\xff\xd8") and image.shape == (16, 16, 3) and attempts == 2


@pytest.mark.parametrize("asinh", [True, False])
def test_fits_bands_are_fetched_one_by_one_calibrated_and_stacked(asinh):
    with SurveyServer(ps1_asinh=asinh) as srv:
        body, cube, attempts = source(srv.url).get_cutout(RA, DEC, 0.25, 16)
        assert srv.paths() == [PS1_FILENAMES] + [PS1_FITSCUT] * 3
        reds = [q["red"] for _, q in srv.requests[1:]]
    assert reds == [ps1_file(KEY, b) for b in "gri"] and attempts == 4
    expected = np.stack([fake_flux(KEY, 16, b) for b in range(3)])  # nanomaggies, served as counts
    np.testing.assert_allclose(cube, expected, rtol=1e-4, atol=1e-4)  # asinh undone, each band's EXPTIME
    np.testing.assert_array_equal(decode_fits(body, 16, 3), cube)
    meta = fits_header(body).meta
    assert (meta["BANDS"], meta["SURVEY"], meta["PIXSCALE"], meta["BUNIT"]) == ("gri", "ps1", 0.25, "nanomaggy")


def test_counts_become_nanomaggies_by_the_zero_points():
    """m = 25 + 2.5 log10(EXPTIME) - 2.5 log10(counts) = 22.5 - 2.5 log10(nmgy)."""
    counts = np.array([[1.0e3, 2.5e4, np.nan]], dtype=np.float32)
    body = fits_bytes(counts, {"EXPTIME": 500.0})
    got = nanomaggies(body, counts[0])
    mag = 25 + 2.5 * np.log10(500.0) - 2.5 * np.log10(counts[0, :2])
    np.testing.assert_allclose(22.5 - 2.5 * np.log10(got[:2]), mag, rtol=1e-6)
    np.testing.assert_allclose(got, [0.2, 5.0, 0.0], rtol=1e-6)
    assert got.dtype == np.float32 and exposure_time(body) == 500.0
    blank = fits_bytes(np.full((1, 2), np.nan, np.float32))  # outside the footprint: no EXPTIME needed
    np.testing.assert_array_equal(nanomaggies(blank, np.full(2, np.nan)), [0.0, 0.0])


@pytest.mark.parametrize("value", [None, 0.0, -5.0, "long"])
def test_counts_without_a_usable_exptime_are_a_wrong_answer(value):
    body = fits_bytes(np.ones((1, 2), np.float32), {} if value is None else {"EXPTIME": value})
    with pytest.raises(WrongAnswer, match=r"^PS1 FITS header has no usable EXPTIME"):
        nanomaggies(body, np.ones(2))


def test_a_fitscut_answer_without_exptime_is_permanent_at_once():
    with SurveyServer(plans={KEY: ["noexptime"]}) as srv:
        with pytest.raises(PS1Error) as err:
            source(srv.url).get_cutout(RA, DEC, 0.25, 16, where="objID 9")
        assert srv.counts[("cutout", KEY)] == 1  # not retried
    msg = str(err.value)
    assert err.value.permanent and err.value.attempts == 2 and "\n" not in msg
    assert msg.startswith("objID 9 (g): PS1 FITS header has no usable EXPTIME (got None)")


def test_linear_flux_is_the_documented_sinh_inverse():
    stored = np.array([[-1.0, 0.0, 0.5, 2.0]], dtype=np.float32)
    body = fits_bytes(stored, {"BSOFTEN": 2.0, "BOFFSET": 0.5})
    want = 0.5 + 2.0 * (np.exp(stored / ASINH_A) - np.exp(-stored / ASINH_A))
    np.testing.assert_allclose(linear_flux(body, stored[0]), want[0], rtol=1e-6)
    assert math.isclose(ASINH_A, 1.0857362, rel_tol=1e-7)
    plain = fits_bytes(np.array([[np.nan, 3.0]], dtype=np.float32))  # no BSOFTEN/BOFFSET: linear already
    np.testing.assert_array_equal(linear_flux(plain, np.array([np.nan, 3.0])), [0.0, 3.0])


@pytest.mark.parametrize("fmt", ["fits", "jpeg"])
def test_no_rows_is_outside_the_footprint_after_one_request(fmt):
    with SurveyServer(filenames_plans={KEY: ["norows"]}) as srv:
        with pytest.raises(OutsideFootprint) as err:
            source(srv.url, fmt).get_cutout(RA, DEC, 0.25, 16, where="objID 9")
        assert srv.paths() == [PS1_FILENAMES]
    assert err.value.permanent and err.value.attempts == 1
    assert str(err.value) == "objID 9: outside footprint (no PS1 stack image in gri)"


def test_a_blank_fitscut_is_outside_the_footprint():
    with SurveyServer(plans={KEY: ["blank"]}) as srv:
        with pytest.raises(OutsideFootprint, match="outside footprint"):
            source(srv.url).get_cutout(RA, DEC, 0.25, 16)
        assert srv.counts[("cutout", KEY)] == 1


@pytest.mark.parametrize(
    "filenames, cutout, fmt, requests, permanent, says",
    [
        (["404"], ["ok"], "fits", 1, True, "HTTP 404"),
        (["html", "503", "ok"], ["ok"], "jpeg", 4, None, ""),
        (["ok"], ["500", "ok"], "jpeg", 3, None, ""),
        (["ok"], ["503"], "jpeg", 4, False, "HTTP 503"),
        (["ok"], ["wrongsize"], "jpeg", 2, True, "8x8 pixels, expected 16x16"),
        (["ok"], ["wrongsize"], "fits", 2, True, "8x8 pixels, expected 16x16"),
        (["ok"], ["wrongbands"], "fits", 2, True, "2 bands, expected 1"),
        (["ok"], ["400"], "fits", 2, True, "HTTP 400"),
    ],
)
def test_failures_of_either_request(filenames, cutout, fmt, requests, permanent, says):
    with SurveyServer(plans={KEY: cutout}, filenames_plans={KEY: filenames}) as srv:
        src = source(srv.url, fmt)
        if permanent is None:
            _, _, attempts = src.get_cutout(RA, DEC, 0.25, 16)
            assert attempts == requests
        else:
            with pytest.raises(PS1Error) as err:
                src.get_cutout(RA, DEC, 0.25, 16)
            assert err.value.permanent is permanent and err.value.attempts == requests
            assert says in str(err.value) and "\n" not in str(err.value)
        assert len(srv.requests) == requests


def test_a_table_that_is_not_ps1filenames_is_retried_as_a_bad_body():
    with pytest.raises(BadBody, match="lacks the filter and filename"):
        parse_filenames(b"ra dec\n1 2\n")
    with pytest.raises(BadBody, match="line 2: 2 fields, the header has 3"):
        parse_filenames(b"filter filename x\ng a\n")
    assert parse_filenames(b"filter filename\n") == {}


def test_ps1_cuts_at_its_native_scale_only():
    with pytest.raises(ConfigError, match="scale: ps1 cutouts come at the native 0.25"):
        cutout_source("ps1").get_cutout(RA, DEC, 0.3, 16)
    with pytest.raises(ConfigError, match="layer: ps1 has no image layers"):
        cutout_source("ps1", layer="ls-dr10")


@pytest.mark.remote_data
def test_one_real_ps1_cutout():
    """The real PS1 service (network; off by default): M101's field, FITS g, r, i."""
    body, cube, attempts = cutout_source("ps1").get_cutout(210.80227, 54.34895, 0.25, 32)
    assert cube.shape == (3, 32, 32) and np.isfinite(cube).all() and attempts == 4 and len(body) > 100
