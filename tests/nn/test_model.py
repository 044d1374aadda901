"""Model: head structure, layer groups, freezing, weights (ImageNet offline, local), bundles."""

from __future__ import annotations

import hashlib
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from galmet.errors import ConfigError, DataError, for_flags
from galmet.nn import weights
from galmet.nn.augment import dihedral_view, to_model_input
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.inference import GalmetModel
from galmet.nn.net import AdaptiveConcatPool2d, build_model, freeze_body, layer_groups
from galmet.nn.weights import imagenet_cache_file


@pytest.fixture
def net():
    torch.manual_seed(0)
    return build_model("resnet18", n_targets=1, weights="none")


def _images(n=6, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("arch,channels", [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)])
def test_head_structure(arch, channels):
    m = build_model(arch, n_targets=3)
    kinds = [type(layer) for layer in m.head]
    assert kinds == [
        AdaptiveConcatPool2d,
        nn.Flatten,
        nn.BatchNorm1d,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.BatchNorm1d,
        nn.Dropout,
        nn.Linear,
    ]
    assert m.head[2].num_features == 2 * channels and m.head[4].in_features == 2 * channels
    assert m.head[4].out_features == 512 and m.head[8].out_features == 3
    assert (m.head[3].p, m.head[7].p) == (0.25, 0.5)
    assert list(dict(m.body.named_children())) == [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    ref = getattr(torchvision.models, arch)()
    assert isinstance(m.body.layer4, type(ref.layer4))


def test_concat_pool_is_max_then_avg():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    out = AdaptiveConcatPool2d()(x).flatten(1)
    assert torch.equal(out[:, :3], x.amax((2, 3))) and torch.allclose(out[:, 3:], x.mean((2, 3)))


def test_forward_shape(net):
    net.eval()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 1)


def test_layer_groups_cover_every_parameter_once(net):
    groups = layer_groups(net)
    assert len(groups) == 3
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))
    assert {id(p) for p in net.body.conv1.parameters()} <= {id(p) for p in groups[0]}
    assert {id(p) for p in net.body.layer2.parameters()} <= {id(p) for p in groups[0]}
    assert {id(p) for p in net.body.layer4.parameters()} <= {id(p) for p in groups[1]}
    assert {id(p) for p in groups[2]} == {id(p) for p in net.head.parameters()}


def test_freeze_body_freezes_params_and_bn_stats(net):
    freeze_body(net, True)
    net.train()
    assert not any(p.requires_grad for p in net.body.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    before = net.body.bn1.running_mean.clone()
    head_before = net.head[2].running_mean.clone()
    net(torch.randn(4, 3, 32, 32) + 3)
    assert torch.equal(net.body.bn1.running_mean, before)  # frozen body BN: eval mode
    assert not torch.equal(net.head[2].running_mean, head_before)  # head BN trains
    freeze_body(net, False)
    net.train()
    assert all(p.requires_grad for p in net.parameters()) and net.body.bn1.training
    net(torch.randn(4, 3, 32, 32) + 3)
    assert not torch.equal(net.body.bn1.running_mean, before)


def _fake_imagenet_file(tmp_path, monkeypatch, arch="resnet18"):
    """A random state dict in the torch cache under a URL whose name carries its own sha256 prefix."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(42)
    state = getattr(torchvision.models, arch)().state_dict()
    staged = tmp_path / "staged.pth"
    torch.save(state, staged)
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()
    monkeypatch.setattr(weights, "imagenet_url", lambda a: f"https://weights.invalid/{a}-{digest[:8]}.pth")
    url, cached = imagenet_cache_file(arch)
    assert str(cached).startswith(str(tmp_path / "torch")) and cached.name == os.path.basename(url)
    cached.parent.mkdir(parents=True)
    staged.rename(cached)
    return state


def test_imagenet_weights_from_cache_offline(tmp_path, monkeypatch):
    state = _fake_imagenet_file(tmp_path, monkeypatch)

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    m = build_model("resnet18", weights="imagenet")
    assert torch.equal(m.body.conv1.weight, state["conv1.weight"])
    assert torch.equal(m.body.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])


def test_imagenet_weights_absent_offline_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("GALMET_OFFLINE", "1")
    with pytest.raises(ConfigError) as err:
        build_model("resnet34", weights="imagenet")
    msg = str(err.value)
    url, cached = imagenet_cache_file("resnet34")
    assert "\n" not in msg and url in msg and str(cached) in msg and err.value.param == "weights"
    assert "--weights" in for_flags(err.value, {"weights": "--weights"})  # what the command line says


def test_imagenet_download_failure_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("GALMET_OFFLINE", raising=False)

    def refused(url, dst, *a, **k):  # stands in for the network: nothing leaves this machine
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refused)
    with pytest.raises(ConfigError) as err:
        build_model("resnet18", weights="imagenet")
    msg = str(err.value)
    assert "\n" not in msg and "URLError" in msg and imagenet_cache_file("resnet18")[0] in msg


def test_local_weights_path_torchvision_and_bundle(tmp_path):
    torch.manual_seed(1)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, tmp_path / "r18.pth")
    m = build_model("resnet18", weights=tmp_path / "r18.pth")
    assert torch.equal(m.body.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    save_bundle(tmp_path / "b.pt", m, {"targets": ["oh_p50"], "image_size": 32})
    m2 = build_model("resnet18", n_targets=2, weights=str(tmp_path / "b.pt"))
    assert torch.equal(m2.body.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    with pytest.raises(ConfigError, match="do not fit a resnet34 body"):
        build_model("resnet34", weights=tmp_path / "r18.pth")
    with pytest.raises(ConfigError, match="no such weights file"):
        build_model("resnet18", weights=tmp_path / "nope.pth")


def test_unknown_arch():
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_model("vgg16")


def _bundle(tmp_path, net, **meta):
    meta = {"targets": ["oh_p50"], "image_size": 32, "recipe": "test", **meta}
    return save_bundle(tmp_path / "model.pt", net, meta)


def test_bundle_round_trip_identical_predictions(tmp_path, net):
    net.eval()
    net.head[-1].bias.data.fill_(8.7)
    path = _bundle(tmp_path, net, target_shift=[0.5], target_scale=[2.0])
    model = load_model(path)
    assert isinstance(model, GalmetModel) and model.targets == ["oh_p50"] and model.image_size == 32
    assert model.meta["norm_mean"] == [0.485, 0.456, 0.406] and model.meta["recipe"] == "test"
    imgs = _images()
    with torch.inference_mode():
        raw = net(to_model_input(torch.from_numpy(imgs))).numpy()[:, 0]
    pred = model.predict(imgs, tta=False, device="cpu")
    assert pred.shape == (6,)
    np.testing.assert_allclose(pred, raw * 2.0 + 0.5, rtol=1e-5)
    again = load_model(tmp_path)  # a run directory holding model.pt works too
    np.testing.assert_array_equal(again.predict(imgs, tta=False, device="cpu"), pred)


def test_tta_is_mean_of_the_eight_views(tmp_path, net):
    model = load_model(_bundle(tmp_path, net))
    imgs = _images(5)
    pred, std = model.predict(imgs, tta=True, batch_size=2, device="cpu", return_std=True)
    x = to_model_input(torch.from_numpy(imgs))
    with torch.inference_mode():
        views = np.stack([model.net(dihedral_view(x, i)).numpy()[:, 0] for i in range(8)])
    np.testing.assert_allclose(pred, views.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, views.std(0), rtol=1e-4, atol=1e-6)
    assert np.all(std > 0)
    plain, plain_std = model.predict(imgs, tta=False, device="cpu", return_std=True)
    assert np.all(np.isnan(plain_std)) and not np.allclose(plain, pred)


def test_multi_target_shape(tmp_path):
    m = build_model("resnet18", n_targets=2)
    save_bundle(tmp_path / "m.pt", m, {"targets": ["oh_p50", "lgm_tot_p50"], "image_size": 16})
    out = load_model(tmp_path / "m.pt").predict(_images(3, 16), tta=False, device="cpu")
    assert out.shape == (3, 2)


def test_predict_rejects_wrong_images(tmp_path, net):
    model = load_model(_bundle(tmp_path, net))
    with pytest.raises(DataError, match=r"\(N, 32, 32, 3\)"):
        model.predict(_images(2, 16))
    with pytest.raises(DataError, match="uint8"):
        model.predict(_images(2).astype(np.float32))
    with pytest.raises(ConfigError, match="CUDA is not available") if not torch.cuda.is_available() else _noop():
        model.predict(_images(2), device="cuda")


class _noop:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class Evil:
    def __reduce__(self):
        return (os.system, ("touch EVIL_RAN",))


def test_bundle_refuses_unreadable_files(tmp_path, net, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = _bundle(tmp_path, net)
    cases = {}
    cases["missing"] = (tmp_path / "nope.pt", "no such model bundle")
    (tmp_path / "corrupt.pt").write_bytes(good.read_bytes()[:5000])
    cases["corrupt"] = (tmp_path / "corrupt.pt", "cannot read")
    (tmp_path / "text.pt").write_text("hello")
    cases["text"] = (tmp_path / "text.pt", r"not a PyTorch file \(it is a text file\)")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4000))
    cases["random"] = (tmp_path / "random.pt", "not a PyTorch file")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    cases["foreign"] = (tmp_path / "foreign.pt", "not a galmet model bundle")
    torch.save(net.state_dict(), tmp_path / "statedict.pt")
    cases["statedict"] = (tmp_path / "statedict.pt", "not a galmet model bundle")
    with open(tmp_path / "evil.pt", "wb") as fh:
        torch.save({"format": "galmet-bundle", "x": Evil()}, fh)
    cases["evil"] = (tmp_path / "evil.pt", "refusing to unpickle")
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump(Evil(), fh)
    cases["pickle"] = (tmp_path / "evil.pkl", "refusing to unpickle|cannot read|not a galmet model bundle")
    bundle = torch.load(good, weights_only=True)
    torch.save({**bundle, "bundle_version": 99}, tmp_path / "newer.pt")
    cases["newer"] = (tmp_path / "newer.pt", "bundle version 99 is newer")
    torch.save({**bundle, "meta": {**bundle["meta"], "arch": "resnet34"}}, tmp_path / "arch.pt")
    cases["arch"] = (tmp_path / "arch.pt", "do not match a resnet34")
    torch.save({**bundle, "meta": {**bundle["meta"], "arch": "vit"}}, tmp_path / "vit.pt")
    cases["vit"] = (tmp_path / "vit.pt", "unknown architecture 'vit'")
    cases["dir"] = (tmp_path / "sub", "directory holds no model.pt")
    (tmp_path / "sub").mkdir()
    for name, (path, pattern) in cases.items():
        with pytest.raises(ConfigError, match=pattern) as err:
            load_model(path)
        msg = str(err.value)
        assert "\n" not in msg and str(path) in msg, name
    assert not Path("EVIL_RAN").exists()


def test_save_bundle_validates_and_is_atomic(tmp_path, net):
    path = _bundle(tmp_path, net)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="2 targets"):
        save_bundle(path, net, {"targets": ["a", "b"]})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name != ".galmet-written"] == ["model.pt"]  # (and the ledger)


def test_resnet10_has_one_block_per_stage_and_no_imagenet_weights():
    m = build_model("resnet10")
    assert [len(getattr(m.body, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    with pytest.raises(ConfigError, match="no ImageNet weights for resnet10"):
        build_model("resnet10", weights="imagenet")
