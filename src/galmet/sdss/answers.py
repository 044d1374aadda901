"""What an imaging service's answer must be, for every survey's cutout source.

- :func:`validate_jpeg`: one RGB JPEG of the requested size (checked from its header before any
  pixel is decoded, nothing after its end);
- :func:`validate_fits`: one FITS image of the requested size and band count, as float32
  (bands, H, W);
- :func:`is_blank`: a cutout with no imaging in it (a uniform JPEG, a FITS of zeros or NaNs):
  what the Legacy Survey viewer and PS1's fitscut answer outside their footprint, which a source
  turns into :class:`OutsideFootprint`.

What a retry may fix raises :class:`~galmet.sdss.transport.BadBody` (an error page, an empty,
truncated or undecodable body); a complete answer a retry would only repeat (another size, band
count or mode, a binary file of another kind, junk after the image) raises
:class:`~galmet.sdss.transport.WrongAnswer`, permanent at once.
"""

from __future__ import annotations

import numpy as np

from galmet.errors import DataError
from galmet.sdss.transport import BadBody, ServiceError, WrongAnswer, describe_body

#: The reason (and ``failure_reason`` tally) of a position where the survey has no imaging.
OUTSIDE_FOOTPRINT = "outside footprint"
#: A JPEG whose pixels span at most this many levels (of 255) is uniform: blank sky.
BLANK_JPEG_RANGE = 2
#: Fluxes no larger than this in absolute value are zero (a blank FITS cutout after a float
#: round trip, such as PS1's asinh scaling undone); far below any sky noise.
BLANK_FLUX = 1e-6


class OutsideFootprint(ServiceError):
    """The survey has no imaging at this position (blank sky, or no PS1 image): a permanent
    per-row status, never a prediction. The message is one line ending in
    :data:`OUTSIDE_FOOTPRINT`; ``permanent`` is always True.

    Attributes
    ----------
    attempts : int
        Requests sent for this call.
    """

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message, attempts=attempts, permanent=True)


def outside_footprint(where: str, attempts: int, detail: str = "") -> OutsideFootprint:
    """The :class:`OutsideFootprint` of ``where``: ``"<where>: outside footprint (<detail>)"``."""
    text = f"{where}: {OUTSIDE_FOOTPRINT}" + (f" ({detail})" if detail else "")
    return OutsideFootprint(text, attempts=attempts)


def _page(body: bytes) -> bool:
    """True when ``body`` reads as an error page or is empty (what a retry may fix)."""
    return describe_body(body).startswith(("HTML error page", "text error page", "empty body"))


def validate_jpeg(body: bytes, size: int, where: str) -> np.ndarray:
    """Decode ``body`` as one RGB JPEG of ``size`` x ``size`` pixels: uint8 (size, size, 3).

    Checked before any pixel is decoded: the JPEG header's size (a decompression bomb is never
    decoded) and the end-of-image marker, after which nothing may follow (junk appended to a
    valid image is refused, not stored).

    Raises
    ------
    BadBody
        An HTML or text error page, an empty, truncated or undecodable body.
    WrongAnswer
        A binary file that is not a JPEG, a JPEG of another size or mode than RGB, junk after it.
    """
    from galmet.io.images import check_header, decode_image, image_header

    if not body.startswith(b"\xff\xd8"):
        raise (BadBody if _page(body) else WrongAnswer)(f"not a JPEG: {describe_body(body)}")
    try:
        header = image_header(body, full=True)
    except ValueError as exc:
        raise BadBody(f"cannot decode image ({exc})") from None
    try:
        check_header(header, size, where)
    except DataError as exc:
        raise WrongAnswer(str(exc).removeprefix(f"{where}: ")) from None
    if header.end is None:
        raise BadBody(f"cannot decode image (truncated JPEG: {len(body)} bytes and no end-of-image marker)")
    if header.end < len(body):
        raise WrongAnswer(f"{len(body) - header.end} bytes of junk after the end of the JPEG")
    try:
        return decode_image(body, expected_size=size, where=where)
    except DataError as exc:
        text = str(exc).removeprefix(f"{where}: ")
        wrong = text.startswith(("image mode is", "image is"))  # another mode (band count) or size
        raise (WrongAnswer if wrong else BadBody)(text) from None


def validate_fits(body: bytes, size: int, bands: int, where: str) -> np.ndarray:
    """Decode ``body`` as one FITS image of ``bands`` planes of ``size`` x ``size`` pixels.

    Returns
    -------
    numpy.ndarray
        float32 (bands, size, size), as served (no unit conversion).

    Raises
    ------
    BadBody
        An error page, an empty body, a FITS file whose data is truncated or unreadable.
    WrongAnswer
        A binary file that is not FITS, a FITS image of another size or band count.
    """
    from galmet.io.fits_images import decode_fits, is_fits

    if not is_fits(body):
        raise (BadBody if _page(body) else WrongAnswer)(f"not a FITS file: {describe_body(body)}")
    try:
        return decode_fits(body, expected_size=size, bands=bands, where=where)
    except DataError as exc:
        text = str(exc).removeprefix(f"{where}: ")
        wrong = text.startswith(("image is", "FITS image has"))  # another size, band count or axes
        raise (WrongAnswer if wrong else BadBody)(text) from None


def is_blank(image: np.ndarray) -> bool:
    """True when ``image`` holds no imaging: a uint8 JPEG whose pixels span at most
    :data:`BLANK_JPEG_RANGE` levels (uniform, e.g. all black), or float fluxes that are all zero
    (within :data:`BLANK_FLUX`) or not finite (the Legacy Survey viewer's and fitscut's answer
    outside their footprint)."""
    if image.dtype == np.uint8:
        return int(image.max()) - int(image.min()) <= BLANK_JPEG_RANGE
    values = image[np.isfinite(image)]
    return values.size == 0 or not bool(np.any(np.abs(values) > BLANK_FLUX))


def fits_cutout(cube: np.ndarray, survey: str, layer: str | None, scale: float, bands: str, unit: str) -> bytes:
    """galmet's one FITS cutout form of ``cube`` (float32 (bands, H, W)): the bytes written to
    ``images/<objID>.fits`` (:func:`galmet.io.fits_images.encode_fits`, with BANDS, BUNIT, SURVEY,
    LAYER and PIXSCALE in arcsec per pixel)."""
    from galmet.io.fits_images import encode_fits

    meta = {"BANDS": bands, "BUNIT": unit, "SURVEY": survey, "LAYER": layer, "PIXSCALE": float(scale)}
    return encode_fits(cube, meta)
