"""HTTP client for the SDSS SkyServer web services (SqlSearch and ImgCutout).

Every HTTP call goes through :meth:`SkyServerClient._request`, the one choke point that
tests replace. Around it sit the parts that make a long acquisition reliable:

- a global rate limiter (:class:`RateLimiter`) shared by all threads,
- retries with exponential backoff and jitter that honour ``Retry-After``
  (:class:`RetryPolicy`),
- recognition of the shapes a server error takes: HTTP 5xx / 429, an HTML or plain-text
  error page sent with status 200, an empty body, a truncated or wrong-size JPEG.

Every request is bounded in time and bytes, whatever the server does (these are properties of
``_request`` that any transport behind it must keep; tests/test_skyserver.py checks them on a
loopback server):

- a **total deadline** per request (``timeout``): connecting, the headers and the whole body
  must arrive within it. A watchdog shuts the connection down at the deadline, so a server
  that trickles one byte a second is cut off after ``timeout`` seconds, not after hours.
- a **body cap** (``max_bytes``): a body announced or streamed beyond it is refused
  (:class:`OversizedBody`) after reading at most ``max_bytes`` bytes, never read into memory
  to the end; error pages are read up to 64 KiB.
- a cutout must be exactly one JPEG of the requested size: its header is checked before it is
  decoded (a decompression bomb is never decoded) and bytes after its end-of-image marker are
  refused (:func:`validate_jpeg`).

Only the standard library talks to the network (``urllib.request``).
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import io
import logging
import math
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from galmet.errors import ConfigError, DataError, GalmetError, one_line

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://skyserver.sdss.org/dr14"
SQL_PATH = "/SkyServerWS/SearchTools/SqlSearch"
CUTOUT_PATH = "/SkyServerWS/ImgCutout/getjpeg"
#: The paper's cutouts: 0.296 arcsec per pixel, 128 x 128 pixels (38" x 38").
DEFAULT_SCALE = 0.296
DEFAULT_SIZE = 128
USER_AGENT = "galmet (https://github.com/galmet; SDSS cutout downloader)"
#: Default body cap of a client (a SqlSearch chunk is a few MB; a cutout a few kB).
DEFAULT_MAX_BYTES = 64 << 20
#: Body cap of cutout requests unless set (a 2048-pixel cutout is ~2 MB).
CUTOUT_MAX_BYTES = 4 << 20
#: How much of an error page is read (it is only quoted in the message).
ERROR_BODY_BYTES = 64 << 10

#: Statuses worth retrying; every other non-200 status is permanent.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})

T = TypeVar("T")


class SkyServerError(GalmetError):
    """A request that failed for good (after its retries); the message is one line.

    Attributes
    ----------
    attempts : int
        Requests sent for this call.
    permanent : bool
        True when retrying later is pointless (HTTP 404, repeated bad bodies).
    """

    def __init__(self, message: str, attempts: int = 0, permanent: bool = False):
        super().__init__(message)
        self.attempts = attempts
        self.permanent = permanent


class TransportError(Exception):
    """The request got no complete HTTP response (timeout, refused, reset, short body)."""


class BadBody(Exception):
    """A status-200 response whose body is not what was asked for."""


class OversizedBody(Exception):
    """A response body longer than the client's ``max_bytes`` (announced or streamed)."""


class Interrupted(Exception):
    """The caller's stop event was set while a request was waiting or retrying."""


@dataclass(frozen=True)
class Response:
    """One HTTP response: status code, headers (lower-case names) and the full body."""

    status: int
    headers: dict
    body: bytes
    url: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts.

    Parameters
    ----------
    retries : int
        Retries after the first attempt (so at most ``retries + 1`` requests).
    backoff_base : float
        Seconds before the first retry; doubles with each further retry.
    backoff_max : float
        Upper bound of one backoff wait, seconds.
    max_retry_after : float
        Upper bound on a server's ``Retry-After``, seconds (protects against absurd values).
    """

    retries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 300.0

    def delay(self, retry: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based).

        Exponential backoff ``backoff_base * 2**retry`` (capped at ``backoff_max``) with
        "equal jitter": uniformly between half and all of it, so that many clients (or
        threads) that failed together do not come back together. A ``Retry-After`` from the
        server is a lower bound.
        """
        uniform = rng.uniform if rng is not None else random.uniform
        full = min(self.backoff_max, self.backoff_base * 2.0**retry)
        wait = full / 2 + uniform(0, full / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


class RateLimiter:
    """At most ``rate`` requests per second over all threads that share this object.

    Requests are given evenly spaced start slots (``1 / rate`` seconds apart); a caller
    sleeps until its slot. ``rate`` of None or <= 0 means no limit.
    """

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> None:
        """Block until this caller may send a request (or ``stop`` is set: raise Interrupted)."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        _sleep(slot - now, stop)


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    if seconds <= 0:
        return
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise Interrupted()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def describe_body(body: bytes, limit: int = 100) -> str:
    """A short one-line description of a body that is not the data asked for."""
    if not body.strip():
        return "empty body"
    head = body[:4096].decode("utf-8", errors="replace")
    if re.search(r"<\s*(!doctype|html|head|body|title)\b", head, re.IGNORECASE):
        title = re.search(r"<title[^>]*>(.*?)</title>", head, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else re.sub(r"<[^>]+>", " ", head)
        return f"HTML error page: {_one_line(text, limit)!r}"
    printable = sum(ch.isprintable() or ch.isspace() for ch in head) / max(1, len(head))
    if printable > 0.95:
        return f"text error page: {_one_line(head, limit)!r}"
    return f"{len(body)}-byte body that is not the data asked for"


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_local = threading.local()


class _Deadline:
    """The total deadline of one request: a timer that shuts down the request's sockets when it
    passes, so no read can outlive it, however slowly a server sends."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _Deadline:
        _local.deadline = self
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        _local.deadline = None

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _register_socket(sock) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.register(sock)


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _register_socket(self.sock)


class _HTTPSConnection(http.client.HTTPSConnection):
    # The TLS handshake is bounded by the per-read timeout; from then on the watchdog applies.
    def connect(self) -> None:
        super().connect()
        _register_socket(self.sock)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


#: urllib opener whose connections register their sockets with the request's deadline
#: (proxies from the environment still apply).
_OPENER = urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)


def _read_body(resp, deadline: _Deadline, cap: int, truncate: bool = False) -> bytes:
    """Read a response body in chunks, at most ``cap`` bytes (more: OversizedBody, or the first
    ``cap`` bytes when ``truncate``), within the deadline (else TransportError)."""
    buf = bytearray()
    read = getattr(resp, "read1", None) or resp.read
    while True:
        chunk = read(1 << 16)
        if deadline.expired:
            raise TransportError(f"no complete response within the {deadline.seconds:g} s deadline")
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > cap:
            if truncate:
                return bytes(buf[:cap])
            raise OversizedBody(f"body is over the {cap}-byte cap")


def _transport_error(exc: Exception, deadline: _Deadline, timeout: float) -> TransportError:
    """The one-line TransportError for a failure of the connection or of the HTTP exchange."""
    if deadline.expired:
        return TransportError(f"no complete response within the {timeout:g} s deadline")
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, (socket.timeout, TimeoutError))
    ):
        return TransportError(f"timed out after {timeout:g} s")
    if isinstance(exc, urllib.error.URLError):
        return TransportError(f"connection failed ({exc.reason})")
    if isinstance(exc, http.client.IncompleteRead):
        return TransportError(f"connection closed after {len(exc.partial)} bytes of the body")
    return TransportError(f"connection failed ({type(exc).__name__}: {one_line(exc, 120)})")


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"--{name} must be a positive number of seconds, got {value!r}")


@dataclass
class SkyServerClient:
    """A thread-safe client for one SkyServer (e.g. ``https://skyserver.sdss.org/dr14``).

    Parameters
    ----------
    base_url : str
        Server root; service paths are appended to it.
    timeout : float
        Total deadline of one request, seconds: connection, headers and the whole body.
    policy : RetryPolicy
        Retries and backoff.
    rate : float, optional
        Global limit in requests per second over all threads using this client
        (retries count); None for no limit.
    rng : random.Random, optional
        Source of backoff jitter (seed it for reproducible waits).
    max_bytes : int
        Largest response body accepted, bytes (:data:`DEFAULT_MAX_BYTES`).
    """

    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate: float | None = None
    rng: random.Random = field(default_factory=random.Random)
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        self.base_url = str(self.base_url).rstrip("/")
        if not re.match(r"^https?://[^\s/?#]+", self.base_url) or any(c.isspace() for c in self.base_url):
            raise GalmetError(f"base URL {self.base_url!r} must start with http:// or https:// and name a host")
        _positive("timeout", self.timeout)
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate >= 0):
            raise ConfigError(f"--rate must be 0 (no limit) or a positive number, got {self.rate}")
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes < 1:
            raise ConfigError(f"--max-bytes must be a positive number of bytes, got {self.max_bytes!r}")
        self.limiter = RateLimiter(self.rate)

    # -- URLs -----------------------------------------------------------------------------
    def sql_url(self, sql: str) -> str:
        """The SqlSearch URL that runs ``sql`` and returns CSV."""
        return f"{self.base_url}{SQL_PATH}?" + urllib.parse.urlencode({"cmd": sql, "format": "csv"})

    def cutout_url(self, ra: float, dec: float, scale: float = DEFAULT_SCALE, size: int = DEFAULT_SIZE) -> str:
        """The ImgCutout URL of a ``size`` x ``size`` JPEG at ``scale`` arcsec/pixel centred on (ra, dec) degrees."""
        params = {
            "ra": f"{float(ra):.8f}",
            "dec": f"{float(dec):.8f}",
            "scale": f"{float(scale):.6g}",
            "width": int(size),
            "height": int(size),
        }
        return f"{self.base_url}{CUTOUT_PATH}?" + urllib.parse.urlencode(params)

    # -- the choke point ------------------------------------------------------------------
    def _request(self, url: str, timeout: float) -> Response:
        """Send one GET and return the complete response; the only place that does network I/O.

        The whole request (connection, headers, body) must finish within ``timeout`` seconds
        (a watchdog shuts the connection at the deadline), and a body longer than
        ``self.max_bytes`` is refused after reading at most that much. A later transport must
        keep both properties (see the module docstring).

        Raises
        ------
        TransportError
            No complete response: deadline passed, connection refused or reset, short body.
        OversizedBody
            The body is (or is announced to be) longer than ``self.max_bytes``.
        """
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        deadline = _Deadline(timeout)
        with deadline:
            try:
                with _OPENER.open(req, timeout=timeout) as resp:
                    headers = {k.lower(): v for k, v in resp.headers.items()}
                    announced = headers.get("content-length", "")
                    if announced.strip().isdigit() and int(announced) > self.max_bytes:
                        raise OversizedBody(f"body of {int(announced)} bytes is over the {self.max_bytes}-byte cap")
                    body = _read_body(resp, deadline, self.max_bytes)
                    return Response(resp.status, headers, body, url)
            except urllib.error.HTTPError as exc:
                try:
                    body = _read_body(exc, deadline, ERROR_BODY_BYTES, truncate=True)
                except (TransportError, OSError, http.client.HTTPException):
                    body = b""
                return Response(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, body, url)
            except (TransportError, OversizedBody):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure below is "no complete response"
                raise _transport_error(exc, deadline, timeout) from exc

    # -- retried calls    # -- retried calls --------------------------------------------------------------------
    def call(
        self, url: str, accept: Callable[[bytes], T], where: str, stop: threading.Event | None = None
    ) -> tuple[T, int]:
        """GET ``url`` until ``accept(body)`` succeeds; return (its value, requests sent).

        ``accept`` raises :class:`BadBody` for a body that is not the data asked for (it is
        retried like a 5xx). Transient failures (transport errors, 408/429/5xx, empty or bad
        bodies) are retried per the policy; 404 and other 4xx are not.

        Raises
        ------
        SkyServerError
            One line naming ``where``, the last error and the number of requests.
            ``permanent`` is set for 4xx and for a bad body on the last try.
        Interrupted
            ``stop`` was set.
        """
        retries = max(0, int(self.policy.retries))
        for attempt in range(retries + 1):
            if stop is not None and stop.is_set():
                raise Interrupted()
            self.limiter.acquire(stop)
            retry_after = None
            bad_body = False
            try:
                resp = self._request(url, self.timeout)
            except TransportError as exc:
                error = str(exc)
            except OversizedBody as exc:
                error, bad_body = str(exc), True
            else:
                if resp.status == 200:
                    try:
                        if len(resp.body) < 64 and not resp.body.strip():
                            raise BadBody("empty body")
                        return accept(resp.body), attempt + 1
                    except BadBody as exc:
                        error, bad_body = str(exc), True
                elif resp.status in TRANSIENT_STATUSES or resp.status >= 500:
                    error = _status_error(resp)
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
                else:
                    error = _status_error(resp)
                    raise SkyServerError(f"{where}: {error}", attempts=attempt + 1, permanent=True)
            if attempt == retries:
                raise SkyServerError(
                    f"{where}: {error} (gave up after {attempt + 1} requests)", attempts=attempt + 1, permanent=bad_body
                )
            wait = self.policy.delay(attempt, retry_after, self.rng)
            log.debug("%s: %s; retry %d/%d in %.2f s", where, error, attempt + 1, retries, wait)
            _sleep(wait, stop)
        raise AssertionError("unreachable")

    def sql_search(
        self, sql: str, where: str = "SqlSearch", expect_columns=("objID",), stop: threading.Event | None = None
    ):
        """Run ``sql`` on SqlSearch and return the result as a pandas DataFrame of strings/numbers.

        The CSV body may start with a ``#Table1`` line. A body without the expected header
        columns (an HTML or text error page, even with status 200) is retried and finally
        reported as a :class:`SkyServerError` naming ``where``.
        """
        frame, _ = self.call(self.sql_url(sql), lambda body: parse_sql_csv(body, expect_columns), where, stop)
        return frame

    def get_cutout(
        self,
        ra: float,
        dec: float,
        scale: float = DEFAULT_SCALE,
        size: int = DEFAULT_SIZE,
        where: str | None = None,
        stop: threading.Event | None = None,
    ) -> tuple[bytes, np.ndarray, int]:
        """Fetch and validate one JPEG cutout.

        Returns
        -------
        body : bytes
            The JPEG exactly as served.
        image : numpy.ndarray
            uint8 (size, size, 3), decoded from ``body``.
        attempts : int
            Requests sent.
        """
        where = where or f"cutout ra={ra:.6f} dec={dec:.6f}"
        (body, image), attempts = self.call(
            self.cutout_url(ra, dec, scale, size), lambda b: (b, validate_jpeg(b, size, where)), where, stop
        )
        return body, image, attempts


def _status_error(resp: Response) -> str:
    """``HTTP 500 Internal Server Error`` plus what the body says (SkyServer puts SQL errors there)."""
    text = f"HTTP {resp.status} {http.client.responses.get(resp.status, '')}".rstrip()
    if resp.body.strip():
        text += f" ({describe_body(resp.body, limit=80)})"
    return text


def validate_jpeg(body: bytes, size: int, where: str) -> np.ndarray:
    """Decode ``body`` as one RGB JPEG of ``size`` x ``size`` pixels; raise BadBody otherwise.

    Checked before any pixel is decoded: the JPEG header's size (a decompression bomb is never
    decoded) and the end-of-image marker, after which nothing may follow (junk appended to a
    valid image is refused, not stored).
    """
    from galmet.io.images import check_header, decode_image, image_header

    if not body.startswith(b"\xff\xd8"):
        raise BadBody(f"not a JPEG: {describe_body(body)}")
    try:
        header = image_header(body, full=True)
        check_header(header, size, where)
    except ValueError as exc:
        raise BadBody(f"cannot decode image ({exc})") from None
    except DataError as exc:
        raise BadBody(str(exc).removeprefix(f"{where}: ")) from None
    if header.end is None:
        raise BadBody(f"cannot decode image (truncated JPEG: {len(body)} bytes and no end-of-image marker)")
    if header.end < len(body):
        raise BadBody(f"{len(body) - header.end} bytes of junk after the end of the JPEG")
    try:
        return decode_image(body, expected_size=size, where=where)
    except DataError as exc:
        raise BadBody(str(exc).removeprefix(f"{where}: ")) from None


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
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    if not lines:
        raise BadBody("no CSV header in the body" if text.strip() else "empty body")
    header = [h.strip() for h in lines[0].split(",")]
    lower = {h.lower() for h in header}
    missing = [c for c in expect_columns if c.lower() not in lower]
    if missing:
        if len(header) > 1 and not lines[0].lstrip().startswith("<"):
            raise BadBody(f"CSV header lacks columns {missing}: {_one_line(lines[0], 100)!r}")
        raise BadBody(describe_body(body))
    from galmet.columns import is_id_column, objid_array

    try:
        ids = {h: str for h in header if is_id_column(h)}  # read as text: exact 64-bit ids, never float
        frame = pd.read_csv(io.StringIO("\n".join(lines)), dtype=ids or None)
        for col in frame.columns:
            if is_id_column(col):
                frame[col] = objid_array(frame[col], "SqlSearch CSV", column=str(col))
        return frame
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for malformed CSV
        raise BadBody(f"malformed CSV ({type(exc).__name__}: {_one_line(str(exc), 100)})") from None


def fetch_cutout(
    ra,
    dec=None,
    scale=DEFAULT_SCALE,
    size: int = DEFAULT_SIZE,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = 30.0,
    retries: int = 5,
    backoff_base: float = 1.0,
) -> np.ndarray:
    """Fetch one validated SDSS JPEG cutout as an array (the paper's 128 x 128 gri image by default).

    Parameters
    ----------
    ra, dec : float, astropy Quantity/Angle, or str
        Centre: degrees (ICRS/J2000), any angular Quantity, or text (decimal degrees or
        sexagesimal, ``"12h30m49.4s"``, ``"+12d23m28s"``). Or give one astropy ``SkyCoord`` as
        ``ra`` and no ``dec``: ``fetch_cutout(SkyCoord.from_name("M87"))``.
    scale : float or Quantity
        Arcsec per pixel (0.296 gives the paper's 38" x 38" field); a Quantity in arcsec (per
        pixel) or any angle.
    size : int
        Width = height, pixels.
    base_url, timeout, retries, backoff_base
        Server root, deadline of each request (s), retries after the first try, first backoff (s).

    Returns
    -------
    numpy.ndarray
        uint8, shape (size, size, 3), RGB.

    Raises
    ------
    SkyServerError
        The cutout could not be fetched (one line with the last error).
    """
    from galmet.sdss.coords import scalar_position

    ra, dec = scalar_position(ra, dec)
    if hasattr(scale, "unit"):  # arcsec / pixel, or an angle per pixel
        import astropy.units as u

        q = u.Quantity(scale)
        per_pixel = q.unit * u.pix if (q.unit * u.pix).physical_type == "angle" else q.unit
        scale = float(q.value * per_pixel.to(u.arcsec))
    client = SkyServerClient(
        base_url, timeout, RetryPolicy(retries=retries, backoff_base=backoff_base), max_bytes=CUTOUT_MAX_BYTES
    )
    _, image, _ = client.get_cutout(ra, dec, scale, size)
    return image
