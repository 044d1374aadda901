"""Keep-alive vs a new connection per request: cutouts per second from a loopback SkyServer imitation
whose every NEW connection costs extra latency (a TCP + TLS handshake with a far-away server).

Both modes run in the same process against the same server, alternated over several repeats
(keep-alive first in odd repeats, last in even ones), so the machine's noise hits both alike. Each
run fetches and validates N distinct cutouts through ``SkyServerClient.get_cutout`` (the
transport, the JPEG checks; no disk writes) from W threads sharing one client, and counts the TCP
connections the server accepted.

Usage::

    python benchmarks/keepalive.py                          # 200 cutouts, 30 ms per connection, 5 repeats
    python benchmarks/keepalive.py --workers 1 4 --connect-latency 0.05 --latency 0.01 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faulty_server import FaultyServer  # noqa: E402
from galmet.sdss.skyserver import RetryPolicy, SkyServerClient  # noqa: E402


def one_run(srv: FaultyServer, keep_alive: bool, n: int, workers: int, size: int, offset: float) -> dict:
    """Fetch ``n`` distinct cutouts with ``workers`` threads; requests/s and connections opened."""
    client = SkyServerClient(srv.url, timeout=30, policy=RetryPolicy(retries=0), rate=None, keep_alive=keep_alive)
    positions = [(offset + i * 1e-3, 1.0) for i in range(n)]
    next_index, lock, errors = [0], threading.Lock(), []

    def work() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= n:
                return
            try:
                client.get_cutout(*positions[i], size=size)
            except Exception as exc:  # noqa: BLE001 - reported after the run
                errors.append(exc)

    before = srv.connections
    threads = [threading.Thread(target=work) for _ in range(workers)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t0
    client.close()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return {
        "keep_alive": keep_alive,
        "workers": workers,
        "seconds": seconds,
        "req_per_s": n / seconds,
        "connections": srv.connections - before,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="cutouts per run (default: %(default)s)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 4], help="threads (default: %(default)s)")
    p.add_argument("--size", type=int, default=128, help="cutout side, pixels (default: %(default)s)")
    p.add_argument(
        "--connect-latency",
        type=float,
        default=0.03,
        help="seconds the server adds once per new connection (default: %(default)s)",
    )
    p.add_argument(
        "--latency", type=float, default=0.0, help="seconds the server adds to every request (default: %(default)s)"
    )
    p.add_argument("--repeats", type=int, default=5, help="runs of each mode, alternated (default: %(default)s)")
    p.add_argument("--json", help="also write the rows and the summary here")
    args = p.parse_args(argv)

    rows = []
    with FaultyServer(keep_alive=True, connect_latency=args.connect_latency, latency=args.latency) as srv:
        # warm up (JPEG encoding on the server is cached per position: use the same positions in every run)
        one_run(srv, True, min(args.n, 20), 1, args.size, 0.0)
        for workers in args.workers:
            for rep in range(args.repeats):
                order = (True, False) if rep % 2 == 0 else (False, True)
                pair = {ka: one_run(srv, ka, args.n, workers, args.size, 0.0) for ka in order}
                for ka in order:
                    rows.append({**pair[ka], "repeat": rep})
                ratio = pair[True]["req_per_s"] / pair[False]["req_per_s"]
                print(
                    f"workers={workers} repeat={rep}: keep-alive {pair[True]['req_per_s']:7.1f} req/s "
                    f"({pair[True]['connections']} connections), new connection per request "
                    f"{pair[False]['req_per_s']:7.1f} req/s ({pair[False]['connections']} connections); "
                    f"ratio {ratio:.2f}",
                    flush=True,
                )
                assert pair[True]["connections"] <= workers, pair[True]
                assert pair[False]["connections"] == args.n, pair[False]

    summary = []
    for workers in args.workers:
        ka = [r["req_per_s"] for r in rows if r["workers"] == workers and r["keep_alive"]]
        nk = [r["req_per_s"] for r in rows if r["workers"] == workers and not r["keep_alive"]]
        ratios = [a / b for a, b in zip(ka, nk, strict=True)]
        summary.append(
            {
                "workers": workers,
                "keep_alive_req_per_s_median": statistics.median(ka),
                "new_connection_req_per_s_median": statistics.median(nk),
                "ratio_median": statistics.median(ratios),
                "ratio_mean": statistics.fmean(ratios),
                "ratio_sd": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
            }
        )
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    print(
        f"\n{machine}; n={args.n}, size={args.size}, connect latency {args.connect_latency * 1e3:g} ms, "
        f"request latency {args.latency * 1e3:g} ms, {args.repeats} repeats alternated"
    )
    print(
        "| workers | keep-alive req/s (median) | new connection per request req/s (median) | ratio median | "
        "ratio mean +- sd | ratio range |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for s in summary:
        print(
            f"| {s['workers']} | {s['keep_alive_req_per_s_median']:.1f} | {s['new_connection_req_per_s_median']:.1f} "
            f"| {s['ratio_median']:.2f} | {s['ratio_mean']:.2f} +- {s['ratio_sd']:.2f} "
            f"| {s['ratio_min']:.2f}-{s['ratio_max']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "args": vars(args), "rows": rows, "summary": summary}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
