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


def test_imaging_records_survey_layer_format_and_stretch():
    from galmet.data.imaging import Imaging

    old = Imaging.from_dict({"image_size": 64})  # a bundle from before galmet knew surveys
    assert (old.survey, old.layer, old.format, old.stretch) == ("sdss", None, "jpeg", None)
    raw = {"image_size": 64, "bands": "grz", "survey": "legacy", "layer": "ls-dr10", "format": "fits"}
    from galmet.data.stretch import default_stretch

    raw["stretch"] = default_stretch("legacy").to_dict()
    im = Imaging.from_dict(raw)
    assert Imaging.from_dict(im.to_dict()) == im and im != old
    assert "legacy ls-dr10" in im.describe() and im.describe().endswith(", fits")
    assert "sdss" not in old.describe()
    for field, value, message in [
        ("survey", "decam", "imaging.survey must be null or one of sdss, legacy, ps1"),
        ("layer", "ls-dr11", "imaging.layer must be null or a layer of legacy"),
        ("format", "png", "imaging.format must be null or one of jpeg, fits"),
        ("bands", "gri", "imaging.bands must be three distinct legacy bands"),
        ("stretch", "asinh", "imaging.stretch must be null or a mapping"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Imaging.from_dict({**raw, field: value})
