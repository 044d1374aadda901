"""galmet download: faults, validation, atomic writes, manifest, resume, SIGKILL, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from faulty_server import FaultyServer, fault_plans, key_of, kill_resume_scenario, make_catalog
from galmet.cli.main import main
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_write_bytes
from galmet.io.images import read_image
from galmet.io.ownership import owned_by_galmet, record_temp
from galmet.sdss.download import DownloadOptions, download_cutouts


def fast_options(url: str, **kw) -> DownloadOptions:
    base = dict(
        base_url=url,
        workers=8,
        rate=0,
        retries=3,
        timeout=1.0,
        backoff_base=0.005,
        size=16,
        progress=False,
        manifest_every=0.2,
    )
    base.update(kw)
    return DownloadOptions(**base)


def cli_args(ds, url, *extra):
    return [
        "download",
        str(ds),
        "--base-url",
        url,
        "--rate",
        "0",
        "--size",
        "16",
        "--timeout",
        "1",
        "--retries",
        "3",
        "--backoff-base",
        "0.005",
        "--no-progress",
        *extra,
    ]


def test_150_cutouts_with_transient_and_permanent_faults_then_resume(tmp_path):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 150, seed=1)
    plans, transient, permanent = fault_plans(cat, 0.10, 0.02, seed=1)
    keys = {int(o): key_of(r, d) for o, r, d in zip(cat["objID"], cat["ra"], cat["dec"], strict=True)}
    with FaultyServer(plans, slow_seconds=2.0, retry_after="0.2") as srv:
        s = download_cutouts(ds, fast_options(srv.url))
        first = dict(srv.counts)
        assert (s.ok, s.failed, s.skipped, s.aborted, s.interrupted) == (147, 3, 0, False, False)
        assert s.requests == sum(first.values())
        # every image is there, valid, and byte-identical to what the server sent
        for oid, key in keys.items():
            path = ds / "images" / f"{oid}.jpg"
            if oid in permanent:
                assert not path.exists()
                continue
            assert read_image(path, 16).shape == (16, 16, 3)
            assert path.read_bytes() == srv.jpeg(key, 16, 16)
            plan = plans.get(key, ["ok"])
            assert first[key] == plan.index("ok") + 1  # no image fetched again after a good answer
        man = pd.read_parquet(ds / "manifest.parquet").set_index("objID")
        assert man.index.dtype == np.int64 and len(man) == 150
        assert set(man.index[man["status"] == "failed"]) == permanent
        assert man.loc[list(permanent), "permanent"].all()
        for oid in permanent:
            err = man.loc[oid, "last_error"]
            assert ("HTTP 404" in err or "expected 16x16" in err) and man.loc[oid, "attempts"] == 1  # not retried
        assert (man.loc[list(transient), "attempts"] >= 2).all()
        assert not list(ds.rglob("*.tmp"))

        again = download_cutouts(ds, fast_options(srv.url))
        assert (again.ok, again.failed, again.present, again.failed_before) == (0, 0, 147, 3)
        assert dict(srv.counts) == first  # the resume sent nothing at all


def test_cli_summary_resume_and_retry_failed(tmp_path, capsys):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 12)
    gone = key_of(cat["ra"].iloc[3], cat["dec"].iloc[3])
    with FaultyServer({gone: ["404"]}) as srv:
        assert main(cli_args(ds, srv.url, "--max-failures", "0.1")) == 0
        assert capsys.readouterr().out.strip().startswith("download: 11 ok, 1 failed, 0 skipped")
        assert main(cli_args(ds, srv.url)) == 0
        assert capsys.readouterr().out.startswith(
            "download: 0 ok, 0 failed, 12 skipped (11 already present, 1 failed before)"
        )
        assert srv.counts[gone] == 1
        srv.plans[gone] = ["ok"]  # the object came back
        assert main(cli_args(ds, srv.url, "--retry-failed")) == 0
        assert capsys.readouterr().out.startswith("download: 1 ok, 0 failed, 11 skipped")
    man = pd.read_parquet(ds / "manifest.parquet")
    row = man[man["objID"] == cat["objID"].iloc[3]].iloc[0]
    assert row["status"] == "ok" and row["attempts"] == 2 and row["last_error"] == ""


def test_too_many_failures_stops_early_with_exit_1(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_catalog(ds, 60)
    with FaultyServer(default_plan=["404"]) as srv:
        rc = main(cli_args(ds, srv.url, "--workers", "2", "--max-failures", "0.05"))
        sent = sum(srv.counts.values())
    out = capsys.readouterr().out
    assert rc == 1 and "stopped early: too many failures" in out
    assert sent < 20  # 4 failures (> 5% of 60) are enough to stop; a few were in flight
    man = pd.read_parquet(ds / "manifest.parquet")
    assert (man["status"] == "failed").all() and len(man) == sent


@pytest.mark.parametrize("dead", ["503", "closed port"])
def test_a_dead_server_stops_after_the_consecutive_failure_budget(tmp_path, capsys, dead):
    ds = tmp_path / "ds"
    make_catalog(ds, 60)
    with FaultyServer(default_plan=["503"]) as srv:
        url = srv.url
        if dead == "closed port":
            srv.stop()
        # --max-failures 1 and a large --failure-budget: only the consecutive budget can stop this run
        budgets = ["--max-failures", "1", "--max-consecutive-failures", "5", "--failure-budget", "1000"]
        rc = main(cli_args(ds, url, "--workers", "2", *budgets))
        tried = len(srv.counts)
    out = capsys.readouterr().out
    assert rc == 1 and "stopped early: too many failures (5 fetches in a row failed" in out
    assert "--max-consecutive-failures 5" in out  # the flag, on the command line
    man = pd.read_parquet(ds / "manifest.parquet")
    assert len(man) < 60 and not man["permanent"].any()  # transient: the rerun tries them again
    if dead == "503":
        assert tried <= 5 + 2 * 2


def test_invalid_existing_image_and_stale_temp_files_are_repaired(tmp_path):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 5)
    (ds / "images").mkdir()
    bad = ds / "images" / f"{cat['objID'].iloc[0]}.jpg"
    atomic_write_bytes(bad, b"<html>proxy error</html>")  # a bad body galmet once saved
    stale = [ds / "images" / f".{cat['objID'].iloc[1]}.jpg.x1y2.galmet.tmp", ds / ".manifest.parquet.abc.galmet.tmp"]
    for path, body in zip(stale, [b"\xff\xd8half", b"PAR1"], strict=True):
        path.write_bytes(body)
        record_temp(path)  # (as an interrupted atomic write leaves it)
    users = ds / "images" / f".{cat['objID'].iloc[2]}.jpg.bak1.galmet.tmp"
    users.write_bytes(b"the user's file with a temp file's name")
    with FaultyServer() as srv:
        s = download_cutouts(ds, fast_options(srv.url))
    assert s.ok == 5 and read_image(bad, 16).shape == (16, 16, 3)
    assert list(ds.rglob("*.tmp")) == [users]


def test_images_already_on_disk_are_checked_not_fetched(tmp_path):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 4)
    with FaultyServer() as srv:
        download_cutouts(ds, fast_options(srv.url))
        (ds / "manifest.parquet").unlink()  # lost bookkeeping: the images on disk are the truth
        s = download_cutouts(ds, fast_options(srv.url, size=16))
        assert s.present == 4 and sum(srv.counts.values()) == 4
        s = download_cutouts(ds, fast_options(srv.url, size=24))  # another size: all fetched again
        assert s.ok == 4 and read_image(ds / "images" / f"{cat['objID'].iloc[0]}.jpg", 24).shape == (24, 24, 3)
        s = download_cutouts(ds, fast_options(srv.url, size=24, scale=0.5))  # another scale: the same
        assert s.ok == 4 and sum(srv.counts.values()) == 12
        assert (pd.read_parquet(ds / "manifest.parquet")["scale"] == 0.5).all()


def test_a_corrupt_manifest_is_rebuilt_from_the_images_on_disk(tmp_path, caplog):
    ds = tmp_path / "ds"
    make_catalog(ds, 4)
    with FaultyServer() as srv:
        download_cutouts(ds, fast_options(srv.url))
        (ds / "manifest.parquet").write_bytes(b"not parquet")
        with pytest.raises(ConfigError, match="was not written by galmet"):  # damaged: no longer galmet's
            download_cutouts(ds, fast_options(srv.url))
        s = download_cutouts(ds, fast_options(srv.url), overwrite=True)
        assert s.present == 4 and sum(srv.counts.values()) == 4
    assert "starting a new manifest" in caplog.text
    assert len(pd.read_parquet(ds / "manifest.parquet")) == 4


def test_scale_by_size_uses_the_authors_formula(tmp_path):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 3)
    with FaultyServer() as srv:
        download_cutouts(ds, fast_options(srv.url, scale_by_size=True))
        got = {key: float(q["scale"]) for key, _, _, q in srv.log}
    for r, d, r90 in zip(cat["ra"], cat["dec"], cat["petroR90_r"], strict=True):
        assert got[key_of(r, d)] == pytest.approx(2 * r90 / 0.396 / 16, rel=1e-5)


def test_rate_limit_is_global(tmp_path):
    ds = tmp_path / "ds"
    make_catalog(ds, 12)
    with FaultyServer() as srv:
        t0 = time.monotonic()
        download_cutouts(ds, fast_options(srv.url, rate=40.0, workers=8))
        assert time.monotonic() - t0 >= 11 / 40 - 0.01
        times = sorted(t for _, _, t, _ in srv.log)
    assert np.median(np.diff(times)) >= 0.015


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (lambda ds: None, [], "no catalog.parquet"),
        (
            lambda ds: pd.DataFrame({"objID": [1], "dec": [0.0]}).to_parquet(ds / "catalog.parquet"),
            [],
            "column 'ra' is missing",
        ),
        (
            lambda ds: pd.DataFrame({"objID": [1], "ra": [1.0], "dec": [0.0]}).to_parquet(ds / "catalog.parquet"),
            ["--scale-by-size"],
            "column 'petroR90_r' is missing (needed by --scale-by-size)",
        ),
        (
            lambda ds: pd.DataFrame({"objID": ["x"], "ra": [1.0], "dec": [0.0]}).to_parquet(ds / "catalog.parquet"),
            [],
            "row 0: objID 'x' is not an integer",
        ),
        (lambda ds: make_catalog(ds, 2), ["--workers", "0"], "--workers: must be an integer from 1 to 64"),
        (lambda ds: make_catalog(ds, 2), ["--max-failures", "2"], "--max-failures: must be in [0, 1]"),
        (lambda ds: make_catalog(ds, 2), ["--base-url", "ftp://x"], "must start with http:// or https://"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, setup, args, message):
    ds = tmp_path / "ds"
    ds.mkdir()
    setup(ds)
    assert main(cli_args(ds, "http://127.0.0.1:9", *args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("galmet download: error: ") and message in err[0]


def test_a_second_download_on_the_same_dataset_is_refused(tmp_path, capsys):
    import fcntl

    ds = tmp_path / "ds"
    make_catalog(ds, 2)
    with open(ds / ".galmet.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(cli_args(ds, "http://127.0.0.1:9")) == 2
    assert "is in use by another galmet run" in capsys.readouterr().err


def test_sigkill_mid_run_then_resume(tmp_path):
    f = kill_resume_scenario(
        tmp_path, 120, transient=0.1, permanent=0.02, workers=4, size=16, kill_after=30, latency=0.03, timeout=1.0
    )
    assert f["killed_rc"] == -signal.SIGKILL and 30 <= f["present_at_kill"] < 120 - 2
    assert f["rc"] == 0, f["summary"]
    assert f["summary"].startswith(
        f"download: {120 - 2 - f['present_at_kill']} ok, 2 failed, {f['present_at_kill']} skipped"
    )
    for problem in (
        "missing",
        "extra_files",
        "invalid",
        "temp_files",
        "refetched",
        "transient_not_ok",
        "permanent_not_in_manifest",
    ):
        assert f[problem] == [], (problem, f[problem])
    assert len(f["ok_fetched_twice"]) <= 4  # at most the requests in flight at the kill
    assert f["manifest_rows"] == 120 and f["manifest_ok"] == 118


def _default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default action.

    A process inherits an *ignored* SIGINT from its parent (a non-interactive shell ignores it in
    background jobs, ``cmd &``, and so does everything it starts), and Python only turns SIGINT
    into KeyboardInterrupt when the disposition it inherits is the default one. A test suite run
    in the background would thus start a download that cannot be interrupted at all: it finishes
    and exits 0 instead of 130. That, not a swallowed KeyboardInterrupt, made this test fail
    under load (reproduced with ``bash -c 'python -m pytest ... & wait'``).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_cleanly_with_a_summary(tmp_path):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 200)
    # The first 12 cutouts come at once; every other request is held until the test releases it,
    # so the run can never finish before the interrupt arrives, however loaded the machine is.
    plans = {key_of(r, d): ["ok"] for r, d in zip(cat["ra"][:12], cat["dec"][:12], strict=True)}
    with FaultyServer(plans, default_plan=("hold",), hold_seconds=60) as srv:
        cmd = [sys.executable, "-m", "galmet", *cli_args(ds, srv.url, "--workers", "2", "--timeout", "30")]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            preexec_fn=_default_sigint,
        )
        try:
            while proc.poll() is None and len(list(ds.glob("images/*.jpg"))) < 10:
                time.sleep(0.02)
            assert proc.poll() is None, "the download ended before it could be interrupted"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert "interrupted, rerun to resume" in out and "not fetched yet" in out
        man = pd.read_parquet(ds / "manifest.parquet")
        on_disk = {int(p.stem) for p in (ds / "images").glob("*.jpg")}
        assert set(man.loc[man["status"] == "ok", "objID"]) <= on_disk and len(man) >= 10
        assert not list(ds.rglob("*.tmp"))
        srv.release.set()  # the server answers again: the rerun fetches the rest
        s = download_cutouts(ds, fast_options(srv.url))
        assert s.ok + s.present == 200 and s.present >= 10


@pytest.mark.slow
def test_acceptance_2000_cutouts_10pct_transient_2pct_permanent_kill_and_resume(tmp_path):
    f = kill_resume_scenario(
        tmp_path, 2000, transient=0.10, permanent=0.02, workers=8, size=32, kill_after=600, latency=0.005, timeout=0.5
    )
    print(f)
    assert f["killed_rc"] == -signal.SIGKILL and f["rc"] == 0
    for problem in (
        "missing",
        "extra_files",
        "invalid",
        "temp_files",
        "refetched",
        "transient_not_ok",
        "permanent_not_in_manifest",
    ):
        assert f[problem] == [], (problem, f[problem][:5])
    assert f["manifest_failed"] == 40 and f["manifest_ok"] == 1960
    assert len(f["ok_fetched_twice"]) <= 8


def test_summary_tallies_failures_by_reason_and_on_result_reports_every_objid(tmp_path):
    from galmet.sdss.download import failure_reason

    ds = tmp_path / "ds"
    cat = make_catalog(ds, 12)
    keys = [key_of(r, d) for r, d in zip(cat["ra"], cat["dec"], strict=True)]
    plans = {keys[0]: ["404"], keys[1]: ["404"], keys[2]: ["html"], keys[3]: ["slow"]}
    seen = []
    with FaultyServer(plans, slow_seconds=2.0) as srv:
        s = download_cutouts(ds, fast_options(srv.url, retries=0, max_failures=1.0), on_result=seen.append)
        assert s.failed == 4 and dict(s.reasons) == {"HTTP 404": 2, "not a JPEG": 1, "timed out": 1}
        assert "failed: 2 HTTP 404, 1 " in s.line()
        assert sorted(o.objID for o in seen) == sorted(cat["objID"].tolist())
        assert all(o.fetched and o.path.name == f"{o.objID}.jpg" for o in seen)
        # a rerun reports the images on disk and the permanent failures (the 404s) without fetching them
        seen.clear()
        s = download_cutouts(ds, fast_options(srv.url, retries=0, max_failures=1.0), on_result=seen.append)
    assert s.present == 8 and s.failed_before == 2 and len(seen) == 12
    assert sum(not o.fetched for o in seen) == 10  # the timed-out one and the error page were transient: fetched again
    assert failure_reason("objID 1: connection failed (reset)") == "connection failed"
    assert failure_reason("cannot decode image (truncated JPEG)") == "bad image"


def _users_file(path, kind: str, tmp_path) -> None:
    """A file the user put at a cutout's name: text, a valid JPEG, a symlink to their file, a FIFO."""
    if kind == "text":
        path.write_text("my notes")
    elif kind == "jpeg":
        from PIL import Image

        Image.new("RGB", (16, 16), (200, 10, 10)).save(path)
    elif kind == "symlink":
        (tmp_path / "notes.txt").write_text("my notes")
        path.symlink_to(tmp_path / "notes.txt")
    else:
        os.mkfifo(path)


@pytest.mark.parametrize("kind", ["text", "jpeg", "symlink", "fifo"])
def test_a_file_galmet_did_not_write_at_a_cutouts_name_is_refused_unless_overwrite(tmp_path, kind):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 3)
    (ds / "images").mkdir()
    mine = ds / "images" / f"{cat['objID'].iloc[1]}.jpg"
    _users_file(mine, kind, tmp_path)
    before = sorted(p.name for p in ds.rglob("*"))
    with FaultyServer() as srv:
        with pytest.raises(ConfigError, match=rf"{mine.name}: exists and was not written by galmet") as err:
            download_cutouts(ds, fast_options(srv.url))
        assert err.value.param == ("dataset", "overwrite") and sum(srv.counts.values()) == 0
        assert sorted(p.name for p in ds.rglob("*")) == before and os.path.lexists(mine)
        if kind == "fifo":
            return
        s = download_cutouts(ds, fast_options(srv.url), overwrite=True)  # fetched over it, never adopted
        assert s.ok == 3 and s.present == 0 and owned_by_galmet(mine) and not mine.is_symlink()
    if kind == "symlink":
        assert (tmp_path / "notes.txt").read_text() == "my notes"


def test_cli_download_refuses_a_users_file_at_a_cutouts_name_in_one_line(tmp_path, capsys):
    ds = tmp_path / "ds"
    cat = make_catalog(ds, 2)
    (ds / "images").mkdir()
    (ds / "images" / f"{cat['objID'].iloc[0]}.jpg").write_text("my notes")
    with FaultyServer() as srv:
        assert main(["download", str(ds), "--base-url", srv.url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not written by galmet" in err and "--overwrite" in err


def test_a_download_from_before_ledgers_resumes_without_overwrite(tmp_path, caplog):
    """A dataset downloaded before galmet kept ledgers: its manifest (a parquet of exactly the
    manifest's columns) and the cutouts it records (same size) are galmet's; nothing is fetched
    again. A cutout the manifest does not record, or of another size, is still refused."""
    from galmet.io.ownership import LEDGER

    ds = tmp_path / "ds"
    cat = make_catalog(ds, 3)
    with FaultyServer() as srv:
        assert download_cutouts(ds, fast_options(srv.url)).ok == 3
        for ledger in ds.rglob(LEDGER):
            ledger.unlink()  # as an older galmet left it
        with caplog.at_level("WARNING"):
            s = download_cutouts(ds, fast_options(srv.url))
        assert s.present == 3 and s.ok == 0 and sum(srv.counts.values()) == 3  # only the first run's requests
        assert "starting a new manifest" not in caplog.text  # its records are read, not dropped
        grown = ds / "images" / f"{cat['objID'].iloc[2]}.jpg"
        for ledger in ds.rglob(LEDGER):
            ledger.unlink()
        grown.write_bytes(grown.read_bytes() + b"user's bytes")
        with pytest.raises(ConfigError, match="exists and was not written by galmet"):
            download_cutouts(ds, fast_options(srv.url))
