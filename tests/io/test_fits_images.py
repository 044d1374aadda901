"""FITS cutouts: float32 (bands, H, W) written and read back, and bad files refused in one line."""

import numpy as np
import pytest

from galmet.errors import DataError
from galmet.io.fits_images import decode_fits, encode_fits, fits_header, read_fits, read_fits_header


def _cube(bands=3, size=8):
    return np.random.default_rng(0).normal(size=(bands, size, size)).astype(np.float32)


def test_round_trip_keeps_values_and_keywords(tmp_path):
    cube = _cube()
    data = encode_fits(cube, {"BANDS": "grz", "BUNIT": "nanomaggy", "SURVEY": "legacy", "PIXSCALE": 0.262})
    np.testing.assert_array_equal(decode_fits(data, expected_size=8, bands=3), cube)
    head = fits_header(data)
    assert (head.bands, head.height, head.width) == (3, 8, 8)
    assert head.meta["BANDS"] == "grz" and head.meta["PIXSCALE"] == pytest.approx(0.262)
    path = tmp_path / "1.fits"
    path.write_bytes(data)
    assert read_fits(path).shape == (3, 8, 8) and read_fits_header(path).meta["SURVEY"] == "legacy"


def test_a_2d_image_reads_as_one_band():
    import io

    from astropy.io import fits

    buf = io.BytesIO()
    fits.PrimaryHDU(np.ones((5, 5), dtype=">i2")).writeto(buf)
    assert decode_fits(buf.getvalue()).shape == (1, 5, 5)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (b"\xff\xd8\xff\xe0 a jpeg", {}, "not a FITS file"),
        ("CUBE", {"expected_size": 16}, "image is 8x8 pixels, expected 16x16"),
        ("CUBE", {"bands": 5}, "has 3 bands, expected 5"),
        ("TRUNCATED", {}, "FITS"),
    ],
)
def test_bad_fits_is_one_line_naming_the_image(data, kwargs, message):
    good = encode_fits(_cube())
    data = {"CUBE": good, "TRUNCATED": good[: 2880 + 100]}.get(data, data)
    with pytest.raises(DataError, match=message) as err:
        decode_fits(data, where="objID 7", **kwargs)
    assert str(err.value).startswith("objID 7: ") and "\n" not in str(err.value)


def test_missing_file_and_bad_keyword(tmp_path):
    with pytest.raises(DataError, match="image file not found"):
        read_fits(tmp_path / "none.fits")
    with pytest.raises(ValueError, match="keyword 'FOO'"):
        encode_fits(_cube(), {"FOO": 1})
