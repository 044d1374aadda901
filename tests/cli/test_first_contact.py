"""A new user's first contact (issue 11, item 7): extras and their one-line install hint, the demo's
up-front option checks, a short Dataset repr, honest ``info`` on unlabelled data, finished runs
without optimizer state, readable ``--help`` examples, one demo timing everywhere, and ``evaluate``
on a foreign predictions file."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, make_tiny_dataset
from galmet.cli.main import build_parser, main
from galmet.data.dataset import load_dataset, write_catalog


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """32 galaxies, 16 px, labelled, no split column."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", n=32, size=16)


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


# --- 1. extras ---------------------------------------------------------------------------------


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_heavy_parts_are_extras_and_the_readme_install_gets_them_all():
    project = _pyproject()["project"]
    core = " ".join(project["dependencies"]).lower()
    extras = {k: " ".join(v).lower() for k, v in project["optional-dependencies"].items()}
    for name in ("galsim", "scikit-learn", "matplotlib"):
        assert name not in core, name
    assert "galsim" in extras["synth"] and "scipy" in extras["synth"]
    assert "scikit-learn" in extras["analysis"] and "matplotlib" in extras["analysis"]
    assert "galmet[all]" in extras["dev"]
    assert all(f in extras["all"] for f in ("synth", "analysis", "explain"))
    # the README's one install command is the dev extra, which CI installs too
    readme = (ROOT / "README.md").read_text()
    assert re.search(r'pip install -e "\.\[dev\]"', readme)
    assert 'pip install -e ".[dev]"' in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize(
    "missing, argv, extra",
    [
        ("galsim", ["synth", "--n", "4", "--size", "16", "--out", "{tmp}/synth"], "synth"),
        ("scipy", ["synth", "--n", "4", "--size", "16", "--out", "{tmp}/synth"], "synth"),
        ("galsim", ["demo", "--out", "{tmp}/demo"], "synth"),
        ("sklearn", ["demo", "--out", "{tmp}/demo"], "analysis"),
        ("matplotlib", ["demo", "--out", "{tmp}/demo"], "analysis"),
        ("sklearn", ["baseline", "{tiny}", "--out", "{tmp}/bl"], "analysis"),
        ("matplotlib", ["lr-find", "{tiny}", "--out", "{tmp}/lr"], "analysis"),
    ],
)
def test_a_missing_extra_is_one_line_naming_the_pip_install(missing, argv, extra, tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, missing, None)  # "import missing" now raises ImportError
    argv = [a.format(tmp=tmp_path, tiny=tiny) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2, err
    assert len(err.splitlines()) == 1
    pip_name = {"sklearn": "scikit-learn"}.get(missing, missing)
    assert f"{pip_name} is not installed" in err and f"pip install 'galmet[{extra}]'" in err
    assert not any(p.name in ("synth", "demo", "bl", "lr") for p in tmp_path.iterdir())  # nothing written


def test_core_commands_need_no_extra(tiny, monkeypatch, capsys):
    for name in ("galsim", "sklearn", "matplotlib"):
        monkeypatch.setitem(sys.modules, name, None)
    code, out, err = _run(capsys, "info", tiny, "--no-cache")
    assert code == 0, err
    assert "32 galaxies" in out


def test_require_returns_the_module_and_names_the_extra(monkeypatch):
    from galmet._optional import require
    from galmet.errors import ConfigError

    assert require("json", "analysis").__name__ == "json"
    monkeypatch.setitem(sys.modules, "galsim", None)
    with pytest.raises(ConfigError, match=r"galsim is not installed \(needed for synthetic galaxies\)"):
        require("galsim", "synth", "synthetic galaxies")


# --- 2. demo options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "1", "--n", "50"], "needs at least 2 steps"),
        (["--epochs", "0"], "--epochs"),
        (["--arch", "resnet99"], "--arch"),
        (["--size", "48"], "power of two"),
        (["--size", "4"], "--size"),
        (["--n", "10"], "--n"),
        (["--n", "many"], "--n"),
        (["--seed", "-1"], "--seed"),
        (["--batch-size", "1"], "--batch-size"),
        (["--batch-size", "x"], "--batch-size"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_demo_checks_every_option_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    import galmet.synthetic.render as render

    def no_work(*a, **k):
        raise AssertionError("the demo started synthesising before checking its options")

    monkeypatch.setattr(render, "synthesize", no_work)
    out = tmp_path / "demo"
    t0 = time.perf_counter()
    code, _, err = _run(capsys, "demo", "--out", out, *argv)
    elapsed = time.perf_counter() - t0
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert elapsed < 5, f"{elapsed:.1f} s"  # about a second on an idle machine; the box is shared


def test_demo_out_that_is_a_file_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    code, _, err = _run(capsys, "demo", "--out", out)
    assert code == 2 and "--out" in err and out.read_text() == "mine"


def test_demo_batch_size_reaches_training_and_fixes_a_short_schedule(tmp_path):
    from galmet.errors import ConfigError
    from galmet.runs.demo import check_demo

    # 50 galaxies: 33 train rows, one step per epoch at batch 32 but three at batch 16
    with pytest.raises(ConfigError, match="at least 2 steps"):
        check_demo(tmp_path / "d", 50, 16, 1, "resnet18", 0, "cpu", batch_size=32)
    config = check_demo(tmp_path / "d", 50, 16, 1, "resnet18", 0, "cpu", batch_size=16)
    assert config.batch_size == 16
    assert not (tmp_path / "d").exists()
    args = build_parser().parse_args(["demo", "--batch-size", "8", "--keep-checkpoint"])
    assert args.batch_size == 8 and args.keep_checkpoint


# --- 3 and 4. Dataset repr, info on unlabelled data ------------------------------------------


def test_dataset_repr_is_short_and_says_what_matters(tiny, tmp_path):
    ds = load_dataset(tiny, cache=False)
    text = repr(ds)
    assert len(text) < 300, text
    assert text.startswith("<Dataset 32 galaxies, 16x16 gri, labels: oh_p50 [")
    assert "splits: train " in text and "/valid " in text and "/test " in text
    # a long root is abbreviated, never the catalogue or the image array
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "ds"
    shutil.copytree(tiny, deep, ignore=shutil.ignore_patterns("images.npy", "images.json"))
    long = repr(load_dataset(deep, cache=False))
    assert len(long) < 300 and long.endswith("ds'>")


def test_sdss_sample_repr(sdss_sample):
    text = repr(load_dataset(sdss_sample))
    assert len(text) < 300 and "500 galaxies, 128x128 gri" in text and "train 320/valid 80/test 100" in text


def _unlabelled(tiny: Path, dst: Path, catalogue: bool) -> Path:
    """The tiny set's images, as a plain folder or with a catalogue that has no label column."""
    if catalogue:
        shutil.copytree(tiny / "images", dst / "images")
        cat = pd.read_parquet(tiny / "catalog.parquet")[["objID", "ra", "dec"]]
        write_catalog(dst, cat)
    else:
        shutil.copytree(tiny / "images", dst)
    return dst


@pytest.mark.parametrize("catalogue", [False, True])
def test_info_on_unlabelled_data_invents_no_splits(tiny, tmp_path, catalogue, capsys):
    folder = _unlabelled(tiny, tmp_path / "unlabelled", catalogue)
    code, out, err = _run(capsys, "info", folder, "--no-cache")
    assert code == 0, err
    assert "no labels" in out and "splits: none" in out
    assert not re.search(r"\b(train|valid|test) \d", out)
    text = repr(load_dataset(folder, cache=False))
    assert "no labels" in text and "splits: none" in text


def test_info_says_when_galmet_drew_the_split_of_a_labelled_set(tiny, capsys):
    code, out, err = _run(capsys, "info", tiny, "--no-cache")
    assert code == 0, err
    assert "labels: oh_p50, lgm_tot_p50" in out and "split: train " in out and "drawn by galmet" in out


# --- 5. finished runs drop their optimizer state -----------------------------------------------

TRAIN = ["--arch", "resnet18", "--weights", "none", "--batch-size", "8", "--recipe", "onecycle", "--no-progress"]


def test_finished_run_drops_its_checkpoint_unless_asked_to_keep_it(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = _run(capsys, "train", tiny, "--out", run, *TRAIN, "--epochs", "1", "--device", "cpu")
    assert code == 0, err
    assert (run / "model.pt").is_file() and not (run / "checkpoint.pt").exists()
    # --resume on such a run has nothing to do, and says so without an error
    before = (run / "model.pt").read_bytes()
    code, _, err = _run(capsys, "train", tiny, "--out", run, "--resume", "--no-progress")
    assert code == 0, err
    assert (run / "model.pt").read_bytes() == before

    kept = tmp_path / "kept"
    args = ["train", tiny, "--out", kept, *TRAIN, "--epochs", "1", "--device", "cpu", "--keep-checkpoint"]
    code, _, err = _run(capsys, *args)
    assert code == 0, err
    assert (kept / "model.pt").is_file() and (kept / "checkpoint.pt").is_file()
    # replacing a run that kept its checkpoint: the old checkpoint goes with the old run
    code, _, err = _run(capsys, "train", tiny, "--out", kept, *TRAIN, "--epochs", "1", "--overwrite")
    assert code == 0, err
    assert (kept / "model.pt").is_file() and not (kept / "checkpoint.pt").exists()


def test_interrupted_run_keeps_its_checkpoint_and_resumes(tiny, tmp_path):
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    class Stop(Exception):
        pass

    def stop(info):
        if info.epoch == 1:
            raise Stop

    config = TrainConfig(arch="resnet18", weights="none", batch_size=8, progress=False, recipe="onecycle", epochs=2)
    with pytest.raises(Stop):
        train(tiny, tmp_path / "run", config, on_step=stop)
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and not (tmp_path / "run" / "model.pt").exists()
    result = train(tiny, tmp_path / "run", None, resume=True)
    assert len(result.history) == 2 and result.bundle_path.is_file()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# --- 6. --help ---------------------------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_help_fits_a_terminal_and_keeps_its_examples_intact(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    for name, parser in _subparsers().items():
        text = parser.format_help()
        long = [line for line in text.splitlines() if len(line) > 100]
        assert not long, f"galmet {name} --help: {long[0]!r}"
    train_help = _subparsers()["train"].format_help()
    # the continued example stays two lines, the backslash visible (it was joined into one line)
    assert re.search(r"--arch resnet18 \\\n\s+--epochs 40 --batch-size 32 --crop 64 --folds 5\n", train_help)


# --- 7. one demo timing ------------------------------------------------------------------------


def test_the_demo_time_is_the_same_everywhere():
    from galmet.cli.commands import demo

    said = demo.TYPICAL_TIME
    assert said in demo.HELP and said in demo.DESCRIPTION
    for path in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        text = " ".join(path.read_text().split())  # the sentence may wrap
        assert said in text, path
        assert "40 s" not in text and "a few minutes" not in text, path


# --- 8. evaluate on foreign prediction files ---------------------------------------------------


@pytest.fixture
def authors_csv(tmp_path) -> tuple[Path, float]:
    rng = np.random.default_rng(3)
    z = rng.uniform(8.3, 9.2, 120)
    pred = z + rng.normal(0, 0.08, 120)
    path = tmp_path / "authors.csv"
    pd.DataFrame({"objID": 1237648700000000000 + np.arange(120), "oh_p50": z, "prediction": pred}).to_csv(
        path, index=False
    )
    return path, float(np.sqrt(np.mean((pred - z) ** 2)))


def test_evaluate_reads_the_authors_columns(authors_csv, tmp_path, capsys):
    import json

    path, rmse = authors_csv
    out = tmp_path / "m.json"
    code, text, err = _run(capsys, "evaluate", path, "--pred-col", "prediction", "--true-col", "oh_p50", "--json", out)
    assert code == 0, err
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 120 and metrics["rmse"] == pytest.approx(rmse, rel=1e-9)
    assert metrics["split"] == "all"  # no split column: every row was scored, and it says so
    assert "oh_p50 on split all" in text
    # --pred-col alone: the truth is the default target's column
    code, _, err = _run(capsys, "evaluate", path, "--pred-col", "prediction", "--json", out)
    assert code == 0, err
    assert json.loads(out.read_text())["rmse"] == pytest.approx(rmse, rel=1e-9)


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--pred-col", "pred"], "'pred' (--pred-col)"),
        (["--pred-col", "prediction", "--true-col", "Z"], "'Z' (--true-col)"),
    ],
)
def test_evaluate_names_a_missing_column_and_lists_the_others(authors_csv, argv, named, capsys):
    path, _ = authors_csv
    code, _, err = _run(capsys, "evaluate", path, *argv)
    assert code == 2 and len(err.splitlines()) == 1
    assert named in err and "objID, oh_p50, prediction" in err
