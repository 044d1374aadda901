"""Predict metallicities at sky positions: fetch each SDSS cutout, run the model, get a table.

    python examples/predict_positions.py --model runs/paper/model.pt --base-url https://skyserver.sdss.org/dr14
    python examples/predict_positions.py            # offline: a local stand-in server, an untrained model

Without ``--base-url`` the script starts a small cutout server on 127.0.0.1 that answers the
SkyServer ImgCutout URL with a synthetic galaxy, so it runs without a network; without
``--model`` it builds an untrained ResNet-18 bundle (its numbers mean nothing: it shows the
plumbing). Give both to predict real galaxies with a trained model.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import urllib.parse
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd

import galmet
from galmet.io.images import encode_jpeg
from galmet.predict import predict_positions
from galmet.sdss.skyserver import CUTOUT_PATH, SkyServerClient


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
        image = np.stack([blob * 255 * f for f in (0.9, 0.7, 0.5)], -1).astype(np.uint8)
        body = encode_jpeg(image, 90)
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
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
    ap.add_argument("--base-url", help="SkyServer root (default: a local stand-in server)")
    ap.add_argument("--out", type=Path, help="write the predictions here (.csv, .parquet or .fits)")
    args = ap.parse_args()

    positions = pd.DataFrame(
        {
            "objID": [1237648702973083820, 1237648702973149349, 1237648703510020260],
            "ra": [185.0, 185.4, 186.2],
            "dec": [15.8, 15.5, 16.0],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        model = galmet.load_model(args.model or untrained_bundle(Path(tmp), 32))
        with local_server() if args.base_url is None else _given(args.base_url) as base_url:
            client = SkyServerClient(base_url, timeout=30, rate=5)  # be polite to the real server
            table = predict_positions(model, positions, client=client, device="cpu")
    print(table.to_string(index=False))
    if args.out:
        from galmet.io.tables import write_table

        print(f"wrote {write_table(table, args.out)}")


@contextmanager
def _given(url: str):
    yield url


if __name__ == "__main__":
    main()
