"""The survey descriptions: lookup by name, and each survey's checks of format, layer and bands."""

import pytest

from galmet.data.surveys import SURVEYS, get_survey
from galmet.errors import ConfigError


def test_lookup_by_name_default_and_unknown():
    assert get_survey(None).name == "sdss"
    assert get_survey(" Legacy ").name == "legacy"
    assert get_survey(SURVEYS["ps1"]) is SURVEYS["ps1"]
    with pytest.raises(ConfigError, match="unknown survey 'decam'.*sdss, legacy, ps1"):
        get_survey("decam")


def test_formats_and_layers():
    legacy, ps1, sdss = (SURVEYS[n] for n in ("legacy", "ps1", "sdss"))
    assert legacy.check_format(None) == "jpeg" and legacy.check_format("jpg") == "jpeg"
    assert legacy.check_format("FITS") == "fits" and ps1.default_format == "fits"
    with pytest.raises(ConfigError, match="sdss cutouts come as jpeg, not 'fits'"):
        sdss.check_format("fits")
    assert legacy.check_layer(None) == "ls-dr10" and legacy.check_layer("ls-dr9-south") == "ls-dr9-south"
    with pytest.raises(ConfigError, match="layer must be one of"):
        legacy.check_layer("ls-dr11")
    with pytest.raises(ConfigError, match="ps1 has no image layers"):
        ps1.check_layer("ls-dr10")
    assert sdss.check_layer(None) is None


def test_bands_are_checked_and_ordered_bluest_first():
    assert SURVEYS["legacy"].check_bands("zrg") == "grz"
    with pytest.raises(ConfigError, match="three distinct legacy bands"):
        SURVEYS["legacy"].check_bands("gri")
    for s in SURVEYS.values():
        assert s.check_bands(s.bands) == s.bands
        assert set(s.seeing_fwhm) >= set(s.bands) and set(s.depth_mag) >= set(s.bands)
        assert s.acknowledgement and s.acknowledgement_url.startswith("https://")
