"""One cutout source per imaging survey: what ``galmet download --survey`` and prediction at
positions fetch with.

:func:`cutout_source` builds the :class:`CutoutSource` of a survey (:mod:`galmet.data.surveys`):

- ``sdss``: SkyServer's ImgCutout JPEGs (:meth:`galmet.sdss.skyserver.SkyServerClient.get_cutout`,
  unchanged);
- ``legacy``: the Legacy Survey viewer's ``cutout.jpg`` / ``cutout.fits`` (:mod:`galmet.sdss.legacy`);
- ``ps1``: PS1's ``ps1filenames.py`` then ``fitscut.cgi`` (:mod:`galmet.sdss.ps1`).

:func:`fetch_cutout` (``galmet.fetch_cutout``) fetches one cutout of any survey as an array.

Every source has the same call, :meth:`CutoutSource.get_cutout`, which returns the bytes to
write to ``images/<objID><suffix>`` (``.jpg`` or ``.fits``), the decoded image and the requests
sent; all run on the one transport (:class:`galmet.sdss.transport.HttpClient`). A position where
the survey has no imaging raises :class:`OutsideFootprint` (permanent, reason
``"outside footprint"``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from galmet.data.surveys import Survey, get_survey
from galmet.io.fits_images import FITS_SUFFIX
from galmet.sdss.answers import OUTSIDE_FOOTPRINT, OutsideFootprint
from galmet.sdss.legacy import LegacySurveyClient
from galmet.sdss.ps1 import PS1Client
from galmet.sdss.ps1 import check_scale as check_ps1_scale
from galmet.sdss.skyserver import CUTOUT_MAX_BYTES, CUTOUT_SETTINGS, SkyServerClient, arcsec_per_pixel
from galmet.sdss.transport import FailureBudget, HttpClient, RetryPolicy

__all__ = [
    "OUTSIDE_FOOTPRINT",
    "CutoutSource",
    "OutsideFootprint",
    "check_scale",
    "cutout_source",
    "fetch_cutout",
    "suffix_of",
]

#: The client class of each survey's cutout service.
CLIENTS: dict[str, type[HttpClient]] = {"sdss": SkyServerClient, "legacy": LegacySurveyClient, "ps1": PS1Client}
#: The file suffix of each cutout format.
SUFFIXES = {"jpeg": ".jpg", "fits": FITS_SUFFIX}


def suffix_of(fmt: str | None) -> str:
    """The cutout file suffix of format ``fmt``: ``".jpg"`` (jpeg, the default) or ``".fits"``."""
    return SUFFIXES.get(fmt or "jpeg", ".jpg")


def check_scale(survey: str | Survey, scale: float, param: str = "scale") -> None:
    """ConfigError when ``survey``'s service cannot cut at ``scale`` arcsec per pixel (PS1: only its
    native 0.25)."""
    if get_survey(survey).name == "ps1":
        check_ps1_scale(scale, param)


@dataclass
class CutoutSource:
    """A survey's cutouts of one layer and format, fetched through ``client``.

    Attributes
    ----------
    survey : Survey
    layer : str or None
        The survey's image layer (None: it has none).
    format : {"jpeg", "fits"}
    client : HttpClient
        The service's client (:class:`~galmet.sdss.skyserver.SkyServerClient`,
        :class:`~galmet.sdss.legacy.LegacySurveyClient`, :class:`~galmet.sdss.ps1.PS1Client`).
    """

    survey: Survey
    layer: str | None
    format: str
    client: Any
    _extra: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        extra: dict[str, Any] = {}
        if self.survey.name == "legacy":
            extra = {"layer": self.layer, "fmt": self.format}
        elif self.survey.name == "ps1":
            extra = {"fmt": self.format}
        self._extra = extra

    @property
    def suffix(self) -> str:
        """The file suffix of its cutouts: ``".jpg"`` or ``".fits"``."""
        return suffix_of(self.format)

    @property
    def base_url(self) -> str:
        """The service root its requests go to."""
        return self.client.base_url

    def get_cutout(
        self,
        ra: float,
        dec: float,
        scale: float,
        size: int,
        where: str | None = None,
        stop: threading.Event | None = None,
        *,
        budget: FailureBudget | None = None,
        get_query_payload: bool = False,
    ):
        """Fetch and validate one ``size`` x ``size`` cutout at ``scale`` arcsec/pixel centred on
        (ra, dec) degrees (with ``get_query_payload``: the (first) request, nothing sent).

        Returns
        -------
        body : bytes
            What is written to ``images/<objID><suffix>``: the JPEG as served, or galmet's FITS
            cutout form (:func:`galmet.io.fits_images.encode_fits`).
        image : numpy.ndarray
            uint8 (size, size, 3) for a JPEG; float32 (3, size, size) fluxes, bluest band first,
            for FITS.
        attempts : int
            Requests sent.

        Raises
        ------
        OutsideFootprint
            The survey has no imaging at (ra, dec) (permanent).
        ServiceError
            The client's error after its retries (``permanent`` for a 4xx or a wrong answer).
        galmet.sdss.transport.Interrupted
            ``stop`` was set, or ``budget`` ran out.
        """
        return self.client.get_cutout(
            ra, dec, scale, size, where, stop, budget=budget, get_query_payload=get_query_payload, **self._extra
        )


def cutout_source(
    survey: str | Survey | None = None,
    base_url: str | None = None,
    layer: str | None = None,
    fmt: str | None = None,
    *,
    client: HttpClient | None = None,
    **client_kwargs: Any,
) -> CutoutSource:
    """The :class:`CutoutSource` of ``survey`` (default ``sdss``).

    Parameters
    ----------
    survey : str or Survey
        ``sdss``, ``legacy`` or ``ps1``.
    base_url : str, optional
        The service root (default: the survey's, :attr:`Survey.base_url`); the service's paths are
        appended unchanged.
    layer : str, optional
        The survey's layer (default: its first; a survey without layers refuses one).
    fmt : {"jpeg", "fits"}, optional
        Default: the survey's first format (``fits`` for ps1, else ``jpeg``).
    client : HttpClient, optional
        Use this client (of the survey's service class) instead of building one.
    **client_kwargs
        The client's settings (``timeout``, ``policy``, ``rate``, ``max_bytes``, ...).

    Raises
    ------
    ConfigError
        An unknown survey, a layer or format the survey does not have (``param`` names it), a
        client of another service.
    """
    from galmet.errors import ConfigError

    info = get_survey(survey)
    fmt = info.check_format(fmt)
    layer = info.check_layer(layer)
    cls = CLIENTS[info.name]
    if client is None:
        client = cls(base_url or info.base_url, **client_kwargs)
    elif not isinstance(client, cls):
        raise ConfigError(f"client: a {info.name} source needs a {cls.__name__}, got {type(client).__name__}")
    return CutoutSource(info, layer, fmt, client)


def fetch_cutout(
    ra,
    dec=None,
    scale=None,
    size: int | None = None,
    base_url: str | None = None,
    timeout: float = CUTOUT_SETTINGS.timeout,
    retries: int = CUTOUT_SETTINGS.retries,
    backoff_base: float = CUTOUT_SETTINGS.backoff_base,
    *,
    survey: str = "sdss",
    layer: str | None = None,
    format: str | None = None,  # noqa: A002 - the name galmet's options and DownloadOptions use
    get_query_payload: bool = False,
):
    """Fetch one validated cutout of ``survey`` as an array (by default the paper's 128 x 128 SDSS
    gri JPEG, the very request :func:`galmet.sdss.skyserver.fetch_cutout` sends).

    Parameters
    ----------
    ra, dec : float, astropy Quantity/Angle, or str
        Centre: degrees (ICRS/J2000), any angular Quantity, or text (decimal degrees or
        sexagesimal). Or one astropy ``SkyCoord`` as ``ra`` and no ``dec``.
    scale : float or Quantity, optional
        Arcsec per pixel (a Quantity in arcsec (per pixel) or any angle); default: the survey's
        :attr:`~galmet.data.surveys.Survey.default_pixel_scale` (sdss 0.296, legacy 0.262, ps1 0.25,
        its only one).
    size : int, optional
        Width = height, pixels (default: the survey's, 128).
    base_url : str, optional
        The service root (default: the survey's; SDSS: the DR14 SkyServer, the paper's).
    timeout, retries, backoff_base
        Deadline of each request (s), retries after the first try, first backoff (s).
    survey : {"sdss", "legacy", "ps1"}
    layer : str, optional
        The survey's image layer (legacy: ``ls-dr10`` by default, ``ls-dr9-north``, ``ls-dr9-south``).
    format : {"jpeg", "fits"}, optional
        Default: the survey's first (``jpeg``; ``fits`` for ps1); SDSS serves JPEG only.
    get_query_payload : bool
        Return the :class:`~galmet.sdss.transport.RequestPayload` of the (first) request instead,
        sending nothing.

    Returns
    -------
    numpy.ndarray
        jpeg: uint8 (size, size, 3) RGB; fits: float32 (bands, size, size) fluxes, bluest band
        first (the survey's :attr:`~galmet.data.surveys.Survey.bands`; legacy and ps1 in nanomaggies).

    Raises
    ------
    ConfigError
        An unknown survey, a layer or format it does not have, a scale its service cannot cut at.
    OutsideFootprint
        The survey has no imaging at (ra, dec).
    ServiceError
        The cutout could not be fetched (one line with the last error).
    """
    from galmet.sdss.coords import scalar_position

    info = get_survey(survey)
    ra, dec = scalar_position(ra, dec)
    scale = info.default_pixel_scale if scale is None else arcsec_per_pixel(scale)
    check_scale(info, scale)
    policy = RetryPolicy(retries=retries, backoff_base=backoff_base)
    limits: dict[str, Any] = {"max_bytes": CUTOUT_MAX_BYTES} if info.name == "sdss" else {}
    source = cutout_source(info, base_url, layer, format, timeout=timeout, policy=policy, **limits)
    size = info.default_size if size is None else size
    if get_query_payload:
        return source.get_cutout(ra, dec, scale, size, get_query_payload=True)
    return source.get_cutout(ra, dec, scale, size)[1]
