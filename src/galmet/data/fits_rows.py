"""That every FITS row of a dataset is of the set's imaging: survey, bands, unit and pixel scale.

A FITS cutout records its imaging in its header (``SURVEY``, ``BANDS``, ``BUNIT``,
``PIXSCALE``: :mod:`galmet.io.fits_images`). The loader reads every row's header for the
majority size anyway (:func:`galmet.data.flux_images.read_row_header` keeps these keywords,
:class:`FitsRowHeader`); :func:`disagreeing_rows` then finds the files whose keywords differ from
the set's: the survey the dataset records (manifest.parquet, synth_config.yaml), else, keyword
by keyword, the value most headers have (ties: the first row's). Such a row is a bad row (a
Legacy grz cutout in a PS1 gri set would be decoded with the wrong bands and stretch). A
keyword a header lacks is not checked (a survey is inferred from the bands when it can be:
:func:`galmet.data.fits_header_imaging.header_survey`).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

from galmet.data.fits_header_imaging import FITS_HEADER, header_survey
from galmet.io.images import ImageHeader

#: The header keywords every row must share with the set, in the order they are checked.
CHECKED = ("BANDS", "SURVEY", "BUNIT", "PIXSCALE")


@dataclass(frozen=True)
class FitsRowHeader(ImageHeader):
    """An :class:`~galmet.io.images.ImageHeader` of a FITS cutout with its imaging keywords:
    ``keys``, ((keyword, normalised value), ...) for the :data:`CHECKED` ones present."""

    keys: tuple = ()


def row_keys(meta: dict) -> tuple:
    """The :data:`CHECKED` keywords of a FITS header's ``meta``, normalised for comparison:
    bands and unit stripped, survey lower case (inferred from the bands when absent), pixel
    scale to 4 significant digits (arcsec/px)."""
    keys = []
    bands = str(meta.get("BANDS", "")).strip()
    if bands:
        keys.append(("BANDS", bands))
    survey = header_survey(meta)
    if survey is not None:
        keys.append(("SURVEY", survey))
    unit = str(meta.get("BUNIT", "")).strip()
    if unit:
        keys.append(("BUNIT", unit))
    try:
        keys.append(("PIXSCALE", f"{float(meta['PIXSCALE']):.4g}"))
    except (KeyError, TypeError, ValueError):
        pass
    return tuple(keys)


def set_values(headers: dict[int, ImageHeader], recorded=None) -> dict[str, str]:
    """The set's value of each :data:`CHECKED` keyword: the survey ``recorded`` (an
    :class:`~galmet.data.imaging.Imaging`) names when a record other than a FITS header says
    it, else the value most ``headers`` (row -> header) have; ties go to the first row's."""
    counts: dict[str, collections.Counter] = {k: collections.Counter() for k in CHECKED}
    for i in sorted(headers):
        for key, value in getattr(headers[i], "keys", ()):
            counts[key][value] += 1  # Counter keeps first-seen order: most_common breaks ties by it
    values = {k: c.most_common(1)[0][0] for k, c in counts.items() if c}
    if recorded is not None and recorded.survey and recorded.source not in (None, FITS_HEADER):
        values["SURVEY"] = recorded.survey
    return values


def disagreeing_rows(paths: list[Path], headers: dict[int, ImageHeader], recorded=None) -> dict[int, str]:
    """Row -> one line (``DIR/images/5.fits: BANDS is gri, the set's is grz``) for each row of
    ``headers`` whose FITS keywords differ from the set's (:func:`set_values`); the first
    differing keyword (in :data:`CHECKED` order) is named."""
    values = set_values(headers, recorded)
    problems: dict[int, str] = {}
    for i, header in headers.items():
        for key, value in getattr(header, "keys", ()):
            if key in values and value != values[key]:
                problems[i] = f"{paths[i]}: {key} is {value}, the set's is {values[key]}"
                break
    return problems
