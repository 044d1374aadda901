"""HTTP client for the SDSS SkyServer web services (SqlSearch and ImgCutout).

Every HTTP call goes through :meth:`SkyServerClient._request`, the one choke point that
tests replace. Around it sit the parts that make a long acquisition reliable:

- a global rate limiter (:class:`RateLimiter`) shared by all threads,
- retries with exponential backoff and jitter that honour ``Retry-After``
  (:class:`RetryPolicy`),
- recognition of the shapes a server error takes: HTTP 5xx / 429, an HTML or plain-text
  error page sent with status 200, an empty body, a truncated or wrong-size JPEG.

Every request is bounded in time and bytes, whatever the server does (these are properties of
``_request`` that any transport behind it must keep; tests/sdss/test_skyserver.py checks them on a
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

The transport is a pooled keep-alive ``requests`` session per thread (one TCP/TLS handshake per
worker instead of one per cutout: 116,000 handshakes for the paper's set otherwise); the
watchdog registers each connection's socket with the running request's deadline when it connects
and again whenever a kept-alive connection is reused.
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
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from galmet._version import __version__
from galmet.errors import ConfigError, DataError, GalmetError, one_line

log = logging.getLogger(__name__)

#: SkyServer roots of the data releases galmet knows (``--data-release``).
DATA_RELEASES = {
    "DR14": "https://skyserver.sdss.org/dr14",
    "DR16": "https://skyserver.sdss.org/dr16",
    "DR17": "https://skyserver.sdss.org/dr17",
}
#: The paper's release (its photometry and cutouts).
DEFAULT_DATA_RELEASE = "DR14"
DEFAULT_BASE_URL = DATA_RELEASES[DEFAULT_DATA_RELEASE]
#: The tables the paper's catalogue query joins (checked to exist when a release is chosen).
PAPER_TABLES = ("SpecObj", "Galaxy", "GalSpecInfo", "GalSpecLine", "GalSpecExtra")
#: Where SkyServer's object explorer shows one object, by release (``{base}`` + this + objID).
EXPLORE_PATH = "/en/tools/explore/summary.aspx?id="
SQL_PATH = "/SkyServerWS/SearchTools/SqlSearch"
CUTOUT_PATH = "/SkyServerWS/ImgCutout/getjpeg"
#: The paper's cutouts: 0.296 arcsec per pixel, 128 x 128 pixels (38" x 38").
DEFAULT_SCALE = 0.296
DEFAULT_SIZE = 128
#: Where the galmet project lives (named in the User-Agent of every request, so SDSS can reach us).
PROJECT_URL = "https://github.com/galmet/galmet"
USER_AGENT = f"galmet/{__version__} (+{PROJECT_URL}; SDSS catalogue and cutout client)"
#: Default body cap of a client (a SqlSearch chunk is a few MB; a cutout a few kB).
DEFAULT_MAX_BYTES = 64 << 20
#: Body cap of cutout requests unless set (a 2048-pixel cutout is ~2 MB).
CUTOUT_MAX_BYTES = 4 << 20
#: Redirects followed per request (each within the same deadline; their bodies are not read).
MAX_REDIRECTS = 5
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


def _watched(base):
    """A urllib3 connection class whose socket is registered with the running request's deadline,
    both when it connects and when a pooled (kept-alive) connection is reused for a new request."""

    class Watched(base):
        def connect(self) -> None:
            super().connect()
            _register_socket(self.sock)

        def request(self, *args, **kwargs):
            _register_socket(getattr(self, "sock", None))  # a reused connection: this request's deadline
            return super().request(*args, **kwargs)

    Watched.__name__ = f"Watched{base.__name__}"
    return Watched


def _pooled_session(keep_alive: bool):
    """A requests Session with one pooled keep-alive connection per host whose sockets obey the
    request deadline, directly or through a proxy from the environment. No automatic retries and
    no automatic redirects: the client's own policy decides, and ``_request`` follows redirects
    itself without reading their bodies."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def pool(name: str, base, conn_cls):
        class Pool(base):
            ConnectionCls = _watched(conn_cls)

            def _put_conn(self, conn) -> None:
                if not keep_alive and conn is not None:
                    conn.close()  # one connection per request: the next one connects anew
                super()._put_conn(conn)

        Pool.__name__ = Pool.__qualname__ = name
        return Pool

    pools = {
        "http": pool("WatchedHTTPPool", HTTPConnectionPool, HTTPConnection),
        "https": pool("WatchedHTTPSPool", HTTPSConnectionPool, HTTPSConnection),
    }

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy, **proxy_kwargs):
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if not proxy.lower().startswith("socks"):  # (a SOCKS proxy has its own connection classes)
                manager.pool_classes_by_scheme = pools
            return manager

    class Session(requests.Session):
        def get_redirect_target(self, resp):
            # requests reads a redirect's whole body, even with allow_redirects=False (to find the next
            # request); the body could be endless. _request follows redirects itself, never reading them.
            return None

    session = Session()
    adapter = Adapter(pool_connections=4, pool_maxsize=1, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    if not keep_alive:
        session.headers["Connection"] = "close"
    return session


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
    import requests
    import urllib3.exceptions as u3

    if deadline.expired:
        return TransportError(f"no complete response within the {timeout:g} s deadline")
    chain = _causes(exc)
    partial = next((e for e in chain if isinstance(e, (http.client.IncompleteRead, u3.IncompleteRead))), None)
    if partial is not None:
        got = partial.partial if isinstance(partial.partial, int) else len(partial.partial)
        return TransportError(f"connection closed after {got} bytes of the body")
    refused = any(isinstance(e, (u3.NewConnectionError, ConnectionRefusedError)) for e in chain)
    # (urllib3's NewConnectionError is a subclass of its ConnectTimeoutError: a refusal is no timeout)
    if not refused and any(
        isinstance(e, (TimeoutError, socket.timeout, requests.Timeout, u3.TimeoutError)) for e in chain
    ):
        return TransportError(f"timed out after {timeout:g} s")
    reason = next(
        (e for e in reversed(chain) if isinstance(e, (ConnectionError, OSError)) and not isinstance(e, TimeoutError)),
        exc,
    )
    return TransportError(f"connection failed ({one_line(reason, 120)})")


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it wraps (``__cause__``, ``__context__``, urllib3's ``reason``), outermost first."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is seen for seen in out) or len(out) > 12:
            continue
        out.append(e)
        todo += [getattr(e, "reason", None) if isinstance(getattr(e, "reason", None), BaseException) else None]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [e.__cause__, e.__context__]
    return out


def _redirect_target(resp, url: str) -> str | None:
    """The absolute http(s) URL a 3xx response with a Location sends the request to, else None."""
    location = resp.headers.get("location") if resp.status_code in (301, 302, 303, 307, 308) else None
    if not location:
        return None
    target = urllib.parse.urljoin(url, location.strip())
    if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
        raise TransportError(f"redirect to {_one_line(target, 80)!r}, which is not an http(s) URL")
    return target


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
    keep_alive : bool
        Reuse each thread's connection for its next request (HTTP keep-alive; default). False
        closes every connection after its response (and says ``Connection: close``): one TCP
        (and TLS) handshake per request, as before galmet pooled its connections.
    """

    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate: float | None = None
    rng: random.Random = field(default_factory=random.Random)
    max_bytes: int = DEFAULT_MAX_BYTES
    keep_alive: bool = True

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
        self._local = threading.local()  # one pooled session per thread
        self._sessions: weakref.WeakSet = weakref.WeakSet()  # every live thread's, for close()
        self._sessions_lock = threading.Lock()

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
        deadline = _Deadline(timeout)
        with deadline:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    resp = self._session().get(url, timeout=(timeout, timeout), stream=True)
                except Exception as exc:  # noqa: BLE001 - every failure here is "no complete response"
                    raise _transport_error(exc, deadline, timeout) from exc
                try:
                    target = _redirect_target(resp, url)
                    if target is None:
                        return self._read_response(resp, url, deadline, timeout)
                finally:
                    resp.close()  # a body read to its end is back in the pool already; any other closes
                url = target  # (a redirect's body is never read: it could be endless)
            raise TransportError(f"more than {MAX_REDIRECTS} redirects")

    def _read_response(self, resp, url: str, deadline: _Deadline, timeout: float) -> Response:
        """The complete :class:`Response` of a streamed requests response: its body read within the
        deadline and the byte cap (an error page only up to :data:`ERROR_BODY_BYTES`)."""
        try:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status_code >= 400:  # an error page: read only enough of it to quote it
                try:
                    body = _read_body(resp.raw, deadline, ERROR_BODY_BYTES, truncate=True)
                except Exception:  # noqa: BLE001 - the status says enough
                    body = b""
                return Response(resp.status_code, headers, body, url)
            announced = headers.get("content-length", "")
            if announced.strip().isdigit() and int(announced) > self.max_bytes:
                raise OversizedBody(f"body of {int(announced)} bytes is over the {self.max_bytes}-byte cap")
            body = _read_body(resp.raw, deadline, self.max_bytes)
            return Response(resp.status_code, headers, body, url)
        except (TransportError, OversizedBody):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure below is "no complete response"
            raise _transport_error(exc, deadline, timeout) from exc

    def _session(self):
        """This thread's pooled keep-alive session (a requests session is not shared between threads)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = _pooled_session(self.keep_alive)
            with self._sessions_lock:
                self._sessions.add(session)  # (weak: a finished thread's session closes when collected)
        return session

    def close(self) -> None:
        """Close the pooled connections of every thread (call when no request is running; a later
        request opens new ones)."""
        with self._sessions_lock:
            sessions, self._sessions = list(self._sessions), weakref.WeakSet()
            self._local = threading.local()
        for session in sessions:
            session.close()

    def __enter__(self) -> SkyServerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- retried calls --------------------------------------------------------------------
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
            reason = retry_reason(error)
            log.info(
                "%s: attempt %d of %d failed (%s: %s); retrying in %.2f s",
                where,
                attempt + 1,
                retries + 1,
                reason,
                error,
                wait,
                extra={"retry_reason": reason, "attempt": attempt + 1},
            )
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


def release_of(base_url: str) -> str | None:
    """The data release a SkyServer root serves (``.../dr16`` -> ``"DR16"``), or None when the URL
    does not say (a mirror, a test server)."""
    m = re.search(r"/dr(\d+)/?$", str(base_url).rstrip("/") + "/", re.IGNORECASE)
    return f"DR{int(m.group(1))}" if m else None


def explore_url(objid: int, release: str | None = None) -> str:
    """The SkyServer object-explorer page of an SDSS objID (default: the paper's DR14)."""
    base = DATA_RELEASES.get((release or DEFAULT_DATA_RELEASE).upper(), DEFAULT_BASE_URL)
    return f"{base}{EXPLORE_PATH}{int(objid)}"


def check_tables(client: SkyServerClient, tables=PAPER_TABLES, release: str | None = None) -> None:
    """ConfigError (one line) unless every table of ``tables`` exists on the client's SkyServer.

    Asks SkyServer's schema table ``DBObjects`` once (names compared without regard to case, as
    SQL Server does).
    """
    names = ", ".join(f"'{t}'" for t in tables)
    sql = f"SELECT name FROM DBObjects WHERE name IN ({names})"
    where = f"{release or client.base_url}: table check"
    frame = client.sql_search(sql, where=where, expect_columns=("name",))
    found = {str(n).strip().lower() for n in frame["name"]}
    missing = [t for t in tables if t.lower() not in found]
    if missing:
        raise ConfigError(
            f"{release or client.base_url} ({client.base_url}) lacks the table(s) {', '.join(missing)} "
            f"the paper's query needs"
        )


def retry_reason(error: str) -> str:
    """The short reason of a failed attempt, from its one-line error: ``HTTP 503``, ``timeout``,
    ``connection``, ``HTML page``, ``text page``, ``empty body``, ``junk``, ``oversized``,
    ``truncated``, ``wrong size`` or ``bad body`` (logged with each retry; summaries can tally them)."""
    status = re.match(r"HTTP (\d{3})\b", error)
    if status:
        return f"HTTP {status.group(1)}"
    for needle, reason in (  # the page kinds first: a page's own text could say anything
        ("HTML error page", "HTML page"),
        ("text error page", "text page"),
        ("deadline", "timeout"),
        ("timed out", "timeout"),
        ("connection", "connection"),
        ("redirect", "connection"),
        ("empty body", "empty body"),
        ("junk after", "junk"),
        ("-byte cap", "oversized"),
        ("truncated", "truncated"),
        ("pixels, expected", "wrong size"),
    ):
        if needle in error:
            return reason
    return "bad body"


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
