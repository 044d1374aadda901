"""Prediction at sky positions vs the download alone: does prediction add much to fetching?

Everything runs against the local SkyServer imitation (tests/faulty_server.py) on 127.0.0.1 with an
added latency per request; no external network. In the same process, interleaved over rounds:

- **download alone** (baseline): ``download_cutouts`` of N positions into a dataset directory;
- **positions -> predictions**: ``galmet.predict_positions`` of N other positions (fetch through
  the same downloader, predict in shards while fetching, assemble the QTable, delete the cutouts);
- **the same, keeping the cutouts** (``keep_cutouts=DIR``, as the download alone does);
- **model alone**: ``GalmetModel.predict`` of N images already in memory (the prediction's own cost).

Two models: a tiny one (ResNet-18 on 16 x 16 px cutouts: prediction is cheap, so the pipeline's own
overhead shows), and with ``--real`` the paper's ResNet-34 on 128 x 128 px cutouts (on a CPU the
network, not the fetching, sets the pace). Untrained weights: the speed does not depend on them.

Usage::

    python benchmarks/positions_throughput.py --n 400 --rounds 3
    python benchmarks/positions_throughput.py --n 400 --rounds 3 --real --n-real 96
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import galmet  # noqa: E402
from faulty_server import FaultyServer  # noqa: E402
from galmet.data.dataset import write_catalog  # noqa: E402
from galmet.nn.bundle import load_model, save_bundle  # noqa: E402
from galmet.nn.net import build_model  # noqa: E402
from galmet.sdss.download import DownloadOptions, download_cutouts  # noqa: E402


def positions(n: int, offset: float) -> pd.DataFrame:
    """n distinct positions (a new set per run: no cutout is on disk or cached by the server)."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "objID": 1237600000000000000 + i.astype(np.int64) * 13,
            "ra": 30.0 + offset + i * 0.001,
            "dec": -1.0 + (i % 97) * 0.01,
        }
    )


def run(args, arch: str, size: int, n: int, tag: str) -> list[dict]:
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FaultyServer(latency=args.latency) as srv:
        bundle = save_bundle(Path(tmp) / "m.pt", build_model(arch), {"targets": ["oh_p50"], "image_size": size})
        model = load_model(bundle)
        images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        model.predict(images[: min(n, 32)], tta=False, device="cpu")  # warm-up
        for r in range(args.rounds):
            # download alone
            ds = Path(tmp) / f"dl{r}"
            write_catalog(ds, positions(n, 10.0 * r))
            opts = DownloadOptions(
                base_url=srv.url, workers=args.workers, rate=0, retries=0, timeout=30, size=size, progress=False
            )
            t0 = time.perf_counter()
            s = download_cutouts(ds, opts)
            t_dl = time.perf_counter() - t0
            assert s.ok == n, s.line()
            # positions -> predictions (other positions: nothing on disk, nothing cached), deleting the
            # cutouts (the default) and keeping them
            t_pos = {}
            for variant, keep in (("positions", None), ("positions_keep", Path(tmp) / f"keep{r}")):
                t0 = time.perf_counter()
                table = galmet.predict_positions(
                    model,
                    positions(n, 10.0 * r + (5.0 if keep is None else 7.0)),
                    base_url=srv.url,
                    workers=args.workers,
                    rate=0,
                    retries=0,
                    timeout=30,
                    tta=False,
                    device="cpu",
                    batch_size=64,
                    shard_size=args.shard_size,
                    progress=False,
                    keep_cutouts=keep,
                )
                t_pos[variant] = time.perf_counter() - t0
                assert (np.asarray(table["status"]) == "ok").all()
            # the model alone on the same number of images
            t0 = time.perf_counter()
            model.predict(images, tta=False, device="cpu", batch_size=64)
            t_model = time.perf_counter() - t0
            rows.append(
                {
                    "model": tag,
                    "round": r,
                    "n": n,
                    "download_img_s": n / t_dl,
                    "positions_img_s": n / t_pos["positions"],
                    "positions_keep_img_s": n / t_pos["positions_keep"],
                    "model_img_s": n / t_model,
                    "ratio": t_dl / t_pos["positions"],
                    "ratio_keep": t_dl / t_pos["positions_keep"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="positions per run, tiny model")
    ap.add_argument("--n-real", type=int, default=96, help="positions per run, ResNet-34 at 128 px")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", type=float, default=0.02, help="seconds the server adds per request")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--shard-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--real", action="store_true", help="also the paper's ResNet-34 on 128 px cutouts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, {args}")
    rows = run(args, "resnet18", 16, args.n, "resnet18 16px")
    if args.real:
        rows += run(args, "resnet34", 128, args.n_real, "resnet34 128px")
    df = pd.DataFrame(rows)
    best = df.groupby("model").agg(
        download_img_s=("download_img_s", "max"),
        positions_img_s=("positions_img_s", "max"),
        positions_keep_img_s=("positions_keep_img_s", "max"),
        model_img_s=("model_img_s", "max"),
        ratio_median=("ratio", "median"),
        ratio_min=("ratio", "min"),
        ratio_max=("ratio", "max"),
        ratio_keep_median=("ratio_keep", "median"),
    )
    print(best.to_string(float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
