"""``galmet models`` (list, --json, show, pack) and model names on the command line (predict, calibrate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import galmet.registry.entries as entries_mod
from conftest import make_tiny_dataset, tiny_card
from galmet.cli.main import main


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import torch

    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    torch.manual_seed(0)
    meta = {"targets": ["oh_p50"], "image_size": 16, "target_shift": [8.7], "target_scale": [0.1]}
    return save_bundle(tmp_path_factory.mktemp("bundle") / "model.pt", build_model("resnet18"), meta)


def _card(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "card.json"
    path.write_text(json.dumps({**tiny_card(), **changes}))
    return path


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def shipped(tmp_path, bundle, monkeypatch, capsys) -> Path:
    """The model 'tiny' shipped in a package folder of models (made by galmet models pack)."""
    root = tmp_path / "models"
    code, _, err = _run(capsys, ["models", "pack", bundle, "--card", _card(tmp_path), "--out", root / "tiny"])
    assert code == 0, err
    monkeypatch.setattr(entries_mod, "shipped_root", lambda: root)
    return root / "tiny"


def test_models_lists_shows_and_prints_json(shipped, capsys):
    code, out, _ = _run(capsys, ["models"])
    header, row = out.splitlines()
    assert code == 0 and header.split()[:3] == ["name", "version", "kind"]
    assert row.split()[:6] == ["tiny", "0.1", "shipped", "SDSS", "DR14", "gri"] and "0.200" in row
    assert row.endswith(str(shipped / "model.pt"))
    code, out, _ = _run(capsys, ["models", "--json"])
    (item,) = json.loads(out)
    assert item["kind"] == "shipped" and item["card"]["metrics"]["rmse_ci"] == [0.15, 0.25]
    assert item["card"]["weights"]["size"] == (shipped / "model.pt").stat().st_size
    code, out, _ = _run(capsys, ["models", "show", "tiny"])
    assert code == 0 and out.startswith("tiny 0.1\n") and "68% coverage 0.7" in out


def test_an_unknown_name_exits_2_listing_the_known_ones(shipped, tmp_path, capsys):
    ds = make_tiny_dataset(tmp_path / "ds", n=8, size=16)
    for argv in (["models", "show", "tinny"], ["predict", "tinny", ds, "--out", tmp_path / "p.csv"]):
        code, _, err = _run(capsys, argv)
        assert code == 2 and err.count("\n") == 1 and "tinny: no such model bundle" in err
        assert "(known models: tiny)" in err
    assert not (tmp_path / "p.csv").exists()


def test_predict_and_calibrate_take_a_model_name(shipped, tmp_path, capsys):
    ds = make_tiny_dataset(tmp_path / "ds", n=24, size=16, split=True)
    before = {p.name: p.read_bytes() for p in shipped.iterdir()}
    pred = tmp_path / "pred.parquet"
    code, _, err = _run(capsys, ["predict", "tiny", ds, "--out", pred, "--device", "cpu", "--no-tta"])
    assert code == 0, err
    from galmet.io.tables import read_table

    assert read_table(pred).attrs["provenance"]["model_name"] == "tiny 0.1"  # provenance names the model
    argv = ["calibrate", "tiny", pred, "--out", tmp_path / "cal.pt", "--split", "all", "--allow-test-rows"]
    code, _, err = _run(capsys, argv)
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in shipped.iterdir()} == before  # the package folder is untouched
    code, _, err = _run(capsys, [*argv[:3], "--out", shipped / "model.pt", *argv[5:], "--overwrite"])
    assert code == 2 and err.count("\n") == 1 and "input" in err, err


def test_pack_half_round_trip(bundle, tmp_path, capsys):
    from galmet.nn.bundle import load_model

    out = tmp_path / "packed"
    code, text, err = _run(capsys, ["models", "pack", bundle, "--card", _card(tmp_path), "--out", out, "--half"])
    assert code == 0, err
    entry = json.loads(text[text.index("{") :])
    card = json.loads((out / "card.json").read_text())
    assert card["weights"]["file"] == "model.pt" and card["weights"]["size"] == (out / "model.pt").stat().st_size
    assert entry["sha256"] == card["weights"]["sha256"] and entry["url"].startswith("REPLACE")
    assert json.loads((out / "entry.json").read_text()) == entry
    code, shown, _ = _run(capsys, ["models", "show", out])  # a model folder by path
    assert code == 0 and shown.startswith("tiny 0.1\n") and card["weights"]["sha256"] in shown
    assert (out / "model.pt").stat().st_size < 0.6 * bundle.stat().st_size
    full, half = load_model(bundle), load_model(out)
    assert half.card["name"] == "tiny" and next(half.net.parameters()).dtype.is_floating_point
    images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    diff = np.abs(np.asarray(full.predict(images, False)) - np.asarray(half.predict(images, False)))
    assert 0 < diff.max() < 1e-3  # float16 weights: not the same numbers, the same predictions to 1e-3 dex
    code, _, err = _run(capsys, ["models", "pack", bundle, "--card", _card(tmp_path), "--out", out])  # its own files
    assert code == 0, err


@pytest.mark.parametrize(
    "case, message",
    [
        ("user file", "was not written by galmet"),
        ("input folder", "an input of this command"),
        ("bad card", "metrics.rmse must be"),
        ("card misfit", "imaging.image_size is 32, but the bundle's is 16"),
        ("no card", "give --card CARD.json and --out DIR"),
        ("half without pack", "--half applies to 'galmet models pack' only"),
    ],
)
def test_pack_refusals_touch_nothing(bundle, tmp_path, capsys, case, message):
    import shutil

    src = tmp_path / "src" / "model.pt"
    src.parent.mkdir()
    shutil.copy(bundle, src)
    out = tmp_path / "out"
    card = _card(tmp_path)
    argv = ["models", "pack", src, "--card", card, "--out", out]
    if case == "user file":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "input folder":
        argv[-1] = src.parent
    elif case == "bad card":
        card = _card(tmp_path, metrics={**tiny_card()["metrics"], "rmse": -1})
    elif case == "card misfit":
        card = _card(tmp_path, imaging={**tiny_card()["imaging"], "image_size": 32})
    elif case == "no card":
        argv = argv[:4] + argv[6:]
    else:
        argv = ["models", "--half"]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    code, _, err = _run(capsys, argv)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_predict_at_positions_takes_a_model_name(shipped, tmp_path, capsys):
    from faulty_server import FaultyServer
    from galmet.io.tables import read_table

    out = tmp_path / "p.parquet"
    with FaultyServer(latency=0.0) as srv:
        argv = ["predict", "tiny", "--ra", "10", "--dec", "10", "--out", out, "--base-url", srv.url, "--device", "cpu"]
        code, _, err = _run(capsys, [*argv, "--no-tta"])
    assert code == 0, err
    assert read_table(out).attrs["provenance"]["model_name"] == "tiny 0.1"


def test_embed_and_ensemble_take_a_model_name(shipped, bundle, tmp_path, capsys):
    ds = make_tiny_dataset(tmp_path / "ds", n=8, size=16)
    code, _, err = _run(capsys, ["embed", "tiny", ds, "--out", tmp_path / "emb.parquet", "--device", "cpu"])
    assert code == 0, err
    code, _, err = _run(capsys, ["ensemble", "tiny", bundle, "--out", tmp_path / "ens.pt"])
    assert code == 2 and "has the same weights as" in err  # the name resolved to the same network


def test_pack_into_the_package_models_folder_needs_the_cards_name(bundle, tmp_path, monkeypatch, capsys):
    """A shipped folder named otherwise than its card would stop every lookup: refused before any write."""
    import galmet.runs.pack as pack_mod

    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setattr(pack_mod, "shipped_root", lambda: root)
    for out in (root / "wrong", root):
        code, _, err = _run(capsys, ["models", "pack", bundle, "--card", _card(tmp_path), "--out", out])
        assert code == 2 and "a shipped model's folder must be" in err and len(err.strip().splitlines()) == 1
    assert list(root.iterdir()) == []
    code, _, err = _run(capsys, ["models", "pack", bundle, "--card", _card(tmp_path), "--out", root / "tiny"])
    assert code == 0, err
