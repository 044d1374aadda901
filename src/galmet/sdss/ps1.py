"""Pan-STARRS1 stack cutouts: ``ROOT/cgi-bin/ps1filenames.py``, then ``ROOT/cgi-bin/fitscut.cgi``.

The PS1 image cutout service's contract (https://outerspace.stsci.edu/display/PANSTARRS/PS1+Image+Cutout+Service,
used unchanged under any service root, default ``https://ps1images.stsci.edu``):

``GET ROOT/cgi-bin/ps1filenames.py?ra=&dec=&filters=gri``
    A whitespace-separated table, one row per stack image covering the position, with (among
    others) the columns ``filter`` and ``filename``. No rows: the position is outside the 3pi
    footprint (:class:`~galmet.sdss.answers.OutsideFootprint`).
``GET ROOT/cgi-bin/fitscut.cgi?ra=&dec=&size=&format=jpg&red=&green=&blue=``
    A ``size`` x ``size`` colour JPEG of three stack images (galmet: i -> red, r -> green,
    g -> blue, as SDSS renders gri).
``GET ROOT/cgi-bin/fitscut.cgi?ra=&dec=&size=&format=fits&red=``
    A ``size`` x ``size`` FITS image of one stack image; galmet fetches g, r and i and stores
    them as one cube (3, size, size) in its FITS cutout form
    (:func:`galmet.io.fits_images.encode_fits`, SURVEY ps1, PIXSCALE 0.25).

``size`` is in native pixels of 0.25 arcsec: the service has no pixel-scale parameter, so PS1
cutouts are fetched at 0.25"/pixel only.

PS1 stack pixels were stored non-linearly in flux, with an asinh ("luptitude") scaling whose
parameters are the header keywords BSOFTEN and BOFFSET (PS1 Image Cutout Service, "Important FITS
image format, WCS, and flux-scaling notes"; the IPP wiki page "asinh_compression")::

    linear = BOFFSET + BSOFTEN * (exp(x / a) - exp(-x / a)) = BOFFSET + BSOFTEN * 2 sinh(x / a)
    a = 2.5 log10(e) = 2.5 / ln(10) = 1.0857362

The service documents that a FITS cutout is converted to linear flux already and says to check
for BSOFTEN and BOFFSET to know whether the correction is needed: :func:`linear_flux` applies it
exactly when both are present. Linear stack pixels are counts with zero point
25 + 2.5 log10(EXPTIME), EXPTIME the header's total exposure time in seconds; galmet stores
nanomaggies (zero point 22.5), as every galmet FITS cutout (:func:`nanomaggies`)::

    m = 25 + 2.5 log10(EXPTIME) - 2.5 log10(counts) = 22.5 - 2.5 log10(nmgy)
    =>  nmgy = counts / (10 EXPTIME)

A FITS answer without a usable EXPTIME (missing, not a number, not > 0) is a wrong answer
(permanent, not retried); masked (NaN) pixels become 0.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from galmet._version import __version__
from galmet.data.surveys import PS1
from galmet.errors import ConfigError
from galmet.sdss.answers import fits_cutout, is_blank, outside_footprint, validate_fits, validate_jpeg
from galmet.sdss.transport import (
    PROJECT_URL,
    BadBody,
    FailureBudget,
    HttpClient,
    Interrupted,
    RequestPayload,
    ServiceError,
    WrongAnswer,
    describe_body,
    shorten,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = PS1.base_url
FILENAMES_PATH = "/cgi-bin/ps1filenames.py"
FITSCUT_PATH = "/cgi-bin/fitscut.cgi"
#: The service's only pixel scale, arcsec per pixel.
PIXEL_SCALE = PS1.native_pixel_scale
DEFAULT_SIZE = PS1.default_size
#: The bands galmet fetches, bluest first (the planes of a FITS cutout, in order).
BANDS = PS1.bands
#: The colour JPEG's channels: band -> fitscut parameter (reddest band as red).
COLOUR = {"i": "red", "r": "green", "g": "blue"}
#: 2.5 log10(e): the asinh scaling's ``a`` (the IPP's "alpha").
ASINH_A = 2.5 / math.log(10.0)
USER_AGENT = f"galmet/{__version__} (+{PROJECT_URL}; Pan-STARRS1 cutout client)"


class PS1Error(ServiceError):
    """A PS1 cutout-service request that failed for good (after its retries); one line."""


def check_scale(scale: float, param: str = "scale") -> None:
    """ConfigError unless ``scale`` is PS1's native 0.25 arcsec per pixel (fitscut cannot resample)."""
    if not math.isclose(float(scale), PIXEL_SCALE, rel_tol=1e-6):
        raise ConfigError(
            f"{param}: ps1 cutouts come at the native {PIXEL_SCALE:g} arcsec per pixel only, got {scale:g}",
            param=param,
        )


def parse_filenames(body: bytes, bands: str = BANDS) -> dict[str, str]:
    """band -> stack file name of a ``ps1filenames.py`` table (empty: no image covers the position).

    Raises
    ------
    BadBody
        Not such a table (an error page, a header without ``filter`` and ``filename``, a row of
        another width than the header).
    """
    text = body.decode("utf-8", errors="replace")
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines or lines[0][0].startswith("<"):
        raise BadBody(describe_body(body))
    header = [h.lower() for h in lines[0]]
    if "filter" not in header or "filename" not in header:
        raise BadBody(f"ps1filenames table lacks the filter and filename columns: {shorten(text, 100)!r}")
    band_at, file_at = header.index("filter"), header.index("filename")
    files: dict[str, str] = {}
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(header):
            raise BadBody(f"ps1filenames table: line {number}: {len(fields)} fields, the header has {len(header)}")
        if fields[band_at] in bands:
            files.setdefault(fields[band_at], fields[file_at])
    return files


def _header(body: bytes):
    """The primary header of the FITS ``body`` (astropy ``Header``)."""
    from astropy.io import fits

    with fits.open(io.BytesIO(body), lazy_load_hdus=True, memmap=False) as hdul:
        return hdul[0].header.copy()


def linear_flux(body: bytes, plane: np.ndarray) -> np.ndarray:
    """``plane`` (the data of the FITS ``body``) in linear counts: the asinh scaling undone when
    the header has BSOFTEN and BOFFSET (see the module docstring), as is otherwise; NaN -> 0."""
    header = _header(body)
    soften, offset = header.get("BSOFTEN"), header.get("BOFFSET")
    plane = plane.astype(np.float64)
    if soften is not None and offset is not None:
        plane = float(offset) + float(soften) * 2.0 * np.sinh(plane / ASINH_A)
    return np.nan_to_num(plane, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def exposure_time(body: bytes) -> float:
    """The header EXPTIME of the FITS ``body``, seconds.

    Raises
    ------
    WrongAnswer
        EXPTIME missing, not a number, or not a finite number > 0 (counts without it have no
        calibration).
    """
    value = _header(body).get("EXPTIME")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise WrongAnswer(f"PS1 FITS header has no usable EXPTIME (got {value!r}): its counts cannot be calibrated")
    return float(value)


def nanomaggies(body: bytes, plane: np.ndarray) -> np.ndarray:
    """``plane`` (the data of the FITS ``body``) in nanomaggies per pixel, float32:
    :func:`linear_flux` counts / (10 EXPTIME) (see the module docstring). A blank plane (all 0
    after NaN -> 0: outside the footprint) is returned as is, EXPTIME or not.

    Raises
    ------
    WrongAnswer
        A plane with data and no usable EXPTIME (:func:`exposure_time`).
    """
    counts = linear_flux(body, plane)
    if is_blank(counts):
        return counts
    return (counts / (10.0 * exposure_time(body))).astype(np.float32)


@dataclass
class PS1Client(HttpClient):
    """A thread-safe client of the PS1 image cutout service.

    Parameters
    ----------
    base_url : str
        Service root (default ``https://ps1images.stsci.edu``); ``/cgi-bin/...`` is appended.
    timeout, policy, rate, rng, max_bytes, keep_alive
        As :class:`~galmet.sdss.transport.HttpClient`.
    """

    error = PS1Error
    user_agent = USER_AGENT
    log = log

    base_url: str = DEFAULT_BASE_URL

    def filenames_payload(self, ra: float, dec: float, bands: str = BANDS) -> RequestPayload:
        """The ``ps1filenames.py`` request listing the stack images of ``bands`` at (ra, dec) degrees."""
        return self.payload(FILENAMES_PATH, {"ra": f"{float(ra):.8f}", "dec": f"{float(dec):.8f}", "filters": bands})

    def fitscut_payload(self, ra: float, dec: float, size: int, fmt: str, files: dict[str, str]) -> RequestPayload:
        """The ``fitscut.cgi`` request of a ``size`` x ``size`` cutout: ``files`` maps ``red``,
        ``green``, ``blue`` (a colour JPEG) or ``red`` alone (one FITS band) to stack file names."""
        params: dict[str, object] = {
            "ra": f"{float(ra):.8f}",
            "dec": f"{float(dec):.8f}",
            "size": int(size),
            "format": "fits" if fmt == "fits" else "jpg",
        }
        params.update(files)
        return self.payload(FITSCUT_PATH, params)

    def get_cutout(
        self,
        ra: float,
        dec: float,
        scale: float = PIXEL_SCALE,
        size: int = DEFAULT_SIZE,
        where: str | None = None,
        stop: threading.Event | None = None,
        *,
        fmt: str = "fits",
        budget: FailureBudget | None = None,
        get_query_payload: bool = False,
    ):
        """Fetch and validate one cutout: the file names, then fitscut (one colour JPEG, or one
        FITS per band). With ``get_query_payload`` the first request (``ps1filenames.py``) is
        returned and nothing is sent (the fitscut requests need its answer).

        Returns
        -------
        body : bytes
            JPEG: as served. FITS: galmet's FITS cutout form of the g, r, i fluxes.
        image : numpy.ndarray
            JPEG: uint8 (size, size, 3). FITS: float32 (3, size, size), nanomaggies per pixel.
        attempts : int
            Requests sent (all of them).

        Raises
        ------
        OutsideFootprint
            No stack image of a band covers the position, or the cutout is blank (permanent).
        PS1Error
            A request failed: ``permanent`` for a 4xx or a wrong answer (not retried), a FITS
            band without a usable EXPTIME among them.
        """
        check_scale(scale)
        payload = self.filenames_payload(ra, dec)
        if get_query_payload:
            return payload
        where = where or f"cutout ra={ra:.6f} dec={dec:.6f}"
        files, attempts = self.call(payload.full_url, parse_filenames, f"{where}: ps1filenames", stop, budget)
        missing = [b for b in BANDS if b not in files]
        if missing:
            raise outside_footprint(where, attempts, f"no PS1 stack image in {''.join(missing)}")
        try:
            if fmt == "fits":
                body, cube, sent = self._fits(ra, dec, size, files, where, stop, budget)
                return body, cube, attempts + sent
            colour = {COLOUR[b]: files[b] for b in BANDS}
            url = self.fitscut_payload(ra, dec, size, "jpg", colour).full_url
            (body, image), sent = self.call(url, lambda b: (b, validate_jpeg(b, size, where)), where, stop, budget)
        except (ServiceError, Interrupted) as exc:  # its attempts: all the requests of this cutout
            exc.attempts += attempts
            raise
        if is_blank(image):
            raise outside_footprint(where, attempts + sent, "blank PS1 cutout")
        return body, image, attempts + sent

    def _fits(self, ra, dec, size, files, where, stop, budget):
        """The FITS branch of :meth:`get_cutout` (after the file names): one fitscut per band,
        stacked bluest first. A failure's ``attempts`` count its bands' requests."""
        planes, attempts = [], 0
        for band in BANDS:
            url = self.fitscut_payload(ra, dec, size, "fits", {"red": files[band]}).full_url
            accept = lambda b: nanomaggies(b, validate_fits(b, size, 1, where)[0])  # noqa: E731
            try:
                plane, sent = self.call(url, accept, f"{where} ({band})", stop, budget)
            except (ServiceError, Interrupted) as exc:
                exc.attempts += attempts
                raise
            attempts += sent
            if is_blank(plane):
                raise outside_footprint(where, attempts, f"blank PS1 {band} cutout")
            planes.append(plane)
        cube = np.stack(planes)
        return fits_cutout(cube, PS1.name, None, PIXEL_SCALE, BANDS, PS1.flux_unit), cube, attempts
