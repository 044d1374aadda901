"""Positions against a dead server: a failure budget (one line, exit 2, resumable), bounded retry
lines, wrong answers not retried, failure tallies over reruns, and back-pressure on fetching."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from faulty_server import WRONG_ANSWER_ACTIONS, FaultyServer, key_of
from galmet.cli.main import main
from galmet.nn.bundle import save_bundle
from galmet.nn.net import build_model

N = 60
#: The test's small timeouts: without a budget a dead row costs ~0.25 s here (~210 s with the defaults).
QUICK = ["--rate", "0", "--timeout", "0.5", "--retries", "2", "--backoff-base", "0.1"]


@pytest.fixture
def bundle(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    return save_bundle(tmp_path / "run" / "model.pt", net, {"targets": ["oh_p50"], "image_size": 16})


def _positions(tmp_path, n: int = N):
    ra = 150.0 + np.arange(n) * 0.01
    dec = np.full(n, 2.0)
    path = tmp_path / "targets.csv"
    pd.DataFrame({"ra": ra, "dec": dec}).to_csv(path, index=False)
    return path, ra, dec


def _predict(bundle, positions, out, url, *extra):
    argv = ["predict", str(bundle), "--positions", str(positions), "--out", str(out), "--base-url", url]
    return main(argv + ["--device", "cpu", "--no-tta", "--no-progress", *QUICK, *extra])


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("dead", ["closed port", "503 always", "html always", "wrongsize always"])
def test_a_dead_server_stops_the_run_in_bounded_time_and_the_rerun_resumes(tmp_path, capsys, caplog, bundle, dead):
    positions, ra, dec = _positions(tmp_path)
    out = tmp_path / "pred.parquet"
    caplog.set_level(logging.INFO)
    with FaultyServer(default_plan=[dead.split()[0] if dead != "closed port" else "503"]) as srv:
        url = srv.url
        if dead == "closed port":
            srv.stop()
        t0 = time.monotonic()
        code = _predict(bundle, positions, out, url)
        elapsed = time.monotonic() - t0
        err = capsys.readouterr().err
        assert code == 2, err
        line = _one_error_line(err)
        # no answer at all: the attempts' budget (24 over all workers) stops it; answers that fail: 16 rows
        budget = "--failure-budget 24" if dead == "closed port" else "--max-consecutive-failures 16"
        assert budget in line and "rerun the same command to resume" in line
        assert elapsed < 10, elapsed
        assert not out.exists() and (tmp_path / "pred.parquet.galmet-work" / "positions-run.json").is_file()
        # stopped early: not every row was tried (16 in a row, plus the requests in flight)
        if dead != "closed port":
            assert len(srv.counts) <= 16 + 2 * 8 < N
        # the retries are summarised, not one line per attempt
        retries = [r for r in caplog.records if hasattr(r, "retry_reason") and r.levelno >= logging.INFO]
        assert len(retries) <= 11, len(retries)
        if dead != "closed port":  # the server is back: the same command finishes the run
            srv.default_plan = ["ok"]
            code = _predict(bundle, positions, out, url)
        else:  # the URL was wrong: the corrected command resumes the same work folder
            with FaultyServer() as live:
                code = _predict(bundle, positions, out, live.url)
        assert code == 0, capsys.readouterr().err
        df = pd.read_parquet(out)
        assert len(df) == N
        if dead == "wrongsize always":  # wrong answers are final: those rows stay failed, the rest are done
            assert ((df["status"] == "ok") | (df["status"] == "bad image")).all() and (df["status"] == "ok").any()
        else:
            assert (df["status"] == "ok").all()


def test_the_budget_is_an_option_with_a_range_and_the_library_names_its_parameter(tmp_path, capsys, bundle):
    import galmet
    from galmet.errors import DataError

    positions, ra, dec = _positions(tmp_path, 12)
    with FaultyServer(default_plan=["503"]) as srv:
        code = _predict(bundle, positions, tmp_path / "p.csv", srv.url, "--max-consecutive-failures", "0")
        assert code == 2 and "--max-consecutive-failures" in _one_error_line(capsys.readouterr().err)
        with pytest.raises(DataError) as info:
            galmet.predict_positions(
                bundle,
                pd.DataFrame({"ra": ra, "dec": dec}),
                base_url=srv.url,
                device="cpu",
                tta=False,
                rate=0,
                retries=0,
                timeout=1.0,
                workers=1,
                max_consecutive_failures=3,
            )
        assert info.value.param == "max_consecutive_failures" and "3 fetches in a row" in str(info.value)
        assert len(srv.counts) <= 3 + 2 < 12  # the budget, plus the requests queued for the one worker


def test_wrong_answers_are_final_at_once_and_tallies_add_up_over_reruns(tmp_path, capsys, bundle):
    from galmet.predict.positions import PositionsSummary, predict_positions

    n = 30
    ra, dec = 150.0 + np.arange(n) * 0.01, np.full(n, 2.0)
    frame = pd.DataFrame({"ra": ra, "dec": dec})
    wrong = {2 * i: action for i, action in enumerate([*WRONG_ANSWER_ACTIONS, "404"])}  # good rows between
    plans = {key_of(ra[i], dec[i]): [a] for i, a in wrong.items()}
    plans.update({key_of(ra[i], dec[i]): ["503"] for i in range(14, n)})  # down after the first fourteen
    fast = dict(device="cpu", tta=False, rate=0, retries=2, backoff_base=0.01, timeout=1.0, workers=1)
    work = tmp_path / "work"
    with FaultyServer(plans) as srv:
        from galmet.errors import DataError

        with pytest.raises(DataError, match="in a row"):
            predict_positions(bundle, frame, base_url=srv.url, work_dir=work, max_consecutive_failures=4, **fast)
        for i in wrong:  # a complete wrong answer (or a 404) is not asked again
            assert srv.counts[key_of(ra[i], dec[i])] == 1, wrong[i]
        srv.plans = {k: v for k, v in plans.items() if v != ["503"]}
        summary = PositionsSummary()
        table = predict_positions(bundle, frame, base_url=srv.url, work_dir=work, summary=summary, **fast)
        for i in wrong:
            assert srv.counts[key_of(ra[i], dec[i])] == 1, wrong[i]
    status = np.asarray(table["status"])
    assert [i for i in range(n) if status[i] != "ok"] == sorted(wrong)
    # the resumed run's summary counts the first run's failures: reasons add up to the failed rows
    failed = summary.statuses["fetch failed"] + summary.statuses["bad image"]
    assert failed == len(wrong) == sum(summary.reasons.values())
    assert summary.reasons["HTTP 404"] == 1 and "failures by reason:" in summary.line()


def test_fetching_waits_while_prediction_is_behind(tmp_path, bundle, monkeypatch):
    from galmet.nn.inference import GalmetModel
    from galmet.predict.positions import BACKLOG_SHARDS, predict_positions

    original = GalmetModel.predict_uncertainty

    def slow(self, *args, **kwargs):
        time.sleep(0.08)  # a slow predictor: the server is much faster
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GalmetModel, "predict_uncertainty", slow)
    n, shard, workers = 32, 4, 2
    frame = pd.DataFrame({"ra": 150.0 + np.arange(n) * 0.01, "dec": np.full(n, 2.0)})
    images = tmp_path / "work" / "cutouts" / "images"
    seen, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            if images.is_dir():
                seen[0] = max(seen[0], sum(1 for p in images.glob("*.jpg")))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with FaultyServer() as srv:
        table = predict_positions(
            bundle,
            frame,
            base_url=srv.url,
            work_dir=tmp_path / "work",
            shard_size=shard,
            workers=workers,
            device="cpu",
            tta=False,
            rate=0,
            flags=False,
        )
    done.set()
    watcher.join()
    assert (np.asarray(table["status"]) == "ok").all()
    bound = BACKLOG_SHARDS * shard + 2 * workers  # the backlog, plus the requests in flight
    assert 0 < seen[0] <= bound < n, seen[0]


def test_load_dataset_at_positions_stops_at_a_dead_server_and_resumes(tmp_path):
    import galmet
    from galmet.sdss.download import DownloadOptions

    n = 24
    frame = pd.DataFrame({"ra": 150.0 + np.arange(n) * 0.01, "dec": np.full(n, 2.0)})
    dl = DownloadOptions(workers=1, rate=None, retries=0, timeout=1.0, max_consecutive_failures=3)
    with FaultyServer(default_plan=["503"]) as srv:
        with pytest.raises(galmet.DataError, match="3 fetches in a row failed") as info:
            galmet.load_dataset(frame, cutouts=tmp_path / "ds", size=16, base_url=srv.url, download=dl)
        assert info.value.param == "max_consecutive_failures" and len(srv.counts) <= 3 + 2 < n
    with FaultyServer() as live:  # the next call, from a server that answers, resumes the folder
        ds = galmet.load_dataset(frame, cutouts=tmp_path / "ds", size=16, base_url=live.url, download=dl)
    assert len(ds) == n


def test_the_progress_failed_count_is_cumulative(tmp_path, bundle, caplog, monkeypatch):
    from galmet.predict.positions import predict_positions

    monkeypatch.setenv("GALMET_PROGRESS_INTERVAL", "0.000001")  # a line per shard (stderr is no terminal here)
    n = 12
    ra, dec = 150.0 + np.arange(n) * 0.01, np.full(n, 2.0)
    plans = {key_of(ra[i], dec[i]): ["404"] for i in (1, 4, 7, 10)}  # one failure in each of 4 shards of 3
    caplog.set_level(logging.INFO, logger="galmet.io.progress")
    with FaultyServer(plans) as srv:
        table = predict_positions(
            bundle,
            pd.DataFrame({"ra": ra, "dec": dec}),
            base_url=srv.url,
            shard_size=3,
            workers=1,
            device="cpu",
            tta=False,
            rate=0,
            flags=False,
            progress=True,
        )
    assert (np.asarray(table["status"]) != "ok").sum() == 4
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("positions:")]
    assert lines and lines[-1].startswith("positions: 12/12 row (100%)") and lines[-1].endswith("failed=4")
    counts = [int(line.rsplit("failed=", 1)[1]) for line in lines if "failed=" in line]
    assert counts == sorted(counts)  # never goes back down


def test_an_unreachable_server_stops_positions_after_the_attempts_budget_and_all_tallies_add_up(tmp_path, bundle):
    """Run 1: a 404, a blank cutout and an invalid position are final, then the server stops
    answering (connections reset): the attempts' budget stops the run within a few requests. Run 2
    (the server is back) finishes, and its summary tallies every run's rows by reason."""
    from galmet.errors import DataError
    from galmet.predict.positions import PositionsSummary, predict_positions

    n = 20
    ra, dec = 150.0 + np.arange(n) * 0.01, np.full(n, 2.0)
    ra[3] = np.nan  # invalid position
    frame = pd.DataFrame({"ra": ra, "dec": dec})
    plans = {key_of(ra[0], dec[0]): ["404"], key_of(ra[1], dec[1]): ["blank"], key_of(ra[2], dec[2]): ["ok"]}
    plans.update({key_of(ra[i], dec[i]): ["reset"] for i in range(4, n)})  # unreachable after the first rows
    fast = dict(device="cpu", tta=False, rate=0, retries=5, backoff_base=0.01, timeout=1.0, workers=1, flags=False)
    work = tmp_path / "work"
    with FaultyServer(plans) as srv:
        t0 = time.monotonic()
        with pytest.raises(DataError, match="requests in a row got no answer") as info:
            predict_positions(bundle, frame, work_dir=work, base_url=srv.url, failure_budget=4, shard_size=2, **fast)
        assert time.monotonic() - t0 < 10
        assert info.value.param == "failure_budget" and "--failure-budget" not in str(info.value)
        # 3 answered rows, then 4 unanswered attempts (and the next queued task is never sent)
        assert sum(srv.counts.values()) == 3 + 4, dict(srv.counts)
        srv.plans = {k: v for k, v in plans.items() if v != ["reset"]}  # the server is back
        summary = PositionsSummary()
        table = predict_positions(bundle, frame, work_dir=work, base_url=srv.url, summary=summary, **fast)
    status = np.asarray(table["status"])
    assert list(status[:4]) == ["fetch failed", "outside footprint", "ok", "invalid position"]
    assert (status[4:] == "ok").all()
    # the rerun's summary counts run 1's final rows too: by reason, adding up to the rows not predicted
    assert summary.reasons == {"HTTP 404": 1, "outside footprint": 1, "invalid position": 1}
    assert sum(summary.reasons.values()) == n - summary.statuses["ok"] == 3
    assert "failures by reason: 1 HTTP 404, 1 outside footprint, 1 invalid position" in summary.line()


def test_the_positions_command_stops_at_an_unreachable_server_in_seconds(tmp_path, capsys, caplog, bundle):
    positions, _, _ = _positions(tmp_path)
    out = tmp_path / "pred.csv"
    caplog.set_level(logging.INFO)
    t0 = time.monotonic()
    code = _predict(bundle, positions, out, "http://127.0.0.1:9", "--retries", "5", "--failure-budget", "8")
    elapsed = time.monotonic() - t0
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "8 requests in a row got no answer from the server (--failure-budget 8" in line
    assert "is http://127.0.0.1:9 down?" in line and elapsed < 10, elapsed
    retries = [r for r in caplog.records if hasattr(r, "retry_reason")]
    assert len(retries) <= 8, len(retries)  # no more retries than the budget of attempts
    argv = ["predict", str(bundle), "--positions", str(positions), "--out", str(out), "--failure-budget", "0"]
    assert main(argv) == 2
    assert "--failure-budget" in _one_error_line(capsys.readouterr().err)
