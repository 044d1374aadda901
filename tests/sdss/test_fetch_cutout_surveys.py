"""galmet.fetch_cutout takes the surveys' names (survey=, layer=, format=) through
galmet.sdss.sources.cutout_source; its SDSS default is the paper's request, unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import galmet
from faulty_server import FaultyServer, fake_image, key_of
from galmet.errors import ConfigError
from galmet.sdss import skyserver
from galmet.sdss.sources import fetch_cutout
from survey_servers import LEGACY_FITS, LEGACY_JPEG, PS1_FITSCUT, SurveyServer, fake_flux

RA, DEC = 150.1, 2.2
KEY = key_of(RA, DEC)


def test_the_public_name_is_the_survey_aware_call():
    assert galmet.fetch_cutout is fetch_cutout
    assert galmet.sdss.fetch_cutout is fetch_cutout


def test_the_sdss_default_is_the_papers_request_and_image_unchanged():
    old, new = skyserver.fetch_cutout(RA, DEC, get_query_payload=True), fetch_cutout(RA, DEC, get_query_payload=True)
    assert (new.url, new.params) == (old.url, old.params)
    assert new.params["scale"] == "0.296" and new.params["width"] == 128
    with FaultyServer() as srv:
        a = skyserver.fetch_cutout(RA, DEC, size=16, base_url=srv.url, timeout=2, retries=0)
        b = fetch_cutout(RA, DEC, size=16, base_url=srv.url, timeout=2, retries=0)
    assert b.dtype == np.uint8 and b.shape == (16, 16, 3) and np.array_equal(a, b)


def test_each_survey_cuts_at_its_own_default_scale_and_layer():
    legacy = fetch_cutout(RA, DEC, survey="Legacy", get_query_payload=True)
    assert legacy.url.endswith("/viewer/cutout.jpg") and legacy.params["pixscale"] == "0.262"
    assert legacy.params["layer"] == "ls-dr10" and legacy.params["size"] == 128
    south = fetch_cutout(RA, DEC, 0.5, 32, survey="legacy", layer="ls-dr9-south", format="FITS", get_query_payload=True)
    assert south.url.endswith("/viewer/cutout.fits") and south.params["layer"] == "ls-dr9-south"
    assert (south.params["pixscale"], south.params["size"]) == ("0.5", 32)
    assert fetch_cutout(RA, DEC, survey="ps1", get_query_payload=True).url.endswith("/cgi-bin/ps1filenames.py")


def test_a_legacy_jpeg_is_rgb_and_a_fits_is_band_fluxes():
    with SurveyServer() as srv:
        rgb = fetch_cutout(RA, DEC, size=16, base_url=srv.url, survey="legacy", retries=0)
        cube = fetch_cutout(RA, DEC, size=16, base_url=srv.url, survey="legacy", format="fits", retries=0)
        assert srv.paths() == [LEGACY_JPEG, LEGACY_FITS]
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 16, 3)
    assert cube.dtype == np.float32 and cube.shape == (3, 16, 16)
    np.testing.assert_array_equal(cube, np.stack([fake_flux(KEY, 16, b) for b in range(3)]))


def test_ps1_gives_fits_fluxes_by_default():
    with SurveyServer() as srv:
        cube = fetch_cutout(RA, DEC, size=16, base_url=srv.url, survey="ps1", retries=0)
        assert srv.paths()[-1] == PS1_FITSCUT
    assert cube.dtype == np.float32 and cube.shape == (3, 16, 16)
    np.testing.assert_allclose(cube, np.stack([fake_flux(KEY, 16, b) for b in range(3)]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"survey": "sdss", "format": "fits"}, "format"),
        ({"survey": "ps1", "scale": 0.5}, "scale"),
        ({"survey": "legacy", "layer": "dr99"}, "layer"),
        ({"survey": "hst"}, "survey"),
    ],
)
def test_what_a_survey_cannot_give_is_refused_before_any_request(kwargs, param):
    with pytest.raises(ConfigError) as err:
        fetch_cutout(RA, DEC, get_query_payload=True, **kwargs)
    assert err.value.param == param and "\n" not in str(err.value)


def test_the_stand_ins_give_distinct_positions_distinct_cutouts():
    """(150.1, 2.2) and (152, 3): the same characters' sum, once the same cutout."""
    a, b = key_of(150.1, 2.2), key_of(152, 3)
    assert sum(a.encode()) == sum(b.encode())
    assert not np.array_equal(fake_image(a, 16, 16), fake_image(b, 16, 16))
    assert not np.array_equal(fake_flux(a, 16, 0), fake_flux(b, 16, 0))
