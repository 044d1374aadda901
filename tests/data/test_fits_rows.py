"""Every FITS row is checked against the set's imaging (BANDS, SURVEY, BUNIT, PIXSCALE); a blank
or all-NaN cutout is a bad row; a header without SURVEY gets the survey its bands tell."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli

pytest.importorskip("astropy")

from test_fits_dataset import META, _fits_path, _flux_cube, make_tiny_fits_dataset  # noqa: E402

from galmet.data.dataset import load_dataset  # noqa: E402
from galmet.data.fits_header_imaging import infer_survey  # noqa: E402
from galmet.data.flux_images import read_rgb  # noqa: E402
from galmet.data.stretch import Stretch, default_stretch  # noqa: E402
from galmet.errors import DataError  # noqa: E402
from galmet.io.fits_images import encode_fits  # noqa: E402

PS1 = {"BANDS": "gri", "BUNIT": "nanomaggy", "SURVEY": "ps1", "PIXSCALE": 0.25}


def _rewrite(root, row: int, meta: dict, cube=None) -> str:
    """Write row ``row``'s file again with header ``meta`` (and ``cube``); return its path."""
    path = _fits_path(root, row)
    cube = _flux_cube(np.random.default_rng(row), 16, 0.5) if cube is None else cube
    path.write_bytes(encode_fits(cube, meta))
    return str(path)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("BANDS", "gri", "BANDS is gri, the set's is grz"),
        ("SURVEY", "ps1", "SURVEY is ps1, the set's is legacy"),
        ("BUNIT", "adu", "BUNIT is adu, the set's is nanomaggy"),
        ("PIXSCALE", 0.5, "PIXSCALE is 0.5, the set's is 0.262"),
    ],
)
def test_a_row_whose_header_disagrees_is_a_bad_row(tmp_path, field, value, said):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=5)
    path = _rewrite(root, 3, {**META, field: value})
    with pytest.raises(DataError) as info:
        load_dataset(root, cache=False)
    assert str(info.value) == f"{path}: {said}"
    ds = load_dataset(root, on_error="skip", cache=False)
    assert len(ds) == 4 and ds.skipped == [f"{path}: {said}"]


def test_a_folder_of_two_surveys_is_refused_file_by_file_on_the_cli(tmp_path, capsys):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=5)
    odd = [_rewrite(root, r, PS1) for r in (1, 4)]
    code, out, err = run_cli(capsys, "info", root, "--no-cache")
    assert code == 2 and f"{odd[0]}: BANDS is gri, the set's is grz" in err and "1 more bad rows" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_cli(capsys, "info", root, "--no-cache", "--skip-bad")
    assert code == 0 and "3 galaxies" in out and "grz fluxes" in out and "(legacy)" in out


def test_the_set_is_the_majority_even_when_the_first_row_is_odd(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=5)
    folder = root / "images"
    (root / "catalog.parquet").unlink()  # a plain folder: nothing but the headers records the imaging
    first = sorted(folder.iterdir())[0]
    first.write_bytes(encode_fits(_flux_cube(np.random.default_rng(1), 16, 0.5), PS1))
    ds = load_dataset(folder, on_error="skip", cache=False)
    assert first.name not in [p.name for p in ds.paths] and len(ds) == 4
    assert ds.stretch == default_stretch("legacy") and ds.imaging.survey == "legacy"
    assert "SURVEY is ps1" not in ds.skipped[0] and "BANDS is gri, the set's is grz" in ds.skipped[0]
    given = Stretch(scales=(1.0, 2.0, 3.0))
    assert load_dataset(folder, on_error="skip", cache=False, stretch=given).stretch == given


def test_a_header_without_a_keyword_is_not_flagged(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=4)
    _rewrite(root, 2, {k: v for k, v in META.items() if k not in ("BUNIT", "PIXSCALE")})
    assert len(load_dataset(root, cache=False)) == 4


@pytest.mark.parametrize(
    ("fill", "said"),
    [(np.nan, "no finite flux"), (np.inf, "no finite flux"), (0.0, "blank: all fluxes are 0")],
)
def test_a_cutout_with_no_flux_is_a_bad_row(tmp_path, fill, said):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=4)
    cube = np.full((3, 16, 16), fill, dtype=np.float32)
    if fill == 0.0:
        cube[0, :3, :3] = np.nan  # NaNs and zeros: still blank
    path = _rewrite(root, 1, META, cube)
    with pytest.raises(DataError, match=f"objID .*{_fits_path(root, 1).name}.*: {said}") as info:
        load_dataset(root, cache=False)
    assert "\n" not in str(info.value)
    ds = load_dataset(root, on_error="skip", cache=False)
    assert len(ds) == 3 and said in ds.skipped[0]
    with pytest.raises(DataError, match=said):
        read_rgb(path, 16, None, path)


@pytest.mark.parametrize(
    ("bands", "unit", "scale", "survey"),
    [
        ("grz", None, None, "legacy"),
        ("gri", None, None, None),
        ("gri", "nanomaggy", None, None),
        ("gri", None, 0.25, "ps1"),
        ("gri", None, "0.396", "sdss"),
        ("gri", None, 0.296, "sdss"),
        ("gri", None, 0.262, None),
        ("ugr", None, None, None),
        ("", None, None, None),
    ],
)
def test_the_survey_is_inferred_from_the_bands_when_they_tell(bands, unit, scale, survey):
    assert infer_survey(bands, unit, scale) == survey


def test_a_legacy_viewer_cutout_without_survey_decodes_with_legacys_stretch(tmp_path, capsys):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=4, meta={"BANDS": "grz"})  # what the real viewer writes
    ds = load_dataset(root, cache=False)
    assert ds.imaging.survey == "legacy" and ds.stretch == default_stretch("legacy")
    path = _fits_path(root, 0)
    np.testing.assert_array_equal(read_rgb(path, 16, None, "x"), ds.images()[0])
    gri = make_tiny_fits_dataset(tmp_path / "gri", n=4, meta={"BANDS": "gri"})
    code, out, _ = run_cli(capsys, "info", gri, "--no-cache")
    assert code == 0 and "survey unknown" in out and load_dataset(gri, cache=False).imaging.survey is None
    ps1 = make_tiny_fits_dataset(tmp_path / "ps1", n=4, meta={"BANDS": "gri", "PIXSCALE": 0.25})
    assert load_dataset(ps1, cache=False).stretch == default_stretch("ps1")


def test_a_cache_made_before_the_row_checks_is_not_used(tmp_path):
    from galmet.data.cache import cache_key, cache_location, file_digests, write_cache

    root = make_tiny_fits_dataset(tmp_path / "ds", n=4)
    ds = load_dataset(root)  # makes the cache
    path = _rewrite(root, 2, {**META, "BANDS": "gri"})
    names, paths = ds.names, ds.paths
    old = cache_key(names, paths, file_digests(paths), ds.stretch.to_dict())
    del old["fits_checks"]  # the key a galmet without these checks wrote, for the files as they are now
    write_cache(cache_location(root, True), np.asarray(ds.images()), old)
    with pytest.raises(DataError, match=f"{path}: BANDS is gri"):
        load_dataset(root)


def test_a_cutout_archives_imaging_is_its_samples_majority(tmp_path):
    from galmet.data.archive import open_archive

    root = make_tiny_fits_dataset(tmp_path / "ds", n=4)
    _rewrite(root, 0, PS1)
    archive = open_archive(root)
    im = archive.imaging([archive.image_path(i) for i in range(4)])
    assert (im.survey, im.bands, im.stretch) == ("legacy", "grz", default_stretch("legacy").to_dict())
