"""Issue 21, class F: a FIFO (or another special file) named where a command reads a file is refused
in one line, exit 2, within seconds, without being opened (opening a FIFO blocks forever).

Every command's file inputs are covered: models, weights, configs, checkpoints, predictions,
positions, tables inside a dataset directory, images and the files a report embeds."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.io.inputs import require_regular_file, special_kind

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")

#: Longest a command may take to refuse a special file (s).
LIMIT_S = 20


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny dataset, a model bundle trained on nothing, a predictions table, all regular."""
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    root = tmp_path_factory.mktemp("fifo")
    ds = make_tiny_dataset(root / "ds", n=24, size=16, split=True)
    bundle = save_bundle(root / "run" / "model.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    cat = pd.read_parquet(ds / "catalog.parquet")
    pred = cat[["objID", "oh_p50"]].assign(oh_p50_pred=cat["oh_p50"], split=cat["split"])
    pred.to_csv(root / "pred.csv", index=False)
    pred.drop(columns="oh_p50").to_csv(root / "pred_nt.csv", index=False)  # truth from a dataset
    mass = cat[["objID", "lgm_tot_p50", "split"]].assign(lgm_tot_p50_pred=cat["lgm_tot_p50"])
    mass.to_csv(root / "pred_m.csv", index=False)
    return {
        "ds": ds,
        "model": bundle,
        "pred": root / "pred.csv",
        "pred_nt": root / "pred_nt.csv",
        "pred_m": root / "pred_m.csv",
    }


def _fifo(path):
    os.mkfifo(path)
    return path


def _release(path) -> None:
    """Unblock a reader stuck opening the FIFO ``path`` (it then reads end-of-file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def _run_bounded(argv, fifo, capsys):
    """main(argv) in a thread; fail (and unblock it) when it has not returned within LIMIT_S."""
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("code", main([str(a) for a in argv])), daemon=True)
    t.start()
    t.join(LIMIT_S)
    if t.is_alive():
        for _ in range(50):
            _release(fifo)
            t.join(0.1)
            if not t.is_alive():
                break
        pytest.fail(f"{' '.join(map(str, argv))} blocked on the FIFO {fifo}")
    err = capsys.readouterr().err.strip()
    return result.get("code"), err


def _dataset_with_fifo(files, tmp_path, name):
    """A copy of the tiny dataset whose ``name`` (catalogue or one image) is a FIFO."""
    ds = tmp_path / "dsf"
    shutil.copytree(files["ds"], ds)
    target = ds / name if name != "image" else sorted((ds / "images").iterdir())[0]
    target.unlink()
    return ds, _fifo(target)


# (argv with {fifo} where the special file goes, or {ds_fifo_catalog}/{ds_fifo_image} for a dataset)
CASES = {
    "predict-model": ["predict", "{fifo}", "{ds}", "--out", "{tmp}/p.csv", "--device", "cpu"],
    "predict-positions": ["predict", "{model}", "--positions", "{fifo}.csv", "--out", "{tmp}/p.csv"],
    "predict-positions-input": ["predict", "{model}", "{fifo}.fits", "--out", "{tmp}/p.csv"],
    "predict-catalog": ["predict", "{model}", "{dsf:catalog.parquet}", "--out", "{tmp}/p.csv", "--device", "cpu"],
    "predict-image": ["predict", "{model}", "{dsf:image}", "--out", "{tmp}/p.csv", "--device", "cpu"],
    "calibrate-model": ["calibrate", "{fifo}", "{pred}", "--out", "{tmp}/m2.pt"],
    "calibrate-predictions": ["calibrate", "{model}", "{fifo}.csv", "--out", "{tmp}/m2.pt"],
    "embed-model": ["embed", "{fifo}", "{ds}", "--out", "{tmp}/e.parquet"],
    "explain-model": ["explain", "{fifo}", "{ds}", "--out", "{tmp}/x"],
    "ensemble-member": ["ensemble", "{model}", "{fifo}", "--out", "{tmp}/ens.pt"],
    "evaluate": ["evaluate", "{fifo}.csv"],
    "evaluate-dataset": ["evaluate", "{pred_nt}", "--dataset", "{dsf:catalog.parquet}"],
    "figures": ["figures", "{fifo}.csv", "--out", "{tmp}/f"],
    "figures-mass": ["figures", "{pred}", "--mass", "{fifo}.csv", "--out", "{tmp}/f"],
    "mzr": ["mzr", "--metallicity", "{fifo}.csv", "--mass", "{pred}", "--out", "{tmp}/z"],
    "systematics": ["systematics", "{fifo}.csv", "--dataset", "{ds}", "--out", "{tmp}/s"],
    "systematics-dataset": ["systematics", "{pred}", "--dataset", "{dsf:catalog.parquet}", "--out", "{tmp}/s"],
    "train-weights": ["train", "{ds}", "--out", "{tmp}/r", "--weights", "{fifo}", "--arch", "resnet18"],
    "train-config": ["train", "{ds}", "--out", "{tmp}/r", "--config", "{fifo}"],
    "train-catalog": ["train", "{dsf:catalog.parquet}", "--out", "{tmp}/r", "--weights", "none"],
    "lr-find-catalog": ["lr-find", "{dsf:catalog.parquet}", "--out", "{tmp}/lr"],
    "info-catalog": ["info", "{dsf:catalog.parquet}"],
    "info-image": ["info", "{dsf:image}"],
    "baseline-catalog": ["baseline", "{dsf:catalog.parquet}", "--out", "{tmp}/bl"],
    "download-catalog": ["download", "{dsf:catalog.parquet}"],
    "catalog-from-table": ["catalog", "--out", "{tmp}/c", "--from-table", "{fifo}.fits"],
    "figures-resolution": ["figures", "{pred}", "--resolution", "{fifo}.csv", "--out", "{tmp}/f"],
    "mzr-mass": ["mzr", "--metallicity", "{pred}", "--mass", "{fifo}.csv", "--out", "{tmp}/z"],
    "mzr-rf": ["mzr", "--metallicity", "{pred}", "--mass", "{pred_m}", "--rf", "{fifo}.csv", "--out", "{tmp}/z"],
    "calibrate-dataset": [
        "calibrate",
        "{model}",
        "{pred_nt}",
        "--dataset",
        "{dsf:catalog.parquet}",
        "--out",
        "{tmp}/m2.pt",
    ],
    "embed-image": ["embed", "{model}", "{dsf:image}", "--out", "{tmp}/e.parquet"],
    "explain-catalog": ["explain", "{model}", "{dsf:catalog.parquet}", "--out", "{tmp}/x"],
    "resolution-study-catalog": ["resolution-study", "{dsf:catalog.parquet}", "--out", "{tmp}/rs"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_fifo_input_is_refused_in_one_line_without_blocking(case, files, tmp_path, capsys):
    fifo = None
    argv = []
    for a in CASES[case]:
        if a.startswith("{fifo}"):
            fifo = _fifo(tmp_path / ("fifo" + a[len("{fifo}") :]))
            a = str(fifo)
        elif a.startswith("{dsf:"):
            ds, fifo = _dataset_with_fifo(files, tmp_path, a[5:-1])
            a = str(ds)
        a = a.format(tmp=tmp_path, **files)
        argv.append(a)
    code, err = _run_bounded(argv, fifo, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("galmet "), err
    if "catalog" not in case and "image" not in case:  # (a dataset names its catalogue or image)
        assert str(fifo) in err or fifo.name in err, err


def test_report_refuses_an_embedded_fifo(files, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(files["model"].parent, run)
    fifo = _fifo(run / "history.csv")
    code, err = _run_bounded(["report", run, "--out", tmp_path / "r.html"], fifo, capsys)
    assert code in (0, 2), err  # a report skips what it cannot read, or refuses it; it never blocks


@pytest.mark.parametrize("kind", ["fifo", "dir", "missing"])
def test_require_regular_file_names_the_parameter_and_never_opens(kind, tmp_path):
    from galmet.errors import ConfigError

    p = tmp_path / "x"
    if kind == "fifo":
        _fifo(p)
    elif kind == "dir":
        p.mkdir()
    with pytest.raises(ConfigError) as err:
        require_regular_file(p, "model bundle", param="model")
    msg = str(err.value)
    assert msg.startswith(f"model {p}:") and err.value.param == "model" and "\n" not in msg
    assert {"fifo": "FIFO", "dir": "directory", "missing": "no such"}[kind] in msg
    if kind == "fifo":
        assert special_kind(p).startswith("FIFO")
    (tmp_path / "f").write_text("x")
    assert require_regular_file(tmp_path / "f", "model bundle") == tmp_path / "f"


def test_a_device_is_refused_too(tmp_path):
    from galmet.errors import ConfigError

    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(ConfigError, match="character device"):
        require_regular_file("/dev/zero", "weights file")


def _readers():
    from galmet.data.cache import file_digest, open_cache
    from galmet.io.images import read_header, read_image
    from galmet.io.safety import file_kind
    from galmet.io.tables import read_any_table, read_table
    from galmet.nn.bundle import load_model
    from galmet.nn.weights import local_body_state, safe_load
    from galmet.training.checkpoint import read_checkpoint
    from galmet.training.config import load_config

    return {
        "load_model": (lambda p: load_model(p), ".pt"),
        "safe_load": (lambda p: safe_load(p, "weights file"), ".pt"),
        "local_body_state": (lambda p: local_body_state(p), ".pth"),
        "read_checkpoint": (lambda p: read_checkpoint(p), ".pt"),
        "load_config": (lambda p: load_config(p), ".yaml"),
        "read_table-csv": (lambda p: read_table(p), ".csv"),
        "read_table-parquet": (lambda p: read_table(p), ".parquet"),
        "read_any_table-fits": (lambda p: read_any_table(p), ".fits"),
        "read_image": (lambda p: read_image(p), ".jpg"),
        "read_header": (lambda p: read_header(p), ".png"),
        "file_kind": (lambda p: pytest.fail("opened") if file_kind(p) is None else None, ".pt"),
        "file_digest": (lambda p: file_digest(p) == "unreadable" or pytest.fail("read"), ".jpg"),
        "open_cache": (lambda p: open_cache(p, {"n": 1}) is None or pytest.fail("read"), ".npy"),
    }


@pytest.mark.parametrize("reader", sorted(_readers()))
def test_every_library_reader_refuses_a_fifo_without_opening_it(reader, tmp_path):
    from galmet.errors import GalmetError

    fn, suffix = _readers()[reader]
    fifo = _fifo(tmp_path / f"x{suffix}")
    box = {}

    def go():
        try:
            fn(fifo)
        except GalmetError as exc:
            box["err"] = str(exc)
        except BaseException as exc:  # noqa: BLE001 - reported below
            box["other"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(LIMIT_S)
    if t.is_alive():
        _release(fifo)
        pytest.fail(f"{reader} opened the FIFO")
    assert "other" not in box, box.get("other")
    if "err" in box:
        assert "\n" not in box["err"] and "x" + suffix in box["err"]


def test_an_image_file_past_the_cap_is_refused_without_being_read_whole(tmp_path, monkeypatch):
    from galmet.errors import DataError
    from galmet.io import images

    monkeypatch.setattr(images, "MAX_IMAGE_FILE_BYTES", 1 << 16)
    ok = images.encode_jpeg(np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "a.jpg").write_bytes(ok)
    assert images.read_image(tmp_path / "a.jpg").shape == (8, 8, 3)
    (tmp_path / "b.jpg").write_bytes(ok + b"\0" * (1 << 16))
    with pytest.raises(DataError, match="over 0 MB|image file is over"):
        images.read_image(tmp_path / "b.jpg")
