"""One galmet run per folder: every command that writes into a folder holds its lock
(galmet.io.locks), a second run into it fails at once in one line naming the first one's pid,
and the lock dies with its process."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import changed_files, make_tiny_dataset, snapshot, tiny_card
from faulty_server import FaultyServer, make_catalog
from galmet.cli.main import build_parser, main
from galmet.errors import GalmetError
from galmet.io.locks import exclusive, held_elsewhere

#: command -> (argv, the folder it writes into, relative to the test's folder) for every command
#: that writes into a folder; "{t}" is the test's folder, "{url}" a loopback server.
FOLDER_WRITERS = {
    "synth": (["synth", "--n", "4", "--size", "8", "--out", "{t}/out", "--no-progress", "--workers", "1"], "out"),
    "catalog": (["catalog", "--from-table", "{t}/table.parquet", "--out", "{t}/out"], "out"),
    "download": (["download", "{t}/dl", "--base-url", "{url}", "--rate", "0", "--size", "16"], "dl"),
    "train": (
        ["train", "{t}/ds", "--out", "{t}/out", "--arch", "resnet18", "--weights", "none", "--epochs", "1"]
        + ["--recipe", "onecycle", "--device", "cpu", "--no-progress"],
        "out",
    ),
    "demo": (["demo", "--out", "{t}/out", "--n", "60", "--size", "16", "--epochs", "1"], "out"),
    "resolution-study": (
        ["resolution-study", "{t}/ds", "--out", "{t}/out", "--sizes", "8", "--min-input", "8", "--epochs", "1"]
        + ["--recipe", "onecycle", "--weights", "none", "--device", "cpu"],
        "out",
    ),
    "lr-find": (["lr-find", "{t}/ds", "--out", "{t}/out", "--steps", "4", "--weights", "none"], "out"),
    "baseline": (["baseline", "{t}/ds", "--out", "{t}/out", "--n-estimators", "2", "--jobs", "1"], "out"),
    "systematics": (
        ["systematics", "{t}/pred.parquet", "--dataset", "{t}/ds", "--out", "{t}/out", "--split", "all"],
        "out",
    ),
    "explain": (["explain", "{t}/run", "{t}/ds", "--out", "{t}/out", "--n", "2", "--device", "cpu"], "out"),
    "figures": (["figures", "{t}/pred.parquet", "--out", "{t}/out", "--split", "all"], "out"),
    "mzr": (["mzr", "--metallicity", "{t}/pred.parquet", "--mass", "{t}/mass.parquet", "--out", "{t}/out"], "out"),
    "models": (["models", "pack", "{t}/run", "--card", "{t}/card.json", "--out", "{t}/out"], "out"),
    "predict": (
        ["predict", "{t}/run", "--ra", "10", "--dec", "10", "--out", "{t}/p.parquet", "--work-dir", "{t}/work"]
        + ["--base-url", "{url}", "--device", "cpu"],
        "work",
    ),
}
#: Commands that write one file (atomically: two runs cannot leave a mixture) or nothing.
SINGLE_FILE_OR_NONE = {"info", "evaluate", "embed", "report", "calibrate", "ensemble", "domain-check"}


def test_every_command_is_either_a_folder_writer_or_writes_one_file():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(FOLDER_WRITERS) | SINGLE_FILE_OR_NONE == set(sub.choices)
    assert not set(FOLDER_WRITERS) & SINGLE_FILE_OR_NONE


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import torch

    from galmet.data.dataset import load_dataset
    from galmet.nn.bundle import load_model, save_bundle
    from galmet.nn.net import build_model
    from galmet.predict.dataset import predict_dataset

    root = tmp_path_factory.mktemp("lock-inputs")
    ds = make_tiny_dataset(root / "ds", n=24, size=16, split=True)
    torch.manual_seed(0)
    bundle = save_bundle(root / "run" / "model.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    pred = predict_dataset(load_model(bundle), load_dataset(ds, cache=False), tta=False, device="cpu")
    pred.to_parquet(root / "pred.parquet")
    mass = pred.rename(columns={"oh_p50_pred": "lgm_tot_p50_pred", "oh_p50_spread": "lgm_tot_p50_spread"})
    mass["lgm_tot_p50_pred"] = 10.0
    mass.to_parquet(root / "mass.parquet")
    pd.read_parquet(ds / "catalog.parquet").to_parquet(root / "table.parquet")
    make_catalog(root / "dl", 3)
    (root / "card.json").write_text(json.dumps(tiny_card()))
    return root


@pytest.mark.parametrize("command", sorted(FOLDER_WRITERS))
def test_a_second_run_into_a_locked_folder_fails_at_once_and_changes_nothing(inputs, tmp_path, capsys, command):
    t = tmp_path / "t"
    import shutil

    shutil.copytree(inputs, t)
    argv, folder = FOLDER_WRITERS[command]
    folder = t / folder
    folder.mkdir(exist_ok=True)
    full = snapshot(t)
    before = {rel: data for rel, data in full.items() if not rel.endswith(".galmet-written")}  # (appended to)
    with FaultyServer() as srv, exclusive(folder, what="'galmet test'"):  # another run holds it
        capsys.readouterr()
        code = main([a.format(t=t, url=srv.url) for a in argv])
        err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and f"is in use by another galmet run (pid {os.getpid()}, 'galmet test')" in err
    assert changed_files(before, t) == []
    new = sorted(rel for rel in set(snapshot(t)) - set(full) if not rel.endswith(".galmet-written"))
    assert new in ([], [str((folder / ".galmet.lock").relative_to(t))])


def test_the_lock_dies_with_its_process(tmp_path):
    code = (
        "import sys, time\nfrom galmet.io.locks import exclusive\n"
        "with exclusive(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"held"
        assert held_elsewhere(tmp_path)
        with pytest.raises(GalmetError, match=f"pid {proc.pid}"), exclusive(tmp_path):
            pass
    finally:
        proc.kill()
        proc.wait()
    assert not held_elsewhere(tmp_path)  # kill -9: the operating system released it
    with exclusive(tmp_path):
        pass


def _wait_until_locked(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not held_elsewhere(folder):
        assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")[-500:]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _galmet(*argv) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "galmet", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


def _second_run_is_refused(first: subprocess.Popen, folder: Path, *second) -> None:
    """With ``first`` holding ``folder`` (stopped there, so that it cannot finish first), run
    ``second`` to its end: refused in one line naming ``first``'s pid; then ``first`` finishes."""
    _wait_until_locked(first, folder)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        other = _galmet(*second)
        _, err = other.communicate(timeout=120)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    err = err.decode()
    assert other.returncode == 2 and err.count("\n") == 1, err
    assert f"{folder} is in use by another galmet run (pid {first.pid}" in err
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1.decode(errors="replace")[-500:]


def test_two_synth_processes_into_one_folder_one_is_refused_and_no_image_is_orphaned(tmp_path):
    out = tmp_path / "synth"
    first = _galmet("synth", "--n", "12", "--size", "8", "--out", out, "--workers", "1", "--no-progress")
    _second_run_is_refused(first, out, "synth", "--n", "5", "--size", "8", "--out", out, "--overwrite")
    cat = pd.read_parquet(out / "catalog.parquet")
    images = sorted(p.stem for p in (out / "images").glob("*.jpg"))
    assert len(cat) == 12 and images == sorted(map(str, cat["objID"]))


def test_two_catalog_processes_into_one_folder_one_is_refused(tmp_path):
    from galmet.sdss.catalog import COLUMNS

    n = 30
    rng = np.random.default_rng(1)
    df = pd.DataFrame({name: rng.uniform(14, 17, n) for _, name in COLUMNS})
    df["objID"] = 1237663716556341422 + np.arange(n, dtype=np.int64)
    df["specObjID"] = df["objID"] + 3
    body = ("#Table1\n" + df.to_csv(index=False)).encode()
    table = tmp_path / "table.parquet"
    df.to_parquet(table)
    out = tmp_path / "ds"
    with FaultyServer(latency=0.2, sql_responder=lambda cmd, k: (200, "text/csv", body)) as srv:
        first = _galmet("catalog", "--out", out, "--base-url", srv.url, "--chunks", "4", "--rate", "0", "--no-progress")
        _second_run_is_refused(first, out, "catalog", "--from-table", table, "--out", out, "--overwrite")
    assert len(pd.read_parquet(out / "catalog.parquet")) > 0 and (out / "catalog.json").is_file()


def _put(path: Path, kind: str, target: Path) -> None:
    """A ``kind`` of file at the lock's name: a symlink to the user's ``target``, a FIFO, a
    directory, or a regular file with the user's own text."""
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_text("the user's own notes\n")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "user text"])
def test_a_lock_file_that_is_not_galmets_is_refused_and_left_alone(tmp_path, kind):
    user = tmp_path / "notes.txt"
    user.write_text("my notes")
    folder = tmp_path / "f"
    folder.mkdir()
    lock = folder / ".galmet.lock"
    _put(lock, kind, user)
    before = os.lstat(lock)
    with pytest.raises(GalmetError, match=r"\.galmet\.lock: .*move it away"), exclusive(folder):
        pass
    assert user.read_text() == "my notes" and os.path.lexists(lock)
    assert os.lstat(lock).st_mode == before.st_mode and not held_elsewhere(folder)
    if kind == "user text":
        assert lock.read_text() == "the user's own notes\n"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "user text"])
@pytest.mark.parametrize("command", ["synth", "catalog"])
def test_cli_refuses_a_folder_whose_lock_is_not_galmets_in_one_line(tmp_path, capsys, kind, command):
    user = tmp_path / "notes.txt"
    user.write_text("my notes")
    out = tmp_path / "s"
    out.mkdir()
    _put(out / ".galmet.lock", kind, user)
    table = tmp_path / "t.csv"
    pd.DataFrame({"objID": [1, 2], "ra": [10.0, 11.0], "dec": [1.0, 2.0], "oh_p50": [8.7, 8.8]}).to_csv(table)
    argv = {
        "synth": ["synth", "--n", "4", "--size", "16", "--out", str(out), "--seed", "1"],
        "catalog": ["catalog", "--from-table", str(table), "--out", str(out)],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ".galmet.lock" in err
    assert user.read_text() == "my notes" and sorted(p.name for p in out.iterdir()) == [".galmet.lock"]
