"""Issue 21, class B: every file galmet loads goes through the safe loader, and cached ImageNet
weights are checked against the sha256 prefix in their name every time, never only on download.

A pickle payload whose unpickling would create a file is planted on every loading surface (the
torch hub cache, --weights PATH, model bundles, ensemble members, calibrate's input, a training
checkpoint, a YAML config, the decode cache): each is refused and the file is never created."""

from __future__ import annotations

import hashlib
import io
import json
import pickle

import numpy as np
import pytest
import torch
import torchvision

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.errors import ConfigError
from galmet.nn import weights
from galmet.nn.net import build_model
from galmet.nn.weights import hash_prefix, imagenet_cache_file, imagenet_state_dict


class _Payload:
    """Unpickling this creates the file ``marker`` (what a hostile pickle could do instead)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plain_pickle(path, marker):
    path.write_bytes(pickle.dumps({"conv1.weight": _Payload(marker)}, protocol=2))
    return path


def _torch_zip(path, marker):
    """A torch.save archive whose data.pkl holds the payload (torch.save pickles it as is)."""
    torch.save({"format": "galmet-model-bundle", "state_dict": _Payload(marker)}, path)
    return path


PAYLOADS = {"pickle": _plain_pickle, "torch-zip": _torch_zip}


# --- the torch hub cache -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_planted_imagenet_cache_file_is_refused_in_the_library(payload, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GALMET_OFFLINE", raising=False)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    url, cached = imagenet_cache_file("resnet18")
    cached.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    PAYLOADS[payload](cached, marker)
    with pytest.raises(ConfigError) as err:
        build_model("resnet18", weights="imagenet")
    msg = str(err.value)
    assert not marker.exists()
    assert "\n" not in msg and str(cached) in msg and "sha256" in msg and f"rm {cached}" in msg
    assert cached.exists()  # refused, not deleted: galmet did not write it


def test_a_planted_imagenet_cache_file_is_refused_by_train(tmp_path, monkeypatch, capsys):
    """The default --weights imagenet of `galmet train` reads the cache: a planted file runs nothing."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    ds = make_tiny_dataset(tmp_path / "ds", n=16, size=16)
    marker = tmp_path / "pwned"
    for arch in ("resnet18", "resnet34"):  # (whichever the default is)
        url, cached = imagenet_cache_file(arch)
        cached.parent.mkdir(parents=True, exist_ok=True)
        _plain_pickle(cached, marker)
    code = main(
        ["train", str(ds), "--out", str(tmp_path / "run"), "--recipe", "onecycle", "--epochs", "1", "--device", "cpu"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "sha256" in err, err
    assert not marker.exists()


def _no_network(*a, **k):
    raise AssertionError("tried to download")


def _stage_weights(tmp_path, monkeypatch, arch="resnet18"):
    """A real state dict saved under a URL whose name carries its sha256 prefix; returns (state, cached)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(3)
    state = getattr(torchvision.models, arch)().state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    monkeypatch.setattr(weights, "imagenet_url", lambda a: f"https://weights.invalid/{a}-{digest[:8]}.pth")
    return state, buf.getvalue()


def test_a_cache_file_with_the_promised_hash_loads(tmp_path, monkeypatch):
    state, data = _stage_weights(tmp_path, monkeypatch)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    url, cached = imagenet_cache_file("resnet18")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    got = imagenet_state_dict("resnet18")
    assert torch.equal(got["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    cached.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped: refused every time
    with pytest.raises(ConfigError, match="does not start with"):
        imagenet_state_dict("resnet18")


def test_an_absent_file_is_downloaded_with_its_hash_then_verified(tmp_path, monkeypatch):
    state, data = _stage_weights(tmp_path, monkeypatch)
    monkeypatch.delenv("GALMET_OFFLINE", raising=False)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append(hash_prefix)
        open(dst, "wb").write(data)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    got = imagenet_state_dict("resnet18")
    assert calls == [hash_prefix(weights.imagenet_url("resnet18"))]
    assert torch.equal(got["fc.weight"], state["fc.weight"])


def test_hash_prefix_follows_torchvision_names():
    assert hash_prefix("https://download.pytorch.org/models/resnet34-b627a593.pth") == "b627a593"
    for url in ("https://x/resnet34.pth", "https://x/weights-xyz.pth"):
        with pytest.raises(ConfigError, match="no sha256 prefix"):
            hash_prefix(url)
    for arch in ("resnet18", "resnet34", "resnet50"):  # the real URLs all carry one
        assert len(hash_prefix(weights.imagenet_url(arch))) >= 8


# --- every other loading surface ------------------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    from galmet.nn.bundle import save_bundle

    root = tmp_path_factory.mktemp("good")
    ds = make_tiny_dataset(root / "ds", n=16, size=16, split=True)
    bundle = save_bundle(root / "run" / "model.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    import pandas as pd

    cat = pd.read_parquet(ds / "catalog.parquet")
    cat[["objID", "oh_p50", "split"]].assign(oh_p50_pred=cat["oh_p50"]).to_csv(root / "pred.csv", index=False)
    return {"ds": ds, "model": bundle, "pred": root / "pred.csv"}


def _evil_run(tmp_path, marker, payload):
    """A copy of nothing but a training run folder whose checkpoint is the payload."""
    run = tmp_path / "run"
    run.mkdir()
    PAYLOADS[payload](run / "checkpoint.pt", marker)
    return run


# surface -> argv (with {evil}: the planted file, {tmp}, and the good fixtures)
SURFACES = {
    "predict-model": ["predict", "{evil}", "{ds}", "--out", "{tmp}/p.csv", "--device", "cpu"],
    "calibrate-model": ["calibrate", "{evil}", "{pred}", "--out", "{tmp}/m2.pt"],
    "embed-model": ["embed", "{evil}", "{ds}", "--out", "{tmp}/e.parquet"],
    "explain-model": ["explain", "{evil}", "{ds}", "--out", "{tmp}/x"],
    "ensemble-member": ["ensemble", "{model}", "{evil}", "--out", "{tmp}/ens.pt"],
    "train-weights": ["train", "{ds}", "--out", "{tmp}/r", "--weights", "{evil}", "--arch", "resnet18"],
    "lr-find-weights": ["lr-find", "{ds}", "--out", "{tmp}/lr", "--weights", "{evil}", "--arch", "resnet18"],
}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_a_pickle_payload_is_refused_and_runs_nothing(surface, payload, good, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = PAYLOADS[payload](tmp_path / "evil.pt", marker)
    argv = [a.format(evil=evil, tmp=tmp_path, **good) for a in SURFACES[surface]]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not marker.exists()
    assert "evil.pt" in err
    assert "weights_only" not in err and "False" not in err  # never relay torch's unsafe advice


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_checkpoint_payload_is_refused_on_resume(payload, tmp_path):
    from galmet.training.checkpoint import read_checkpoint

    marker = tmp_path / "pwned"
    run = _evil_run(tmp_path, marker, payload)
    with pytest.raises(ConfigError, match="checkpoint") as err:
        read_checkpoint(run / "checkpoint.pt")
    assert not marker.exists()
    assert "weights_only" not in str(err.value) and "False" not in str(err.value)


# torch's refusals under weights_only=True: each carries its advice to load with weights_only=False
TORCH_REFUSALS = {
    "unsafe-global": pickle.UnpicklingError(
        "Weights only load failed. This file can still be loaded, to do so you have two options: (1) "
        "Re-running `torch.load` with `weights_only` set to `False` will likely succeed. WeightsUnpickler "
        "error: Unsupported global: GLOBAL builtins.open was not an allowed global by default."
    ),
    "blocked-module": pickle.UnpicklingError(
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely "
        "succeed, but it can result in arbitrary code execution. Trying to load unsupported GLOBAL posix.system "
        "whose module posix is blocked."
    ),
    "runtime": RuntimeError("Weights only load failed. Re-running `torch.load` with `weights_only` set to `False`"),
}


@pytest.mark.parametrize("refusal", sorted(TORCH_REFUSALS))
@pytest.mark.parametrize("where", ["safe_load", "checkpoint"])
def test_torch_refusal_advice_is_never_relayed(refusal, where, tmp_path, monkeypatch):
    from galmet.training.checkpoint import read_checkpoint

    path = tmp_path / "f.pt"
    torch.save({"a": torch.zeros(1)}, path)

    def refuse(*args, **kwargs):
        raise TORCH_REFUSALS[refusal]

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(ConfigError) as err:
        weights.safe_load(path, "model bundle") if where == "safe_load" else read_checkpoint(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "plain-weights" in msg
    assert "weights_only" not in msg and "False" not in msg and "Re-running" not in msg


def test_a_yaml_config_with_a_python_tag_runs_nothing(good, tmp_path, capsys):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"recipe: paper\nlr: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    code = main(["train", str(good["ds"]), "--out", str(tmp_path / "r"), "--config", str(cfg)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "c.yaml" in err, err
    assert not marker.exists()


def test_a_decode_cache_holding_objects_is_never_unpickled(tmp_path, monkeypatch):
    """An images.npy of Python objects beside a forged key: np.load refuses to unpickle it."""
    from galmet.data import cache

    marker = tmp_path / "pwned"
    loc = tmp_path / "images.npy"
    np.save(loc, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    key = {"format": "x", "n": 1, "rows_sha256": "0"}
    meta = {"key": key, "size": 1, "npy": cache.npy_fingerprint(loc)}
    (tmp_path / cache.cache_key_file("images.npy")).write_text(json.dumps(meta))
    assert cache.open_cache(loc, key) is None
    assert not marker.exists()


def test_no_loader_in_src_unpickles_unchecked():
    """Every torch.load in the package says weights_only=True; np.load never allows pickles; YAML is
    safe_load only; no pickle/joblib/read_pickle/torch.hub.load_state_dict_from_url at all."""
    from conftest import ROOT

    bad = []
    for path in (ROOT / "src" / "galmet").rglob("*.py"):
        text = path.read_text()
        for i, line in enumerate(text.splitlines(), 1):
            code = line.split("#")[0]
            if "torch.load(" in code and "weights_only=True" not in code:
                bad.append(f"{path.name}:{i}: {line.strip()}")
            if "np.load(" in code and "allow_pickle=False" not in code:
                bad.append(f"{path.name}:{i}: {line.strip()}")
            if "yaml.load(" in code or "yaml.unsafe_load" in code or "yaml.full_load" in code:
                bad.append(f"{path.name}:{i}: {line.strip()}")
            for name in ("pickle.load", "joblib", "read_pickle", "load_state_dict_from_url", "get_state_dict("):
                if name in code:
                    bad.append(f"{path.name}:{i}: {line.strip()}")
    assert not bad, bad


def test_the_cache_check_uses_the_real_torchvision_file_names(tmp_path, monkeypatch):
    """The cache path is torch.hub.get_dir()/checkpoints/<the URL's file name>, as torchvision's."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    url, cached = imagenet_cache_file("resnet34")
    assert cached == tmp_path / "t" / "hub" / "checkpoints" / "resnet34-b627a593.pth"
    assert url.endswith("/resnet34-b627a593.pth")
