"""FITS cutouts: calibrated fluxes as float32 arrays of shape (bands, H, W).

The one on-disk form galmet keeps a FITS cutout in (``images/<objID>.fits``, whatever survey it
came from): a primary HDU holding a float32 cube (bands, H, W), bands bluest first, with the
header keywords of :data:`CUTOUT_KEYWORDS` (``BANDS`` such as ``"grz"``, ``BUNIT``, ``SURVEY``,
``LAYER``, ``PIXSCALE`` in arcsec per pixel). A single-band image (H, W) reads as (1, H, W).

The header is checked before any pixel is read: an image of the wrong size, band count or
more than :data:`MAX_FITS_VALUES` values is refused in one line naming the file. astropy is
imported inside the functions that need it.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galmet.errors import DataError
from galmet.io.inputs import special_kind

#: File suffixes of FITS cutouts galmet reads.
FITS_SUFFIXES = (".fits", ".fit", ".fts")
#: The suffix galmet writes FITS cutouts with.
FITS_SUFFIX = ".fits"
#: Largest number of values (bands x H x W) galmet reads from one FITS cutout.
MAX_FITS_VALUES = 8 * 4096 * 4096
#: Largest FITS cutout file read, bytes.
MAX_FITS_FILE_BYTES = 256 << 20
#: Header keywords galmet writes into (and reads from) a FITS cutout, with their comments.
CUTOUT_KEYWORDS = {
    "BANDS": "bands of the planes, bluest first",
    "BUNIT": "unit of the pixel values",
    "SURVEY": "imaging survey (galmet --survey)",
    "LAYER": "survey layer / data release",
    "PIXSCALE": "arcsec per pixel",
}


@dataclass(frozen=True)
class FitsCutoutHeader:
    """What a FITS cutout's primary header says.

    Attributes
    ----------
    bands : int
        Number of planes (1 for a 2-D image).
    height, width : int
        Pixels.
    meta : dict
        The :data:`CUTOUT_KEYWORDS` present in the header (keyword -> value).
    """

    bands: int
    height: int
    width: int
    meta: dict = field(default_factory=dict)


def is_fits(data: bytes) -> bool:
    """True when ``data`` starts like a FITS file (its first card is ``SIMPLE  =``)."""
    return data[:9] == b"SIMPLE  ="


def _open(data: bytes, where: str):
    from astropy.io import fits

    if not is_fits(data):
        raise DataError(f"{where}: not a FITS file (it starts {data[:16]!r})")
    try:
        with warnings.catch_warnings():  # (a truncated file: reading its data says so in one line)
            warnings.simplefilter("ignore")
            hdul = fits.open(io.BytesIO(data), lazy_load_hdus=True, memmap=False)
            header = hdul[0].header
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for bad data
        raise DataError(f"{where}: cannot read FITS ({type(exc).__name__}: {exc})") from None
    return hdul, header


def _shape(header, where: str) -> tuple[int, int, int]:
    naxis = int(header.get("NAXIS", 0))
    if naxis not in (2, 3):
        raise DataError(f"{where}: FITS image has {naxis} axes, expected 2 (H, W) or 3 (bands, H, W)")
    width, height = int(header.get("NAXIS1", 0)), int(header.get("NAXIS2", 0))
    bands = int(header.get("NAXIS3", 1)) if naxis == 3 else 1
    if min(width, height, bands) < 1:
        raise DataError(f"{where}: FITS header says {bands}x{height}x{width} values")
    if width * height * bands > MAX_FITS_VALUES:
        raise DataError(f"{where}: FITS image of {bands}x{height}x{width} values is more than galmet reads")
    return bands, height, width


def fits_header(data: bytes, where: str = "image") -> FitsCutoutHeader:
    """The :class:`FitsCutoutHeader` of FITS bytes (no pixel is read).

    Raises
    ------
    DataError
        Not FITS, unreadable, not a 2-D or 3-D image, or too large.
    """
    hdul, header = _open(data, where)
    with hdul:
        bands, height, width = _shape(header, where)
        meta = {k: header[k] for k in CUTOUT_KEYWORDS if k in header}
    return FitsCutoutHeader(bands, height, width, meta)


def decode_fits(
    data: bytes, expected_size: int | None = None, bands: int | None = None, where: str = "image"
) -> np.ndarray:
    """Decode FITS bytes into float32 (bands, H, W), checking the header first.

    Parameters
    ----------
    data : bytes
        The file content (one primary image HDU; BSCALE/BZERO applied).
    expected_size : int, optional
        Required width and height, pixels.
    bands : int, optional
        Required number of planes.
    where : str
        Names the image in error messages.

    Raises
    ------
    DataError
        Not FITS, the wrong shape, or data that cannot be read (a truncated file).
    """
    hdul, header = _open(data, where)
    with hdul:
        n, height, width = _shape(header, where)
        if expected_size is not None and (height, width) != (expected_size, expected_size):
            raise DataError(f"{where}: image is {width}x{height} pixels, expected {expected_size}x{expected_size}")
        if bands is not None and n != bands:
            raise DataError(f"{where}: FITS image has {n} bands, expected {bands}")
        try:
            with warnings.catch_warnings():  # (a truncated file: the error below says so in one line)
                warnings.simplefilter("ignore")
                cube = np.asarray(hdul[0].data, dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for truncated data
            raise DataError(f"{where}: cannot read FITS data ({type(exc).__name__}: {exc})") from None
    if cube.ndim == 0 or cube.size != n * height * width:
        raise DataError(f"{where}: FITS data is truncated ({cube.size} of {n * height * width} values)")
    return np.ascontiguousarray(cube.reshape(n, height, width))


def read_fits(
    path: str | os.PathLike, expected_size: int | None = None, bands: int | None = None, where: str | None = None
) -> np.ndarray:
    """Read one FITS cutout file into float32 (bands, H, W); see :func:`decode_fits`."""
    path = Path(path)
    label = where or str(path)
    return decode_fits(_read(path, label), expected_size, bands, label)


def read_fits_header(path: str | os.PathLike, where: str | None = None) -> FitsCutoutHeader:
    """The :class:`FitsCutoutHeader` of a FITS cutout file."""
    path = Path(path)
    label = where or str(path)
    return fits_header(_read(path, label), label)


def _read(path: Path, label: str) -> bytes:
    special = special_kind(path)
    if special is not None:
        shown = "a folder" if special == "directory" else f"a {special}"
        raise DataError(f"{label}: is {shown}, not a FITS file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FITS_FILE_BYTES + 1)
    except FileNotFoundError:
        raise DataError(f"{label}: image file not found") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot read image ({exc.strerror or exc})") from None
    if len(data) > MAX_FITS_FILE_BYTES:
        raise DataError(f"{label}: FITS file is over {MAX_FITS_FILE_BYTES >> 20} MB; not a cutout galmet reads")
    return data


def encode_fits(cube: np.ndarray, meta: dict | None = None) -> bytes:
    """FITS bytes of a float32 cube (bands, H, W) with the :data:`CUTOUT_KEYWORDS` in ``meta``.

    Raises
    ------
    ValueError
        ``cube`` is not 3-D, or ``meta`` has a keyword galmet does not write.
    """
    from astropy.io import fits

    cube = np.asarray(cube, dtype=np.float32)
    if cube.ndim != 3:
        raise ValueError(f"a FITS cutout is (bands, H, W), got shape {cube.shape}")
    hdu = fits.PrimaryHDU(np.ascontiguousarray(cube))
    for key, value in (meta or {}).items():
        if key not in CUTOUT_KEYWORDS:
            raise ValueError(f"FITS cutout keyword {key!r} is not one of {sorted(CUTOUT_KEYWORDS)}")
        if value is not None:
            hdu.header[key] = (value, CUTOUT_KEYWORDS[key])
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()
