"""Data safety: every command that writes, run (a) with its output at its own input, (b) with its
output in a folder of unrelated user files, and (c) killed (SIGKILL) in the middle of its run.
After each, every file that existed before -- inputs, user files, a previous run's files -- is
byte-identical (new files are galmet's outputs; nothing else may change or disappear).

Case (a) may end in a refusal (exit 2, one line) or in a run that writes beside its inputs; both
must leave the inputs as they were. The kill cases run in parallel subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import changed_files, make_tiny_dataset, snapshot, tiny_card
from faulty_server import FaultyServer, make_catalog

#: galmet's bookkeeping files (its ledger of what it wrote, appended to; its lock files): not data.
BOOKKEEPING = (".galmet-written", ".galmet.lock")


def _files(root: Path) -> dict[str, bytes]:
    """:func:`snapshot` of the data under ``root`` (galmet's bookkeeping files left out)."""
    return {rel: data for rel, data in snapshot(root).items() if Path(rel).name not in BOOKKEEPING}


TINY = ["--arch", "resnet18", "--weights", "none", "--batch-size", "8", "--no-progress", "--device", "cpu"]
ONECYCLE = ["--recipe", "onecycle", "--epochs", "1"]


def _user_files(folder: Path) -> None:
    """Unrelated files a user keeps, some with names that look like galmet's."""
    from galmet.io.images import encode_jpeg

    (folder / "notes").mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    (folder / "thesis.tex").write_text("\\section{Metallicity}\n")
    (folder / "data.csv").write_text("a,b\n1,2\n")
    (folder / "notes" / "todo.txt").write_text("check the MZR\n")
    (folder / ".notes.tmp").write_text("an editor's backup\n")
    (folder / "images" / "holiday.jpg").write_bytes(encode_jpeg(np.full((8, 8, 3), 200, np.uint8)))


def _build_template(root: Path) -> None:
    from galmet.nn.bundle import load_model, save_bundle
    from galmet.nn.net import build_model
    from galmet.predict.dataset import predict_dataset
    from galmet.sdss.catalog import COLUMNS
    from galmet.synthetic.render import synthesize
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    ds = make_tiny_dataset(root / "ds", n=24, size=16, split=True)
    _user_files(root / "user")
    torch.manual_seed(0)
    # shifted into oh_p50's range: an untrained net's ~0.4 is not a prediction of it (label rules)
    meta = {"targets": ["oh_p50"], "image_size": 16, "target_shift": [8.7], "target_scale": [0.1]}
    bundle = save_bundle(root / "run" / "model.pt", build_model("resnet18"), dict(meta))
    save_bundle(root / "run2" / "model.pt", build_model("resnet18"), dict(meta))
    from galmet.data.dataset import load_dataset

    pred = predict_dataset(load_model(bundle), load_dataset(ds, cache=False), tta=False, device="cpu")
    pred.to_parquet(root / "pred.parquet")
    mass = pred.rename(columns={"oh_p50_pred": "lgm_tot_p50_pred", "oh_p50_spread": "lgm_tot_p50_spread"})
    mass["lgm_tot_p50_pred"] = mass["lgm_tot_p50"] + 0.1
    mass.to_parquet(root / "mass.parquet")
    n = 20
    rng = np.random.default_rng(0)
    table = pd.DataFrame({name: rng.uniform(14, 17, n) for _, name in COLUMNS})
    table["objID"] = 1237663716556341422 + np.arange(n, dtype=np.int64)
    table["specObjID"] = table["objID"] + 7
    table["rChi2"], table["oh_p50"], table["z"], table["zErr"] = 1.0, 8.9, 0.1, 0.001
    table["modelMag_u"], table["petroMag_r"] = 17.0, 16.0
    table.to_parquet(root / "table.parquet")
    synthesize(root / "prevsynth", 4, seed=1, size=8, workers=1, progress=False)
    replaceable = [f"prevsynth/{rel}" for rel in snapshot(root / "prevsynth")]  # the old synthesis: galmet's
    _user_files(root / "prevsynth")
    config = TrainConfig(arch="resnet18", weights="none", batch_size=8, progress=False, recipe="onecycle", epochs=1)
    train(ds, root / "prevrun", config)
    _user_files(root / "prevrun")
    for name in ("images.npy", "images.json"):  # no decode cache yet: info and others write one
        (ds / name).unlink(missing_ok=True)
    from galmet.io.atomic import atomic_write_text

    atomic_write_text(root / "prevdemo" / "galmet-demo.json", "{}")  # a previous demo's marker: galmet's
    replaceable.append("prevdemo/galmet-demo.json")
    _user_files(root / "prevdemo")
    cat_ds = root / "dlds"
    make_catalog(cat_ds, 40)
    _user_files(cat_ds)
    # Files a previous galmet run wrote and a new run of the same command replaces by design (a
    # previous synthesis is replaced as it goes; the demo marker is rewritten). Everything else
    # -- the previous *training* run included: it is replaced only once the new one has finished --
    # must survive a kill byte for byte.
    (root / "replaceable.txt").write_text("\n".join(replaceable))
    (root / "card.json").write_text(json.dumps(tiny_card()))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety-template")
    with pytest.MonkeyPatch.context() as mp:  # decode caches of read-only inputs: not in ~/.cache
        mp.setenv("GALMET_CACHE_DIR", str(root.parent / "safety-cache"))
        _build_template(root)
    return root


def _env(template: Path, dst: Path) -> Path:
    """A private copy of the template (large model files hard-linked: atomic replacement by
    galmet gives a new file and leaves the template's alone)."""

    def copy(src, target):
        if src.endswith(".pt"):
            os.link(src, target)
        else:
            shutil.copy2(src, target)

    shutil.copytree(template, dst, copy_function=copy)
    return dst


def _sql_csv(n: int = 30) -> bytes:
    from galmet.sdss.catalog import COLUMNS

    rng = np.random.default_rng(1)
    df = pd.DataFrame({name: rng.uniform(14, 17, n) for _, name in COLUMNS})
    df["objID"] = 1237663716556341422 + np.arange(n, dtype=np.int64)
    df["specObjID"] = df["objID"] + 3
    return ("#Table1\n" + df.to_csv(index=False)).encode()


#: command -> (argv with its output at its own input, argv with its output among user files).
#: "{e}" is the scenario's folder, "{url}" a loopback SkyServer.
SCENARIOS = {
    "demo": (
        ["demo", "--out", "{e}/ds", "--n", "60", "--size", "16", "--epochs", "1"],
        ["demo", "--out", "{e}/user", "--n", "60", "--size", "16", "--epochs", "1"],
    ),
    "synth": (
        ["synth", "--n", "4", "--size", "8", "--out", "{e}/ds", "--overwrite", "--no-progress"],
        ["synth", "--n", "4", "--size", "8", "--out", "{e}/user", "--overwrite", "--no-progress"],
    ),
    "catalog": (
        ["catalog", "--from-table", "{e}/ds/catalog.parquet", "--out", "{e}/ds", "--overwrite"],
        ["catalog", "--from-table", "{e}/table.parquet", "--out", "{e}/user", "--no-progress"],
    ),
    "download": (
        ["download", "{e}/dlds", "--base-url", "{url}", "--rate", "0", "--size", "16", "--no-progress"],
        ["download", "{e}/dlds", "--base-url", "{url}", "--rate", "0", "--size", "16", "--no-progress"],
    ),
    "info": (["info", "{e}/ds"], ["info", "{e}/dlds"]),
    "train": (
        ["train", "{e}/ds", "--out", "{e}/ds", *TINY, *ONECYCLE],
        ["train", "{e}/ds", "--out", "{e}/user", *TINY, *ONECYCLE],
    ),
    "lr-find": (
        ["lr-find", "{e}/ds", "--out", "{e}/ds", "--steps", "4", "--batch-size", "8", "--weights", "none"]
        + ["--arch", "resnet18", "--device", "cpu"],
        ["lr-find", "{e}/ds", "--out", "{e}/user", "--steps", "4", "--batch-size", "8", "--weights", "none"]
        + ["--arch", "resnet18", "--device", "cpu"],
    ),
    "predict": (
        ["predict", "{e}/run", "{e}/ds", "--out", "{e}/ds/catalog.parquet", "--device", "cpu"],
        ["predict", "{e}/run", "{e}/ds", "--out", "{e}/user/p.parquet", "--device", "cpu"],
    ),
    "ensemble": (
        ["ensemble", "{e}/run", "{e}/run2/model.pt", "--out", "{e}/run/model.pt"],
        ["ensemble", "{e}/run", "{e}/run2/model.pt", "--out", "{e}/user/ens.pt"],
    ),
    "evaluate": (
        ["evaluate", "{e}/pred.parquet", "--json", "{e}/pred.parquet"],
        ["evaluate", "{e}/pred.parquet", "--json", "{e}/user/metrics.json"],
    ),
    "baseline": (
        ["baseline", "{e}/ds", "--out", "{e}/ds", "--n-estimators", "5", "--jobs", "1"],
        ["baseline", "{e}/ds", "--out", "{e}/user", "--n-estimators", "5", "--jobs", "1"],
    ),
    "figures": (
        ["figures", "{e}/pred.parquet", "--dataset", "{e}/ds", "--out", "{e}/ds/images", "--split", "all"],
        ["figures", "{e}/pred.parquet", "--dataset", "{e}/ds", "--out", "{e}/user", "--split", "all"],
    ),
    "mzr": (
        ["mzr", "--metallicity", "{e}/pred.parquet", "--mass", "{e}/mass.parquet", "--out", "{e}/pred.parquet"],
        ["mzr", "--metallicity", "{e}/pred.parquet", "--mass", "{e}/mass.parquet", "--out", "{e}/user"]
        + ["--split", "all"],
    ),
    "report": (
        ["report", "{e}/prevrun", "--out", "{e}/prevrun/history.csv"],
        ["report", "{e}/prevrun", "--out", "{e}/user/report.html"],
    ),
    "resolution-study": (
        ["resolution-study", "{e}/ds", "--out", "{e}/ds", "--sizes", "8", "--min-input", "8", *TINY, *ONECYCLE],
        ["resolution-study", "{e}/ds", "--out", "{e}/user", "--sizes", "8", "--min-input", "8", *TINY, *ONECYCLE],
    ),
    "calibrate": (
        ["calibrate", "{e}/run", "{e}/pred.parquet", "--out", "{e}/run/model.pt"],
        ["calibrate", "{e}/run", "{e}/pred.parquet", "--out", "{e}/user/calibrated.pt", "--split", "all"]
        + ["--allow-test-rows"],  # the tiny dataset's test rows: calibrate reaches its write
    ),
    "models": (
        ["models", "pack", "{e}/run", "--card", "{e}/card.json", "--out", "{e}/run"],
        ["models", "pack", "{e}/run", "--card", "{e}/card.json", "--out", "{e}/user", "--overwrite"],
    ),
    "embed": (
        ["embed", "{e}/run", "{e}/ds", "--out", "{e}/ds/catalog.parquet", "--device", "cpu"],
        ["embed", "{e}/run", "{e}/ds", "--out", "{e}/user/emb.parquet", "--device", "cpu"],
    ),
    "domain-check": (
        ["domain-check", "{e}/ds", "{e}/ds/images", "--bootstrap", "10", "--out", "{e}/ds/catalog.parquet"],
        ["domain-check", "{e}/ds", "{e}/ds/images", "--bootstrap", "10", "--out", "{e}/user/weights.parquet"],
    ),
    "explain": (
        ["explain", "{e}/run", "{e}/ds", "--out", "{e}/ds/images", "--n", "2", "--device", "cpu"],
        ["explain", "{e}/run", "{e}/ds", "--out", "{e}/user", "--n", "2", "--device", "cpu"],
    ),
    "systematics": (
        ["systematics", "{e}/pred.parquet", "--dataset", "{e}/ds", "--out", "{e}/ds", "--split", "all"]
        + ["--bootstrap", "20"],
        ["systematics", "{e}/pred.parquet", "--dataset", "{e}/ds", "--out", "{e}/user", "--split", "all"]
        + ["--bootstrap", "20"],
    ),
}

#: command -> (argv of a run to kill, the folder whose first new entry triggers the kill).
KILLS = {
    "demo": (["demo", "--out", "{e}/prevdemo", "--n", "60", "--size", "16", "--epochs", "1"], "prevdemo/data/images"),
    "synth": (["synth", "--n", "40", "--size", "16", "--out", "{e}/prevsynth", "--overwrite"], "prevsynth/images"),
    "catalog": (["catalog", "--out", "{e}/user", "--base-url", "{url}", "--chunks", "4", "--rate", "0"], "user"),
    "download": (SCENARIOS["download"][1] + ["--workers", "2"], "dlds/images"),
    "info": (["info", "{e}/ds"], "ds"),
    "train": (
        ["train", "{e}/ds", "--out", "{e}/prevrun", "--overwrite", *TINY, "--recipe", "onecycle"],
        "prevrun/.galmet-staging",
    ),
    "lr-find": (SCENARIOS["lr-find"][1], "user"),
    "predict": (SCENARIOS["predict"][1], "user"),
    "ensemble": (SCENARIOS["ensemble"][1], "user"),
    "evaluate": (SCENARIOS["evaluate"][1], "user"),
    "baseline": (SCENARIOS["baseline"][1], "user"),
    "figures": (SCENARIOS["figures"][1], "user"),
    "mzr": (SCENARIOS["mzr"][1], "user"),
    "report": (SCENARIOS["report"][1], "user"),
    "resolution-study": (SCENARIOS["resolution-study"][1], "user"),
    "calibrate": (SCENARIOS["calibrate"][1], "user"),
    "embed": (SCENARIOS["embed"][1], "user"),
    "models": (SCENARIOS["models"][1], "user"),
    "domain-check": (SCENARIOS["domain-check"][1], "user"),
    "explain": (SCENARIOS["explain"][1], "user"),
    "systematics": (SCENARIOS["systematics"][1], "user"),
}


def test_every_writing_command_is_covered():
    from galmet.cli.main import _command_modules

    assert set(SCENARIOS) == set(KILLS) == {m.NAME for m in _command_modules()}


@pytest.mark.parametrize("command", sorted(SCENARIOS))
@pytest.mark.parametrize("case", ["own input", "user files"])
def test_output_at_own_input_or_among_user_files_changes_no_existing_file(template, tmp_path, command, case):
    from galmet.cli.main import main

    env = _env(template, tmp_path / "e")
    before = _files(env)
    argv = SCENARIOS[command][0 if case == "own input" else 1]
    with FaultyServer(latency=0.0) as srv:
        code = main([a.format(e=env, url=srv.url) for a in argv])
    assert code in (0, 2)
    assert changed_files(before, env) == []


def _kill_one(template: Path, root: Path, command: str, url: str) -> str:
    """Run one command in a child, SIGKILL it at its first write, and report what changed ("" = nothing)."""
    env = _env(template, root / command)
    replaceable = set((env / "replaceable.txt").read_text().splitlines())
    before = {rel: data for rel, data in _files(env).items() if rel not in replaceable}
    argv, watch = KILLS[command]
    watched = env / watch
    seen = {".galmet.lock"} | (set(os.listdir(watched)) if watched.is_dir() else set())  # a lock is no write yet
    proc = subprocess.Popen(
        [sys.executable, "-m", "galmet", *[a.format(e=env, url=url) for a in argv]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        start_new_session=True,  # its own process group: the kill takes its worker processes too
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if watched.is_dir() and set(os.listdir(watched)) - seen:
            break  # galmet has started writing: kill it now, mid-run
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    if not killed and proc.returncode not in (0, 2):
        return f"{command}: exited {proc.returncode} before the kill: {err.decode(errors='replace')[-300:]}"
    changed = changed_files(before, env)
    return f"{command}: changed {changed[:5]}" if changed else ""


def test_a_kill_mid_run_changes_no_existing_file(template, tmp_path):
    body = _sql_csv()
    with FaultyServer(latency=0.3, sql_responder=lambda cmd, n: (200, "text/csv", body)) as srv:
        with ThreadPoolExecutor(4) as pool:
            problems = list(pool.map(lambda c: _kill_one(template, tmp_path, c, srv.url), sorted(KILLS)))
    assert [p for p in problems if p] == []


# --- ownership: a user's file at an output name is refused; --overwrite replaces only it ---------

#: Commands that write files at names they choose inside the output the user named (the file
#: itself, or fixed names in the folder): each name is tested below.
NAMED_OUTPUTS = (
    "predict", "ensemble", "evaluate", "baseline", "figures", "mzr", "report", "resolution-study", "calibrate",
    "embed", "explain", "systematics", "lr-find", "domain-check",
)  # fmt: skip
#: Commands whose output is a folder with its own rules (tested one by one below).
FOLDER_OUTPUTS = ("demo", "synth", "catalog", "download", "train", "models")
#: Commands that write nothing the user names.
NO_OUTPUT = ("info",)


def _parser_commands() -> dict:
    import argparse

    from galmet.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_command_is_classified_and_every_writer_has_overwrite():
    choices = _parser_commands()
    assert set(NAMED_OUTPUTS) | set(FOLDER_OUTPUTS) | set(NO_OUTPUT) == set(choices)
    for name in (*NAMED_OUTPUTS, *FOLDER_OUTPUTS):
        assert any("--overwrite" in a.option_strings for a in choices[name]._actions), name


def _make_users(path: Path) -> bytes:
    """Turn galmet's file at ``path`` into a user's file of the same kind (other bytes, same
    magic); return its new bytes."""
    with open(path, "ab") as fh:
        fh.write(b"\n% a user's edit\n")
    return path.read_bytes()


def _refused(capsys, argv: list[str]) -> str:
    from galmet.cli.main import main

    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, (code, err)
    return err


@pytest.mark.parametrize("command", NAMED_OUTPUTS)
def test_a_user_file_at_any_output_name_is_refused_and_overwrite_replaces_only_those(
    template, tmp_path, capsys, command
):
    from galmet.cli.main import main
    from galmet.io.ownership import owned_by_galmet

    env = _env(template, tmp_path / "e")
    argv = [a.format(e=env, url="http://127.0.0.1:9") for a in SCENARIOS[command][1]]
    user = env / "user"
    theirs = _files(user)
    assert main(argv) == 0
    outputs = sorted(r for r in set(_files(user)) - set(theirs) if Path(r).name not in BOOKKEEPING)
    assert outputs
    for rel in outputs:  # each name alone: refused, and nothing changes
        path = user / rel
        galmets = path.read_bytes()
        _make_users(path)
        state = _files(env)
        from galmet.cli.main import main as run

        capsys.readouterr()
        code = run(argv)
        err = capsys.readouterr().err
        if "/" not in rel:  # a name the command writes directly: refused before anything
            assert code == 2 and err.count("\n") == 1 and "was not written by galmet" in err, (rel, err)
            assert "--overwrite" in err, err
        assert code in (0, 2) and path.read_bytes() == state[f"user/{rel}"], rel  # never replaced
        if code == 2:
            assert changed_files(state, env) == []
        path.write_bytes(galmets)  # galmet's bytes again (a later time): galmet's by content
        assert owned_by_galmet(path)
    top = [r for r in outputs if "/" not in r]
    users = {r: _make_users(user / r) for r in top}
    state = _files(env)
    assert main([*argv, "--overwrite"]) == 0
    assert all(owned_by_galmet(user / r) for r in top)  # replaced ...
    kept = {k: v for k, v in state.items() if k.removeprefix("user/") not in users}
    assert changed_files(kept, env) == []  # ... and nothing else is touched
    assert all(path.is_file() for path in (user / r for r in theirs))


def test_folder_outputs_never_adopt_or_replace_a_users_files(template, tmp_path, capsys):
    from galmet.cli.main import main

    env = _env(template, tmp_path / "e")
    user = env / "user"
    (user / "catalog.json").write_text("{}")
    state = _files(env)
    argv = ["catalog", "--from-table", f"{env}/table.parquet", "--out", str(user)]
    assert "catalog.json: exists and was not written by galmet" in _refused(capsys, argv)
    assert changed_files(state, env) == []
    assert main([*argv, "--overwrite"]) == 0 and changed_files(state, env) == ["user/catalog.json"]

    (env / "dlds" / "manifest.parquet").write_bytes((env / "pred.parquet").read_bytes())
    state = _files(env)
    argv = ["download", f"{env}/dlds", "--base-url", "http://127.0.0.1:9", "--rate", "0", "--size", "16"]
    assert "manifest.parquet was not written by galmet" in _refused(capsys, argv)
    assert changed_files(state, env) == []

    demo = env / "mydemo"
    demo.mkdir()
    (demo / "galmet-demo.json").write_text("{}")  # not galmet's marker: not a previous demo
    argv = ["demo", "--out", str(demo), "--n", "60", "--size", "16", "--epochs", "1"]
    assert "not a previous galmet demo" in _refused(capsys, argv)
    assert [p.name for p in demo.iterdir()] == ["galmet-demo.json"]

    assert "not a galmet synthesis" in _refused(capsys, ["synth", "--n", "4", "--out", str(user), "--overwrite"])
    (env / "prevrun" / "model.pt").write_bytes(b"PK\x03\x04 a user's zip")
    state = _files(env)
    argv = ["train", f"{env}/ds", "--out", f"{env}/prevrun", "--overwrite", *TINY, *ONECYCLE]
    assert "not written by galmet" in _refused(capsys, argv)
    assert changed_files(state, env) == []

    (user / "card.json").write_text("{}")  # a user's card.json where galmet models pack writes its card
    state = _files(env)
    argv = ["models", "pack", f"{env}/run", "--card", f"{env}/card.json", "--out", str(user)]
    assert "was not written by galmet" in _refused(capsys, argv)
    assert changed_files(state, env) == []
    assert main([*argv, "--overwrite"]) == 0 and changed_files(state, env) == ["user/card.json"]


#: Commands writing a file into a folder ``{e}/out`` that holds only a non-regular ledger.
LEDGER_WRITERS = {
    "evaluate": ["evaluate", "{e}/pred.parquet", "--json", "{e}/out/m.json"],
    "predict": ["predict", "{e}/run", "{e}/ds", "--out", "{e}/out/p.csv", "--device", "cpu"],
    "ensemble": ["ensemble", "{e}/run", "{e}/run2/model.pt", "--out", "{e}/out/ens.pt"],
    "report": ["report", "{e}/prevrun", "--out", "{e}/out/report.html"],
}


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
@pytest.mark.parametrize("command", sorted(LEDGER_WRITERS))
def test_a_ledger_that_is_not_a_regular_file_is_refused_never_followed_or_blocked_on(
    template, tmp_path, capsys, command, kind
):
    from galmet.io.ownership import LEDGER

    e = _env(template, tmp_path / "e")
    user = e / "notes.txt"
    user.write_text("my notes")
    ledger = e / "out" / LEDGER
    ledger.parent.mkdir()
    if kind == "symlink":
        ledger.symlink_to(user)
    elif kind == "fifo":
        os.mkfifo(ledger)
    else:
        ledger.mkdir()
    before = snapshot(e)

    def hung(*_):
        raise AssertionError(f"{command} blocked on the {kind} at {ledger}")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        err = _refused(capsys, [a.format(e=e) for a in LEDGER_WRITERS[command]])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert LEDGER in err and err.count(LEDGER) == 1 and user.read_text() == "my notes" and not changed_files(before, e)
    assert [p.name for p in ledger.parent.iterdir()] == [LEDGER]  # no output, no temporary file
