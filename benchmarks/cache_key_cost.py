#!/usr/bin/env python3
"""Cost of binding the decode cache to content, against the old key, in the same run.

    python benchmarks/cache_key_cost.py [DATASET] [--copies 40] [--repeats 3]

The old key (galmet <= 0.1) hashed each row's name, file size and mtime (one ``stat`` per file);
the new one (galmet.data.cache) hashes each file's content (whole up to 64 KiB) and samples
``images.npy``. Both are timed over DATASET's images (default: the 500 real SDSS cutouts of
../shared/data/sdss_sample), and over a larger tree made of ``--copies`` copies of them in a
temporary folder; Pillow decoding of the same files is the scale (what a missing cache costs).
Times are with a warm page cache (the second and later passes). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from galmet.data.cache import cache_key, file_digests, npy_fingerprint
from galmet.io.images import read_image


def old_key(names: list[str], paths: list[Path]) -> str:
    """galmet 0.1's cache key: names, sizes and mtimes."""
    h = hashlib.sha1()
    for name, p in zip(names, paths, strict=True):
        st = p.stat()
        h.update(f"{name}|{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(paths: list[Path], repeats: int, decode: bool) -> dict:
    names = [p.stem for p in paths]
    file_digests(paths)  # warm the page cache
    out = {
        "files": len(paths),
        "old_key_s": best_of(lambda: old_key(names, paths), repeats),
        "new_key_s": best_of(lambda: cache_key(names, paths, file_digests(paths)), repeats),
    }
    out["ratio_new_old"] = out["new_key_s"] / out["old_key_s"]
    if decode:
        out["pillow_decode_s"] = best_of(lambda: [read_image(p) for p in paths], 1)
        out["new_key_vs_decode"] = out["new_key_s"] / out["pillow_decode_s"]
    return out


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", default=str(here.parent / "shared" / "data" / "sdss_sample"))
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    paths = sorted((Path(a.dataset) / "images").glob("*.jpg"))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "small": measure(paths, a.repeats, True)}
    with tempfile.TemporaryDirectory() as tmp:
        big = []
        for c in range(a.copies):
            for p in paths:
                q = Path(tmp) / f"{c}_{p.name}"
                shutil.copyfile(p, q)
                big.append(q)
        result["large"] = measure(big, a.repeats, False)
        arr = np.zeros((len(big), 128, 128, 3), np.uint8)
        npy = Path(tmp) / "images.npy"
        np.save(npy, arr)
        result["npy_bytes"] = npy.stat().st_size
        result["npy_fingerprint_s"] = best_of(lambda: npy_fingerprint(npy), a.repeats)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
