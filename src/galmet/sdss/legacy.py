"""The DESI Legacy Imaging Surveys viewer's cutouts: ``ROOT/viewer/cutout.jpg`` and ``cutout.fits``.

The viewer's contract (https://www.legacysurvey.org/viewer, used unchanged under any service root):

``GET ROOT/viewer/cutout.jpg?ra=&dec=&layer=&pixscale=&size=``
    A ``size`` x ``size`` RGB JPEG of the layer's colour rendering (g, r, z shown as B, G, R).
``GET ROOT/viewer/cutout.fits?ra=&dec=&layer=&pixscale=&size=&bands=grz``
    A FITS image of shape (bands, size, size), float32 fluxes in nanomaggies (22.5 AB zero point).

``layer`` is ``ls-dr10`` (default), ``ls-dr9-north`` or ``ls-dr9-south``; ``pixscale`` is in
arcsec per pixel (native 0.262). Outside the layer's footprint the viewer answers blank sky (a
uniform, black JPEG; a FITS of zeros): :class:`~galmet.sdss.answers.OutsideFootprint`, a
permanent per-row status. A FITS answer is stored in galmet's one FITS cutout form
(:func:`galmet.io.fits_images.encode_fits`: BANDS, BUNIT, SURVEY, LAYER, PIXSCALE).

:class:`LegacySurveyClient` is a :class:`~galmet.sdss.transport.HttpClient`: the deadline, body
cap, keep-alive, rate limit, retries and failure budget are the transport's.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from galmet._version import __version__
from galmet.data.surveys import LEGACY
from galmet.sdss.answers import fits_cutout, is_blank, outside_footprint, validate_fits, validate_jpeg
from galmet.sdss.transport import PROJECT_URL, FailureBudget, HttpClient, RequestPayload, ServiceError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = LEGACY.base_url
JPEG_PATH = "/viewer/cutout.jpg"
FITS_PATH = "/viewer/cutout.fits"
DEFAULT_LAYER = LEGACY.default_layer or "ls-dr10"
DEFAULT_SCALE = LEGACY.native_pixel_scale
DEFAULT_SIZE = LEGACY.default_size
#: The bands of a FITS cutout, bluest first (the planes, in order).
BANDS = LEGACY.bands
USER_AGENT = f"galmet/{__version__} (+{PROJECT_URL}; Legacy Surveys cutout client)"


class LegacySurveyError(ServiceError):
    """A Legacy Survey viewer request that failed for good (after its retries); one line."""


@dataclass
class LegacySurveyClient(HttpClient):
    """A thread-safe client of the Legacy Survey viewer's cutouts.

    Parameters
    ----------
    base_url : str
        Service root (default ``https://www.legacysurvey.org``); ``/viewer/cutout.*`` is appended.
    timeout, policy, rate, rng, max_bytes, keep_alive
        As :class:`~galmet.sdss.transport.HttpClient`.
    """

    error = LegacySurveyError
    user_agent = USER_AGENT
    log = log

    base_url: str = DEFAULT_BASE_URL

    def cutout_payload(
        self,
        ra: float,
        dec: float,
        scale: float = DEFAULT_SCALE,
        size: int = DEFAULT_SIZE,
        layer: str = DEFAULT_LAYER,
        fmt: str = "jpeg",
    ) -> RequestPayload:
        """The viewer request of a ``size`` x ``size`` cutout at ``scale`` arcsec/pixel centred on
        (ra, dec) degrees: ``cutout.jpg``, or ``cutout.fits`` with ``bands=grz``."""
        params: dict[str, object] = {
            "ra": f"{float(ra):.8f}",
            "dec": f"{float(dec):.8f}",
            "layer": layer,
            "pixscale": f"{float(scale):.6g}",
            "size": int(size),
        }
        if fmt == "fits":
            params["bands"] = BANDS
        return self.payload(FITS_PATH if fmt == "fits" else JPEG_PATH, params)

    def get_cutout(
        self,
        ra: float,
        dec: float,
        scale: float = DEFAULT_SCALE,
        size: int = DEFAULT_SIZE,
        where: str | None = None,
        stop: threading.Event | None = None,
        *,
        layer: str = DEFAULT_LAYER,
        fmt: str = "jpeg",
        budget: FailureBudget | None = None,
        get_query_payload: bool = False,
    ):
        """Fetch and validate one cutout (with ``get_query_payload``: the request, nothing sent).

        Returns
        -------
        body : bytes
            JPEG: as served. FITS: galmet's FITS cutout form of the fluxes
            (:func:`galmet.io.fits_images.encode_fits`).
        image : numpy.ndarray
            JPEG: uint8 (size, size, 3). FITS: float32 (3, size, size) nanomaggies, g, r, z.
        attempts : int
            Requests sent.

        Raises
        ------
        OutsideFootprint
            Blank sky: the layer has no imaging here (permanent).
        LegacySurveyError
            The cutout could not be fetched: ``permanent`` for a 4xx or a wrong answer (another
            size or band count, not an image), which is not retried.
        """
        payload = self.cutout_payload(ra, dec, scale, size, layer, fmt)
        if get_query_payload:
            return payload
        where = where or f"cutout ra={ra:.6f} dec={dec:.6f}"
        if fmt == "fits":
            accept = lambda b: (b, validate_fits(b, size, len(BANDS), where))  # noqa: E731
        else:
            accept = lambda b: (b, validate_jpeg(b, size, where))  # noqa: E731
        (body, image), attempts = self.call(payload.full_url, accept, where, stop, budget)
        if is_blank(image):
            raise outside_footprint(where, attempts, f"{layer} has no imaging here: blank sky")
        if fmt == "fits":
            body = fits_cutout(image, LEGACY.name, layer, scale, BANDS, LEGACY.flux_unit)
        return body, image, attempts
