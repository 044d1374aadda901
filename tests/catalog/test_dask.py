"""predict_catalog on Dask: an embedded local cluster, and a real scheduler with two workers started
as separate processes on loopback (the issue's "done means": both workers do the work, every row
ends with a status, and a rerun of the finished job fetches nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catalog_helpers import bundle_fixture  # noqa: F401 (the bundle fixture)

from faulty_server import FaultyServer

pytest.importorskip("distributed")

SRC = Path(__file__).resolve().parents[2] / "src"


def _catalog(tmp_path, n: int):
    ra = 150.0 + np.arange(n) * 0.01
    dec = np.full(n, 2.0)
    dec[5] = np.nan
    path = tmp_path / "cat.parquet"
    pd.DataFrame({"objID": 1237648702973083820 + np.arange(n), "ra": ra, "dec": dec}).to_parquet(path, index=False)
    return path


def _sidecars(out: Path) -> list[dict]:
    done = out.with_name(out.name + ".galmet-work") / "done"
    return [json.loads(p.read_text()) for p in sorted(done.glob("*.json"))]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _start_cluster(tmp_path) -> tuple[Path, list[subprocess.Popen]]:
    """A scheduler and two workers, each its own process, on 127.0.0.1."""
    scheduler_file = tmp_path / "scheduler.json"
    env, log = _env(), open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed with the processes
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]
            + ["--scheduler-file", str(scheduler_file), "--no-dashboard"],
            env=env,
            stdout=log,
            stderr=log,
        )
    ]
    deadline = time.monotonic() + 60
    while not scheduler_file.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file)]
                + ["--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--no-nanny", "--host", "127.0.0.1"],
                env=env,
                stdout=log,
                stderr=log,
            )
        )
    return scheduler_file, procs


def _wait_for_workers(scheduler_file: Path, n: int) -> None:
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
        client.wait_for_workers(n, timeout=90)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        p.terminate()
    for p in reversed(procs):
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_a_real_scheduler_and_two_worker_processes_share_the_partitions(tmp_path, bundle):
    """HATS in, HATS out (LSDB reads it), on a scheduler and two workers started as processes."""
    import galmet

    lsdb = pytest.importorskip("lsdb")
    from catalog_helpers import FAST, hats_input

    n = 48
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "objID": np.arange(n, dtype=np.int64) + 1237648702973083820,
            "ra": rng.uniform(140, 160, n),
            "dec": rng.uniform(-5, 10, n),
        }
    )
    path, out = hats_input(frame, tmp_path / "targets", partition_rows=6), tmp_path / "pred"
    scheduler_file, procs = _start_cluster(tmp_path)
    try:
        _wait_for_workers(scheduler_file, 2)
        worker_pids = {p.pid for p in procs[1:]}
        address = json.loads(scheduler_file.read_text())["address"]
        with FaultyServer(latency=0.05) as srv:
            summary = galmet.predict_catalog(
                bundle, path, out, scheduler=address, partition_rows=6, base_url=srv.url, **FAST
            )
            fetched = sum(srv.counts.values())
            again = galmet.predict_catalog(
                bundle, path, out, scheduler=address, partition_rows=6, base_url=srv.url, **FAST
            )
            assert sum(srv.counts.values()) == fetched  # the rerun of a finished job fetches nothing
    finally:
        _stop(procs)
    sidecars = _sidecars(out)
    pids = {int(s["worker"].rsplit(":", 1)[1]) for s in sidecars}
    assert pids == worker_pids, (pids, worker_pids)  # both workers did partitions, and only they did
    assert summary.done == summary.partitions == len(sidecars) > 2 and again.ran == 0 and again.out == out
    table = lsdb.read_hats(out).compute()
    assert len(table) == n and (table["status"] == "ok").all() and np.isfinite(table["oh_p50_pred"]).all()
    assert sorted(table["objID"]) == sorted(frame["objID"])


def test_the_embedded_local_cluster_runs_the_partitions_in_worker_processes(tmp_path, bundle, capsys):
    from conftest import run_cli

    n = 12
    path, out = _catalog(tmp_path, n), tmp_path / "pred.parquet"
    quick = ["--rate", "0", "--retries", "1", "--backoff-base", "0.01", "--timeout", "5", "--no-tta", "--device", "cpu"]
    with FaultyServer() as srv:
        argv = ["predict", bundle, "--positions", path, "--out", out, "--local-workers", "2", "--partition-rows", "4"]
        code, stdout, err = run_cli(capsys, *argv, "--base-url", srv.url, *quick)
    assert code == 0, err
    pids = {int(s["worker"].rsplit(":", 1)[1]) for s in _sidecars(out)}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert "3 of 3 partitions done" in stdout
    assert (pd.read_parquet(out)["status"] == "ok").sum() == n - 1
