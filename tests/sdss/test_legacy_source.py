"""The Legacy Survey viewer's cutouts (galmet.sdss.legacy) against a loopback stand-in of its URL contract."""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from faulty_server import key_of
from galmet.errors import ConfigError
from galmet.io.fits_images import decode_fits, fits_header
from galmet.sdss.legacy import LegacySurveyError
from galmet.sdss.sources import OutsideFootprint, cutout_source
from galmet.sdss.transport import RetryPolicy
from survey_servers import LEGACY_FITS, LEGACY_JPEG, SurveyServer, fake_flux

RA, DEC = 150.1, 2.2
KEY = key_of(RA, DEC)


def source(url: str, fmt: str | None = None, layer: str | None = None, retries: int = 2):
    return cutout_source(
        "legacy", url, layer, fmt, timeout=2.0, policy=RetryPolicy(retries=retries, backoff_base=0.001)
    )


def test_the_request_is_the_viewers_contract_under_the_service_root():
    jpg = cutout_source("legacy").get_cutout(RA, DEC, 0.262, 128, get_query_payload=True)
    assert jpg.url == "https://www.legacysurvey.org/viewer/cutout.jpg"
    want = {"ra": "150.10000000", "dec": "2.20000000", "layer": "ls-dr10", "pixscale": "0.262", "size": 128}
    assert jpg.params == want
    fits = cutout_source("legacy", "http://mirror:8080/", "ls-dr9-north", "fits").get_cutout(
        RA, DEC, 0.5, 64, get_query_payload=True
    )
    assert fits.url == "http://mirror:8080/viewer/cutout.fits"
    assert fits.params["layer"] == "ls-dr9-north" and fits.params["bands"] == "grz"
    assert fits.params["pixscale"] == "0.5" and fits.params["size"] == 64


def test_a_jpeg_cutout_is_fetched_checked_and_kept_as_served():
    with SurveyServer() as srv:
        src = source(srv.url, layer="ls-dr9-south")
        body, image, attempts = src.get_cutout(RA, DEC, 0.262, 16)
        path, query = srv.requests[0]
    assert (path, query["layer"], query["pixscale"], query["size"]) == (LEGACY_JPEG, "ls-dr9-south", "0.262", "16")
    assert body.startswith(b"\xff\xd8") and image.shape == (16, 16, 3) and image.dtype == np.uint8
    assert attempts == 1 and src.suffix == ".jpg"


def test_a_fits_cutout_is_nanomaggies_in_galmets_fits_form():
    with SurveyServer() as srv:
        src = source(srv.url, fmt="fits")
        body, cube, attempts = src.get_cutout(RA, DEC, 0.262, 16)
        assert srv.paths() == [LEGACY_FITS]
    expected = np.stack([fake_flux(KEY, 16, b) for b in range(3)])
    assert cube.dtype == np.float32 and cube.shape == (3, 16, 16)
    np.testing.assert_array_equal(cube, expected)
    np.testing.assert_array_equal(decode_fits(body, 16, 3), expected)
    meta = fits_header(body).meta
    assert meta == {"BANDS": "grz", "BUNIT": "nanomaggy", "SURVEY": "legacy", "LAYER": "ls-dr10", "PIXSCALE": 0.262}
    assert attempts == 1 and src.suffix == ".fits"


@pytest.mark.parametrize("fmt", ["jpeg", "fits"])
def test_blank_sky_is_outside_the_footprint_at_once(fmt):
    with SurveyServer(plans={KEY: ["blank"]}) as srv:
        with pytest.raises(OutsideFootprint) as err:
            source(srv.url, fmt=fmt).get_cutout(RA, DEC, 0.262, 16, where="objID 7")
        assert srv.counts[("cutout", KEY)] == 1  # an answer, not a fault: never retried
    assert err.value.permanent and err.value.attempts == 1
    assert str(err.value).startswith("objID 7: outside footprint (ls-dr10 has no imaging here")


@pytest.mark.parametrize(
    "fmt, plan, requests, permanent, says",
    [
        ("jpeg", ["404"], 1, True, "HTTP 404"),
        ("jpeg", ["400"], 1, True, "HTTP 400"),
        ("jpeg", ["503", "ok"], 2, None, ""),
        ("fits", ["500", "html", "ok"], 3, None, ""),
        ("jpeg", ["500"], 3, False, "HTTP 500"),
        ("jpeg", ["wrongsize"], 1, True, "8x8 pixels, expected 16x16"),
        ("jpeg", ["wrongbands"], 1, True, "image mode is"),
        ("fits", ["wrongsize"], 1, True, "8x8 pixels, expected 16x16"),
        ("fits", ["wrongbands"], 1, True, "2 bands, expected 3"),
    ],
)
def test_failures_4xx_permanent_5xx_retried_wrong_answers_not_retried(fmt, plan, requests, permanent, says):
    with SurveyServer(plans={KEY: plan}) as srv:
        src = source(srv.url, fmt=fmt)
        if permanent is None:
            _, image, attempts = src.get_cutout(RA, DEC, 0.262, 16)
            assert attempts == requests and image.shape[-1] in (3, 16)
        else:
            with pytest.raises(LegacySurveyError) as err:
                src.get_cutout(RA, DEC, 0.262, 16)
            assert err.value.permanent is permanent and err.value.attempts == requests
            assert says in str(err.value) and "\n" not in str(err.value)
        assert srv.counts[("cutout", KEY)] == requests


def test_a_layer_or_format_the_viewer_lacks_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="layer: legacy layer must be one of ls-dr10"):
        cutout_source("legacy", layer="dr8")
    with pytest.raises(ConfigError, match="format: sdss cutouts come as jpeg"):
        cutout_source("sdss", fmt="fits")


def test_the_sdss_source_is_skyserver_unchanged():
    from galmet.sdss.skyserver import SkyServerClient

    src = cutout_source("sdss")
    assert isinstance(src.client, SkyServerClient) and src.suffix == ".jpg" and src.layer is None
    payload = src.get_cutout(RA, DEC, 0.296, 128, get_query_payload=True)
    assert payload == SkyServerClient().cutout_payload(RA, DEC, 0.296, 128)


@pytest.mark.remote_data
@pytest.mark.parametrize("fmt", ["jpeg", "fits"])
def test_one_real_legacy_cutout(fmt):
    """The real viewer (network; off by default): a galaxy in the SDSS/DECaLS equatorial footprint."""
    body, image, _ = cutout_source("legacy", fmt=fmt).get_cutout(185.0, 1.0, 0.262, 32)
    assert image.shape == ((32, 32, 3) if fmt == "jpeg" else (3, 32, 32)) and len(body) > 100
    host = urllib.parse.urlsplit(cutout_source("legacy").base_url).hostname
    assert host == "www.legacysurvey.org"
