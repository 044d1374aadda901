"""The failure budget of an unreachable server: requests in a row, over all workers, that got no
answer (refused, reset, timed out) stop a download after a few attempts; any answer starts the
count again, so a server that answers some requests keeps the run going."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from faulty_server import FaultyServer, make_catalog
from galmet.cli.main import main
from galmet.sdss.download import DownloadOptions, download_cutouts
from galmet.sdss.transport import FailureBudget

#: Small requests: 16-pixel cutouts, no rate limit, short backoffs.
FAST = dict(size=16, rate=0, timeout=1.0, backoff_base=0.01, progress=False, max_failures=1.0)


def test_the_budget_counts_unanswered_requests_over_threads_and_an_answer_starts_it_again():
    stop = threading.Event()
    budget = FailureBudget(10, stop)
    for _ in range(9):
        assert not budget.failed("connection failed")
    budget.answered()  # the server answered: nine failures are forgotten
    threads = [threading.Thread(target=lambda: [budget.failed("timed out") for _ in range(3)]) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.failures == 9 and not budget.exhausted and not stop.is_set()
    assert budget.failed("connection failed (refused)")  # the tenth in a row, over the three threads
    assert stop.is_set() and budget.last_error == "connection failed (refused)"
    budget.answered()  # a late answer does not revive a job that was told to stop
    assert budget.exhausted and budget.failures == 10


@pytest.mark.parametrize("dead", ["reset", "slow"])
def test_an_unreachable_server_stops_the_download_after_the_budget_of_attempts(tmp_path, dead):
    ds = tmp_path / "ds"
    make_catalog(ds, 40)
    opts = dict(FAST, workers=4, retries=5, failure_budget=6, max_consecutive_failures=1000)
    if dead == "slow":  # every request times out (the server never answers within the deadline)
        opts["timeout"] = 0.3
    with FaultyServer(default_plan=[dead], slow_seconds=1.0) as srv:
        t0 = time.monotonic()
        s = download_cutouts(ds, DownloadOptions(base_url=srv.url, **opts))
        elapsed = time.monotonic() - t0
        sent = sum(srv.counts.values())
    assert s.aborted and s.stop_param == "failure_budget", s.line()
    assert "6 requests in a row got no answer from the server (failure_budget 6" in s.stop_reason
    # six attempts, plus at most one in flight per other worker: not 40 rows x 6 attempts
    assert 6 <= sent <= 6 + 3 and s.requests == sent, (sent, s.requests)
    assert elapsed < 5, elapsed
    # no row used up its retries: none is recorded as failed, so the rerun fetches them all
    man = pd.read_parquet(ds / "manifest.parquet") if (ds / "manifest.parquet").is_file() else pd.DataFrame()
    assert s.failed == 0 and (len(man) == 0 or (man["status"] != "failed").all())


def test_a_server_that_answers_some_requests_keeps_the_run_going(tmp_path):
    ds = tmp_path / "ds"
    make_catalog(ds, 12)
    # every cutout is refused twice, then served: two workers make at most 4 unanswered requests in a row
    with FaultyServer(default_plan=["reset", "reset", "ok"]) as srv:
        opts = DownloadOptions(base_url=srv.url, **dict(FAST, workers=2, retries=5, failure_budget=5))
        s = download_cutouts(ds, opts)
        assert sum(srv.counts.values()) == 3 * 12
    assert not s.aborted and s.ok == 12 and s.failed == 0, s.line()


def test_the_download_command_names_the_budget_and_checks_it(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_catalog(ds, 30)
    with FaultyServer(default_plan=["reset"]) as srv:
        base = ["download", str(ds), "--base-url", srv.url, "--rate", "0", "--size", "16", "--no-progress"]
        assert main([*base, "--failure-budget", "0"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--failure-budget" in err
        assert main([*base, "--backoff-base", "0.01", "--failure-budget", "4"]) == 1
    out = capsys.readouterr().out
    assert "stopped early: too many failures (4 requests in a row got no answer" in out
    assert "--failure-budget 4" in out
