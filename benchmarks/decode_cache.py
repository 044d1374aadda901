#!/usr/bin/env python3
"""Decode-cache read rate vs decoding the JPEGs with Pillow, in the same run.

    python benchmarks/decode_cache.py [DATASET] [--repeats 5] [--batch 256]

DATASET defaults to ../shared/data/sdss_sample (500 real 128x128 SDSS cutouts). Three rates in
images/s: (1) Pillow decode of every JPEG (what training would pay every epoch without the
cache), (2) copying the whole memory-mapped images.npy into RAM, (3) random batches gathered
from the memory map (what an epoch of shuffled training reads). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from galmet.data.dataset import load_dataset
from galmet.io.images import read_image


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", default=str(here.parent / "shared" / "data" / "sdss_sample"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()

    ds = load_dataset(a.dataset)  # builds the cache once if missing
    n = len(ds)
    t0 = time.perf_counter()
    for _ in range(a.repeats):
        for p in ds.paths:
            read_image(p, ds.image_size)
    pil = a.repeats * n / (time.perf_counter() - t0)

    cached = load_dataset(a.dataset)
    t0 = time.perf_counter()
    for _ in range(a.repeats):
        full = np.array(cached.images())  # copy out of the memory map into RAM
    seq = a.repeats * n / (time.perf_counter() - t0)

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    count = 0
    for _ in range(a.repeats):
        order = rng.permutation(n)
        for i in range(0, n, a.batch):
            batch = cached.images()[np.sort(order[i : i + a.batch])]
            count += len(batch)
    rand = count / (time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "dataset": str(a.dataset),
                "n": n,
                "size": ds.image_size,
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "pillow_decode_img_s": round(pil),
                "cache_sequential_img_s": round(seq),
                "cache_random_batch_img_s": round(rand),
                "ratio_sequential": round(seq / pil, 1),
                "ratio_random_batch": round(rand / pil, 1),
                "checksum": int(full.sum(dtype=np.uint64)),
            }
        )
    )


if __name__ == "__main__":
    main()
