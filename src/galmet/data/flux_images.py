"""FITS-cutout rows of a dataset: their format, headers, stretch and decoding to uint8 RGB.

A dataset directory may hold ``images/<objID>.fits`` (float32 fluxes (3, H, W), bands bluest
first: :mod:`galmet.io.fits_images`) instead of JPEGs, and a plain folder may hold ``.fits``
files. The loader (:mod:`galmet.data.dataset`) reads their headers for the majority size as it
does a JPEG's, and decodes each through a :class:`~galmet.data.stretch.Stretch` into the uint8
(H, W, 3) everything downstream takes. One dataset holds one format: a folder mixing JPEG/PNG
and FITS rows is refused in one line (:func:`image_format`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galmet.data.fits_header_imaging import header_survey, is_fits_path
from galmet.data.fits_rows import FitsRowHeader, row_keys
from galmet.data.stretch import Stretch, default_stretch
from galmet.errors import DataError
from galmet.io.fits_images import read_fits, read_fits_header
from galmet.io.images import ImageHeader, read_header, read_image

#: The :attr:`ImageHeader.format` of a FITS cutout.
FITS_FORMAT = "FITS"
#: Bands of a FITS cutout a colour stretch takes.
FITS_BANDS = 3


def image_format(root: Path, paths: list[Path]) -> str:
    """``"fits"`` when the rows' image files are FITS cutouts, else ``"jpeg"`` (JPEG/PNG).

    Raises
    ------
    DataError
        One line naming one file of each kind, when some rows are FITS and others not.
    """
    fits = [p for p in paths if is_fits_path(p)]
    if not fits:
        return "jpeg"
    if len(fits) == len(paths):
        return "fits"
    other = next(p for p in paths if not is_fits_path(p))
    raise DataError(
        f"{root}: mixes FITS and JPEG/PNG images ({len(fits)} FITS, e.g. {fits[0].name}; "
        f"{len(paths) - len(fits)} others, e.g. {other.name}); a dataset holds one format"
    )


def read_row_header(path: Path, where: str) -> ImageHeader:
    """The size of a row's image (a FITS cutout's header, or a JPEG/PNG's), no pixel decoded;
    a FITS cutout's is a :class:`~galmet.data.fits_rows.FitsRowHeader`, with its imaging keywords.

    Raises
    ------
    DataError
        Unreadable, not an image; for FITS, not (3, H, W).
    """
    if not is_fits_path(path):
        return read_header(path, where)
    header = read_fits_header(path, where)
    if header.bands != FITS_BANDS:
        raise DataError(f"{where}: FITS image has {header.bands} bands, expected {FITS_BANDS} (bluest first)")
    return FitsRowHeader(FITS_FORMAT, header.width, header.height, keys=row_keys(header.meta))


def read_fits_rgb(path: Path, size: int, stretch: Stretch, where: str) -> tuple[np.ndarray, int]:
    """A FITS cutout as uint8 (size, size, 3) through ``stretch``, and its count of non-finite
    fluxes (taken as 0); DataError (one line naming ``where``) for a bad file."""
    cube = check_fluxes(read_fits(path, size, FITS_BANDS, where), where)
    return stretch.apply_counted(cube)


def check_fluxes(cube: np.ndarray, where: str) -> np.ndarray:
    """``cube`` (float fluxes) when it holds an image: DataError (one line naming ``where``)
    when no flux is finite (all NaN/inf) or every finite flux is exactly 0 (blank sky, what
    ``galmet download`` calls outside the footprint). Some NaNs are left to the stretch."""
    finite = np.isfinite(cube)
    if not finite.any():
        raise DataError(f"{where}: no finite flux (all {cube.size} values are NaN or inf)")
    if not np.any(cube[finite]):
        raise DataError(f"{where}: blank: all fluxes are 0 (no imaging here?)")
    return cube


def resolve_stretch(given, recorded) -> Stretch:
    """The stretch a FITS dataset is decoded with: ``given`` (a Stretch or its dict), else the
    one the dataset records (``recorded``: its :class:`~galmet.data.imaging.Imaging`), else the
    default of its survey.

    Raises
    ------
    ConfigError
        One line naming the field, for a given or recorded stretch that does not fit.
    """
    if given is not None:
        return Stretch.from_dict(given, "stretch")
    if recorded.stretch is not None:
        return Stretch.from_dict(recorded.stretch, f"{recorded.source or 'dataset'}: stretch")
    return default_stretch(recorded.survey)


def read_rgb(path: Path, size: int | None, stretch, where: str) -> np.ndarray:
    """One image file as uint8 (H, W, 3) (H = W = ``size`` when given): a JPEG/PNG decoded, a
    FITS cutout through ``stretch`` (a Stretch or its dict, e.g. a model's ``imaging.stretch``;
    None: the default of the survey its header names or its bands tell). DataError (one line naming ``where``)
    for a bad file."""
    if not is_fits_path(path):
        return read_image(path, size, where=where)
    if stretch is None:
        stretch = default_stretch(header_survey(read_fits_header(path, where).meta))
    cube = check_fluxes(read_fits(path, size, FITS_BANDS, where), where)
    return Stretch.from_dict(stretch, "stretch").apply(cube)
