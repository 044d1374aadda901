"""galmet synth --survey / --format / --pixel-scale: the same galaxies imaged as SDSS, the Legacy
Surveys or PS1, as JPEGs or FITS flux cubes (issue 20, item 4)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("galsim", reason="the synthetic generator needs GalSim")
pytest.importorskip("astropy", reason="the synthetic generator needs astropy")

from galmet.cli.main import main  # noqa: E402
from galmet.data.dataset import load_dataset  # noqa: E402
from galmet.data.surveys import SURVEYS  # noqa: E402
from galmet.errors import ConfigError  # noqa: E402
from galmet.io.fits_images import read_fits, read_fits_header  # noqa: E402
from galmet.io.images import read_image  # noqa: E402
from galmet.synthetic.looks import survey_look  # noqa: E402
from galmet.synthetic.render import synthesize  # noqa: E402

N, SIZE, SEED = 4, 16, 3
#: The columns drawn by the physics (not measured on the image): the same for every survey.
LABEL_COLUMNS = ["objID", "ra", "dec", "z", "oh_p50", "lgm_tot_p50", "oh_observable", "split"] + [
    f"modelMag_{b}" for b in "ugriz"
]


def _synth(base, survey, fmt):
    return synthesize(
        base / f"{survey}-{fmt}", N, seed=SEED, size=SIZE, workers=1, progress=False, survey=survey, format=fmt
    )


def _images(root) -> list:
    """The image files of a set (not galmet's hidden bookkeeping)."""
    return sorted(p for p in (root / "images").iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    base = tmp_path_factory.mktemp("surveys")
    return {(s, f): _synth(base, s, f) for s in ("sdss", "legacy", "ps1") for f in ("jpeg", "fits")}


def _config(root):
    return yaml.safe_load((root / "synth_config.yaml").read_text())


@pytest.mark.parametrize("survey", ["legacy", "ps1", "sdss"])
def test_jpeg_sets_are_colour_cutouts_with_the_survey_recorded(sets, survey):
    root = sets[survey, "jpeg"]
    files = _images(root)
    assert len(files) == N and all(p.suffix == ".jpg" for p in files)
    assert read_image(files[0]).shape == (SIZE, SIZE, 3)
    config = _config(root)
    s = SURVEYS[survey]
    assert (config["survey"], config["bands"], config["format"], config["size"]) == (survey, s.bands, "jpeg", SIZE)
    # the survey's default pixel scale at its default size; other sizes keep that field of view
    assert config["pixel_scale_arcsec"] == pytest.approx(s.default_pixel_scale * s.default_size / SIZE)
    rendering = config["rendering"]
    assert rendering["bands_as_RGB"] == ", ".join(reversed(s.bands)) and rendering["Q"] > 0
    assert "stretch" not in config  # (``stretch`` is the flux -> network mapping of FITS sets)


@pytest.mark.parametrize("survey", ["legacy", "ps1", "sdss"])
def test_fits_sets_are_flux_cubes_in_galmets_form(sets, survey):
    root = sets[survey, "fits"]
    files = _images(root)
    assert len(files) == N and all(p.suffix == ".fits" for p in files)
    header = read_fits_header(files[0])
    s = SURVEYS[survey]
    assert (header.bands, header.height, header.width) == (3, SIZE, SIZE)
    assert header.meta["BANDS"] == s.bands and header.meta["BUNIT"] == "nanomaggy"
    assert header.meta["SURVEY"] == survey
    assert header.meta["PIXSCALE"] == pytest.approx(_config(root)["pixel_scale_arcsec"])
    cube = read_fits(files[0], expected_size=SIZE, bands=3)
    assert cube.dtype == np.float32 and np.isfinite(cube).all()
    # a galaxy of r ~ 17 mag (~ 150 nanomaggies) is there in every band
    assert all(50 < total < 2000 for total in cube.sum(axis=(1, 2)))
    config = _config(root)
    assert config["format"] == "fits" and config["flux_unit"] == "nanomaggy" and "rendering" not in config


def test_the_same_seed_gives_the_same_galaxies_in_every_survey(sets):
    ref = pd.read_parquet(sets["sdss", "jpeg"] / "catalog.parquet")
    for key, root in sets.items():
        cat = pd.read_parquet(root / "catalog.parquet")
        pd.testing.assert_frame_equal(cat[LABEL_COLUMNS], ref[LABEL_COLUMNS], obj=str(key))
        # the same scene too: the same neighbours around each galaxy
        assert cat["n_stars"].tolist() == ref["n_stars"].tolist()


def test_sdss_output_is_unchanged(tmp_path):
    """The bytes galmet 0.1's synth wrote for these galaxies (same seed and size): adding surveys
    changed no SDSS pixel. A new GalSim or libjpeg that changes them is a new data set."""
    out = synthesize(tmp_path / "s", 3, seed=11, size=32, workers=1, progress=False)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((out / "images").glob("*.jpg"))))
    assert digest.hexdigest() == "6aaf32f883a4350b977da304ab7693f98b35ca55ece0bcf33169deea35a9d89d"
    cat = pd.read_parquet(out / "catalog.parquet")
    np.testing.assert_allclose(cat["oh_p50"], [8.805676, 9.039765, 8.821668], atol=1e-6)
    np.testing.assert_allclose(cat["psf_fwhm"], [1.465697, 1.389328, 1.212635], atol=1e-6)
    explicit = synthesize(tmp_path / "e", 3, seed=11, size=32, workers=1, progress=False, survey="sdss")
    assert [p.read_bytes() for p in sorted((explicit / "images").glob("*.jpg"))] == [
        p.read_bytes() for p in sorted((out / "images").glob("*.jpg"))
    ]


def _sky_noise(root) -> float:
    """Median over galaxies of the r-band pixel noise (MAD) in the cutout's border, nanomaggies
    per square arcsec."""
    scale = _config(root)["pixel_scale_arcsec"]
    values = []
    for path in sorted((root / "images").glob("*.fits")):
        r = read_fits(path)[1]
        border = np.concatenate([r[:2].ravel(), r[-2:].ravel(), r[:, :2].ravel(), r[:, -2:].ravel()])
        values.append(1.4826 * np.median(np.abs(border - np.median(border))) / scale**2)
    return float(np.median(values))


def test_a_deeper_survey_has_less_sky_noise(sets):
    sdss, ps1, legacy = (_sky_noise(sets[s, "fits"]) for s in ("sdss", "ps1", "legacy"))
    assert legacy < ps1 < sdss  # depth r: legacy 24.2, ps1 23.2, sdss 22.2 mag


def test_every_surveys_fits_set_decodes_as_bright_as_sdss(sets):
    """Every galmet FITS cutout is nanomaggies and each survey's default stretch is scaled for its
    pixels: the same galaxies decode to about the same mean pixel value (PS1 stack counts under a
    counts stretch decoded almost black: mean 0.03 of 255)."""
    means = {
        s: float(np.asarray(load_dataset(sets[s, "fits"], cache=False, progress=False).images()).mean())
        for s in ("sdss", "legacy", "ps1")
    }
    for survey in ("legacy", "ps1"):
        assert 0.7 < means[survey] / means["sdss"] < 1.4, means
    assert means["sdss"] > 20, means


def test_each_survey_has_its_seeing_per_band():
    legacy = survey_look("legacy")
    assert legacy.seeing == SURVEYS["legacy"].seeing_fwhm and legacy.bands == "grz"
    assert survey_look("sdss").seeing is None  # SDSS: one FWHM for g, r and i, as before
    assert survey_look("legacy").sky_sigma["g"] < survey_look("legacy").sky_sigma["z"]  # g is the deepest


def test_pixel_scale_is_recorded_and_written(tmp_path):
    out = synthesize(
        tmp_path / "p", 2, seed=1, size=16, workers=1, progress=False, survey="legacy", format="fits", pixel_scale=0.5
    )
    assert _config(out)["pixel_scale_arcsec"] == 0.5 and _config(out)["field_of_view_arcsec"] == 8.0
    assert read_fits_header(next((out / "images").glob("*.fits"))).meta["PIXSCALE"] == 0.5


def test_overwrite_removes_a_previous_fits_synthesis(tmp_path):
    out = synthesize(tmp_path / "o", 2, seed=1, size=16, workers=1, progress=False, format="fits")
    synthesize(out, 2, seed=1, size=16, workers=1, progress=False, overwrite=True)
    assert [p.suffix for p in _images(out)] == [".jpg", ".jpg"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--survey", "hst"], "--survey: unknown survey 'hst'; galmet reads sdss, legacy, ps1"),
        (["--format", "png"], "--format must be one of jpeg, fits"),
        (["--survey", "legacy", "--format", "tiff"], "--format must be one of jpeg, fits"),
        (["--pixel-scale", "0"], "--pixel-scale must be 0.01-10 arcsec per pixel"),
        (["--pixel-scale", "nan"], "--pixel-scale"),
        (["--pixel-scale", "5", "--size", "256"], "is a field of 1280 arcsec; at most 600"),
    ],
)
def test_bad_survey_options_exit_2_in_one_line_before_touching_the_disk(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["synth", "--n", "2", "--out", str(out), "--size", "16", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_library_errors_name_the_parameter(tmp_path):
    for kwargs, param in (
        ({"survey": "hst"}, "survey"),
        ({"format": 3}, "format"),
        ({"pixel_scale": True}, "pixel_scale"),
    ):
        with pytest.raises(ConfigError) as info:
            synthesize(tmp_path / "x", 2, size=16, **kwargs)
        assert info.value.param == param and "--" not in str(info.value)
    assert not (tmp_path / "x").exists()
