"""A real threaded HTTP server on 127.0.0.1 that imitates SkyServer and injects faults.

Cutouts (``/SkyServerWS/ImgCutout/getjpeg``) are keyed by position: :func:`key_of`
(ra, dec). Each key has a *plan*, a list of actions used one per request; the last action
repeats forever (so ``["503", "ok"]`` is a transient failure and ``["404"]`` a permanent
one). Actions:

========== ================================================================
ok         a valid JPEG of the requested width x height
503ra      HTTP 503 with ``Retry-After`` (``retry_after`` seconds)
500, 503   HTTP 500 / 503 with an HTML body, no Retry-After
429        HTTP 429 with ``Retry-After: 0``
slow       waits ``slow_seconds`` (past the client's timeout), then sends the JPEG
reset      closes the connection without a response (TCP RST)
short      announces the full Content-Length, sends half the body, closes
truncated  status 200 and a self-consistent response holding half a JPEG
html       status 200, an HTML error page
text       status 200, a plain-text error message
empty      status 200, empty body
wrongsize  a valid JPEG of half the requested size (a wrong answer: permanent at once)
grey       a valid greyscale (one-band) JPEG of the requested size (permanent at once)
png        a valid PNG of the requested size: not a JPEG (permanent at once)
404        HTTP 404 (permanent)
trickle    status 200 and the JPEG's Content-Length, then one byte every ``trickle_seconds``
dribble    the status line and headers themselves one byte every ``trickle_seconds``
endless    status 200, no Content-Length, bytes streamed until the client hangs up
huge       status 200 announcing a 10 GB body (Content-Length), then streamed
bomb       a JPEG whose header says 12000 x 12000 pixels (~430 MB decoded), 1-2 kB sent
junk       the valid JPEG followed by ``junk_bytes`` bytes of junk (10 MB by default)
junk_small the valid JPEG followed by 100 bytes of junk
hold       waits until ``release`` is set (or ``hold_seconds`` pass), then sends the JPEG
redirect   HTTP 302 back to the same URL (the next request takes the plan's next action)
redirect_endless  the same 302 with a body streamed until the client hangs up
blank      a valid, uniformly black JPEG of the requested size (SkyServer outside the footprint)
========== ================================================================

SqlSearch (``/SkyServerWS/SearchTools/SqlSearch``) calls ``sql_responder(cmd, n)`` with
the SQL text and how many times that exact SQL was requested before; it returns an action
name (as above: "html", "500", ...) or ``(status, content_type, body)``.

Every request is counted per key (``counts``, ``sql_counts``) and logged with its time;
``connections`` counts the TCP connections accepted and ``user_agents`` the User-Agent of
every request.
"""

from __future__ import annotations

import collections
import socket
import struct
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from galmet.io.images import encode_jpeg

CUTOUT_PATH = "/SkyServerWS/ImgCutout/getjpeg"
SQL_PATH = "/SkyServerWS/SearchTools/SqlSearch"
ERROR_HTML = (
    b"<!DOCTYPE html><html><head><title>Server Error in '/SkyServerWS' Application.</title>"
    b"</head><body><h1>Runtime Error</h1><p>An application error occurred.</p></body></html>"
)
TRANSIENT_ACTIONS = (
    "503ra",
    "500",
    "503",
    "429",
    "slow",
    "reset",
    "short",
    "truncated",
    "html",
    "text",
    "empty",
)
#: Complete answers that are wrong in a way a retry cannot change: permanent after one request.
WRONG_ANSWER_ACTIONS = ("wrongsize", "grey", "png", "bomb", "junk_small")


def key_of(ra, dec) -> str:
    """The key of a cutout position (degrees), as the server sees it."""
    return f"{float(ra):.8f},{float(dec):.8f}"  # the precision of the request URL


def key_seed(*parts) -> int:
    """A stable 32-bit seed of the exact request key ``parts`` (``key_of``'s text, a band ...):
    distinct keys get distinct seeds (not a sum of characters, under which "150.1,2.2" and
    "152,3" collide)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def fake_image(key: str, width: int, height: int) -> np.ndarray:
    """A deterministic uint8 (height, width, 3) image for ``key``: a blob whose colour depends on the key."""
    rng = np.random.default_rng(key_seed(key))
    yy, xx = np.mgrid[:height, :width]
    blob = np.exp(-((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / (2 * (min(width, height) / 5) ** 2))
    img = np.stack([blob * c for c in rng.uniform(120, 255, 3)], -1) + rng.normal(0, 3, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


class FaultyServer:
    """Start with ``with FaultyServer(...) as srv:``; ``srv.url`` is its base URL.

    Parameters
    ----------
    plans : dict, optional
        key (:func:`key_of`) -> list of actions for cutout requests.
    default_plan : sequence of str
        Plan of keys not in ``plans``.
    latency : float
        Seconds added to every request (a slow, far-away server).
    slow_seconds : float
        How long a ``slow`` action stalls.
    retry_after : str
        ``Retry-After`` header value of ``503ra``.
    sql_responder : callable, optional
        ``(cmd, n_before) -> action | (status, content_type, body)`` for SqlSearch.
    keep_alive : bool
        Speak HTTP/1.1 and keep connections open between requests (default: HTTP/1.0, one
        connection per request).
    connect_latency : float
        Seconds added once per new connection (the TCP and TLS handshakes of a far-away server).
    """

    def __init__(
        self,
        plans=None,
        default_plan=("ok",),
        latency=0.0,
        slow_seconds=2.0,
        retry_after="1",
        sql_responder=None,
        trickle_seconds=0.2,
        junk_bytes=10 << 20,
        hold_seconds=60.0,
        stream_seconds=60.0,
        keep_alive=False,
        connect_latency=0.0,
    ):
        self.keep_alive = keep_alive
        self.connect_latency = connect_latency
        self.connections = 0  # TCP connections accepted
        self.user_agents: list[str] = []
        self.trickle_seconds = trickle_seconds
        self.junk_bytes = junk_bytes
        self.hold_seconds = hold_seconds
        self.stream_seconds = stream_seconds  # an endless stream stops after this long at the latest
        self.release = threading.Event()
        self.plans = dict(plans or {})
        self.default_plan = list(default_plan)
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.sql_responder = sql_responder
        self.counts: collections.Counter = collections.Counter()
        self.sql_counts: collections.Counter = collections.Counter()
        self.log: list[tuple[str, str, float, dict]] = []
        self.lock = threading.Lock()
        self._jpegs: dict[tuple, bytes] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FaultyServer:
        handler = type(
            "Handler", (_Handler,), {"srv": self, "protocol_version": "HTTP/1.1" if self.keep_alive else "HTTP/1.0"}
        )
        httpd = _Server(("127.0.0.1", 0), handler)
        httpd.handle_error = lambda request, client_address: None  # faults make noisy tracebacks
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self._url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FaultyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL (stays valid after stop(), so a test can point a client at a dead port)."""
        return self._url

    # -- behaviour ------------------------------------------------------------------------
    def next_action(self, key: str, query: dict) -> str:
        with self.lock:
            n = self.counts[key]
            self.counts[key] += 1
            plan = self.plans.get(key, self.default_plan)
            action = plan[min(n, len(plan) - 1)]
            self.log.append((key, action, time.monotonic(), query))
        return action

    def jpeg(self, key: str, width: int, height: int) -> bytes:
        k = (key, width, height)
        if k not in self._jpegs:
            self._jpegs[k] = encode_jpeg(fake_image(key, width, height), 90)
        return self._jpegs[k]

    def times(self, key: str) -> list[float]:
        """Monotonic times of the requests for ``key``."""
        with self.lock:
            return [t for k, _, t, _ in self.log if k == key]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen() backlog: a burst of connections must not be refused


class _Handler(BaseHTTPRequestHandler):
    srv: FaultyServer
    protocol_version = "HTTP/1.0"
    # The headers and the body go out in two writes; with Nagle's algorithm on, the body of a
    # response on a kept-alive connection waits for the client's delayed ACK (40 ms on Linux).
    # Real servers do not pay that, so neither does this one.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def setup(self) -> None:  # once per connection
        super().setup()
        with self.srv.lock:
            self.srv.connections += 1
        if self.srv.connect_latency:
            time.sleep(self.srv.connect_latency)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.srv
        if srv.latency:
            time.sleep(srv.latency)
        with srv.lock:
            srv.user_agents.append(self.headers.get("User-Agent", ""))
        parsed = urllib.parse.urlparse(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        try:
            if parsed.path == CUTOUT_PATH:
                self._cutout(query)
            elif parsed.path == SQL_PATH:
                self._sql(query)
            else:
                self._send(404, "text/html", ERROR_HTML)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _cutout(self, query: dict) -> None:
        srv = self.srv
        key = key_of(query.get("ra", "nan"), query.get("dec", "nan"))
        width, height = int(query.get("width", 128)), int(query.get("height", 128))
        action = srv.next_action(key, query)
        jpeg = srv.jpeg(key, width, height)
        if action == "slow":
            time.sleep(srv.slow_seconds)
            action = "ok"
        if action == "hold":
            srv.release.wait(srv.hold_seconds)
            action = "ok"
        if action == "ok":
            self._send(200, "image/jpeg", jpeg)
        elif action == "blank":
            self._send(200, "image/jpeg", encode_jpeg(np.zeros((height, width, 3), np.uint8), 90))
        elif action == "wrongsize":
            self._send(200, "image/jpeg", srv.jpeg(key, max(1, width // 2), max(1, height // 2)))
        elif action in ("grey", "png"):
            self._send(200, "image/jpeg", _encoded(fake_image(key, width, height), action))
        else:
            self._fault(action, jpeg)

    def _sql(self, query: dict) -> None:
        srv = self.srv
        cmd = query.get("cmd", "")
        with srv.lock:
            n = srv.sql_counts[cmd]
            srv.sql_counts[cmd] += 1
            srv.log.append(("sql", "", time.monotonic(), query))
        if srv.sql_responder is None:
            self._send(500, "text/html", ERROR_HTML)
            return
        reply = srv.sql_responder(cmd, n)
        if isinstance(reply, str):
            self._fault(reply, b"")
        else:
            self._send(*reply)

    def _fault(self, action: str, payload: bytes) -> None:
        srv = self.srv
        if action == "503ra":
            self._send(503, "text/html", ERROR_HTML, {"Retry-After": srv.retry_after})
        elif action in ("500", "503", "404"):
            self._send(int(action), "text/html", ERROR_HTML)
        elif action == "429":
            self._send(429, "text/plain", b"Too Many Requests", {"Retry-After": "0"})
        elif action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif action == "short":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(payload) or 1000))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif action == "truncated":
            self._send(200, "image/jpeg", payload[: len(payload) // 2])
        elif action == "html":
            self._send(200, "text/html", ERROR_HTML)
        elif action == "text":
            self._send(200, "text/plain", b"ERROR: The service is temporarily unavailable. Please try again later.")
        elif action == "empty":
            self._send(200, "image/jpeg", b"")
        elif action in ("trickle", "dribble"):
            self._trickle(payload, headers_too=action == "dribble")
        elif action in ("endless", "huge"):
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            if action == "huge":
                self.send_header("Content-Length", str(10 << 30))
            self.end_headers()
            chunk, t_end = payload + b"\x00" * (1 << 16), time.monotonic() + srv.stream_seconds
            while time.monotonic() < t_end:
                self.wfile.write(chunk)
        elif action in ("redirect", "redirect_endless"):
            self.send_response(302)
            self.send_header("Location", self.path)  # relative: the client resolves it
            self.send_header("Content-Type", "text/html")
            if action == "redirect":
                self.send_header("Content-Length", str(len(ERROR_HTML)))
                self.end_headers()
                self.wfile.write(ERROR_HTML)
                return
            self.close_connection = True
            self.end_headers()
            t_end = time.monotonic() + srv.stream_seconds
            while time.monotonic() < t_end:
                self.wfile.write(b"<p>moved</p>" * 4096)
        elif action == "bomb":
            self._send(200, "image/jpeg", bomb_jpeg(payload))
        elif action == "junk":
            self._send(200, "image/jpeg", payload + b"\x00JUNK" * (srv.junk_bytes // 5))
        elif action == "junk_small":
            self._send(200, "image/jpeg", payload + b"J" * 100)
        else:
            raise ValueError(f"unknown fault action {action!r}")

    def _trickle(self, payload: bytes, headers_too: bool) -> None:
        """Send the response one byte every ``trickle_seconds`` (the headers too, with ``headers_too``)."""
        srv = self.srv
        head = f"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        self.close_connection = True
        if not headers_too:
            self.wfile.write(head)
            self.wfile.flush()
            head = b""
        for byte in head + payload:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(srv.trickle_seconds)

    def _send(self, status: int, content_type: str, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def _encoded(image: np.ndarray, action: str) -> bytes:
    """``image`` as a greyscale JPEG (``grey``) or an RGB PNG (``png``)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    if action == "grey":
        Image.fromarray(image[..., 0]).save(buf, format="JPEG", quality=90)
    else:
        Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def bomb_jpeg(jpeg: bytes, width: int = 12000, height: int = 12000) -> bytes:
    """``jpeg`` with its frame header (SOF0) claiming ``width`` x ``height`` pixels: a small file
    whose full decode would take width * height * 3 bytes (~430 MB by default)."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]


# -- scenarios shared by tests/sdss/test_download.py and benchmarks/download_throughput.py --------
def make_catalog(root, n: int, seed: int = 0):
    """Write ``root/catalog.parquet`` with ``n`` galaxies at distinct positions; return the DataFrame."""
    import pandas as pd

    from galmet.data.dataset import write_catalog

    rng = np.random.default_rng(seed)
    i = np.arange(n)
    cat = pd.DataFrame(
        {
            "objID": 1237600000000000000 + i.astype(np.int64) * 13,
            "ra": 10.0 + i * 0.001 + rng.uniform(0, 1e-4, n),
            "dec": -1.0 + (i % 97) * 0.01,
            "petroR90_r": rng.uniform(3.0, 15.0, n),
            "oh_p50": rng.uniform(8.4, 9.2, n),
        }
    )
    write_catalog(root, cat)
    return cat


def fault_plans(cat, transient: float, permanent: float, seed: int = 0):
    """Choose rows with transient faults (1-2 of every kind in TRANSIENT_ACTIONS, then ok) and
    permanent ones (404 or a wrong-size image on every try).

    Returns
    -------
    plans : dict
        key -> actions, for :class:`FaultyServer`.
    transient_ids, permanent_ids : set of int
        objIDs of each group.
    """
    rng = np.random.default_rng(seed)
    n = len(cat)
    order = rng.permutation(n)
    n_perm, n_trans = int(round(permanent * n)), int(round(transient * n))
    plans, transient_ids, permanent_ids = {}, set(), set()
    for j, row in enumerate(order[:n_perm]):
        key = key_of(cat["ra"].iloc[row], cat["dec"].iloc[row])
        plans[key] = ["404"] if j % 2 == 0 else ["wrongsize"]
        permanent_ids.add(int(cat["objID"].iloc[row]))
    for j, row in enumerate(order[n_perm : n_perm + n_trans]):
        key = key_of(cat["ra"].iloc[row], cat["dec"].iloc[row])
        first = TRANSIENT_ACTIONS[j % len(TRANSIENT_ACTIONS)]
        plans[key] = [first, "ok"] if j % 3 else [first, TRANSIENT_ACTIONS[(j + 5) % len(TRANSIENT_ACTIONS)], "ok"]
        transient_ids.add(int(cat["objID"].iloc[row]))
    return plans, transient_ids, permanent_ids


def kill_resume_scenario(
    workdir,
    n: int,
    transient: float = 0.10,
    permanent: float = 0.02,
    workers: int = 8,
    size: int = 32,
    kill_after: int | None = None,
    latency: float = 0.0,
    seed: int = 0,
    timeout: float = 0.5,
    extra_args=(),
) -> dict:
    """Download ``n`` cutouts with ``python -m galmet download`` from a faulty server, SIGKILL it
    after ``kill_after`` images (None: no kill), rerun to the end, then check everything.

    Returns a dict of facts: counts, exit codes, summary lines, and the problem lists
    ``missing``, ``invalid``, ``temp_files``, ``extra_files``, ``refetched`` (objIDs whose image
    existed at the kill and were requested again), ``transient_not_ok``, ``permanent_not_in_manifest``
    and ``ok_fetched_twice`` (objIDs requested again after a successful response).
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(workdir) / "ds"
    root.mkdir(parents=True, exist_ok=True)
    cat = make_catalog(root, n, seed)
    plans, transient_ids, permanent_ids = fault_plans(cat, transient, permanent, seed)
    keys = {int(o): key_of(r, d) for o, r, d in zip(cat["objID"], cat["ra"], cat["dec"], strict=True)}
    facts: dict = {"n": n, "transient": len(transient_ids), "permanent": len(permanent_ids)}
    with FaultyServer(plans, latency=latency, slow_seconds=2 * timeout, retry_after="1") as srv:
        cmd = [sys.executable, "-m", "galmet", "download", str(root), "--base-url", srv.url]
        cmd += ["--workers", str(workers), "--rate", "0", "--size", str(size), "--timeout", str(timeout)]
        cmd += ["--retries", "4", "--backoff-base", "0.02", "--manifest-every", "0.5", "--no-progress", *extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        t0 = time.monotonic()
        at_kill: dict = {}
        present: set = set()
        if kill_after is not None:
            at_kill, present = _kill_midway(cmd, env, srv, root, kill_after, facts, t0)
        t1 = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        facts["resume_s"] = round(time.monotonic() - t1, 2)
        facts["total_s"] = round(time.monotonic() - t0, 2)
        facts["rc"] = done.returncode
        facts["summary"] = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
        with srv.lock:
            counts = dict(srv.counts)
            log = list(srv.log)
        facts["requests"] = sum(counts.values())
    # requests for a key after its first "ok" answer (a good image fetched twice)
    first_ok: dict = {}
    twice = set()
    for key, action, _, _ in log:
        if key in first_ok:
            twice.add(key)
        elif action == "ok":  # "slow" also ends in an image, but after the client gave up
            first_ok[key] = True
    by_key = {v: k for k, v in keys.items()}
    facts["ok_fetched_twice"] = sorted(by_key[k] for k in twice if k in by_key)
    facts["refetched"] = sorted(o for o in present if counts.get(keys[o], 0) != at_kill.get(keys[o], 0))
    facts.update(_outcome(root, keys, size, transient_ids, permanent_ids))
    return facts


def _kill_midway(cmd, env, srv: FaultyServer, root, kill_after: int, facts: dict, t0: float) -> tuple[dict, set]:
    """Run ``cmd`` until ``kill_after`` images exist, SIGKILL it; the server's counts and the
    objIDs on disk at that moment (facts about the kill go into ``facts``)."""
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    images = root / "images"
    while proc.poll() is None and (not images.is_dir() or sum(1 for _ in images.glob("*.jpg")) < kill_after):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    facts["killed_rc"] = proc.returncode
    facts["killed_after_s"] = round(time.monotonic() - t0, 2)
    with srv.lock:
        at_kill = dict(srv.counts)
    present = {int(p.stem) for p in images.glob("*.jpg")}
    facts["present_at_kill"] = len(present)
    facts["temp_files_at_kill"] = len(list(root.rglob("*.tmp")))
    return at_kill, present


def _outcome(root, keys: dict, size: int, transient_ids: set, permanent_ids: set) -> dict:
    """What a finished download left: missing, extra and invalid images, temp files, the manifest's counts."""
    import pandas as pd

    from galmet.io.images import read_image

    facts: dict = {}
    files = {p.name for p in (root / "images").iterdir()} - {".galmet-written"}  # (galmet's ledger)
    expect = {f"{o}.jpg" for o in keys if o not in permanent_ids}
    facts["missing"] = sorted(expect - files)
    facts["extra_files"] = sorted(files - expect)
    invalid = []
    for name in sorted(expect & files):
        try:
            read_image(root / "images" / name, size)
        except Exception as exc:  # noqa: BLE001 - collected as a fact
            invalid.append(f"{name}: {exc}")
    facts["invalid"] = invalid
    facts["temp_files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))
    man = pd.read_parquet(root / "manifest.parquet")
    status = dict(zip(man["objID"].astype(np.int64), man["status"], strict=True))
    facts["manifest_rows"] = len(man)
    facts["transient_not_ok"] = sorted(o for o in transient_ids if status.get(o) != "ok")
    facts["permanent_not_in_manifest"] = sorted(o for o in permanent_ids if status.get(o) != "failed")
    facts["manifest_ok"] = int((man["status"] == "ok").sum())
    facts["manifest_failed"] = int((man["status"] == "failed").sum())
    return facts
