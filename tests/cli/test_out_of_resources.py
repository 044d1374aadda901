"""Issue 21, class F: running out of memory or threads is one line and exit 2 naming what ran out,
never a traceback, and never a wait that lasts forever.

Fast cases monkeypatch an allocation (a table read, a prediction, a thread start, a memory map)
to fail the way it fails under ``ulimit -v``; the slow cases run the real commands in a
subprocess whose address space is capped just above what ``import galmet, torch`` needs."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, make_tiny_dataset
from galmet.cli.main import main
from galmet.errors import ResourceError, out_of_resources

FAILURES = {
    "MemoryError": lambda: MemoryError(),
    "numpy": lambda: MemoryError(
        "Unable to allocate 7.28 TiB for an array with shape (1000000000000,) and data type float64"
    ),
    "torch-alloc": lambda: RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 2457600 bytes. Error code 12 (Cannot allocate memory)"
    ),
    "thread": lambda: RuntimeError("can't start new thread"),
    "mmap-ENOMEM": lambda: OSError(errno.ENOMEM, "Cannot allocate memory"),
    "arrow-thread": lambda: OSError("Unknown error: Failed to launch worker thread: Resource temporarily unavailable"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    root = tmp_path_factory.mktemp("res")
    ds = make_tiny_dataset(root / "ds", n=16, size=16, split=True)
    bundle = save_bundle(root / "model.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    cat = pd.read_parquet(ds / "catalog.parquet")
    cat[["objID", "oh_p50", "split"]].assign(oh_p50_pred=cat["oh_p50"]).to_csv(root / "pred.csv", index=False)
    return {"ds": ds, "model": bundle, "pred": root / "pred.csv"}


def _raiser(make):
    def fail(*a, **k):
        raise make()

    return fail


# surface -> (what to patch: module attribute path, argv)
SURFACES = {
    "predict-model": ("galmet.nn.inference.GalmetModel.predict_uncertainty", ["predict", "{model}", "{ds}"]),
    "predict-table": ("pandas.read_parquet", ["predict", "{model}", "{ds}"]),
    "evaluate-table": ("pandas.read_csv", ["evaluate", "{pred}"]),
    "predict-positions": ("threading.Thread.start", ["predict", "{model}", "--ra", "10", "--dec", "1"]),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_running_out_is_one_line_naming_what_ran_out(surface, failure, files, tmp_path, monkeypatch, capsys):
    import importlib

    target, argv = SURFACES[surface]
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
            break
        except ImportError:
            continue
    for name in parts[cut:-1]:
        owner = getattr(owner, name)
    monkeypatch.setattr(owner, parts[-1], _raiser(FAILURES[failure]))
    monkeypatch.setenv("GALMET_OFFLINE", "1")
    argv = [a.format(**files) for a in argv] + ["--out", str(tmp_path / "out.csv")]
    if argv[0] == "evaluate":
        argv = argv[:-2]
    if "--ra" in argv:
        argv += ["--base-url", "http://127.0.0.1:9", "--retries", "0"]
    code = main([*argv, "--device", "cpu"] if argv[0] == "predict" else argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "out of memory" in err or "out of threads" in err, err


def test_out_of_resources_recognises_the_kinds_and_nothing_else():
    for name, make in FAILURES.items():
        assert out_of_resources(make()) in ("memory", "threads"), name
    assert out_of_resources(RuntimeError("can't start new thread")) == "threads"
    wrapped = ValueError("cannot read")
    wrapped.__cause__ = MemoryError()
    assert out_of_resources(wrapped) == "memory"
    for other in (ValueError("bad"), OSError(errno.ENOENT, "No such file"), RuntimeError("shape mismatch")):
        assert out_of_resources(other) is None


def test_a_download_worker_that_runs_out_fails_the_run_instead_of_hanging(tmp_path, monkeypatch):
    """A worker that dies holding a task: the main loop notices within a second, never waits forever."""
    from galmet.data.dataset import write_catalog
    from galmet.sdss import download as dl

    root = tmp_path / "ds"
    root.mkdir()
    write_catalog(root, pd.DataFrame({"objID": [1, 2, 3], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0]}))
    monkeypatch.setattr(dl._Run, "fetch", _raiser(lambda: MemoryError()))
    box = {}

    def go():
        try:
            dl.download_cutouts(root, dl.DownloadOptions(workers=2, progress=False, base_url="http://127.0.0.1:9"))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            box["exc"] = exc

    t = threading.Thread(target=go, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(20)
    assert not t.is_alive(), "download waited forever for a dead worker"
    assert isinstance(box.get("exc"), ResourceError) and "out of memory" in str(box["exc"])
    assert time.monotonic() - t0 < 20


def test_workers_that_cannot_all_start_go_on_with_those_that_did(monkeypatch):
    from galmet.sdss import download as dl

    real_start, started = threading.Thread.start, []

    def start(self):
        if len(started) >= 2:
            raise RuntimeError("can't start new thread")
        started.append(self)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    stop = threading.Event()
    workers = dl._start_workers(lambda: stop.wait(5), (), 8)
    stop.set()
    assert len(workers) == 2
    started.clear()
    monkeypatch.setattr(threading.Thread, "start", _raiser(lambda: RuntimeError("can't start new thread")))
    with pytest.raises(ResourceError, match="out of threads"):
        dl._start_workers(lambda: None, (), 4)


# --- the real thing: a subprocess under an address-space limit -------------------------------------

CHILD = textwrap.dedent(
    """
    import resource, sys
    import galmet, torch, numpy, pandas, pyarrow.parquet  # what every command needs anyway
    import galmet.cli.main
    def vm():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    limit = vm() + int(sys.argv[1]) * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.exit(galmet.cli.main.main(sys.argv[2:]))
    """
)


def _limited(argv, headroom_mb, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), GALMET_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(headroom_mb), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
@pytest.mark.parametrize("headroom_mb", [8, 64, 256])
@pytest.mark.parametrize("surface", ["predict", "positions", "evaluate"])
def test_commands_under_an_address_space_limit_end_in_one_line(surface, headroom_mb, files, tmp_path):
    from faulty_server import FaultyServer

    with FaultyServer({}) as srv:
        argv = {
            "predict": ["predict", files["model"], files["ds"], "--out", tmp_path / "p.csv", "--device", "cpu"],
            "positions": [
                *("predict", files["model"], "--ra", "10", "--dec", "1", "--out", tmp_path / "p.csv"),
                *("--base-url", srv.url, "--device", "cpu", "--no-progress"),
            ],
            "evaluate": ["evaluate", files["pred"]],
        }[surface]
        p = _limited(argv, headroom_mb)
    err = p.stderr.strip().splitlines()
    assert p.returncode in (0, 2), p.stderr[-2000:]
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    if p.returncode == 2:  # (positions logs its progress on stderr before the error line)
        assert err[-1].startswith("galmet ") and "error:" in err[-1], p.stderr[-2000:]


READER = textwrap.dedent(
    """
    import resource, sys
    import pandas, pyarrow.parquet
    from galmet.errors import out_of_resources
    from galmet.io.tables import read_table
    def vm():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    limit = vm() + int(sys.argv[1]) * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        print(len(read_table(sys.argv[2])))
    except Exception as exc:
        print("refused:", out_of_resources(exc) or type(exc).__name__)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
@pytest.mark.parametrize("headroom_mb", [12, 16, 20, 24, 32])
def test_a_parquet_read_under_an_address_space_limit_never_waits_forever(headroom_mb, tmp_path):
    """pyarrow's pre-buffering and thread pool waited forever for a thread that could not start
    (16 MB over the import's address space did it); galmet reads parquet without them."""
    path = tmp_path / "t.parquet"
    pd.DataFrame({f"c{i}": np.arange(200_000, dtype=float) for i in range(20)}).to_parquet(path, row_group_size=10_000)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    try:
        p = subprocess.run(
            [sys.executable, "-c", READER, str(headroom_mb), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"read_table waited forever under {headroom_mb} MB of headroom")
    # read, or refused naming what ran out, or glibc's own abort (no thread-local memory): never a hang
    assert p.returncode == 0 or "ABORT" in p.stderr or p.returncode < 0, p.stderr[-2000:]
