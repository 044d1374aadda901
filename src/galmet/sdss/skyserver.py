"""The SDSS SkyServer web services: SqlSearch (SQL queries) and ImgCutout (JPEG cutouts).

:class:`SkyServerClient` is a :class:`galmet.sdss.transport.HttpClient` (the deadline, body
cap, pooled keep-alive connections, rate limit and retries all live there) that knows
SkyServer's URLs, its data releases and what its bodies must be:

- a SqlSearch body is CSV with the expected header columns (:func:`parse_sql_csv`); an HTML or
  text error page sent with status 200 is refused and retried;
- a cutout must be exactly one JPEG of the requested size: its header is checked before it is
  decoded (a decompression bomb is never decoded) and bytes after its end-of-image marker are
  refused (:func:`validate_jpeg`). An error page or a truncated body is retried; a complete
  wrong answer (another size or mode, not an image, junk after it) is a permanent failure at once.

Every call of the Python API takes ``get_query_payload=True`` (astroquery's payload mode): it
then returns the :class:`~galmet.sdss.transport.RequestPayload` it would send (URL and
parameters) and touches no network.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from dataclasses import dataclass

from galmet._version import __version__
from galmet.errors import ConfigError
from galmet.paper import DATA_RELEASE, PIXEL_SCALE_ARCSEC
from galmet.sdss.answers import validate_jpeg
from galmet.sdss.transport import (  # noqa: F401 - re-exported: the names callers and tests import from here
    DEFAULT_MAX_BYTES,
    ERROR_BODY_BYTES,
    MAX_REDIRECTS,
    PROJECT_URL,
    TRANSIENT_STATUSES,
    BadBody,
    ClientSettings,
    FailureBudget,
    HttpClient,
    Interrupted,
    OversizedBody,
    RateLimiter,
    RequestPayload,
    Response,
    RetryPolicy,
    ServiceError,
    TransportError,
    WrongAnswer,
    describe_body,
    parse_retry_after,
    retry_reason,
    shorten,
)

log = logging.getLogger(__name__)

#: Where SkyServer lives; each data release has its root under it.
SKYSERVER = "https://skyserver.sdss.org"
#: SkyServer roots of the data releases galmet knows (``data_release``; the paper's first).
DATA_RELEASES = {release: f"{SKYSERVER}/{release.lower()}" for release in (DATA_RELEASE, "DR16", "DR17")}
#: The paper's release (its photometry and cutouts).
DEFAULT_DATA_RELEASE = DATA_RELEASE
DEFAULT_BASE_URL = DATA_RELEASES[DEFAULT_DATA_RELEASE]
#: The tables the paper's catalogue query joins (checked to exist when a release is chosen).
PAPER_TABLES = ("SpecObj", "Galaxy", "GalSpecInfo", "GalSpecLine", "GalSpecExtra")
#: Where SkyServer's object explorer shows one object, by release (``{base}`` + this + objID).
EXPLORE_PATH = "/en/tools/explore/summary.aspx?id="
SQL_PATH = "/SkyServerWS/SearchTools/SqlSearch"
CUTOUT_PATH = "/SkyServerWS/ImgCutout/getjpeg"
#: The paper's cutouts: its pixel scale (arcsec per pixel), 128 x 128 pixels (38" x 38").
DEFAULT_SCALE = PIXEL_SCALE_ARCSEC
DEFAULT_SIZE = 128
#: Named in every request, so SDSS can reach us.
USER_AGENT = f"galmet/{__version__} (+{PROJECT_URL}; SDSS catalogue and cutout client)"
#: Body cap of cutout requests unless set, bytes (a 2048-pixel cutout is ~2 MB).
CUTOUT_MAX_BYTES = 4 << 20
#: How cutouts are fetched unless told otherwise (``galmet download``'s defaults): a polite 5
#: requests per second, the cutout body cap.
CUTOUT_SETTINGS = ClientSettings(rate=5.0, max_bytes=CUTOUT_MAX_BYTES)


class SkyServerError(ServiceError):
    """A SkyServer request that failed for good (after its retries); the message is one line.

    Attributes
    ----------
    attempts : int
        Requests sent for this call.
    permanent : bool
        True when retrying later is pointless (HTTP 404, a wrong answer, a body over the cap).
    """


@dataclass
class SkyServerClient(HttpClient):
    """A thread-safe client for one SkyServer (e.g. ``https://skyserver.sdss.org/dr14``).

    Parameters
    ----------
    base_url : str
        Server root (default: the paper's release, :data:`DEFAULT_BASE_URL`).
    timeout, policy, rate, rng, max_bytes, keep_alive
        As :class:`~galmet.sdss.transport.HttpClient`.
    """

    error = SkyServerError
    user_agent = USER_AGENT
    log = log

    base_url: str = DEFAULT_BASE_URL

    # -- requests -------------------------------------------------------------------------
    def sql_payload(self, sql: str) -> RequestPayload:
        """The SqlSearch request that runs ``sql`` and returns CSV."""
        return self.payload(SQL_PATH, {"cmd": sql, "format": "csv"})

    def cutout_payload(
        self, ra: float, dec: float, scale: float = DEFAULT_SCALE, size: int = DEFAULT_SIZE
    ) -> RequestPayload:
        """The ImgCutout request of a ``size`` x ``size`` JPEG at ``scale`` arcsec/pixel centred on
        (ra, dec) degrees."""
        params = {
            "ra": f"{float(ra):.8f}",
            "dec": f"{float(dec):.8f}",
            "scale": f"{float(scale):.6g}",
            "width": int(size),
            "height": int(size),
        }
        return self.payload(CUTOUT_PATH, params)

    def sql_url(self, sql: str) -> str:
        """The SqlSearch URL that runs ``sql`` and returns CSV."""
        return self.sql_payload(sql).full_url

    def cutout_url(self, ra: float, dec: float, scale: float = DEFAULT_SCALE, size: int = DEFAULT_SIZE) -> str:
        """The ImgCutout URL of a ``size`` x ``size`` JPEG at ``scale`` arcsec/pixel centred on (ra, dec) degrees."""
        return self.cutout_payload(ra, dec, scale, size).full_url

    # -- calls ----------------------------------------------------------------------------
    def sql_search(
        self,
        sql: str,
        where: str = "SqlSearch",
        expect_columns=("objID",),
        stop: threading.Event | None = None,
        *,
        get_query_payload: bool = False,
    ):
        """Run ``sql`` on SqlSearch and return the result as a pandas DataFrame of strings/numbers.

        The CSV body may start with a ``#Table1`` line. A body without the expected header
        columns (an HTML or text error page, even with status 200) is retried and finally
        reported as a :class:`SkyServerError` naming ``where``. With ``get_query_payload`` the
        :class:`~galmet.sdss.transport.RequestPayload` is returned instead and nothing is sent.
        """
        payload = self.sql_payload(sql)
        if get_query_payload:
            return payload
        frame, _ = self.call(payload.full_url, lambda body: parse_sql_csv(body, expect_columns), where, stop)
        return frame

    def get_cutout(
        self,
        ra: float,
        dec: float,
        scale: float = DEFAULT_SCALE,
        size: int = DEFAULT_SIZE,
        where: str | None = None,
        stop: threading.Event | None = None,
        *,
        budget: FailureBudget | None = None,
        get_query_payload: bool = False,
    ):
        """Fetch and validate one JPEG cutout (or, with ``get_query_payload``, return the
        :class:`~galmet.sdss.transport.RequestPayload` that would fetch it, sending nothing).
        ``stop`` and ``budget`` (a :class:`~galmet.sdss.transport.FailureBudget` shared by a job's
        calls) end the call early: :meth:`~galmet.sdss.transport.HttpClient.call`.

        Returns
        -------
        body : bytes
            The JPEG exactly as served.
        image : numpy.ndarray
            uint8 (size, size, 3), decoded from ``body``.
        attempts : int
            Requests sent.
        """
        payload = self.cutout_payload(ra, dec, scale, size)
        if get_query_payload:
            return payload
        where = where or f"cutout ra={ra:.6f} dec={dec:.6f}"
        (body, image), attempts = self.call(
            payload.full_url, lambda b: (b, validate_jpeg(b, size, where)), where, stop, budget
        )
        return body, image, attempts


def release_of(base_url: str) -> str | None:
    """The data release a SkyServer root serves (``.../dr16`` -> ``"DR16"``), or None when the URL
    does not say (a mirror, a test server)."""
    m = re.search(r"/dr(\d+)/?$", str(base_url).rstrip("/") + "/", re.IGNORECASE)
    return f"DR{int(m.group(1))}" if m else None


def explore_url(objid: int, release: str | None = None) -> str:
    """The SkyServer object-explorer page of an SDSS objID (default: the paper's release)."""
    base = DATA_RELEASES.get((release or DEFAULT_DATA_RELEASE).upper(), DEFAULT_BASE_URL)
    return f"{base}{EXPLORE_PATH}{int(objid)}"


def check_tables(
    client: SkyServerClient,
    tables=PAPER_TABLES,
    release: str | None = None,
    *,
    get_query_payload: bool = False,
) -> RequestPayload | None:
    """ConfigError (one line) unless every table of ``tables`` exists on the client's SkyServer.

    Asks SkyServer's schema table ``DBObjects`` once (names compared without regard to case, as
    SQL Server does). With ``get_query_payload`` the request is returned instead and nothing is sent.
    """
    names = ", ".join(f"'{t}'" for t in tables)
    sql = f"SELECT name FROM DBObjects WHERE name IN ({names})"
    if get_query_payload:
        return client.sql_payload(sql)
    where = f"{release or client.base_url}: table check"
    frame = client.sql_search(sql, where=where, expect_columns=("name",))
    found = {str(n).strip().lower() for n in frame["name"]}
    missing = [t for t in tables if t.lower() not in found]
    if missing:
        raise ConfigError(
            f"{release or client.base_url} ({client.base_url}) lacks the table(s) {', '.join(missing)} "
            f"the paper's query needs"
        )
    return None


def _check_field_counts(lines: list[str], width: int, skipped: int = 0) -> None:
    """BadBody naming the line (of the body: ``skipped`` lines came before ``lines``) of the first
    row whose field count is not the header's ``width``: pandas would read a row with one field
    more as an index and shift it."""
    import csv

    reader = csv.reader(lines)
    try:
        for fields in reader:
            if fields and len(fields) != width:
                raise BadBody(
                    f"malformed CSV: line {reader.line_num + skipped}: {len(fields)} fields, the header has {width}"
                )
    except csv.Error as exc:
        raise BadBody(f"malformed CSV: line {reader.line_num + skipped}: {shorten(str(exc), 100)}") from None


def parse_sql_csv(body: bytes, expect_columns=("objID",)):
    """Parse a SqlSearch CSV body (optionally starting with ``#Table1``) into a DataFrame.

    Raises
    ------
    BadBody
        The body is an error page (HTML or text) or its header lacks ``expect_columns``.
    """
    import pandas as pd

    text = body.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    skipped = 0
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
        skipped += 1
    if not lines:
        raise BadBody("no CSV header in the body" if text.strip() else "empty body")
    header = [h.strip() for h in lines[0].split(",")]
    lower = {h.lower() for h in header}
    missing = [c for c in expect_columns if c.lower() not in lower]
    if missing:
        if len(header) > 1 and not lines[0].lstrip().startswith("<"):
            raise BadBody(f"CSV header lacks columns {missing}: {shorten(lines[0], 100)!r}")
        raise BadBody(describe_body(body))
    from galmet.columns import is_id_column, objid_array

    _check_field_counts(lines, len(header), skipped)
    try:
        ids = {h: str for h in header if is_id_column(h)}  # read as text: exact 64-bit ids, never float
        # index_col=False: a row with an extra field must not become an index that shifts every column
        frame = pd.read_csv(io.StringIO("\n".join(lines)), dtype=ids or None, index_col=False)
        for col in frame.columns:
            if is_id_column(col):
                frame[col] = objid_array(frame[col], "SqlSearch CSV", column=str(col))
        return frame
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for malformed CSV
        raise BadBody(f"malformed CSV ({type(exc).__name__}: {shorten(str(exc), 100)})") from None


def fetch_cutout(
    ra,
    dec=None,
    scale=DEFAULT_SCALE,
    size: int = DEFAULT_SIZE,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = CUTOUT_SETTINGS.timeout,
    retries: int = CUTOUT_SETTINGS.retries,
    backoff_base: float = CUTOUT_SETTINGS.backoff_base,
    *,
    get_query_payload: bool = False,
):
    """Fetch one validated SDSS JPEG cutout as an array (the paper's 128 x 128 gri image by default).

    ``galmet.fetch_cutout`` (:func:`galmet.sdss.sources.fetch_cutout`) is this call for any survey
    (``survey=``, ``layer=``, ``format=``); with its defaults it sends the same request.

    Parameters
    ----------
    ra, dec : float, astropy Quantity/Angle, or str
        Centre: degrees (ICRS/J2000), any angular Quantity, or text (decimal degrees or
        sexagesimal, ``"12h30m49.4s"``, ``"+12d23m28s"``). Or give one astropy ``SkyCoord`` as
        ``ra`` and no ``dec``: ``fetch_cutout(SkyCoord.from_name("M87"))``.
    scale : float or Quantity
        Arcsec per pixel (the paper's, :data:`galmet.paper.PIXEL_SCALE_ARCSEC`, gives its 38" x 38"
        field); a Quantity in arcsec (per pixel) or any angle.
    size : int
        Width = height, pixels.
    base_url, timeout, retries, backoff_base
        Server root, deadline of each request (s), retries after the first try, first backoff (s).
    get_query_payload : bool
        Return the :class:`~galmet.sdss.transport.RequestPayload` that would fetch the cutout (URL
        and parameters) instead, without touching the network (astroquery's payload mode).

    Returns
    -------
    numpy.ndarray
        uint8, shape (size, size, 3), RGB (a RequestPayload with ``get_query_payload``).

    Raises
    ------
    SkyServerError
        The cutout could not be fetched (one line with the last error).
    """
    from galmet.sdss.coords import scalar_position

    ra, dec = scalar_position(ra, dec)
    scale = arcsec_per_pixel(scale)
    client = SkyServerClient(
        base_url, timeout, RetryPolicy(retries=retries, backoff_base=backoff_base), max_bytes=CUTOUT_MAX_BYTES
    )
    if get_query_payload:
        return client.cutout_payload(ra, dec, scale, size)
    _, image, _ = client.get_cutout(ra, dec, scale, size)
    return image


def arcsec_per_pixel(scale) -> float:
    """A cutout's pixel scale in arcsec per pixel: a number (taken as arcsec), or an astropy Quantity
    in arcsec (per pixel) or any angle (per pixel)."""
    if not hasattr(scale, "unit"):
        return scale
    import astropy.units as u

    q = u.Quantity(scale)
    per_pixel = q.unit * u.pix if (q.unit * u.pix).physical_type == "angle" else q.unit
    return float(q.value * per_pixel.to(u.arcsec))
