"""HTTP transport for galmet's web services: every request bounded, retried and rate-limited.

Nothing here knows a service. A service (:class:`galmet.sdss.skyserver.SkyServerClient` today;
more surveys later) subclasses :class:`HttpClient`, adds the URLs of its calls (built as a
:class:`RequestPayload`, which its calls also return in payload mode) and the checks of their
bodies, and sends everything through :meth:`HttpClient.call`:

- a global rate limiter (:class:`RateLimiter`) shared by all threads,
- retries with exponential backoff and jitter that honour ``Retry-After``
  (:class:`RetryPolicy`), each logged at INFO with its reason (:func:`retry_reason`),
- recognition of the shapes a server error takes: HTTP 5xx / 429, an HTML or plain-text
  error page sent with status 200, an empty body; the service's ``accept`` refuses the rest
  (:class:`BadBody`, retried; :class:`WrongAnswer`, a deterministic wrong answer, is not);
- retry lines bounded per client (:class:`RetryLog`): the first :data:`RETRY_LOG_LINES` at INFO,
  then one summary line at most every :data:`RETRY_LOG_EVERY` seconds (each retry at DEBUG).

Every request is bounded in time and bytes, whatever the server does (properties of
:meth:`HttpClient._request`, the one place that does network I/O and the choke point tests
replace; any transport behind it must keep them; tests/sdss/test_download_limits.py checks them on a
loopback server):

- a **total deadline** per request (``timeout``): connecting, the headers and the whole body
  must arrive within it. A watchdog shuts the connection down at the deadline, so a server
  that trickles one byte a second is cut off after ``timeout`` seconds, not after hours.
  Redirects are followed within the same deadline, without reading their bodies.
- a **body cap** (``max_bytes``): a body announced or streamed beyond it is refused
  (:class:`OversizedBody`) after reading at most ``max_bytes`` bytes, never read into memory
  to the end; error pages are read up to 64 KiB. A body is streamed in 64 KiB chunks to a
  spooled temporary file (memory up to 8 MiB, then disk), so memory holds it only once, when it
  is handed over; ``max_bytes`` itself is at most :data:`MAX_BODY_BYTES` (1 GiB).

The connections are a pooled keep-alive ``requests`` session per thread (one TCP/TLS handshake
per worker instead of one per request: 116,000 handshakes for the paper's cutouts otherwise); the
watchdog registers each connection's socket with the running request's deadline when it connects
and again whenever a kept-alive connection is reused.

The client settings (timeout, retries, rate, backoff, body cap) have one definition of their
accepted values, :data:`SETTING_RANGES`, used by :class:`ClientSettings`, the client and the
command line's option types alike.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import logging
import math
import random
import re
import socket
import tempfile
import threading
import time
import urllib.parse
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from galmet._version import __version__
from galmet.errors import ConfigError, GalmetError, one_line

log = logging.getLogger(__name__)

#: Where the galmet project lives (named in the User-Agent of every request, so a server can reach us).
PROJECT_URL = "https://github.com/galmet/galmet"
#: The User-Agent of a client that does not name its service.
USER_AGENT = f"galmet/{__version__} (+{PROJECT_URL})"
#: Default body cap of a client, bytes (a query result can be a few MB; an image a few kB).
DEFAULT_MAX_BYTES = 64 << 20
#: Redirects followed per request (each within the same deadline; their bodies are not read).
MAX_REDIRECTS = 5
#: How much of an error page is read, bytes (it is only quoted in the message).
ERROR_BODY_BYTES = 64 << 10

#: Retry lines a client logs at INFO one by one; later retries are summarised (:class:`RetryLog`).
RETRY_LOG_LINES = 10
#: Seconds between two summary lines of later retries.
RETRY_LOG_EVERY = 30.0

#: Statuses worth retrying; every other non-200 status is permanent.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})

T = TypeVar("T")


class ServiceError(GalmetError):
    """A request that failed for good (after its retries); the message is one line.

    Each service raises its own subclass (:attr:`HttpClient.error`).

    Attributes
    ----------
    attempts : int
        Requests sent for this call.
    permanent : bool
        True when retrying later is pointless (HTTP 404, a wrong answer, a body over the cap).
    """

    def __init__(self, message: str, attempts: int = 0, permanent: bool = False):
        super().__init__(message)
        self.attempts = attempts
        self.permanent = permanent


class TransportError(Exception):
    """The request got no complete HTTP response (timeout, refused, reset, short body)."""


class BadBody(Exception):
    """A status-200 response whose body is not what was asked for; retried (an error page, an empty
    or truncated body: what an overloaded server or a broken connection sends)."""


class WrongAnswer(BadBody):
    """A complete status-200 body that is the wrong answer in a way no retry changes (an image of
    another size or mode, a file that is not an image, junk after the image): permanent at once."""


class OversizedBody(Exception):
    """A response body longer than the client's ``max_bytes`` (announced or streamed)."""


class Interrupted(Exception):
    """The caller's stop event was set while a request was waiting or retrying (or the call
    exhausted a :class:`FailureBudget`). ``attempts``: the requests the call had sent by then."""

    def __init__(self, *args, attempts: int = 0):
        super().__init__(*args)
        self.attempts = attempts


@dataclass(frozen=True)
class Response:
    """One HTTP response: status code, headers (lower-case names) and the full body."""

    status: int
    headers: dict
    body: bytes
    url: str = ""


# -- settings: one definition of the values each accepts ---------------------------------------
@dataclass(frozen=True)
class Range:
    """The values one numeric parameter accepts: ``lo`` to ``hi`` (``lo`` excluded when ``open_low``).

    The library checks a value with :meth:`check`; the command line builds its option type from the
    same bounds (``galmet.cli.options.option_type``), so the two can not drift apart.

    Attributes
    ----------
    lo, hi : float
        Bounds, inclusive (``lo`` exclusive when ``open_low``).
    integer : bool
        Only integers (bools refused).
    open_low : bool
        ``lo`` itself is refused.
    what : str
        What a good value is, for the library's message (``"a positive number of seconds"``).
    noun : str
        What the command line expected when the text is not a number (``"a number of seconds"``).
    """

    lo: float
    hi: float
    integer: bool = False
    open_low: bool = False
    what: str = "a number"
    noun: str = "a number"

    def check(self, param: str, value):
        """``value`` unchanged when it is in range, else ConfigError naming ``param`` (``param=``)."""
        if self.integer:
            if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
                raise ConfigError(f"{param} must be an integer from {self.lo} to {self.hi}, got {value!r}", param=param)
            return value
        ok = (
            not isinstance(value, bool)
            and isinstance(value, (int, float))
            and math.isfinite(value)
            and (value > self.lo if self.open_low else value >= self.lo)
            and value <= self.hi
        )
        if not ok:
            raise ConfigError(f"{param} must be {self.what} (at most {self.hi:g}), got {value!r}", param=param)
        return value


def check_ranges(ranges: Mapping[str, Range], values: Mapping[str, object]) -> None:
    """ConfigError naming the first of ``values`` (parameter -> value) outside its range in ``ranges``
    (a ``rate`` of None means "no limit" and passes)."""
    for param, value in values.items():
        if param == "rate" and value is None:
            continue
        ranges[param].check(param, value)


#: Largest ``max_bytes`` a client accepts (bytes): a body is streamed, never held whole in memory
#: while it is read, but its reader then has it; 1 GiB is four times the catalogue query's default.
MAX_BODY_BYTES = 1 << 30

#: The accepted values of each client setting (see :class:`ClientSettings`). Each has a sane
#: maximum (issue 21): an hour per request, 20 retries, a minute's first backoff (one wait is
#: capped at :attr:`RetryPolicy.backoff_max` anyway), :data:`MAX_BODY_BYTES` per body.
SETTING_RANGES: dict[str, Range] = {
    "timeout": Range(0, 3600, open_low=True, what="a positive number of seconds", noun="a number of seconds"),
    "retries": Range(0, 20, integer=True),
    "rate": Range(0, 1000, what="0 (no limit) or a positive rate", noun="a number of requests per second"),
    "backoff_base": Range(0, 60, what="0 or more seconds", noun="a number of seconds"),
    "max_bytes": Range(1024, MAX_BODY_BYTES, integer=True),
}


@dataclass(frozen=True)
class ClientSettings:
    """How a client talks to its server; the defaults of :class:`HttpClient`.

    A service or command keeps its own defaults as one of these (the cutouts':
    ``galmet.sdss.skyserver.CUTOUT_SETTINGS``; the catalogue query's:
    ``galmet.sdss.catalog.QUERY_SETTINGS``).

    Attributes
    ----------
    timeout : float
        Total deadline of one request, seconds: connection, headers and the whole body.
    retries : int
        Retries after the first attempt.
    rate : float or None
        Requests per second over all threads (retries count); None or 0: no limit.
    backoff_base : float
        Seconds before the first retry; doubles with each further retry.
    max_bytes : int
        Largest response body accepted, bytes.
    """

    timeout: float = 30.0
    retries: int = 5
    rate: float | None = None
    backoff_base: float = 1.0
    max_bytes: int = DEFAULT_MAX_BYTES

    def check(self) -> None:
        """ConfigError naming the first setting out of its :data:`SETTING_RANGES` range."""
        check_ranges(SETTING_RANGES, {name: getattr(self, name) for name in SETTING_RANGES})

    def client_kwargs(self) -> dict:
        """The keyword arguments of :class:`HttpClient` (and its services) these settings give."""
        return {
            "timeout": self.timeout,
            "policy": RetryPolicy(retries=self.retries, backoff_base=self.backoff_base),
            "rate": self.rate or None,
            "max_bytes": self.max_bytes,
        }


@dataclass(frozen=True)
class RequestPayload:
    """A request as it would be sent: what a service call returns with ``get_query_payload=True``
    (astroquery's payload mode), without touching the network.

    Attributes
    ----------
    url : str
        The endpoint, without the query string.
    params : dict
        Query parameters, name -> value as sent (text or int).
    method : str
        HTTP method.
    """

    url: str
    params: dict
    method: str = "GET"

    @property
    def full_url(self) -> str:
        """The URL with its query string, exactly as requested."""
        return f"{self.url}?{urllib.parse.urlencode(self.params)}" if self.params else self.url


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts.

    Parameters
    ----------
    retries : int
        Retries after the first attempt (so at most ``retries + 1`` requests; 0 to 20).
    backoff_base : float
        Seconds before the first retry; doubles with each further retry.
    backoff_max : float
        Upper bound of one backoff wait, seconds.
    max_retry_after : float
        Upper bound on a server's ``Retry-After``, seconds (protects against absurd values).
    """

    retries: int = ClientSettings.retries
    backoff_base: float = ClientSettings.backoff_base
    backoff_max: float = 60.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        check_ranges(SETTING_RANGES, {"retries": self.retries, "backoff_base": self.backoff_base})

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


class RetryLog:
    """The retry lines of one client, bounded: the first ``lines`` retries are logged at INFO one by
    one, later ones at DEBUG, with one INFO line at most every ``every`` seconds that tallies them
    by reason (a dead server costs a few lines, not one per attempt). Thread-safe.

    Attributes
    ----------
    total : int
        Retries so far.
    reasons : Counter
        Retries so far by :func:`retry_reason`.
    """

    def __init__(self, logger: logging.Logger, lines: int = RETRY_LOG_LINES, every: float = RETRY_LOG_EVERY):
        self.log, self.lines, self.every = logger, int(lines), float(every)
        self.total = 0
        self.reasons: Counter = Counter()
        self._pending: Counter = Counter()
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def retry(self, message: str, reason: str, attempt: int) -> None:
        """Log one retry (``message``: its line; ``reason``: :func:`retry_reason`; ``attempt``: 1-based)."""
        extra = {"retry_reason": reason, "attempt": attempt}
        with self._lock:
            self.total += 1
            self.reasons[reason] += 1
            if self.total <= self.lines:
                self.log.info("%s", message, extra=extra)
                if self.total == self.lines:
                    self.log.info(
                        "further retries are summarised every %g s (-v logs each one)", self.every, extra=extra
                    )
                self._last = time.monotonic()
                return
            self.log.debug("%s", message, extra=extra)
            self._pending[reason] += 1
            now = time.monotonic()
            if now - self._last >= self.every:
                self._flush(now)

    def _flush(self, now: float) -> None:
        n = sum(self._pending.values())
        tally = ", ".join(f"{k} {r}" for r, k in self._pending.most_common())
        self.log.info("%d more retries in the last %.0f s (%s)", n, now - self._last, tally)
        self._pending.clear()
        self._last = now


class FailureBudget:
    """Requests in a row, over every thread that shares this object, that got no answer from the
    server (connection refused or reset, DNS failure, timed out: a :class:`TransportError`); when
    ``limit`` of them come with no answer in between, the server is taken for unreachable: the
    budget is :attr:`exhausted` (for good) and ``stop`` is set, so every call that shares it ends
    (:class:`Interrupted`) instead of retrying for minutes. Any HTTP response (an image, an error
    page, a 404 or 503: the server is there) starts the count again. Thread-safe.

    Parameters
    ----------
    limit : int
        Failed requests in a row that exhaust the budget (at least 1).
    stop : threading.Event, optional
        Set when the budget is exhausted.

    Attributes
    ----------
    failures : int
        Failed requests since the last answer (it stays at ``limit`` once the budget is exhausted:
        requests that were in flight then are not counted).
    last_error : str
        The last failure's one-line message.
    exhausted : bool
    """

    def __init__(self, limit: int, stop: threading.Event | None = None):
        self.limit, self.stop = int(limit), stop
        self.failures = 0
        self.last_error = ""
        self.exhausted = False
        self._lock = threading.Lock()

    def answered(self) -> None:
        """The server answered a request: start the count again (unless already exhausted)."""
        with self._lock:
            if not self.exhausted:
                self.failures = 0

    def failed(self, error: str) -> bool:
        """One request got no answer (``error``: why); True when that exhausts the budget."""
        with self._lock:
            if self.exhausted:
                return True
            self.failures += 1
            self.last_error = error
            if self.failures >= self.limit:
                self.exhausted = True
                if self.stop is not None:
                    self.stop.set()
            return self.exhausted


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
        return f"HTML error page: {shorten(text, limit)!r}"
    printable = sum(ch.isprintable() or ch.isspace() for ch in head) / max(1, len(head))
    if printable > 0.95:
        return f"text error page: {shorten(head, limit)!r}"
    return f"{len(body)}-byte body that is not the data asked for"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line (runs of whitespace as one space), at most ``limit`` characters."""
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


def _pooled_session(keep_alive: bool, user_agent: str = USER_AGENT):
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
    session.headers.update({"User-Agent": user_agent, "Accept-Encoding": "identity"})
    if not keep_alive:
        session.headers["Connection"] = "close"
    return session


#: A body is kept in memory while it is read up to this many bytes; past it, in a temporary file
#: (so a large body is held once, when it is handed over, never also as a growing buffer).
SPOOL_BYTES = 8 << 20


def _read_body(resp, deadline: _Deadline, cap: int, truncate: bool = False) -> bytes:
    """Read a response body in chunks, at most ``cap`` bytes (more: OversizedBody, or the first
    ``cap`` bytes when ``truncate``), within the deadline (else TransportError).

    The chunks go to a spooled temporary file (memory up to :data:`SPOOL_BYTES`, then disk): the
    cap is enforced while reading, a refused body never sits in memory, and an accepted one is
    read back as one ``bytes`` object."""
    read = getattr(resp, "read1", None) or resp.read
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="galmet-body-") as spool:
        n = 0
        while True:
            chunk = read(1 << 16)
            if deadline.expired:
                raise TransportError(f"no complete response within the {deadline.seconds:g} s deadline")
            if not chunk:
                break
            if n + len(chunk) > cap:
                if not truncate:
                    raise OversizedBody(f"body is over the {cap}-byte cap")
                spool.write(chunk[: cap - n])
                break
            spool.write(chunk)
            n += len(chunk)
        spool.seek(0)
        return spool.read()


def _is_invalid_url(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) says the URL itself cannot be requested: a request's
    InvalidURL, MissingSchema or InvalidSchema, urllib3's LocationParseError, http.client's InvalidURL."""
    import requests
    import urllib3.exceptions as u3

    bad = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
    return any(isinstance(e, (*bad, u3.LocationParseError, http.client.InvalidURL)) for e in _causes(exc))


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
        raise TransportError(f"redirect to {shorten(target, 80)!r}, which is not an http(s) URL")
    return target


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
    """``HTTP 500 Internal Server Error`` plus what the body says (servers often explain the error there)."""
    text = f"HTTP {resp.status} {http.client.responses.get(resp.status, '')}".rstrip()
    if resp.body.strip():
        text += f" ({describe_body(resp.body, limit=80)})"
    return text


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash, or GalmetError (``param="base_url"``) unless it is an
    http(s) URL naming a host (and, when it has one, a port 1-65535): checked before anything is
    written, not at the first request. The whole address is parsed, as the request would parse
    it: an empty host, a non-numeric or out-of-range port, a broken IPv6 bracket are refused."""
    url = str(url).rstrip("/")
    if not re.match(r"^https?://[^\s/?#]+", url) or any(c.isspace() for c in url):
        raise GalmetError(f"base_url {url!r} must start with http:// or https:// and name a host", param="base_url")
    problem = _url_problem(url)
    if problem:
        raise GalmetError(f"base_url {url!r}: {problem}", param="base_url")
    return url


def _url_problem(url: str) -> str | None:
    """What is wrong with the host or port of ``url`` (None when both parse)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError: not a number, or outside 0-65535
        host = parts.hostname
    except ValueError as exc:
        return f"cannot parse its host and port ({one_line(exc)})"
    if not host:
        return "names no host"
    if port == 0:
        return "port 0 is not a port a server listens on (use 1-65535)"
    try:
        import urllib3.util

        urllib3.util.parse_url(url)  # what the request itself parses
    except Exception as exc:  # noqa: BLE001 - LocationParseError and kin: the URL cannot be requested
        return f"cannot parse its host and port ({one_line(exc)})"
    return None


class BadURL(Exception):
    """The request's URL cannot be sent (an invalid host or port): permanent, never retried."""


# -- the client a service wraps ---------------------------------------------------------------
@dataclass
class HttpClient:
    """A thread-safe HTTP client for one server root; a service subclasses it.

    A subclass adds its calls: it builds each request as a :class:`RequestPayload` (under
    :attr:`base_url`), returns that payload in payload mode, and otherwise sends it with
    :meth:`call`, whose ``accept`` turns the body into the result (or raises :class:`BadBody`).
    It may set :attr:`error` (the :class:`ServiceError` subclass its failures raise),
    :attr:`user_agent` and :attr:`log` (where retries are logged).

    Parameters
    ----------
    base_url : str
        Server root (``http://`` or ``https://`` and a host); request paths are appended to it.
    timeout : float
        Total deadline of one request, seconds: connection, headers and the whole body.
    policy : RetryPolicy
        Retries and backoff.
    rate : float, optional
        Global limit in requests per second over all threads using this client
        (retries count); None or 0 for no limit.
    rng : random.Random, optional
        Source of backoff jitter (seed it for reproducible waits).
    max_bytes : int
        Largest response body accepted, bytes (:data:`DEFAULT_MAX_BYTES`).
    keep_alive : bool
        Reuse each thread's connection for its next request (HTTP keep-alive; default). False
        closes every connection after its response (and says ``Connection: close``): one TCP
        (and TLS) handshake per request.

    Raises
    ------
    GalmetError, ConfigError
        A base URL that is not http(s) with a host (``param="base_url"``); a setting out of its
        :data:`SETTING_RANGES` range (``param=`` its name).
    """

    #: The error a failed call raises (a service sets its own subclass).
    error: ClassVar[type[ServiceError]] = ServiceError
    #: Sent with every request.
    user_agent: ClassVar[str] = USER_AGENT
    #: Where retries are logged (at INFO, with ``retry_reason`` and ``attempt`` on the record).
    log: ClassVar[logging.Logger] = log

    base_url: str
    timeout: float = ClientSettings.timeout
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate: float | None = ClientSettings.rate
    rng: random.Random = field(default_factory=random.Random)
    max_bytes: int = ClientSettings.max_bytes
    keep_alive: bool = True

    def __post_init__(self) -> None:
        self.base_url = check_base_url(self.base_url)
        check_ranges(SETTING_RANGES, {"timeout": self.timeout, "rate": self.rate, "max_bytes": self.max_bytes})
        self.limiter = RateLimiter(self.rate)
        self.retry_log = RetryLog(self.log)
        self._local = threading.local()  # one pooled session per thread
        self._sessions: weakref.WeakSet = weakref.WeakSet()  # every live thread's, for close()
        self._sessions_lock = threading.Lock()

    def payload(self, path: str, params: Mapping[str, object]) -> RequestPayload:
        """The GET request of ``path`` (under :attr:`base_url`) with the query ``params``."""
        return RequestPayload(f"{self.base_url}{path}", dict(params))

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
                    if _is_invalid_url(exc):  # (a redirect to a bad address too): no retry can fix it
                        raise BadURL(f"invalid URL {url!r} ({one_line(exc)})") from None
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
            session = self._local.session = _pooled_session(self.keep_alive, self.user_agent)
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

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- retried calls --------------------------------------------------------------------
    def call(
        self,
        url: str,
        accept: Callable[[bytes], T],
        where: str,
        stop: threading.Event | None = None,
        budget: FailureBudget | None = None,
    ) -> tuple[T, int]:
        """GET ``url`` until ``accept(body)`` succeeds; return (its value, requests sent).

        ``accept`` raises :class:`BadBody` for a body that is not the data asked for (it is
        retried like a 5xx), or :class:`WrongAnswer` for one a retry would only repeat (not
        retried). Transient failures (transport errors, 408/429/5xx, error pages, empty or
        truncated bodies) are retried per the policy; 404 and other 4xx are not. Retries are
        logged through :attr:`retry_log` (bounded).

        Raises
        ------
        ServiceError
            The service's :attr:`error`: one line naming ``where``, the last error and the number of requests.
            ``permanent`` is set for 4xx, a :class:`WrongAnswer`, and a body over the cap on the last
            try; an error page or a truncated body to the last try is not (a later run tries again).
        Interrupted
            ``stop`` was set, or this call exhausted ``budget`` (a :class:`FailureBudget` shared by
            the calls of one job: requests that got no answer, in a row over all of them).
        """
        retries = max(0, int(self.policy.retries))
        sent = 0  # requests sent so far (an Interrupted says how many)
        try:
            for attempt in range(retries + 1):
                if stop is not None and stop.is_set():
                    raise Interrupted()
                self.limiter.acquire(stop)
                retry_after = None
                oversized = False
                try:
                    sent += 1
                    resp = self._request(url, self.timeout)
                except BadURL as exc:
                    raise self.error(f"{where}: {exc}", attempts=attempt + 1, permanent=True) from None
                except TransportError as exc:
                    error = str(exc)
                    if budget is not None and budget.failed(error):
                        raise Interrupted() from None  # the server is unreachable: the job stops
                except OversizedBody as exc:
                    error, oversized = str(exc), True
                    if budget is not None:
                        budget.answered()
                else:
                    if budget is not None:
                        budget.answered()
                    if resp.status == 200:
                        try:
                            if len(resp.body) < 64 and not resp.body.strip():
                                raise BadBody("empty body")
                            return accept(resp.body), attempt + 1
                        except WrongAnswer as exc:  # the same answer again on a retry: permanent now
                            raise self.error(f"{where}: {exc}", attempts=attempt + 1, permanent=True) from None
                        except BadBody as exc:
                            error = str(exc)  # an error page, an empty or truncated body: transient
                    elif resp.status in TRANSIENT_STATUSES or resp.status >= 500:
                        error = _status_error(resp)
                        retry_after = parse_retry_after(resp.headers.get("retry-after"))
                    else:
                        error = _status_error(resp)
                        raise self.error(f"{where}: {error}", attempts=attempt + 1, permanent=True)
                if attempt == retries:
                    raise self.error(
                        f"{where}: {error} (gave up after {attempt + 1} requests)",
                        attempts=attempt + 1,
                        permanent=oversized,
                    )
                wait = self.policy.delay(attempt, retry_after, self.rng)
                reason = retry_reason(error)
                self.retry_log.retry(
                    f"{where}: attempt {attempt + 1} of {retries + 1} failed ({reason}: {error}); "
                    f"retrying in {wait:.2f} s",
                    reason,
                    attempt + 1,
                )
                _sleep(wait, stop)
        except Interrupted as exc:
            exc.attempts = sent
            raise
        raise AssertionError("unreachable")
