"""Peak memory of the parse/validate path of ``galmet predict --positions``, by table size.

For each size (10^4, 10^5, 10^6 rows by default) and format (parquet, csv) a positions table
is written (objID int64, ra and dec float64 degrees, z and petroR90_r float64: 40 bytes a row of
numbers), then one fresh subprocess per table imports what the command imports, notes its peak
RSS (``VmHWM`` of /proc/self/status, which a new process starts afresh; ``ru_maxrss`` of
``resource.getrusage`` is not: Linux carries the parent's high-water mark over fork and exec,
so it is used only where there is no /proc), and runs, stage by stage, what the command
does before the first cutout is fetched:

- ``read``: :func:`galmet.cli.positions.read_positions` (the file as a DataFrame or QTable);
- ``validate``: :func:`galmet.sdss.coords.sky_positions` (degrees, the input's columns);
- ``keys``: :func:`galmet.sdss.coords.cutout_keys` (each row's cutout key: the positions job's
  first step).

The peak after each stage, less the peak after the imports, divided by the rows, is that path's
memory per row (the peak is a high-water mark: each stage's figure includes the earlier ones').

Usage::

    python benchmarks/positions_memory.py                   # 1e4, 1e5, 1e6 rows; parquet and csv
    python benchmarks/positions_memory.py --sizes 10000 --formats parquet
    python benchmarks/positions_memory.py --src ../main/src     # another checkout, for a before/after
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Run in each subprocess: import, then read, validate and key the table, printing one JSON line.
CHILD = r"""
import json, resource, sys, time
def peak():  # bytes: this process's peak RSS (VmHWM; getrusage's ru_maxrss where there is no /proc)
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
from galmet.cli.positions import read_positions
from galmet.sdss.coords import cutout_keys, sky_positions
import astropy.table, pyarrow.parquet  # (what reading any table imports)
out = {"imports": peak()}
t0 = time.perf_counter()
table = read_positions(sys.argv[1])
out["read"], out["read_s"] = peak(), time.perf_counter() - t0
t0 = time.perf_counter()
try:  # as galmet.cli.positions does
    positions = sky_positions(table, where=sys.argv[1], copy=False)
except TypeError:  # (a galmet from before sky_positions(copy=))
    positions = sky_positions(table, where=sys.argv[1])
out["validate"], out["validate_s"] = peak(), time.perf_counter() - t0
t0 = time.perf_counter()
keys, kind = cutout_keys(positions)
out["keys"], out["keys_s"], out["key_kind"] = peak(), time.perf_counter() - t0, kind
out["rows"] = len(positions)
print(json.dumps(out))
"""


def write_table(path: Path, n: int) -> None:
    """``n`` rows of objID, ra, dec, z, petroR90_r (distinct objIDs, positions on the sky)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "objID": 1237648702973083820 + np.arange(n, dtype=np.int64) * 13,
            "ra": rng.uniform(0, 360, n),
            "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
            "z": rng.uniform(0.02, 0.3, n),
            "petroR90_r": rng.uniform(2, 20, n),
        }
    )
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def measure(path: Path, src: str) -> dict:
    """One fresh interpreter's peaks for ``path`` (see :data:`CHILD`), importing galmet from ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{path}: the measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="rows per table, comma-separated")
    ap.add_argument("--formats", default="parquet,csv", help="parquet and/or csv")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument(
        "--src",
        default=str(Path(__file__).resolve().parents[1] / "src"),
        help="the galmet sources to measure (default: this checkout's; another checkout's src for a before/after)",
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="galmet-posmem-") as tmp:
        print(
            f"{'format':8} {'rows':>9} {'file MB':>8} {'imports MB':>10} "
            f"{'read B/row':>10} {'+validate':>10} {'+keys':>10} {'seconds r/v/k':>16}"
        )
        for fmt in args.formats.split(","):
            for n in sizes:
                path = Path(tmp) / f"positions-{n}.{fmt}"
                write_table(path, n)
                t0 = time.perf_counter()
                r = measure(path, args.src)
                base = r["imports"]
                row = {
                    "format": fmt,
                    "rows": n,
                    "file_bytes": path.stat().st_size,
                    "imports_bytes": base,
                    **{f"{k}_bytes_per_row": (r[k] - base) / n for k in ("read", "validate", "keys")},
                    **{f"{k}_s": r[f"{k}_s"] for k in ("read", "validate", "keys")},
                    "peak_bytes": r["keys"],
                    "wall_s": time.perf_counter() - t0,
                }
                results.append(row)
                print(
                    f"{fmt:8} {n:9d} {row['file_bytes'] / 1e6:8.1f} {base / 2**20:10.0f} "
                    f"{row['read_bytes_per_row']:10.0f} {row['validate_bytes_per_row']:10.0f} "
                    f"{row['keys_bytes_per_row']:10.0f} "
                    f"{row['read_s']:5.2f}/{row['validate_s']:4.2f}/{row['keys_s']:4.2f}",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
