"""Cutout download throughput (1 vs 8 workers), validation overhead, and the 2,000-cutout acceptance run.

Everything runs against the local faulty SkyServer imitation (tests/faulty_server.py) on
127.0.0.1; no external network.

Usage::

    python benchmarks/download_throughput.py                 # throughput + validation overhead
    python benchmarks/download_throughput.py --acceptance    # 2,000 cutouts, 10% transient and
                                                             # 2% permanent faults, SIGKILL + resume
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faulty_server import FaultyServer, fake_image, key_of, kill_resume_scenario, make_catalog  # noqa: E402
from galmet.io.atomic import atomic_write_bytes  # noqa: E402
from galmet.io.images import encode_jpeg  # noqa: E402
from galmet.sdss.download import DownloadOptions, download_cutouts  # noqa: E402
from galmet.sdss.skyserver import validate_jpeg  # noqa: E402


def throughput(n: int, workers_list: list[int], latency: float, size: int, repeats: int) -> list[dict]:
    """Images per second for each worker count, same server, same catalog size, same run."""
    rows = []
    with FaultyServer(latency=latency) as srv, tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            for workers in workers_list:
                ds = Path(tmp) / f"w{workers}-r{rep}"
                make_catalog(ds, n, seed=rep)
                opts = DownloadOptions(
                    base_url=srv.url,
                    workers=workers,
                    rate=0,
                    retries=0,
                    timeout=10,
                    size=size,
                    progress=False,
                    manifest_every=5.0,
                )
                t0 = time.perf_counter()
                s = download_cutouts(ds, opts)
                dt = time.perf_counter() - t0
                assert s.ok == n, s.line()
                rows.append({"workers": workers, "repeat": rep, "seconds": dt, "img_per_s": n / dt})
    return rows


def validation_overhead(n: int, size: int, repeats: int) -> dict:
    """Per-image seconds of: decode + check (what the downloader adds), a plain write of the bytes,
    and the atomic write (temp file, fsync, rename) the downloader really uses."""
    bodies = [encode_jpeg(fake_image(key_of(i * 0.01, 1.0), size, size), 90) for i in range(n)]
    best = {"validate": np.inf, "plain write": np.inf, "atomic write": np.inf}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in bodies:
                validate_jpeg(b, size, "bench")
            best["validate"] = min(best["validate"], (time.perf_counter() - t0) / n)
            t0 = time.perf_counter()
            for i, b in enumerate(bodies):
                (folder / f"p{i}.jpg").write_bytes(b)
            best["plain write"] = min(best["plain write"], (time.perf_counter() - t0) / n)
            t0 = time.perf_counter()
            for i, b in enumerate(bodies):
                atomic_write_bytes(folder / f"a{i}.jpg", b)
            best["atomic write"] = min(best["atomic write"], (time.perf_counter() - t0) / n)
    best["mean_bytes"] = float(np.mean([len(b) for b in bodies]))
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="cutouts per throughput run (default: %(default)s)")
    p.add_argument("--latency", type=float, default=0.020, help="seconds the server adds per request")
    p.add_argument("--size", type=int, default=128, help="cutout size, pixels")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--acceptance", action="store_true", help="run the 2,000-cutout fault + kill + resume check")
    args = p.parse_args()
    print(f"# machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")

    if args.acceptance:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            facts = kill_resume_scenario(
                tmp,
                2000,
                transient=0.10,
                permanent=0.02,
                workers=8,
                size=32,
                kill_after=600,
                latency=0.005,
                timeout=0.5,
            )
            facts["wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(facts, indent=1))
        problems = [
            "missing",
            "extra_files",
            "invalid",
            "temp_files",
            "refetched",
            "transient_not_ok",
            "permanent_not_in_manifest",
        ]
        ok = facts["rc"] == 0 and all(not facts[k] for k in problems)
        print("ACCEPTANCE", "PASSED" if ok else "FAILED")
        return 0 if ok else 1

    rows = throughput(args.n, args.workers, args.latency, args.size, args.repeats)
    print(
        f"\n## throughput: {args.n} cutouts of {args.size}x{args.size}, server latency {args.latency * 1000:.0f} ms, "
        f"no rate limit, best of {args.repeats}"
    )
    print("| workers | seconds | images/s | speed-up vs 1 worker |")
    print("|---|---|---|---|")
    best = {w: min(r["seconds"] for r in rows if r["workers"] == w) for w in args.workers}
    base = best[min(args.workers)]
    for w in args.workers:
        print(f"| {w} | {best[w]:.2f} | {args.n / best[w]:.1f} | {base / best[w]:.2f}x |")

    v = validation_overhead(300, args.size, 3)
    print(
        f"\n## validation overhead per {args.size}x{args.size} JPEG (mean {v['mean_bytes']:.0f} bytes), best of 3 x 300"
    )
    print("| step | ms per image |")
    print("|---|---|")
    for k in ("validate", "plain write", "atomic write"):
        print(f"| {k} | {v[k] * 1000:.3f} |")
    wall = best[max(args.workers)] / args.n
    print(
        f"\nvalidation (decode + check) costs {v['validate'] / v['plain write']:.2f}x a plain write of the bytes, "
        f"{v['validate'] / v['atomic write'] * 100:.0f}% of the atomic write, and "
        f"{v['validate'] / wall * 100:.1f}% of the per-image wall time at {max(args.workers)} workers "
        f"({wall * 1000:.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
