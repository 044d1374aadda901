"""galmet.predict_catalog on an embedded Dask cluster: images/s per worker, 1 vs 2 workers (a ratio
from the same run), and the cost of one partition (scheduling, model load, input and output writes).

Everything runs against the loopback SkyServer imitation (tests/faulty_server.py: synthetic
cutouts of the requested size, ``--latency`` seconds per request), no external network.

Usage::

    python benchmarks/catalog_scaling.py --rows 1200 --partition-rows 150 --model sdss400 --repeats 2
    python benchmarks/catalog_scaling.py --memory 100000 1000000 --partition-rows 10000

For each repeat, 1 and 2 workers run the same catalogue (order alternated between repeats), each
in a fresh work folder. Reported per run: wall time (cluster start included), the steady-state
rate (rows / span from the first partition's start to the last one's end, from the sidecars),
images/s per worker, and per partition: seconds outside predict_positions (model load on a
worker's first partition, reading the input rows, the sidecar) and the gap between consecutive
partitions of a worker (scheduling). The overhead per partition is also measured directly: the
same rows in partitions of ``--partition-rows`` and of an eighth of it, on 1 worker.
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faulty_server import FaultyServer  # noqa: E402


def _catalog(path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ra": rng.uniform(120, 240, n), "dec": rng.uniform(0, 60, n)})
    frame.to_parquet(path, index=False)
    return path


def _sidecars(out: Path) -> list[dict]:
    done = out.with_name(out.name + ".galmet-work") / "done"
    return [json.loads(p.read_text()) for p in sorted(done.glob("*.json"))]


def _gaps(sidecars: list[dict]) -> list[float]:
    """Seconds between a worker's partition ending and its next one starting (scheduling, per partition)."""
    by_worker: dict[str, list[dict]] = {}
    for s in sidecars:
        by_worker.setdefault(s["worker"], []).append(s)
    gaps = []
    for items in by_worker.values():
        items.sort(key=lambda s: s["started"])
        gaps += [b["started"] - a["finished"] for a, b in zip(items, items[1:], strict=False)]
    return gaps


def one_run(model: str, catalog: Path, folder: Path, url: str, workers: int, partition_rows: int, tta: bool) -> dict:
    import galmet

    out = folder / "pred.parquet"
    t0 = time.perf_counter()
    summary = galmet.predict_catalog(
        model,
        catalog,
        out,
        n_workers=workers,
        partition_rows=partition_rows,
        base_url=url,
        rate=0,
        tta=tta,
        device="cpu",
        progress=False,
    )
    wall = time.perf_counter() - t0
    sidecars = _sidecars(out)
    rows = sum(s["rows"] for s in sidecars)
    span = max(s["finished"] for s in sidecars) - min(s["started"] for s in sidecars)
    first = {}
    for s in sorted(sidecars, key=lambda s: s["started"]):
        first.setdefault(s["worker"], s["key"])
    outside = [s["seconds"] - s["positions_seconds"] for s in sidecars]
    loads = [s["model_seconds"] for s in sidecars if first[s["worker"]] == s["key"]]
    outside_later = [s["seconds"] - s["positions_seconds"] for s in sidecars if first[s["worker"]] != s["key"]]
    gaps = _gaps(sidecars)
    return {
        "workers": workers,
        "partition_rows": partition_rows,
        "partitions": summary.partitions,
        "rows": rows,
        "ok": int(summary.statuses.get("ok", 0)),
        "wall_s": round(wall, 2),
        "span_s": round(span, 2),
        "rows_per_s_steady": round(rows / span, 1),
        "img_per_s_per_worker": round(rows / span / workers, 1),
        "workers_seen": len({s["worker"] for s in sidecars}),
        "model_load_s_first": round(float(np.mean(loads)), 2),
        "rows_per_s_in_task": round(rows / sum(s["positions_seconds"] for s in sidecars) * workers, 1),
        "outside_positions_s_mean": round(float(np.mean(outside)), 3),
        "outside_positions_s_later_mean": round(float(np.mean(outside_later)), 3) if outside_later else None,
        "gap_s_median": round(float(np.median(gaps)), 3) if gaps else None,
        "assemble_and_plan_s": round(wall - span, 2),
    }


def _cache_images(srv: FaultyServer) -> None:
    """One synthetic cutout per size, encoded once: the server in this process costs (almost) no CPU."""
    made: dict[tuple[int, int], bytes] = {}
    render = srv.jpeg

    def jpeg(key: str, width: int, height: int) -> bytes:
        if (width, height) not in made:
            made[(width, height)] = render(key, width, height)
        return made[(width, height)]

    srv.jpeg = jpeg  # type: ignore[method-assign]


def plan_memory(n: int, partition_rows: int) -> dict:
    """Peak RSS of a fresh process that plans an ``n``-row parquet catalogue (reads and checks its
    positions, fingerprints them, writes every partition's input rows): what the driver holds.
    The peak (``VmHWM``) is reset after the imports (``/proc/self/clear_refs``; Linux)."""
    import subprocess

    code = f"""
import resource, sys, time, numpy as np, pandas as pd
from pathlib import Path
from galmet.catalog.source import open_source
from galmet.catalog.run import row_partitions
from galmet.catalog.work import WorkFolder
tmp = Path(sys.argv[1])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
import pyarrow.dataset, astropy.table, astropy.coordinates  # imported before the baseline
open("/proc/self/clear_refs", "w").write("5")  # the peak RSS (VmHWM) starts again from here
base = status("VmRSS:")
t0 = time.perf_counter()
source = open_source(tmp / "cat.parquet")
ra, dec, fp = source.positions()
work = WorkFolder(tmp / "work")
source.write(row_partitions(len(ra), {partition_rows}), work.input)
print(base, status("VmHWM:"), time.perf_counter() - t0)
"""
    import tempfile as tf

    with tf.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(
            {
                "objID": np.arange(n, dtype=np.int64) + 1237648702973083820,
                "ra": rng.uniform(0, 360, n),
                "dec": rng.uniform(-20, 70, n),
                "petroR90_r": rng.uniform(1, 10, n),
                "name": [f"g{i}" for i in range(n)],
            }
        )
        frame.to_parquet(Path(tmp) / "cat.parquet", index=False, row_group_size=65536)
        del frame
        out = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, check=True)
    base, peak, seconds = out.stdout.split()
    return {
        "rows": n,
        "partition_rows": partition_rows,
        "rss_before_mib": round(int(base) / 1024, 1),
        "peak_rss_mib": round(int(peak) / 1024, 1),
        "plan_seconds": round(float(seconds), 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--memory", type=int, nargs="+", metavar="ROWS", help="only measure the planning's peak RSS")
    p.add_argument("--rows", type=int, default=1200)
    p.add_argument("--partition-rows", type=int, default=150)
    p.add_argument("--model", default="sdss400")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each cutout request")
    p.add_argument("--tta", action="store_true", help="8-view TTA (default: one view)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    if args.memory:
        for n in args.memory:
            print(json.dumps(plan_memory(n, args.partition_rows)), flush=True)
        return 0
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": os.getloadavg()},
        "args": vars(args) | {"json": str(args.json) if args.json else None},
        "runs": [],
    }
    with FaultyServer(latency=args.latency) as srv, tempfile.TemporaryDirectory() as tmp:
        _cache_images(srv)
        catalog = _catalog(Path(tmp) / "cat.parquet", args.rows)
        for rep in range(args.repeats):
            for workers in [1, 2] if rep % 2 == 0 else [2, 1]:
                folder = Path(tmp) / f"w{workers}-r{rep}"
                folder.mkdir()
                row = one_run(args.model, catalog, folder, srv.url, workers, args.partition_rows, args.tta)
                row["repeat"] = rep
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
        small = max(1, args.partition_rows // 8)
        for rows_per in (args.partition_rows, small):
            folder = Path(tmp) / f"overhead-{rows_per}"
            folder.mkdir()
            row = one_run(args.model, catalog, folder, srv.url, 1, rows_per, args.tta)
            row["overhead_probe"] = True
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
    _summarise(results)
    results["machine"]["load_after"] = os.getloadavg()
    print(json.dumps(results["summary"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _summarise(results: dict) -> None:
    runs = [r for r in results["runs"] if not r.get("overhead_probe")]
    one = [r["rows_per_s_steady"] for r in runs if r["workers"] == 1]
    two = [r["rows_per_s_steady"] for r in runs if r["workers"] == 2]
    big, small = [r for r in results["runs"] if r.get("overhead_probe")]
    extra = small["partitions"] - big["partitions"]
    results["summary"] = {
        "rows_per_s_1_worker": float(np.mean(one)),
        "rows_per_s_2_workers": float(np.mean(two)),
        "scaling_2_over_1": round(float(np.mean(two) / np.mean(one)), 2),
        "overhead_s_per_partition_from_probe": round((small["span_s"] - big["span_s"]) / extra, 3) if extra else None,
        "partitions_probe": [big["partitions"], small["partitions"]],
    }


if __name__ == "__main__":
    sys.exit(main())
