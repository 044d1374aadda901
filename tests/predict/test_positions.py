"""Prediction at sky positions: astropy inputs and outputs, per-row status, shards, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from faulty_server import FaultyServer, key_of
from galmet.cli.main import main
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.net import build_model

u = pytest.importorskip("astropy.units")
coordinates = pytest.importorskip("astropy.coordinates")
from astropy.table import QTable, Table  # noqa: E402

SkyCoord = coordinates.SkyCoord

#: Positions whose sexagesimal text and degrees are the same numbers (the server's image depends on them).
RA_TEXT = ["12h30m49.4s", "0h42m44.3s", "10h05m13.9s", "23h59m59.0s", "3:19:48.2", "14 03 12.6"]
DEC_TEXT = ["+12d23m28s", "+41d16m09s", "-07d03m10s", "-00d30m00s", "+41:30:42", "54 20 57"]


@pytest.fixture
def bundle(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    return save_bundle(tmp_path / "run" / "model.pt", net, {"targets": ["oh_p50"], "image_size": 16})


def _degrees():
    from galmet.sdss.coords import parse_angle

    return (np.array([parse_angle(t, "ra") for t in RA_TEXT]), np.array([parse_angle(t, "dec") for t in DEC_TEXT]))


FAST = dict(device="cpu", rate=0, retries=1, backoff_base=0.01, timeout=5.0, tta=False)


def test_skycoord_table_dataframe_and_sexagesimal_give_the_same_predictions(bundle):
    import galmet

    model = load_model(bundle)
    ra, dec = _degrees()
    objid = 1237648702973083820 + np.arange(len(ra), dtype=np.int64)
    inputs = {
        "skycoord": SkyCoord(ra * u.deg, dec * u.deg),
        "galactic skycoord": SkyCoord(ra * u.deg, dec * u.deg).galactic,
        "table RAJ2000": Table({"objID": objid, "RAJ2000": ra, "DEJ2000": dec}),
        "qtable hourangle": QTable({"RA": (ra / 15) * u.hourangle, "Dec": np.deg2rad(dec) * u.rad}),
        "dataframe": pd.DataFrame({"ra": ra, "dec": dec, "name": list("abcdef")}),
        "sexagesimal dataframe": pd.DataFrame({"ra": RA_TEXT, "dec": DEC_TEXT}),
        "table with a SkyCoord column": Table({"coord": SkyCoord(ra * u.deg, dec * u.deg)}),
    }
    results = {}
    with FaultyServer() as srv:
        for name, coords in inputs.items():
            results[name] = galmet.predict_positions(model, coords, base_url=srv.url, **FAST)
    reference = results["skycoord"]
    assert reference["oh_p50_pred"].unit == u.dex and reference["ra"].unit == u.deg
    assert (np.asarray(reference["status"]) == "ok").all()
    want = reference["oh_p50_pred"].value
    assert np.isfinite(want).all() and np.ptp(want) > 0
    for name, table in results.items():
        np.testing.assert_allclose(table["ra"].to_value(u.deg), ra, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(table["oh_p50_pred"].value, want, rtol=1e-6, err_msg=name)
    # the input's columns are kept
    assert results["table RAJ2000"]["objID"].tolist() == objid.tolist()
    assert list(results["table RAJ2000"].colnames[:3]) == ["objID", "RAJ2000", "DEJ2000"]
    assert results["dataframe"]["name"].tolist() == list("abcdef")
    meta = reference.meta
    assert len(meta["model_sha256"]) == 64 and meta["pixel_scale"] == 0.296 and meta["image_size"] == 16
    assert meta["data_release"] == "DR14" and meta["galmet_version"] and meta["date"].endswith("Z")
    assert meta["engine"] == "eager"  # what ran (the suite's GALMET_ENGINE makes auto eager)


def test_a_tenth_of_bad_rows_finish_with_their_status(bundle, tmp_path):
    import galmet

    n = 40
    ra = 150.0 + np.arange(n) * 0.01
    dec = np.full(n, 2.0)
    dec[7] = np.nan  # invalid position
    plans = {
        key_of(ra[3], dec[3]): ["404"],
        key_of(ra[11], dec[11]): ["html"],  # an error page to the last try
        key_of(ra[19], dec[19]): ["wrongsize"],
        key_of(ra[23], dec[23]): ["blank"],
        key_of(ra[31], dec[31]): ["503", "ok"],  # transient: fine after a retry
    }
    with FaultyServer(plans) as srv:
        table = galmet.predict_positions(
            bundle, pd.DataFrame({"ra": ra, "dec": dec}), base_url=srv.url, shard_size=7, **FAST
        )
    status = np.asarray(table["status"]).tolist()
    assert len(table) == n
    assert status[3] == "fetch failed" and "HTTP 404" in table["error"][3]
    assert status[11] == "bad image" and "HTML" in table["error"][11]
    assert status[19] == "bad image" and "16x16" in table["error"][19]
    assert status[23] == "outside footprint"
    assert status[7] == "invalid position"
    bad = {3, 7, 11, 19, 23}
    assert [i for i, s in enumerate(status) if s != "ok"] == sorted(bad)
    pred = table["oh_p50_pred"].value
    assert np.isfinite(np.delete(pred, sorted(bad))).all() and np.isnan(pred[sorted(bad)]).all()
    assert all(table["error"][i] == "" for i in range(n) if i not in bad)
    assert table.meta["rows_ok"] == n - len(bad)


def _write_positions(path, table: Table) -> None:
    suffix = path.name.split(".", 1)[1]
    fmt = {"csv": "ascii.csv", "ecsv": "ascii.ecsv", "fits": "fits", "parquet": "parquet", "vot": "votable"}[suffix]
    table.write(path, format=fmt, overwrite=True)


@pytest.mark.parametrize("suffix", ["fits", "ecsv", "csv", "parquet", "vot"])
def test_cli_positions_file_in_any_astropy_format(tmp_path, capsys, bundle, suffix):
    ra, dec = _degrees()
    objid = 1237648702973083820 + np.arange(len(ra), dtype=np.int64) * 3
    source = Table({"objID": objid, "RAJ2000": ra * u.deg, "DEJ2000": dec * u.deg, "oh_p50": np.full(len(ra), 8.9)})
    path = tmp_path / f"targets.{suffix}"
    _write_positions(path, source)
    out = tmp_path / "pred.parquet"
    with FaultyServer() as srv:
        code = main(
            ["predict", str(bundle), "--positions", str(path), "--out", str(out), "--base-url", srv.url]
            + ["--rate", "0", "--device", "cpu", "--no-tta", "--no-progress"]
        )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    df = pd.read_parquet(out)
    assert df["objID"].tolist() == objid.tolist()
    assert (df["status"] == "ok").all() and np.isfinite(df["oh_p50_pred"]).all()
    assert "positions: 6 of 6 rows predicted" in captured.out and "RMSE of oh_p50: all" in captured.out
    back = QTable.read(out)
    assert back["oh_p50_pred"].unit == u.dex and back["ra"].unit == u.deg and back.meta["image_size"] == 16
    assert not (tmp_path / "pred.parquet.galmet-work").exists()  # the work folder is cleaned up


def test_cli_ra_dec_sexagesimal_and_decimal(tmp_path, capsys, bundle):
    ra, dec = _degrees()
    out = tmp_path / "two.ecsv"
    with FaultyServer() as srv:
        argv = ["predict", str(bundle), "--ra", RA_TEXT[0], "--dec", DEC_TEXT[0], "--ra", repr(float(ra[2]))]
        argv += [f"--dec={DEC_TEXT[2]}", "--out", str(out), "--base-url", srv.url, "--rate", "0", "--device", "cpu"]
        code = main(argv)
        assert code == 0, capsys.readouterr().err
        assert sorted(srv.counts) == sorted([key_of(ra[0], dec[0]), key_of(ra[2], dec[2])])
    table = QTable.read(out)
    np.testing.assert_allclose(table["ra"].to_value(u.deg), [ra[0], ra[2]])
    np.testing.assert_allclose(table["dec"].to_value(u.deg), [dec[0], dec[2]])
    assert table["oh_p50_pred"].unit == u.dex and list(table["status"]) == ["ok", "ok"]
    assert len(table.meta["model_sha256"]) == 64
    for argv, message in (
        (["--ra", "12h30m", "--dec", "1", "--dec", "2"], "--ra and --dec go together"),
        (["--ra", "25h", "--dec", "1"], "outside 0 to 360"),
        (["--ra", "abc", "--dec", "1"], "is not a right ascension"),
        (["--ra", "1", "--dec", "1", "--positions", str(out)], "give one of"),
        (["--ra", "1", "--dec", "1", "--split", "test"], "--split applies to dataset directories only"),
    ):
        code = main(["predict", str(bundle), *argv, "--out", str(tmp_path / "x.csv")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "dec, degrees",
    [("-34:19:43", -(34 + 19 / 60 + 43 / 3600)), ("-05d12m30s", -(5 + 12.5 / 60)), ("-7.25", -7.25), ("+2:30:00", 2.5)],
)
def test_a_negative_sexagesimal_dec_needs_no_equals_sign(dec, degrees):
    from galmet.cli.main import build_parser
    from galmet.cli.options import attach_signed_values

    argv = ["predict", "m.pt", "--ra", "1", "--dec", dec, "--out", "p.csv"]
    args = build_parser().parse_args(attach_signed_values(argv))
    assert args.dec == [pytest.approx(degrees)]
    joined = attach_signed_values(["--ra", "-0:00:01", "--dec", dec, "--out", "-1.csv", "--", "--dec", "-1:2:3"])
    assert joined[:2] == ["--ra=-0:00:01", f"--dec={dec}" if dec[0] == "-" else "--dec"]
    assert joined[-4:] == ["-1.csv", "--", "--dec", "-1:2:3"]  # other options, and anything after --, as given
    with pytest.raises(SystemExit):  # the argument parser alone (what the rewrite fixes)
        build_parser().parse_args(["predict", "m.pt", "--ra", "1", "--dec", "-34:19:43", "--out", "p.csv"])


def test_cli_negative_dec_and_ra_text_just_work(tmp_path, capsys, bundle):
    out = tmp_path / "south.csv"
    with FaultyServer() as srv:
        argv = ["predict", str(bundle), "--ra", "13:25:27.6", "--dec", "-43:01:09", "--out", str(out)]
        code = main(argv + ["--base-url", srv.url, "--rate", "0", "--device", "cpu", "--no-tta", "--no-progress"])
        assert code == 0, capsys.readouterr().err
    df = pd.read_csv(out)
    assert df["dec"].tolist() == [pytest.approx(-(43 + 1 / 60 + 9 / 3600))] and df["status"].tolist() == ["ok"]


def test_cli_single_position_that_fails_keeps_its_row_and_exits_1(tmp_path, capsys, bundle):
    out = tmp_path / "one.csv"
    with FaultyServer(default_plan=("404",)) as srv:
        code = main(["predict", str(bundle), "--ra", "1", "--dec", "2", "--base-url", srv.url, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    df = pd.read_csv(out)
    assert df["status"].tolist() == ["fetch failed"] and "HTTP 404" in df["error"][0]
    assert "not predicted: 1 fetch failed" in captured.out and "failures by reason: 1 HTTP 404" in captured.out


def test_keep_cutouts_is_a_dataset_and_a_foreign_folder_is_refused(tmp_path, capsys, bundle):
    from galmet.data.dataset import load_dataset

    ra, dec = _degrees()
    kept = tmp_path / "cutouts"
    out = tmp_path / "p.fits"
    common = ["--base-url", "", "--rate", "0", "--device", "cpu", "--no-tta", "--out", str(out)]
    positions = tmp_path / "pos.csv"
    pd.DataFrame({"ra": ra, "dec": dec}).to_csv(positions, index=False)
    with FaultyServer() as srv:
        common[1] = srv.url
        code = main(["predict", str(bundle), "--positions", str(positions), "--keep-cutouts", str(kept), *common])
        assert code == 0, capsys.readouterr().err
        ds = load_dataset(kept, targets=[])
        assert len(ds) == len(ra) and ds.image_size == 16
        # the same command again: every cutout is on disk, none is fetched
        before = sum(srv.counts.values())
        code = main(["predict", str(bundle), "--positions", str(positions), "--keep-cutouts", str(kept), *common])
        assert code == 0 and sum(srv.counts.values()) == before
    table = QTable.read(out)
    assert str(table["oh_p50_pred"].unit) == "dex" and table.meta["PIXSCALE"] == 0.296
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    capsys.readouterr()
    code = main(["predict", str(bundle), "--positions", str(positions), "--keep-cutouts", str(foreign), *common])
    err = capsys.readouterr().err
    assert code == 2 and "is not empty" in err and err.count("\n") == 1
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def _shard_rows(work) -> set[int]:
    rows: set[int] = set()
    for p in sorted((work / "shards").glob("shard-*.parquet")):
        df = pd.read_parquet(p)
        rows |= set(df.loc[df["status"] == "ok", "row"].astype(int).tolist())
    return rows


@pytest.mark.slow  # 29 s: a subprocess killed and resumed (the Ctrl-C test below stays in the default suite)
def test_kill_9_during_a_positions_run_then_resume(tmp_path, bundle):
    """SIGKILL after a few shards; the rerun fetches no cutout that was on disk, predicts no row of a
    finished shard again, and its output equals an uninterrupted run's."""
    n, workers = 120, 2
    ra = 200.0 + np.arange(n) * 0.003
    dec = 10.0 + (np.arange(n) % 17) * 0.01
    objid = 1237600000000000000 + np.arange(n, dtype=np.int64) * 13
    positions = tmp_path / "targets.parquet"
    pd.DataFrame({"objID": objid, "ra": ra, "dec": dec}).to_parquet(positions)
    keys = {i: key_of(ra[i], dec[i]) for i in range(n)}
    bad = {5: ["404"], 50: ["html"]}
    plans = {keys[i]: p for i, p in bad.items()}
    out = tmp_path / "pred.parquet"
    work = tmp_path / "pred.parquet.galmet-work"

    def command(url, target):
        return (
            [sys.executable, "-m", "galmet", "predict", str(bundle), "--positions", str(positions)]
            + ["--out", str(target), "--base-url", url, "--workers", str(workers), "--rate", "0", "--retries", "1"]
            + ["--backoff-base", "0.01", "--timeout", "10", "--shard-size", "10", "--device", "cpu", "--no-tta"]
            + ["--no-progress"]
        )

    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    with FaultyServer(plans, latency=0.08) as srv:
        proc = subprocess.Popen(command(srv.url, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < deadline:
                if (work / "shards").is_dir() and len(list((work / "shards").glob("shard-*.parquet"))) >= 3:
                    break
                time.sleep(0.01)
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        with srv.lock:
            at_kill = dict(srv.counts)
        on_disk = {int(p.stem) for p in (work / "cutouts" / "images").glob("*.jpg")}
        predicted_before = _shard_rows(work)
        assert 25 <= len(predicted_before) < n - 10, len(predicted_before)
        done = subprocess.run(command(srv.url, out), capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        with srv.lock:
            after = dict(srv.counts)
            log = list(srv.log)
        # an uninterrupted run of the same positions, for comparison
        fresh = subprocess.run(
            command(srv.url, tmp_path / "fresh.parquet"), capture_output=True, text=True, env=env, timeout=600
        )
        assert fresh.returncode == 0, fresh.stderr[-3000:]
    index = {oid: i for i, oid in enumerate(objid.tolist())}
    # no cutout on disk at the kill was fetched again
    refetched = [o for o in on_disk if after[keys[index[o]]] != at_kill[keys[index[o]]]]
    assert refetched == []
    # a good cutout is fetched twice only when it was in flight at the kill
    ok_seen: set[str] = set()
    twice = set()
    for key, action, _, _ in log:
        if key in ok_seen:
            twice.add(key)
        elif action == "ok":
            ok_seen.add(key)
    assert len(twice) <= workers, twice
    # no row of a finished shard was predicted again: this run predicted exactly the rest
    summary = [s for s in done.stdout.splitlines() if s.startswith("positions:")][0]
    expect = n - len(bad) - len(predicted_before)
    assert f"{expect} images predicted in this run" in summary, summary
    assert "rows resumed from an earlier run" in summary
    table = pd.read_parquet(out)
    reference = pd.read_parquet(tmp_path / "fresh.parquet")
    assert table["objID"].tolist() == objid.tolist() and len(table) == n
    assert table["status"].tolist() == reference["status"].tolist()
    assert table.loc[5, "status"] == "fetch failed" and table.loc[50, "status"] == "bad image"
    np.testing.assert_allclose(table["oh_p50_pred"], reference["oh_p50_pred"], rtol=1e-5)
    assert not work.exists()


def test_fetch_cutout_takes_skycoord_and_quantities():
    import galmet

    ra, dec = _degrees()
    with FaultyServer() as srv:
        a = galmet.fetch_cutout(SkyCoord(ra[0] * u.deg, dec[0] * u.deg), size=16, base_url=srv.url)
        b = galmet.fetch_cutout(ra=(ra[0] / 15) * u.hourangle, dec=dec[0] * u.deg, size=16, base_url=srv.url)
        c = galmet.fetch_cutout(RA_TEXT[0], DEC_TEXT[0], scale=0.296 * u.arcsec, size=16, base_url=srv.url)
        d = galmet.fetch_cutout(float(ra[0]), float(dec[0]), size=16, base_url=srv.url)
        assert set(srv.counts) == {key_of(ra[0], dec[0])}
    for img in (a, b, c):
        np.testing.assert_array_equal(img, d)
    with pytest.raises(galmet.DataError, match="not an angle"):
        galmet.fetch_cutout(1 * u.m, 2 * u.deg)


def _default_sigint() -> None:
    """SIGINT back to its default in the child (a background shell ignores it: see test_download)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_positions_run_exits_130_and_the_rerun_finishes(tmp_path, bundle):
    n = 60
    ra = 120.0 + np.arange(n) * 0.002
    dec = np.full(n, 5.0)
    positions = tmp_path / "targets.csv"
    pd.DataFrame({"ra": ra, "dec": dec}).to_csv(positions, index=False)
    out = tmp_path / "pred.csv"
    # the first 20 cutouts come at once, the rest are held until the test releases them
    plans = {key_of(ra[i], dec[i]): ["ok"] for i in range(20)}
    cmd = [sys.executable, "-m", "galmet", "predict", str(bundle), "--positions", str(positions), "--out", str(out)]
    cmd += ["--rate", "0", "--workers", "2", "--shard-size", "5", "--device", "cpu", "--no-tta", "--no-progress"]
    with FaultyServer(plans, default_plan=("hold",), hold_seconds=60) as srv:
        cmd += ["--base-url", srv.url]
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint
        )
        shards = tmp_path / "pred.csv.galmet-work" / "shards"
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline and len(list(shards.glob("shard-*"))) < 2:
                time.sleep(0.02)
            assert proc.poll() is None, "the run ended before it could be interrupted"
            proc.send_signal(signal.SIGINT)
            stdout, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert "rerun the same command to resume" in stdout and not out.exists()
        srv.release.set()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out)
    assert len(table) == n and (table["status"] == "ok").all()
    assert "rows resumed from an earlier run" in done.stdout


def test_positions_files_keep_19_digit_objids_exact_or_say_which_row_lost_them(tmp_path, capsys, bundle):
    ids = [1237663716556341422, 1237663716556341423]
    csv = tmp_path / "p.csv"
    csv.write_text(f"objID,ra,dec\n{ids[0]}.0,1,0\n{ids[1]},2,1\n")  # one ID written as a float
    out = tmp_path / "o.parquet"
    with FaultyServer() as srv:
        common = ["--out", str(out), "--base-url", srv.url, "--rate", "0", "--device", "cpu", "--no-tta"]
        assert main(["predict", str(bundle), "--positions", str(csv), *common]) == 0, capsys.readouterr().err
        assert pd.read_parquet(out)["objID"].tolist() == ids
        lossy = tmp_path / "p.fits"
        Table({"objID": np.array(ids, dtype=np.float64), "ra": [1.0, 2.0], "dec": [0.0, 1.0]}).write(lossy)
        capsys.readouterr()
        assert main(["predict", str(bundle), "--positions", str(lossy), *common]) == 2
    err = capsys.readouterr().err
    assert "row 0: objID" in err and "lost" in err and err.count("\n") == 1


def test_load_dataset_at_positions_fetches_once_and_keeps_the_labels(tmp_path):
    import galmet

    ra, dec = _degrees()
    table = Table({"RAJ2000": ra * u.deg, "DEJ2000": dec * u.deg, "oh_p50": np.linspace(8.5, 9.0, len(ra))})
    folder = tmp_path / "ds"
    with FaultyServer(plans={key_of(ra[4], dec[4]): ["404"]}) as srv:
        ds = galmet.load_dataset(table, cutouts=folder, size=16, base_url=srv.url, rate=0, retries=0)
        assert len(ds) == len(ra) - 1 and ds.image_size == 16 and len(ds.skipped) == 1
        np.testing.assert_allclose(ds.catalog["oh_p50"], np.delete(table["oh_p50"], 4))
        np.testing.assert_allclose(ds.catalog["ra"], np.delete(ra, 4))
        before = sum(srv.counts.values())
        again = galmet.load_dataset(
            SkyCoord(ra * u.deg, dec * u.deg), cutouts=tmp_path / "ds2", size=16, base_url=srv.url, rate=0
        )
        same = galmet.load_dataset(table, cutouts=folder, size=16, base_url=srv.url, rate=0, retries=0)
        assert sum(srv.counts.values()) == before + len(ra)  # the second folder only; the first is complete
    assert len(again) == len(ra) - 1 and len(same) == len(ds)  # the 404 stays a 404
    assert galmet.load_dataset(folder, targets=[]).image_size == 16  # a path: the plain loader
    with pytest.raises(galmet.ConfigError, match="cutouts=DIR"):
        galmet.load_dataset(table)


def test_an_interrupted_work_dir_resumes_only_the_same_run(tmp_path, bundle, monkeypatch):
    import galmet
    import galmet.predict.positions as positions_module

    real = positions_module.download_cutouts

    def interrupted_after_three(folder, opts, client=None, on_result=None):
        seen = []

        def callback(outcome):
            on_result(outcome)
            seen.append(outcome)
            if len(seen) == 3:
                raise KeyboardInterrupt  # as Ctrl-C would, inside the downloader's loop

        return real(folder, opts, client, on_result=callback)

    ra, dec = _degrees()
    frame = pd.DataFrame({"ra": ra, "dec": dec})
    work = tmp_path / "work"
    with FaultyServer() as srv:
        kw = dict(base_url=srv.url, work_dir=work, shard_size=1, **FAST)
        monkeypatch.setattr(positions_module, "download_cutouts", interrupted_after_three)
        with pytest.raises(KeyboardInterrupt):
            galmet.predict_positions(bundle, frame, **kw)
        monkeypatch.setattr(positions_module, "download_cutouts", real)
        assert (work / "positions-run.json").is_file() and list((work / "shards").glob("shard-*.parquet"))
        with pytest.raises(galmet.ConfigError, match="unfinished run with other positions"):
            galmet.predict_positions(bundle, frame.iloc[:4], **kw)
        other = save_bundle(tmp_path / "other.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
        with pytest.raises(galmet.ConfigError, match="unfinished run with another model"):
            galmet.predict_positions(other, frame, **kw)
        before = dict(srv.counts)
        table = galmet.predict_positions(bundle, frame, **kw)
        fetched_again = [k for k, n in srv.counts.items() if before.get(k, 0) and n != before[k]]
    assert fetched_again == [] and len(table) == len(ra) and (np.asarray(table["status"]) == "ok").all()
    assert not work.exists()


def test_out_is_written_before_the_work_folder_goes_and_a_failed_write_resumes(tmp_path, bundle, monkeypatch):
    import galmet
    import galmet.predict.positions as positions_module
    from galmet.io.tables import read_table
    from galmet.predict import PositionsSummary, default_work_dir

    ra, dec = _degrees()
    frame = pd.DataFrame({"ra": ra, "dec": dec})
    out = tmp_path / "pred.ecsv"
    work = default_work_dir(out)
    assert work == tmp_path / "pred.ecsv.galmet-work"

    def full_disk(table, path):
        assert (work / "shards").is_dir() and list((work / "shards").glob("shard-*.parquet")), "cleaned up too early"
        raise OSError(28, "No space left on device")

    with FaultyServer() as srv:
        monkeypatch.setattr(positions_module, "write_positions_table", full_disk)
        with pytest.raises(OSError, match="No space left"):
            galmet.predict_positions(bundle, frame, out=out, base_url=srv.url, shard_size=2, **FAST)
        monkeypatch.undo()
        assert not out.exists() and (work / "positions-run.json").is_file()  # the shards wait for a rerun
        fetched = sum(srv.counts.values())
        summary = PositionsSummary()
        table = galmet.predict_positions(bundle, frame, out=out, summary=summary, base_url=srv.url, **FAST)
        assert sum(srv.counts.values()) == fetched  # resumed: nothing fetched or predicted again
    assert summary.resumed == len(ra) and summary.predicted == 0 and summary.statuses["ok"] == len(ra)
    assert not work.exists()
    written = read_table(out)
    assert len(written) == len(table) == len(ra) and (written["status"] == "ok").all()
    assert written.attrs["units"]["oh_p50_pred"] == "dex" and written.attrs["provenance"]["model_sha256"]


def test_out_of_unknown_format_fails_before_any_fetch_naming_the_parameter(tmp_path, bundle):
    import galmet

    with FaultyServer() as srv:
        with pytest.raises(galmet.ConfigError, match=r"^out .*pred\.txt: unknown table format") as info:
            galmet.predict_positions(
                bundle, pd.DataFrame({"ra": [1.0], "dec": [2.0]}), out=tmp_path / "pred.txt", base_url=srv.url, **FAST
            )
        assert sum(srv.counts.values()) == 0
    assert info.value.param == "out"
    assert not (tmp_path / "pred.txt.galmet-work").exists()


def test_options_and_download_objects_equal_the_old_keywords(tmp_path, bundle):
    import galmet
    from galmet.nn.inference import InferenceOptions
    from galmet.sdss.download import DownloadOptions

    ra, dec = _degrees()
    frame = pd.DataFrame({"ra": ra[:3], "dec": dec[:3]})
    with FaultyServer() as srv:
        old = galmet.predict_positions(bundle, frame, base_url=srv.url, **FAST)
        new = galmet.predict_positions(
            bundle,
            frame,
            InferenceOptions(tta=False, device="cpu"),
            download=DownloadOptions(rate=0, retries=1, backoff_base=0.01, timeout=5.0),
            base_url=srv.url,
        )
        with pytest.raises(galmet.ConfigError, match="^batch_size must") as info:
            galmet.predict_positions(bundle, frame, InferenceOptions(), batch_size=0, base_url=srv.url)
        assert info.value.param == "batch_size"
        with pytest.raises(TypeError, match="unexpected keyword"):
            galmet.predict_positions(bundle, frame, base_url=srv.url, worker=3)
    np.testing.assert_allclose(old["oh_p50_pred"].value, new["oh_p50_pred"].value, rtol=1e-6)  # shards batch apart
    assert old.meta["tta"] == new.meta["tta"] == "none"


def test_work_dir_errors_name_the_parameter_and_the_cli_its_flag(tmp_path, capsys, bundle):
    import galmet

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(galmet.ConfigError, match="^work_dir .*afile: is a file") as info:
        galmet.predict_positions(bundle, pd.DataFrame({"ra": [1.0], "dec": [2.0]}), work_dir=afile, **FAST)
    assert info.value.param == "work_dir"
    code = main(
        [
            "predict",
            str(bundle),
            "--ra",
            "1",
            "--dec",
            "2",
            "--out",
            str(tmp_path / "o.csv"),
            "--work-dir",
            str(afile),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"--work-dir {afile}: is a file" in err and err.count("\n") == 1


@pytest.mark.parametrize("url", ["notaurl", "ftp://example.org", "http://"])
def test_a_bad_base_url_is_refused_before_the_work_folder_is_written(tmp_path, capsys, bundle, url):
    import galmet

    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "pred.csv"
    with pytest.raises(galmet.GalmetError) as info:
        galmet.predict_positions(bundle, pd.DataFrame({"ra": [1.0], "dec": [2.0]}), out=out, base_url=url)
    assert info.value.param == "base_url"
    code = main(["predict", str(bundle), "--ra", "10", "--dec", "5", "--out", str(out), "--base-url", url])
    err = capsys.readouterr().err
    assert code == 2 and "--base-url" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.parametrize(
    "planted",
    ["cutouts/images/1237648702973083820.jpg", "cutouts/catalog.parquet", "shards/shard-000000.parquet", "notes.txt"],
)
def test_a_work_dir_holding_a_users_file_is_refused_never_adopted_or_deleted(tmp_path, capsys, bundle, planted):
    """A user's files under WORK/cutouts or WORK/shards are not taken for cutouts or shards (nor
    deleted at the end): the run is refused before anything is written, library and CLI alike."""
    import galmet
    from galmet.io.images import encode_jpeg

    work = tmp_path / "H"
    path = work / planted
    path.parent.mkdir(parents=True)
    if path.suffix == ".jpg":
        path.write_bytes(encode_jpeg(np.full((16, 16, 3), 99, np.uint8)))
    elif path.suffix == ".parquet":
        pd.DataFrame({"row": [0], "objID": [1237648702973083820]}).to_parquet(path)
    else:
        path.write_text("mine")
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    with FaultyServer() as srv:
        with pytest.raises(galmet.ConfigError, match="was not written by galmet") as info:
            galmet.predict_positions(
                bundle, pd.DataFrame({"ra": [1.0], "dec": [2.0]}), work_dir=work, base_url=srv.url, **FAST
            )
        assert info.value.param == "work_dir" and sum(srv.counts.values()) == 0
        out = tmp_path / "o.csv"
        argv = ["predict", str(bundle), "--ra", "1", "--dec", "2", "--out", str(out), "--work-dir", str(work)]
        code = main([*argv, "--base-url", srv.url, "--device", "cpu", "--overwrite"])  # (overwrite is for --out)
        assert sum(srv.counts.values()) == 0
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--work-dir" in err and "not written by galmet" in err
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before and not out.exists()


def test_out_written_by_someone_else_needs_overwrite_which_replaces_only_it(tmp_path, capsys, bundle):
    out = tmp_path / "m31.fits"
    out.write_bytes(b"SIMPLE  =                    T" + b" " * 2850)  # a user's FITS file
    mine = out.read_bytes()
    argv = ["predict", str(bundle), "--ra", "1", "--dec", "2", "--out", str(out), "--device", "cpu", "--no-tta"]
    with FaultyServer() as srv:
        assert main([*argv, "--base-url", srv.url]) == 2
        assert out.read_bytes() == mine and "--overwrite" in capsys.readouterr().err
        assert main([*argv, "--base-url", srv.url, "--overwrite", "--retries", "0"]) in (0, 1)
    assert out.read_bytes() != mine and not (tmp_path / "m31.fits.galmet-work").exists()


def test_load_dataset_at_positions_never_takes_a_users_images_for_cutouts(tmp_path):
    import galmet
    from galmet.io.images import encode_jpeg

    ra, dec = _degrees()
    folder = tmp_path / "ds"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "m31.jpg").write_bytes(encode_jpeg(np.full((16, 16, 3), 7, np.uint8)))
    with FaultyServer() as srv:
        with pytest.raises(galmet.ConfigError, match="m31.jpg was not written by galmet") as info:
            galmet.load_dataset(SkyCoord(ra * u.deg, dec * u.deg), cutouts=folder, size=16, base_url=srv.url)
        assert info.value.param == "cutouts" and sum(srv.counts.values()) == 0
    assert sorted(p.name for p in folder.rglob("*")) == ["images", "m31.jpg"]


@pytest.mark.parametrize("vector", ["ra", "dec", "both"])
@pytest.mark.parametrize("suffix", ["fits", "ecsv"])
def test_a_vector_ra_or_dec_column_is_one_line_naming_it(vector, suffix, tmp_path):
    from astropy.table import Table

    from galmet.errors import DataError
    from galmet.io.tables import read_any_table
    from galmet.sdss.coords import sky_positions

    cols = {"ra": np.full(3, 10.0), "dec": np.full(3, 5.0)}
    for name in ("ra", "dec") if vector == "both" else (vector,):
        cols[name] = np.zeros((3, 2))
    path = tmp_path / f"v.{suffix}"
    Table(cols).write(path, format="ascii.ecsv" if suffix == "ecsv" else None)
    with pytest.raises(DataError) as err:
        sky_positions(read_any_table(path))
    msg = str(err.value)
    assert "\n" not in msg and "vector" in msg and ("column ra" in msg or "column dec" in msg)


#: a positions CSV FITS cannot carry -> what the one line names
FITS_UNWRITABLE = {
    "long name": ("ra,dec," + "x" * 69 + "\n10,5,a\n", "69-character name"),
    "non-ASCII name": ("ra,dec,név\n10,5,a\n", "n\\xe9v"),
    "non-ASCII value": ("ra,dec,name\n10,5,a\n11,5,Ωmega\n", "row 1: column name"),
}


@pytest.mark.parametrize("case", sorted(FITS_UNWRITABLE))
@pytest.mark.parametrize("suffix", ["fits", "fits.gz"])
def test_a_fits_out_refuses_input_columns_it_cannot_hold_before_fetching(case, suffix, bundle, tmp_path, capsys):
    text, named = FITS_UNWRITABLE[case]
    positions = tmp_path / "pos.csv"
    positions.write_text(text, encoding="utf-8")
    with FaultyServer() as srv:
        argv = ["predict", str(bundle), "--positions", str(positions), "--base-url", srv.url, "--device", "cpu"]
        code = main([*argv, "--out", str(tmp_path / f"p.{suffix}")])
        assert sum(srv.counts.values()) == 0  # refused before anything was fetched
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and named in err and "--out" in err, err
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["pos.csv", "run"]
