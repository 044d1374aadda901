"""The flux stretch: equal to astropy's make_lupton_rgb, vectorised, validated, recorded."""

from __future__ import annotations

import numpy as np
import pytest

from galmet.data.stretch import DEFAULT_STRETCHES, Stretch, as_stretch, default_stretch
from galmet.errors import ConfigError, DataError


def _cube(seed: int = 0, size: int = 24) -> np.ndarray:
    """float32 (3, size, size) fluxes: a bright blob on noisy sky, bands bluest first."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(xx**2 + yy**2) / (2 * (size / 6) ** 2))
    return np.stack([blob * f + rng.normal(0, 0.01, (size, size)) for f in (0.3, 0.6, 1.0)]).astype(np.float32)


@pytest.mark.parametrize(
    "stretch",
    [
        Stretch(),
        Stretch(scales=(1.6, 1.2, 1.0), minimum=(0.01, -0.02, 0.0), stretch=0.05, Q=3.0),
        DEFAULT_STRETCHES["legacy"],
        Stretch(stretch=5.0, Q=0.5),
    ],
)
def test_it_equals_astropys_make_lupton_rgb(stretch):
    pytest.importorskip("astropy")
    from astropy.visualization import make_lupton_rgb

    cube = _cube() * 3
    got = stretch.apply(cube)
    x = cube.astype(np.float64) * np.asarray(stretch.scales)[:, None, None]
    want = make_lupton_rgb(x[2], x[1], x[0], minimum=list(stretch.minimum)[::-1], stretch=stretch.stretch, Q=stretch.Q)
    assert got.dtype == np.uint8 and got.shape == (24, 24, 3)
    np.testing.assert_array_equal(got, want)
    assert got.max() > 100 and got.min() == 0  # not a blank image: the comparison means something


def test_reddest_band_is_red_and_a_stack_is_each_cube():
    cube = np.zeros((3, 8, 8), np.float32)
    cube[2] = 1.0  # only the reddest band has flux
    rgb = Stretch().apply(cube)
    assert rgb[..., 0].min() > 0 and rgb[..., 1].max() == 0 and rgb[..., 2].max() == 0
    stack = np.stack([_cube(1), _cube(2), cube[:, :8, :8].repeat(3, 1).repeat(3, 2)])
    out = Stretch().apply(stack)
    assert out.shape == (3, 24, 24, 3)
    for i in range(3):
        np.testing.assert_array_equal(out[i], Stretch().apply(stack[i]))


def test_non_finite_fluxes_count_as_zero_and_are_counted():
    cube = _cube()
    clean = cube.copy()
    cube[0, 1, 1], cube[1, 2, 2], cube[2, 3, 3] = np.nan, np.inf, -np.inf
    clean[0, 1, 1] = clean[1, 2, 2] = clean[2, 3, 3] = 0.0
    rgb, n = Stretch().apply_counted(cube)
    assert n == 3
    np.testing.assert_array_equal(rgb, Stretch().apply(clean))
    assert np.isnan(cube[0, 1, 1])  # the input is not changed


def test_a_cube_of_other_than_three_bands_is_refused():
    with pytest.raises(DataError, match=r"\(3, H, W\) or \(N, 3, H, W\), got shape \(4, 8, 8\)"):
        Stretch().apply(np.zeros((4, 8, 8), np.float32))


def test_dict_form_round_trips_and_records_everything():
    s = DEFAULT_STRETCHES["ps1"]
    d = s.to_dict()
    assert set(d) == {"kind", "scales", "minimum", "stretch", "Q"} and d["kind"] == "lupton"
    assert Stretch.from_dict(d) == s and as_stretch(d) == s and as_stretch(None) is None
    assert Stretch.from_dict({"scales": [1, 2, 3], "stretch": 1, "Q": 2, "minimum": 0.5}).minimum == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"scales": [1, 1], "stretch": 1, "Q": 8}, "scales"),
        ({"scales": [1, 0, 1], "stretch": 1, "Q": 8}, "scales"),
        ({"scales": [1, 1, "x"], "stretch": 1, "Q": 8}, "scales"),
        ({"scales": [1, 1, 1], "stretch": 0, "Q": 8}, "stretch"),
        ({"scales": [1, 1, 1], "stretch": float("nan"), "Q": 8}, "stretch"),
        ({"scales": [1, 1, 1], "stretch": 1, "Q": -1}, "Q"),
        ({"scales": [1, 1, 1], "stretch": 1, "Q": True}, "Q"),
        ({"scales": [1, 1, 1], "stretch": 1, "Q": 8, "minimum": [0, None, 0]}, "minimum"),
        ({"scales": [1, 1, 1], "stretch": 1, "Q": 8, "kind": "linear"}, "kind"),
        ({"scales": [1, 1, 1], "stretch": 1}, "Q"),
        ({"scales": [1, 1, 1], "stretch": 1, "Q": 8, "gamma": 2}, "gamma"),
    ],
)
def test_a_bad_field_is_one_line_naming_it(raw, field):
    with pytest.raises(ConfigError) as info:
        Stretch.from_dict(raw, "model.imaging.stretch")
    msg = str(info.value)
    assert msg.startswith("model.imaging.stretch") and field in msg and "\n" not in msg


def test_survey_defaults_fill_the_range_like_a_jpeg():
    """A galaxy of r ~ 17 (its centre ~0.3-0.5 nanomaggy per pixel, sky noise ~0.01) comes out
    with a bright centre (upper half of the range) and a dark sky, in every survey's default."""
    for survey in ("sdss", "legacy", "ps1"):  # every galmet FITS cutout is nanomaggies
        cube = _cube(3, 32) * 0.5
        rgb = default_stretch(survey).apply(cube)
        centre, sky = rgb[14:18, 14:18].max(), np.median(rgb[:4, :4])
        assert centre >= 128 and sky <= 40, (survey, centre, sky)
    assert default_stretch(None) == default_stretch("sdss") == default_stretch("unknown")


def test_a_bundles_imaging_stretch_is_checked_field_by_field():
    from galmet.data.imaging import Imaging

    good = Imaging(16, survey="legacy", bands="grz", format="fits", stretch=DEFAULT_STRETCHES["legacy"].to_dict())
    assert Imaging.from_dict(good.to_dict()) == good
    raw = good.to_dict() | {"stretch": {"scales": [1, 1, 1], "stretch": 1, "Q": "high"}}
    with pytest.raises(ConfigError, match=r"^meta\.imaging\.stretch\.Q must be a number"):
        Imaging.from_dict(raw, "meta.imaging")


def test_the_sdss_default_is_the_synthetic_jpeg_rendering():
    """The SDSS default is the stretch galmet's synthetic SDSS cutouts are rendered with (its
    calibration against real DR14 JPEGs), at the 128-pixel scale where no surface-brightness
    rescaling applies."""
    from galmet.synthetic import render

    sdss = default_stretch("sdss")
    assert sdss.scales == tuple(render.RGB_SCALES[b] for b in "gri")
    assert (sdss.stretch, sdss.Q) == (render.LUPTON_STRETCH, render.LUPTON_Q)
    assert sdss.minimum == tuple(render.LUPTON_MINIMUM[::-1])
