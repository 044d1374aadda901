"""Loopback stand-ins of the Legacy Survey viewer and the PS1 cutout service, on their real URL contracts.

One threaded HTTP server on 127.0.0.1 answers both services' paths:

- ``/viewer/cutout.jpg?ra=&dec=&layer=&pixscale=&size=`` (Legacy: a size x size RGB JPEG),
- ``/viewer/cutout.fits?...&bands=grz`` (Legacy: float32 (3, size, size) nanomaggies),
- ``/cgi-bin/ps1filenames.py?ra=&dec=&filters=gri`` (PS1: a whitespace table with ``filter`` and
  ``filename`` columns, one row per band),
- ``/cgi-bin/fitscut.cgi?ra=&dec=&size=&format=jpg&red=&green=&blue=`` or ``format=fits&red=``
  (PS1: a colour JPEG, or one band's FITS: counts with zero point 25 + 2.5 log10(EXPTIME), EXPTIME
  in the header (:data:`PS1_EXPTIME` per band), of the nanomaggies :func:`fake_flux` gives
  (counts = 10 EXPTIME nmgy); asinh-scaled with BSOFTEN/BOFFSET as PS1's stack files are when
  ``ps1_asinh``).

A request missing a parameter of the contract gets HTTP 400. Each position (``key_of(ra, dec)``)
has a plan per route (``"cutout"``: the Legacy cutouts and fitscut; ``"filenames"``:
ps1filenames), one action per request, the last repeating:

========== ================================================================
ok         the right answer
blank      blank sky: an all-black JPEG, a FITS of zeros (Legacy) or NaNs (PS1), outside the footprint
norows     (filenames) the table's header and no rows (outside the footprint)
404, 400   HTTP 404 / 400 (permanent)
500, 503   HTTP 500 / 503 with an HTML page (retried)
html       status 200 with an HTML error page (retried)
wrongsize  a valid image of half the requested size (permanent at once)
wrongbands a JPEG with one band (greyscale), a FITS with 2 bands (permanent at once)
noexptime  (PS1 FITS) the right counts without the header's EXPTIME (permanent at once)
========== ================================================================

``requests`` logs (path, query) of every request; ``counts`` counts requests per (route, key).
"""

from __future__ import annotations

import collections
import io
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from faulty_server import ERROR_HTML, fake_image, key_of, key_seed
from galmet.io.images import encode_jpeg

LEGACY_JPEG = "/viewer/cutout.jpg"
LEGACY_FITS = "/viewer/cutout.fits"
PS1_FILENAMES = "/cgi-bin/ps1filenames.py"
PS1_FITSCUT = "/cgi-bin/fitscut.cgi"
#: The parameters each path requires (the real contract's).
REQUIRED = {
    LEGACY_JPEG: ("ra", "dec", "layer", "pixscale", "size"),
    LEGACY_FITS: ("ra", "dec", "layer", "pixscale", "size", "bands"),
    PS1_FILENAMES: ("ra", "dec", "filters"),
    PS1_FITSCUT: ("ra", "dec", "size", "format", "red"),
}
#: PS1's asinh scaling constant, 2.5 log10(e).
ASINH_A = 2.5 / np.log(10.0)
PS1_SOFTEN, PS1_OFFSET = 3.5, 0.25
#: Each PS1 band's stack exposure time (header EXPTIME), seconds: g, r, i.
PS1_EXPTIME = (1200.0, 900.0, 1500.0)


def download_args(ds, url, *extra, retries: int = 2) -> list:
    """``galmet download`` arguments for a test against a stand-in at ``url``: no rate limit, 16 px
    cutouts, short deadlines and backoff, no progress bar; ``extra`` appended."""
    return ["download", ds, "--base-url", url, "--rate", "0", "--size", "16", "--timeout", "2", "--retries",
            str(retries), "--backoff-base", "0.001", "--no-progress", *extra]  # fmt: skip


def download_options(url: str, retries: int = 2, **kw):
    """The :class:`~galmet.sdss.download.DownloadOptions` of :func:`download_args` (``kw`` overrides)."""
    from galmet.sdss.download import DownloadOptions

    base = dict(base_url=url, rate=0, retries=retries, timeout=2.0, backoff_base=0.001, size=16, progress=False)
    return DownloadOptions(**{**base, **kw})


def fake_flux(key: str, size: int, band: int) -> np.ndarray:
    """Deterministic float32 (size, size) fluxes of one band at ``key``: a galaxy-like blob on noise."""
    rng = np.random.default_rng(key_seed(key, band))
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / (2 * (size / 6) ** 2))
    return (blob * (3.0 + band) + rng.normal(0, 0.05, (size, size))).astype(np.float32)


def ps1_file(key: str, band: str) -> str:
    """The stack file name ps1filenames gives for ``band`` at ``key`` (PS1's naming)."""
    cell = key_seed(key) % 1000
    return f"/rings.v3.skycell/1784/{cell:03d}/rings.v3.skycell.1784.{cell:03d}.stk.{band}.unconv.fits"


def fits_bytes(cube: np.ndarray, header: dict | None = None) -> bytes:
    """FITS bytes of ``cube`` (2-D or 3-D) with ``header`` cards."""
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.asarray(cube, dtype=np.float32))
    for k, v in (header or {}).items():
        hdu.header[k] = v
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


class SurveyServer:
    """``with SurveyServer(plans={key: [...]}, filenames_plans={key: [...]}) as srv:``; ``srv.url``.

    Parameters
    ----------
    plans : dict, optional
        key -> actions of the image routes (Legacy cutouts, fitscut).
    filenames_plans : dict, optional
        key -> actions of ps1filenames.
    default_plan : sequence of str
        Plan of keys not in ``plans`` / ``filenames_plans``.
    ps1_asinh : bool
        fitscut FITS bodies carry PS1's asinh scaling (BSOFTEN, BOFFSET) instead of linear flux.
    """

    def __init__(self, plans=None, filenames_plans=None, default_plan=("ok",), ps1_asinh=True):
        self.plans = dict(plans or {})
        self.filenames_plans = dict(filenames_plans or {})
        self.default_plan = list(default_plan)
        self.ps1_asinh = ps1_asinh
        self.counts: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._url = ""

    def __enter__(self) -> SurveyServer:
        handler = type("Handler", (_Handler,), {"srv": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self._url = f"http://{host}:{port}"
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        return self._url

    def action(self, route: str, key: str, path: str, query: dict) -> str:
        with self.lock:
            n = self.counts[(route, key)]
            self.counts[(route, key)] += 1
            self.requests.append((path, query))
            plan = (self.filenames_plans if route == "filenames" else self.plans).get(key, self.default_plan)
            return plan[min(n, len(plan) - 1)]

    def paths(self) -> list[str]:
        """The paths requested, in order."""
        with self.lock:
            return [p for p, _ in self.requests]


class _Handler(BaseHTTPRequestHandler):
    srv: SurveyServer
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        parsed = urllib.parse.urlparse(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        required = REQUIRED.get(parsed.path)
        if required is None:
            return self._send(404, "text/html", ERROR_HTML)
        if any(name not in query for name in required):
            return self._send(400, "text/plain", b"missing parameter")
        key = key_of(query["ra"], query["dec"])
        route = "filenames" if parsed.path == PS1_FILENAMES else "cutout"
        action = self.srv.action(route, key, parsed.path, query)
        if action in ("404", "400", "500", "503"):
            return self._send(int(action), "text/html", ERROR_HTML)
        if action == "html":
            return self._send(200, "text/html", ERROR_HTML)
        if parsed.path == PS1_FILENAMES:
            return self._send(200, "text/plain", _filenames(key, query["filters"], action))
        size = int(query["size"])
        size = size // 2 if action == "wrongsize" else size
        if parsed.path == LEGACY_JPEG or (parsed.path == PS1_FITSCUT and query["format"] == "jpg"):
            return self._send(200, "image/jpeg", _jpeg(key, size, action))
        if parsed.path == LEGACY_FITS:
            bands = 2 if action == "wrongbands" else len(query["bands"])
            cube = np.stack([fake_flux(key, size, b) for b in range(bands)])
            return self._send(200, "application/fits", fits_bytes(cube * (action != "blank")))
        band = "gri".index(query["red"].split(".stk.")[1][0])
        return self._send(200, "application/fits", self._ps1_fits(key, size, band, action))

    def _ps1_fits(self, key: str, size: int, band: int, action: str) -> bytes:
        exptime = PS1_EXPTIME[band]
        flux = fake_flux(key, size, band) if action != "blank" else np.full((size, size), np.nan, np.float32)
        counts = flux.astype(np.float64) * 10.0 * exptime
        header = {} if action == "noexptime" else {"EXPTIME": exptime}
        if action == "wrongbands":
            return fits_bytes(np.stack([counts, counts]), header)
        if not self.srv.ps1_asinh:
            return fits_bytes(counts, header)
        stored = ASINH_A * np.arcsinh((counts - PS1_OFFSET) / (2.0 * PS1_SOFTEN))
        return fits_bytes(stored, {**header, "BSOFTEN": PS1_SOFTEN, "BOFFSET": PS1_OFFSET})

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _filenames(key: str, filters: str, action: str) -> bytes:
    lines = ["projcell subcell ra dec filter mjd type filename shortname badflag"]
    if action != "norows":
        for band in filters:
            name = ps1_file(key, band)
            lines.append(f"1784 059 {key.split(',')[0]} {key.split(',')[1]} {band} 0 stack {name} {name[1:]} 0")
    return ("\n".join(lines) + "\n").encode()


def _jpeg(key: str, size: int, action: str) -> bytes:
    image = fake_image(key, size, size)
    if action == "blank":
        image = np.zeros_like(image)
    if action == "wrongbands":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buf, format="JPEG", quality=90)
        return buf.getvalue()
    return encode_jpeg(image, 90)
