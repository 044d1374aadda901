"""Every command checks all of its options before its first write (issue 21, class E).

One invalid option per case (a URL that is not http(s), an output suffix of another format, a
number out of range, a bundle whose imaging the cutout service cannot give, weights that cannot be
had): exit 2, one line that names only options the command has, nothing written in the output
folder and the inputs untouched. Every command of the parser has a case, so a new command needs
one. Where a corrected command is cheap, it then succeeds: no state a failed check left blocks it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil

import pandas as pd
import pytest
import torch

from conftest import changed_files, make_tiny_dataset, snapshot, tiny_card
from galmet.cli.main import build_parser, main

#: command -> the invalid invocations ({out}: an empty folder that must stay empty; the rest: inputs).
CASES: dict[str, list[list[str]]] = {
    "demo": [["--out", "{out}/demo", "--n", "10"]],
    "catalog": [
        ["--out", "{out}/cat", "--base-url", "ftp://skyserver.example.org/dr14"],
        ["--out", "{out}/cat", "--from-table", "{world}/no_objid.csv"],
    ],
    "download": [["{ds}", "--base-url", "ftp://skyserver.example.org/dr14"], ["{ds}", "--size", "4096"]],
    "synth": [["--out", "{out}/synth", "--n", "4", "--test", "7"]],
    "info": [["{ds}", "--target", "no_such_column"]],
    "train": [
        ["{ds}", "--out", "{out}/run", "--device", "cpu"],  # ImageNet weights that cannot be had (offline)
        ["{ds}", "--out", "{out}/cv", "--folds", "2", "--device", "cpu"],
        ["{ds}", "--out", "{out}/run", "--crop", "64", "--weights", "none"],
    ],
    "lr-find": [["{ds}", "--out", "{out}/lr", "--device", "cpu"]],
    "resolution-study": [
        ["{ds}", "--out", "{out}/res", "--sizes", "16,8", "--device", "cpu"],
        ["{ds}", "--out", "{out}/res", "--sizes", "16,abc", "--weights", "none"],
    ],
    "ensemble": [["{bundle}", "{other}", "--out", "{out}/ensemble.txt"]],
    "calibrate": [["{bundle}", "{preds}", "--out", "{out}/calibrated.txt", "--device", "cpu"]],
    "predict": [
        ["{bundle}", "{ds}", "--out", "{out}/pred.txt", "--device", "cpu"],
        ["{bundle}", "--ra", "150", "--dec", "2", "--out", "{out}/pred.csv", "--base-url", "ftp://example.org/dr14"],
        ["{bundle}", "--ra", "150", "--dec", "2", "--out", "{out}/pred.dat"],
        ["{bundle}", "--ra", "150", "--dec", "2", "--out", "{out}/pred.csv", "--max-consecutive-failures", "0"],
        ["{big}", "--ra", "150", "--dec", "2", "--out", "{out}/pred.csv"],  # a 4096-pixel bundle
    ],
    "embed": [["{bundle}", "{ds}", "--out", "{out}/embedding.txt", "--device", "cpu"]],
    "models": [
        ["pack", "{bundle}", "--card", "{world}/no_card.json", "--out", "{out}/packed"],
        ["pack", "{bundle}", "--card", "{world}/card32.json", "--out", "{out}/packed", "--half"],  # imaging misfit
        ["pack", "{bundle}", "--out", "{out}/packed"],
        ["show", "no_such_model"],
    ],
    "evaluate": [["{preds}", "--json", "{out}/metrics.txt"]],
    "baseline": [["{ds}", "--out", "{out}/baseline", "--bands", "xyz"]],
    "figures": [["{preds}", "--out", "{out}/figures", "--resolution", "{world}/no_resolution.csv"]],
    "systematics": [["{preds}", "--dataset", "{ds}", "--out", "{out}/sys", "--bins", "0"]],
    "mzr": [["--metallicity", "{preds}", "--mass", "{world}/no_mass.csv", "--out", "{out}/mzr"]],
    "explain": [["{bundle}", "{ds}", "--out", "{out}/explain", "--layer", "no_layer", "--device", "cpu"]],
    "report": [["{world}/run", "--out", "{out}/report.txt"]],
    "domain-check": [
        ["{ds}", "{ds}", "--train-split", "train", "--target-split", "test", "--out", "{out}/weights.txt"],
        ["{ds}", "{ds}", "--out", "{out}/weights.parquet"],
    ],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    root = tmp_path_factory.mktemp("world")
    ds = make_tiny_dataset(root / "ds", split=True)
    torch.manual_seed(0)
    net = build_model("resnet18", n_targets=1)
    # shifted into oh_p50's range: an untrained net's ~0.4 is not a prediction of it (label rules)
    bundle = save_bundle(
        root / "run" / "model.pt",
        net,
        {"targets": ["oh_p50"], "image_size": 16, "target_shift": [8.7], "target_scale": [0.1]},
    )
    big = save_bundle(root / "big" / "model.pt", net, {"targets": ["oh_p50"], "image_size": 4096})
    other = save_bundle(
        root / "other" / "model.pt", build_model("resnet18", n_targets=1), {"targets": ["oh_p50"], "image_size": 16}
    )
    preds = root / "preds.parquet"
    argv = ["predict", str(bundle), str(ds), "--out", str(preds), "--device", "cpu", "--no-tta", "--no-progress"]
    assert main(argv) == 0
    pd.DataFrame({"x": [1.0]}).to_csv(root / "no_objid.csv", index=False)
    (root / "card32.json").write_text(json.dumps(tiny_card(image_size=32)))
    return {"world": root, "ds": ds, "bundle": bundle, "other": other, "big": big, "preds": preds}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No ImageNet weights in reach: an empty torch cache, and no downloads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("GALMET_OFFLINE", "1")


def _options(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {o for a in sub.choices[command]._actions for o in a.option_strings}


def _fill(argv: list[str], paths: dict) -> list[str]:
    return [a.format(**{k: str(v) for k, v in paths.items()}) for a in argv]


def test_every_command_has_a_case():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(CASES) == set(sub.choices)


@pytest.mark.parametrize(
    "command, argv", [(c, a) for c, cases in CASES.items() for a in cases], ids=lambda x: str(x)[:40]
)
def test_an_invalid_option_fails_before_any_write(command, argv, world, tmp_path, capsys, offline):
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(world["world"])
    code = main([command, *_fill(argv, {**world, "out": out})])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"galmet {command}: error: "), err
    named = set(re.findall(r"(?<![\w/.-])--[a-z][a-z0-9-]*", lines[0]))
    assert named <= _options(command), f"{lines[0]} names options {command} does not have: {named - _options(command)}"
    assert not any(out.iterdir()), sorted(p.name for p in out.rglob("*"))
    assert not changed_files(before, world["world"]) and snapshot(world["world"]).keys() == before.keys()


def test_a_bundle_size_the_service_cannot_give_names_the_bundle_field(world, tmp_path, capsys):
    code = main(["predict", str(world["big"]), "--ra", "150", "--dec", "2", "--out", str(tmp_path / "p.csv")])
    line = capsys.readouterr().err.strip()
    assert code == 2 and "the bundle's image_size is 4096 pixels" in line and "--size" not in line


@pytest.mark.parametrize(
    "bad, good",
    [
        (["--base-url", "ftp://example.org/dr14"], ["--base-url", "{server}"]),
        (["--max-consecutive-failures", "0"], ["--max-consecutive-failures", "3"]),
    ],
)
def test_the_corrected_positions_command_then_succeeds(world, tmp_path, capsys, bad, good):
    from faulty_server import FaultyServer

    out = tmp_path / "pred.csv"
    base = ["predict", str(world["bundle"]), "--ra", "150", "--dec", "2", "--out", str(out)]
    fast = ["--rate", "0", "--device", "cpu", "--no-tta", "--no-progress"]
    with FaultyServer() as srv:
        extra = [] if "--base-url" in good else ["--base-url", srv.url]
        assert main(base + fast + extra + bad) == 2
        assert not out.exists() and not list(tmp_path.glob("*.galmet-work"))  # no state left to refuse the rerun
        capsys.readouterr()
        assert main(base + fast + extra + [g.format(server=srv.url) for g in good]) == 0, capsys.readouterr().err
    assert pd.read_csv(out)["status"].tolist() == ["ok"]


@pytest.mark.parametrize(
    "command, bad, good",
    [
        ("evaluate", ["{preds}", "--json", "{out}/metrics.txt"], ["{preds}", "--json", "{out}/metrics.json"]),
        ("ensemble", ["{bundle}", "{other}", "--out", "{out}/e.txt"], ["{bundle}", "{other}", "--out", "{out}/e.pt"]),
    ],
)
def test_other_corrected_commands_then_succeed(command, bad, good, world, tmp_path, capsys):
    paths = {**world, "out": tmp_path}
    assert main([command, *_fill(bad, paths)]) == 2
    capsys.readouterr()
    assert main([command, *_fill(good, paths)]) == 0, capsys.readouterr().err
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("device", ["tpu", "cuda"])
def test_the_library_refuses_a_device_before_the_work_folder(world, tmp_path, device):
    import galmet

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = tmp_path / "pred.csv"
    with pytest.raises(galmet.ConfigError) as info:
        galmet.predict_positions(
            world["bundle"], pd.DataFrame({"ra": [150.0], "dec": [2.0]}), out=out, device=device, base_url="http://h"
        )
    assert info.value.param == "device" and not any(tmp_path.iterdir())
