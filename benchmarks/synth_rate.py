"""Synthesis rate of ``galmet synth``: galaxies per second with 1 worker and with 2.

Usage::

    python benchmarks/synth_rate.py [--n 1000] [--size 128] [--workers 1 2]

Each run writes a full dataset directory (images + catalog) into a temporary folder; the
1-worker run is the baseline measured in the same invocation, and the byte-identity of the
two outputs is checked on the way. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from galmet.synthetic.render import synthesize


def _digest(root: Path) -> str:
    h = hashlib.sha1((root / "catalog.parquet").read_bytes())
    for p in sorted((root / "images").glob("*.jpg")):
        h.update(p.read_bytes())
    return h.hexdigest()


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (worker processes)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"n={args.n}, size={args.size}; load average before: {os.getloadavg()[0]:.1f}"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: imports (GalSim, astropy) and the cosmology grid, so no row pays for them.
        synthesize(Path(tmp) / "warmup", 2, seed=args.seed, size=args.size, workers=1, progress=False)
        for w in args.workers:
            out = Path(tmp) / f"w{w}"
            t0, c0 = time.perf_counter(), _cpu_seconds()
            synthesize(out, args.n, seed=args.seed, size=args.size, workers=w, progress=False)
            dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            results.append((w, dt, cpu, _digest(out)))
    base = results[0][1]
    print("\n| workers | wall time (s) | galaxies/s | speed-up vs 1st row | CPU ms/galaxy | output sha1 |")
    print("|---|---|---|---|---|---|")
    for w, dt, cpu, digest in results:
        print(f"| {w} | {dt:.1f} | {args.n / dt:.1f} | {base / dt:.2f}x | {1e3 * cpu / args.n:.1f} | {digest[:12]} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    same = len({d for *_, d in results}) == 1
    print(f"\nidentical output for every worker count: {same}")


if __name__ == "__main__":
    main()
