"""Metallicities at sky positions, the astropy way: SkyCoord in, QTable with units out, FITS on disk.

    python examples/positions_example.py --server sdss                   # SkyServer (network)
    python examples/positions_example.py --out pred.fits                 # offline stand-in
    python examples/positions_example.py --images ../shared/data/sdss_sample/images   # stand-in serving real cutouts

The model is ``sdss400`` by default, the trained SDSS model galmet ships (``galmet models``);
``--model`` takes another name or a bundle path. Without ``--server sdss`` the script starts a
small cutout server on 127.0.0.1 that answers the SkyServer ImgCutout URL, so it runs without a
network: with a drawn blob (not a real galaxy: its row is flagged out of domain), or with the
JPEGs of ``--images DIR`` in turn. With ``--server sdss`` the cutouts are fetched from the
model's own data release (DR14) at its pixel scale and size.
"""

from __future__ import annotations

import argparse
import threading
import urllib.parse
from contextlib import contextmanager, nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import QTable

import galmet
from galmet.io.images import encode_jpeg
from galmet.nn.inference import InferenceOptions
from galmet.sdss.download import DownloadOptions
from galmet.sdss.skyserver import CUTOUT_PATH


class _Cutouts(BaseHTTPRequestHandler):
    """Answers ``/SkyServerWS/ImgCutout/getjpeg?ra=..&dec=..&width=..`` with the next file of
    ``jpegs`` (the server's list) or, when it holds none, a drawn blob."""

    jpegs: list[Path] = []
    served = 0

    def _body(self, size: int, ra: float) -> bytes:
        if self.jpegs:
            path = self.jpegs[type(self).served % len(self.jpegs)]
            type(self).served += 1
            return path.read_bytes()
        yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
        blob = np.exp(-(xx**2 + yy**2) / (2 * (size / 8) ** 2)) * (0.3 + 0.7 * (ra % 1))
        return encode_jpeg(np.stack([blob * 255 * f for f in (0.9, 0.7, 0.5)], -1).astype(np.uint8), 90)

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path != CUTOUT_PATH:
            self.send_error(404)
            return
        body = self._body(int(query["width"][0]), float(query["ra"][0]))
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the example's output clean
        pass


@contextmanager
def local_server(images: Path | None = None):
    """A loopback cutout server for the duration of the block (answering with the JPEGs in
    ``images``, sorted, when given); yields its base URL."""
    handler = type("Cutouts", (_Cutouts,), {"jpegs": sorted(images.glob("*.jpg")) if images else [], "served": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sdss400", help="a model name or bundle path (default: sdss400, shipped)")
    ap.add_argument("--images", type=Path, help="the stand-in server answers with these JPEGs in turn")
    ap.add_argument("--server", choices=("local", "sdss"), default="local", help="where the cutouts come from")
    ap.add_argument("--out", type=Path, help="write the table here (.fits, .ecsv, .parquet or .csv)")
    args = ap.parse_args()

    # three galaxies, one of them given in sexagesimal as a catalogue would
    coords = SkyCoord(["12h30m49.4s +12d23m28s", "185.4d +15.5d", "186.2d +16.0d"], frame="icrs")
    model = galmet.load_model(args.model)
    with local_server(args.images) if args.server == "local" else nullcontext(None) as base_url:
        # with out=, the table is written (atomically; FITS: units in TUNIT, provenance in the
        # header) before the resumable work folder (out + ".galmet-work") is cleaned up
        table = galmet.predict_positions(
            model,
            coords,
            InferenceOptions(device="cpu"),
            download=DownloadOptions(rate=5),
            base_url=base_url,
            out=args.out,
        )
    table["oh_p50_pred"].info.format = ".3f"
    table["oh_p50_err"].info.format = ".3f"
    print(table["ra", "dec", "oh_p50_pred", "oh_p50_err", "flags", "status"])
    name, sha = table.meta.get("model_name", args.model), table.meta["model_sha256"][:12]
    print(f"model {name}, sha256 {sha}..., {table.meta['pixel_scale']} arcsec/pixel")
    if args.out:
        back = QTable.read(args.out)
        print(f"wrote {args.out}: oh_p50_pred in {back['oh_p50_pred'].unit}, ra in {back['ra'].unit}")
        assert back["ra"].unit == u.deg


if __name__ == "__main__":
    main()
