"""Metallicities at sky positions, the astropy way: SkyCoord in, QTable with units out, FITS on disk.

    python examples/positions_example.py --model runs/paper/model.pt --server sdss   # SkyServer (network)
    python examples/positions_example.py --out pred.fits                             # offline stand-in

Without ``--server sdss`` the script starts a small cutout server on 127.0.0.1 that answers the
SkyServer ImgCutout URL with a synthetic galaxy, so it runs without a network; without
``--model`` it builds an untrained ResNet-18 bundle (its numbers mean nothing: it shows the
plumbing). Give both to predict real galaxies with a trained model: the cutouts are then fetched
from the model's own data release (DR14 for the paper's model) at its pixel scale.
"""

from __future__ import annotations

import argparse
import tempfile
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
    """Answers ``/SkyServerWS/ImgCutout/getjpeg?ra=..&dec=..&width=..`` with a synthetic galaxy."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path != CUTOUT_PATH:
            self.send_error(404)
            return
        size = int(query["width"][0])
        ra = float(query["ra"][0])
        yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
        blob = np.exp(-(xx**2 + yy**2) / (2 * (size / 8) ** 2)) * (0.3 + 0.7 * (ra % 1))
        body = encode_jpeg(np.stack([blob * 255 * f for f in (0.9, 0.7, 0.5)], -1).astype(np.uint8), 90)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the example's output clean
        pass


@contextmanager
def local_server():
    """A loopback cutout server for the duration of the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Cutouts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def untrained_bundle(folder: Path, size: int) -> Path:
    """A ResNet-18 bundle with random weights for ``size`` x ``size`` images (plumbing only)."""
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    return save_bundle(folder / "untrained.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": size})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a trained model bundle (default: an untrained one, for the demo)")
    ap.add_argument("--server", choices=("local", "sdss"), default="local", help="where the cutouts come from")
    ap.add_argument("--out", type=Path, help="write the table here (.fits, .ecsv, .parquet or .csv)")
    args = ap.parse_args()

    # three galaxies, one of them given in sexagesimal as a catalogue would
    coords = SkyCoord(["12h30m49.4s +12d23m28s", "185.4d +15.5d", "186.2d +16.0d"], frame="icrs")
    with tempfile.TemporaryDirectory() as tmp:
        model = galmet.load_model(args.model or untrained_bundle(Path(tmp), 32))
        with local_server() if args.server == "local" else nullcontext(None) as base_url:
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
    print(table["ra", "dec", "oh_p50_pred", "status"])
    print(f"model sha256 {table.meta['model_sha256'][:12]}..., {table.meta['pixel_scale']} arcsec/pixel")
    if args.out:
        back = QTable.read(args.out)
        print(f"wrote {args.out}: oh_p50_pred in {back['oh_p50_pred'].unit}, ra in {back['ra'].unit}")
        assert back["ra"].unit == u.deg


if __name__ == "__main__":
    main()
