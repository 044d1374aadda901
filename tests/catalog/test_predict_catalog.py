"""galmet.predict_catalog: partitions equal the one-machine table row for row; reruns fetch nothing;
--shard slices; a dead server stops in bounded time; options refused before anything is written."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from catalog_helpers import FAST, bundle_fixture  # noqa: F401 (the bundle fixture)

from conftest import run_cli
from faulty_server import FaultyServer, key_of

pytest.importorskip("astropy")
from astropy.table import QTable  # noqa: E402

N = 25
CLI_FAST = ["--rate", "0", "--retries", "1", "--backoff-base", "0.01", "--no-tta", "--device", "cpu", "--no-progress"]


def _catalog(tmp_path, n: int = N, suffix: str = "parquet"):
    ra = 150.0 + np.arange(n) * 0.01
    dec = np.full(n, 2.0)
    dec[7] = np.nan  # an invalid position keeps its row and status
    frame = pd.DataFrame(
        {"objID": 1237648702973083820 + np.arange(n), "ra": ra, "dec": dec, "name": [f"g{i}" for i in range(n)]}
    )
    path = tmp_path / f"cat.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path, frame


def _one_machine(bundle, frame, url):
    import galmet

    return galmet.predict_positions(bundle, frame, base_url=url, **FAST).to_pandas()


def _same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got.columns.tolist() == want.columns.tolist()
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_partitions_assemble_to_the_one_machine_table_row_for_row(tmp_path, bundle, suffix):
    import galmet

    path, frame = _catalog(tmp_path, suffix=suffix)
    out = tmp_path / "pred.parquet"
    plans = {key_of(frame.ra[3], frame.dec[3]): ["404"], key_of(frame.ra[12], frame.dec[12]): ["blank"]}
    with FaultyServer(plans) as srv:
        summary = galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=10, base_url=srv.url, **FAST)
        want = _one_machine(bundle, frame, srv.url)
    assert summary.out == out and summary.partitions == 3 and summary.done == 3 and summary.ran == 3
    got = pd.read_parquet(out)
    _same_rows(got, want)
    assert got["status"].tolist()[3] == "fetch failed" and got["status"].tolist()[7] == "invalid position"
    assert got["status"].tolist()[12] == "outside footprint"
    assert summary.statuses == {"ok": N - 3, "fetch failed": 1, "invalid position": 1, "outside footprint": 1}
    assert summary.reasons["HTTP 404"] == 1  # failures by reason, from the sidecars
    table = QTable.read(out)  # units and provenance of the whole catalogue
    assert str(table["oh_p50_pred"].unit) == "dex" and table.meta["rows"] == N and table.meta["rows_ok"] == N - 3
    assert list(table["status"]) == want["status"].tolist()  # text widths of every partition kept
    sidecars = sorted((out.parent / "pred.parquet.galmet-work" / "done").glob("*.json"))
    assert [json.loads(p.read_text())["rows"] for p in sidecars] == [10, 10, 5]


def test_a_rerun_skips_done_partitions_and_makes_no_request(tmp_path, bundle):
    import galmet

    path, _ = _catalog(tmp_path)
    out = tmp_path / "pred.parquet"
    with FaultyServer() as srv:
        galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=10, base_url=srv.url, **FAST)
        first = out.read_bytes()
        before = sum(srv.counts.values())
        again = galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=10, base_url=srv.url, **FAST)
        assert sum(srv.counts.values()) == before
    assert again.ran == 0 and again.done == 3 and again.out == out
    a, b = pd.read_parquet(out), pd.read_parquet(pd.io.common.BytesIO(first))
    _same_rows(a, b)


def test_each_shard_runs_its_slice_and_the_last_one_assembles(tmp_path, bundle):
    import galmet

    path, frame = _catalog(tmp_path)
    out = tmp_path / "pred.parquet"
    done = tmp_path / "pred.parquet.galmet-work" / "done"
    with FaultyServer() as srv:
        first = galmet.predict_catalog(bundle, path, out, shard="1/2", partition_rows=6, base_url=srv.url, **FAST)
        assert first.out is None and not out.exists() and first.partitions == 5 and first.ran == 2
        assert sorted(p.stem for p in done.glob("*.json")) == ["part-000001", "part-000003"]
        second = galmet.predict_catalog(bundle, path, out, shard=(0, 2), partition_rows=6, base_url=srv.url, **FAST)
        want = _one_machine(bundle, frame, srv.url)
    assert second.ran == 3 and second.out == out and second.done == 5
    _same_rows(pd.read_parquet(out), want)


def test_a_different_job_in_the_same_work_folder_is_refused(tmp_path, bundle):
    import galmet
    from galmet.errors import ConfigError

    path, frame = _catalog(tmp_path)
    out = tmp_path / "pred.parquet"
    with FaultyServer() as srv:
        galmet.predict_catalog(bundle, path, out, shard=(1, 3), partition_rows=10, base_url=srv.url, **FAST)
        frame.loc[0, "ra"] = 10.0
        with pytest.raises(ConfigError, match="holds a catalogue job with other positions"):
            galmet.predict_catalog(bundle, frame, out, shard=(0, 3), partition_rows=10, base_url=srv.url, **FAST)
        with pytest.raises(ConfigError, match="another partition_rows"):
            galmet.predict_catalog(bundle, path, out, shard=(0, 3), partition_rows=7, base_url=srv.url, **FAST)


def test_a_dead_server_stops_the_job_with_one_line_and_exit_2(tmp_path, capsys, bundle):
    path, _ = _catalog(tmp_path, n=60)
    out = tmp_path / "pred.parquet"
    argv = ["predict", bundle, "--positions", path, "--out", out, "--partition-rows", "20", "--shard", "0/1"]
    quick = ["--timeout", "0.5", "--retries", "2", "--backoff-base", "0.1", "--max-consecutive-failures", "8"]
    with FaultyServer(default_plan=["503"]) as srv:
        t0 = time.monotonic()
        code, _, err = run_cli(capsys, *argv, "--base-url", srv.url, *CLI_FAST, *quick)
        elapsed = time.monotonic() - t0
        assert code == 2 and elapsed < 15, (code, elapsed, err)
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and "partition part-000000" in errors[0] and "stopped" in errors[0], err
        assert len(srv.counts) < 20  # the first partition stopped the job: the others were not fetched
        srv.default_plan = ["ok"]  # the server is back: the same command finishes the job
        code, stdout, err = run_cli(capsys, *argv, "--base-url", srv.url, *CLI_FAST, *quick)
    assert code == 0, err
    assert "3 of 3 partitions done" in stdout and (pd.read_parquet(out)["status"] == "ok").sum() == 59


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shard", "3/2"], "--shard must be I/N with 0 <= I < N, got 3/2"),
        (["--shard", "0/0"], "--shard must be I/N with 0 <= I < N, got 0/0"),
        (["--shard", "x"], "--shard must be I/N"),
        (["--shard", "0/2", "--scheduler", "tcp://127.0.0.1:9"], "--shard and --scheduler exclude each other"),
        (["--partition-rows", "5", "--keep-cutouts", "kc"], "--keep-cutouts does not apply"),
        (["--local-workers", "0"], "--local-workers"),
        (["--scheduler", "no-such-scheduler.json"], "no such scheduler file"),
        (["--scheduler", __file__], "not a Dask scheduler file"),
        (["--local-workers", "2", "--shard", "0/2"], "--shard and --local-workers exclude each other"),
        (["--local-workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler and --local-workers exclude"),
    ],
)
def test_cli_refuses_bad_catalogue_options_in_one_line_before_writing(tmp_path, capsys, bundle, extra, message):
    path, _ = _catalog(tmp_path)
    out = tmp_path / "pred.parquet"
    code, _, err = run_cli(capsys, "predict", bundle, "--positions", path, "--out", out, *extra, *CLI_FAST)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists() and not (tmp_path / "pred.parquet.galmet-work").exists()


def test_cli_refuses_out_equal_to_the_input_and_an_unreachable_scheduler(tmp_path, capsys, bundle, monkeypatch):
    import socket

    from galmet.catalog import execute

    path, _ = _catalog(tmp_path)
    code, _, err = run_cli(capsys, "predict", bundle, "--positions", path, "--out", path, "--shard", "0/1", *CLI_FAST)
    assert code == 2 and "the positions catalogue" in err and err.count("\n") == 1, err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(execute, "SCHEDULER_TIMEOUT", 1.0)
    out = tmp_path / "pred.parquet"
    t0 = time.monotonic()
    argv = ["predict", bundle, "--positions", path, "--out", out, "--scheduler", f"tcp://127.0.0.1:{port}"]
    code, _, err = run_cli(capsys, *argv, *CLI_FAST)
    assert code == 2 and "no Dask scheduler answered within 1 s" in err and err.count("\n") == 1, err
    assert time.monotonic() - t0 < 15 and not (tmp_path / "pred.parquet.galmet-work").exists()


def test_other_table_formats_and_an_in_memory_table(tmp_path, bundle):
    import galmet

    _, frame = _catalog(tmp_path, n=12)
    with FaultyServer() as srv:
        galmet.predict_catalog(
            bundle, frame, tmp_path / "p.ecsv", shard=(0, 1), partition_rows=5, base_url=srv.url, **FAST
        )
        want = _one_machine(bundle, frame, srv.url)
    table = QTable.read(tmp_path / "p.ecsv")
    assert str(table["ra"].unit) == "deg" and table.meta["rows"] == 12
    np.testing.assert_allclose(table["oh_p50_pred"].value, want["oh_p50_pred"].to_numpy(), rtol=1e-5, equal_nan=True)
    assert list(table["status"]) == want["status"].tolist()


def test_a_stopped_partition_resumes_its_own_unfinished_rows_only(tmp_path, bundle):
    """A partition stopped midway (here by a dead server; kill -9 resumes the same way, as
    predict_positions' own tests show) costs only its unfinished rows: the rerun fetches none of
    the finished partition's cutouts and none of the stopped partition's finished rows."""
    import galmet
    from galmet.errors import DataError

    path, frame = _catalog(tmp_path, n=60)
    out = tmp_path / "pred.parquet"
    keys = [key_of(r, d) for r, d in zip(frame.ra, frame.dec, strict=True)]
    dead = {k: ["503"] for k in keys[25:]}  # partition 1 (rows 20-39) dies after its first 5 rows
    kw = dict(shard=(0, 1), partition_rows=20, max_consecutive_failures=4, **{**FAST, "retries": 0})
    with FaultyServer(dead) as srv:
        with pytest.raises(DataError, match="partition part-000001"):
            galmet.predict_catalog(bundle, path, out, base_url=srv.url, **kw)
        before = dict(srv.counts)
        for k in keys[25:]:
            srv.plans[k] = ["ok"]
        summary = galmet.predict_catalog(bundle, path, out, base_url=srv.url, **kw)
        again = {k: srv.counts[k] - before.get(k, 0) for k in srv.counts}
    assert summary.ran == 2 and summary.done == 3 and summary.statuses["ok"] == 59
    assert all(again.get(k, 0) == 0 for k in keys[:25] if k in before)  # nothing finished is fetched again
    assert all(again.get(k, 0) == 1 for k in keys[40:])


def test_astropy_tables_skycoords_and_fits_ecsv_votable_files_are_catalogues(tmp_path, bundle, capsys):
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    import galmet

    _, frame = _catalog(tmp_path, n=9)
    frame = frame.drop(index=7).reset_index(drop=True)  # (SkyCoord cannot hold the NaN position)
    table = Table.from_pandas(frame)
    inputs = {
        "table": table,
        "qtable": QTable(table),
        "skycoord": SkyCoord(frame["ra"].to_numpy() * u.deg, frame["dec"].to_numpy() * u.deg),
    }
    for suffix, fmt in (("fits", "fits"), ("ecsv", "ascii.ecsv"), ("vot", "votable")):
        inputs[suffix] = tmp_path / f"in.{suffix}"
        table.write(inputs[suffix], format=fmt)
    with FaultyServer() as srv:
        want = _one_machine(bundle, frame, srv.url)["oh_p50_pred"].to_numpy()
        for name, catalog in inputs.items():
            out = tmp_path / f"{name}.parquet"
            galmet.predict_catalog(bundle, catalog, out, shard=(0, 1), partition_rows=4, base_url=srv.url, **FAST)
            got = pd.read_parquet(out)
            np.testing.assert_allclose(got["oh_p50_pred"], want, rtol=1e-5, err_msg=name)
            assert (got["status"] == "ok").all(), name
        out = tmp_path / "cli.parquet"
        argv = [
            "predict",
            bundle,
            "--positions",
            inputs["fits"],
            "--out",
            out,
            "--partition-rows",
            "4",
            "--shard",
            "0/1",
        ]
        code, _, err = run_cli(capsys, *argv, "--base-url", srv.url, *CLI_FAST)
    assert code == 0, err
    np.testing.assert_allclose(pd.read_parquet(out)["oh_p50_pred"], want, rtol=1e-5)
    assert QTable.read(out).meta["engine"] == "eager"  # what predicted the partitions (the suite's GALMET_ENGINE)


def test_a_rerun_fetches_again_only_the_rows_whose_fetch_failed(tmp_path, bundle):
    import galmet

    path, frame = _catalog(tmp_path, n=12)
    out = tmp_path / "pred.parquet"
    quick = {**FAST, "retries": 0}
    # every cutout: HTTP 503 at the first request, then served
    with FaultyServer(default_plan=("503", "ok")) as srv:
        first = galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=5, base_url=srv.url, **quick)
        assert first.statuses.get("fetch failed") == 11 and first.out == out  # (row 7: an invalid position)
        keys = set(srv.counts)
        second = galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=5, base_url=srv.url, **quick)
        assert set(srv.counts) == keys and all(n == 2 for n in srv.counts.values())  # each fetched once more
        third = galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=5, base_url=srv.url, **quick)
        assert all(n == 2 for n in srv.counts.values()) and third.ran == 0  # nothing left to fetch
        want = _one_machine(bundle, frame, srv.url)
    assert second.ran == 3 and second.statuses == {"ok": 11, "invalid position": 1}
    _same_rows(pd.read_parquet(out), want)
    work = tmp_path / "pred.parquet.galmet-work"
    assert not list((work / "partitions").glob("*-cutouts"))  # the kept cutouts went once every row was done
