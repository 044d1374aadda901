"""What a FITS cutout's header says of its imaging: survey, layer, bands and pixel scale.

A dataset of FITS cutouts (``images/<objID>.fits``, :mod:`galmet.io.fits_images`) records
its imaging in every file's header (``SURVEY``, ``LAYER``, ``BANDS``, ``PIXSCALE``). A plain
folder of FITS images records nothing else, and a downloaded or synthetic set may record only
part of it elsewhere: :func:`with_fits_header` fills the fields the other records left unknown
from one file's header. Reading a header needs astropy (imported by :mod:`galmet.io.fits_images`
inside its functions); without it, or for an unreadable header, only the format is recorded.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import replace
from pathlib import Path

from galmet.data.surveys import SURVEYS
from galmet.errors import DataError
from galmet.io.fits_images import FITS_SUFFIXES, read_fits_header
from galmet.io.images import IMAGE_SUFFIXES
from galmet.layout import IMAGES_DIR

log = logging.getLogger(__name__)

#: What :attr:`Imaging.source` says when the header filled something.
FITS_HEADER = "FITS header"
#: The :attr:`Imaging.format` of FITS cutouts.
FITS = "fits"


def is_fits_path(path: str | Path) -> bool:
    """True when the file name has a FITS suffix (``.fits``, ``.fit``, ``.fts``; any case)."""
    return Path(path).suffix.lower() in FITS_SUFFIXES


def first_image_file(root: Path) -> Path | None:
    """The first image or FITS file (by directory order, not sorted: cheap on a large folder) of
    ``root/images`` (or ``root``), hidden files left out; None when there is none."""
    folder = root / IMAGES_DIR if (root / IMAGES_DIR).is_dir() else root
    suffixes = IMAGE_SUFFIXES + FITS_SUFFIXES
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes:
                    return Path(entry.path)
    except OSError:
        return None
    return None


def with_fits_header(root: Path, found, sample: str | Path | None = None):
    """``found`` (an :class:`~galmet.data.imaging.Imaging`) with what a FITS cutout's header
    records, when the dataset's images are FITS (``sample``, else :func:`first_image_file`):
    format ``fits``, and survey, layer, bands, pixel scale and size where ``found`` has None.
    A JPEG dataset's ``found`` is returned as it is."""
    if found.format == "jpeg":
        return found
    path = Path(sample) if sample is not None else first_image_file(root)
    if path is None or not is_fits_path(path):
        return found
    found = replace(found, format=FITS, source=found.source or FITS_HEADER)
    try:
        header = read_fits_header(path)
    except (DataError, ImportError) as exc:
        log.debug("%s: FITS header not read (%s); imaging from it not recorded", path, exc)
        return found
    return _fill(found, header.meta, header.width if header.width == header.height else None)


def header_survey(meta: dict) -> str | None:
    """The survey a FITS cutout's header keywords ``meta`` name (``SURVEY``), else the one its
    ``BANDS``, ``BUNIT`` and ``PIXSCALE`` tell (:func:`infer_survey`; the Legacy viewer's
    cutouts have no ``SURVEY``), else None."""
    name = str(meta.get("SURVEY", "")).strip().lower()
    if name in SURVEYS:
        return name
    return infer_survey(str(meta.get("BANDS", "")).strip(), meta.get("BUNIT"), meta.get("PIXSCALE"))


def infer_survey(bands: str, unit=None, scale=None) -> str | None:
    """The one survey of :data:`~galmet.data.surveys.SURVEYS` whose default ``bands`` are
    ``bands`` (``grz``: legacy); when several have them (``gri``: sdss, ps1), the one of those
    the flux unit ``unit`` and then the pixel scale ``scale`` (arcsec/px, its native or default
    scale within 0.001) single out; None when nothing decides."""
    found = [s for s in SURVEYS.values() if s.bands == bands]
    if unit is not None and len(found) > 1:
        unit = str(unit).strip().lower()
        found = [s for s in found if s.flux_unit.lower() == unit] or found
    value = _number(scale)
    if value is not None and len(found) > 1:
        near = [s for s in found if min(abs(s.native_pixel_scale - value), abs(s.default_pixel_scale - value)) < 1e-3]
        found = near or found
    return found[0].name if len(found) == 1 else None


def _number(value) -> float | None:
    """``value`` as a finite float, else None."""
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and math.isfinite(value) else None


def _fill(found, meta: dict, size: int | None):
    """``found`` with the header keywords ``meta`` filling its None fields (the survey inferred
    from the bands, unit and scale when the header names none: :func:`header_survey`)."""
    survey = found.survey or header_survey(meta)
    layer = str(meta.get("LAYER", "")).strip()
    if found.layer is None and survey and layer in SURVEYS[survey].layers:
        found = replace(found, layer=layer)
    bands = str(meta.get("BANDS", "")).strip()
    if found.bands is None and len(bands) == 3:
        found = replace(found, bands=bands)
    scale = _number(meta.get("PIXSCALE"))
    if found.pixel_scale is None and found.scale_mode != "scale-by-size" and scale:
        found = replace(found, pixel_scale=scale if scale > 0 else None, scale_mode=found.scale_mode or "fixed")
    return replace(found, survey=survey, fetch_size=found.fetch_size or size)
