"""The CPU inference engines (galmet.nn.cpu_engine): each one available here keeps the shipped
model's predictions, its TTA and its out-of-domain score on real SDSS images within 0.002 dex RMS
of eager float32; ``auto`` resolves by what the machine has; a failing fast path falls back with
one log line; ``eager`` is the float32 computation of before, bit for bit."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch

from conftest import run_cli
from galmet.errors import ConfigError
from galmet.nn import cpu_engine
from galmet.nn.augment import center_crop, dihedral_view, to_model_input
from galmet.nn.inference import GalmetModel
from galmet.nn.net import build_model
from galmet.nn.options import InferenceOptions

#: The budget of a fast engine: RMS change of the predictions against eager float32, dex.
BUDGET_DEX = 0.002
FAST = [e for e, ok in (("bf16", cpu_engine.native_bf16()), ("openvino", cpu_engine.openvino_available())) if ok]


@pytest.fixture(scope="module")
def sdss400_and_images():
    """The shipped sdss400 ensemble and 24 real SDSS test images (module-wide: an engine is
    converted once per model)."""
    from conftest import SDSS_SAMPLE
    from galmet.data.dataset import load_dataset
    from galmet.nn.bundle import load_model

    if not (SDSS_SAMPLE / "catalog.csv").is_file():
        pytest.skip(f"real SDSS sample not found at {SDSS_SAMPLE}")
    model = load_model("sdss400")
    ds = load_dataset(SDSS_SAMPLE, targets=[], size=model.image_size, cache=False)
    ds = ds.subset(ds.split_indices(["test"])[:24])
    return model, np.ascontiguousarray(ds.images())


def _rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _members(model: GalmetModel, k: int) -> GalmetModel:
    """The first ``k`` members of an ensemble as a model of their own (an OpenVINO conversion
    costs seconds per member on a loaded 2-core box); without the ensemble's calibration."""
    if k == len(model.nets):
        return model
    meta = {key: v for key, v in model.meta.items() if key != "calibration"}
    return GalmetModel(model.nets[:k], {**meta, "members": model.meta["members"][:k]})


CASES = [(e, 5) for e in FAST if e != "openvino"]
if "openvino" in FAST:
    CASES += [("openvino", 1), pytest.param("openvino", 5, marks=pytest.mark.slow)]


@pytest.mark.parametrize(("engine", "members"), CASES)
def test_fast_engines_keep_sdss400_predictions_and_ood_score(engine, members, sdss400_and_images):
    model, images = sdss400_and_images
    model = _members(model, members)
    for tta in (True, False):
        kw = {"tta": tta, "device": "cpu", "batch_size": 16, "ood": True}
        ref = model.predict_uncertainty(images, engine="eager", **kw)
        assert model.engine_used == "eager"
        fast = model.predict_uncertainty(images, engine=engine, **kw)
        assert model.engine_used == engine
        assert ref.ood_score is not None and fast.ood_score is not None
        assert _rms(fast.pred, ref.pred) < BUDGET_DEX
        if tta or members > 1:  # the TTA (and ensemble) spread; NaN for one view of one network
            assert _rms(fast.spread, ref.spread) < BUDGET_DEX
        assert _rms(fast.ood_score, ref.ood_score) < 0.02  # a ratio to the threshold, ~0.3-1 here
        # the test can fail: the engine really ran another computation
        assert not np.array_equal(fast.pred, ref.pred)
        assert _rms(fast.pred, ref.pred + 0.003) > BUDGET_DEX


def test_auto_resolves_by_what_the_machine_has(monkeypatch):
    monkeypatch.delenv("GALMET_ENGINE", raising=False)

    def machine(openvino: bool, bf16: bool) -> list[str]:
        monkeypatch.setattr(cpu_engine, "openvino_available", lambda: openvino)
        monkeypatch.setattr(cpu_engine, "native_bf16", lambda: bf16)
        return cpu_engine.engine_candidates("auto")

    assert machine(True, True) == ["openvino", "bf16", "eager"]
    assert machine(True, False) == ["openvino", "eager"]  # bf16 without native units is slower
    assert machine(False, True) == ["bf16", "eager"]
    assert machine(False, False) == ["eager"]
    assert cpu_engine.engine_candidates("bf16") == ["bf16", "eager"]  # asked for: even without native units
    assert cpu_engine.engine_candidates("eager") == ["eager"]
    monkeypatch.setenv("GALMET_ENGINE", "eager")
    assert machine(True, True) == ["eager"]
    monkeypatch.setenv("GALMET_ENGINE", "fastest")
    with pytest.raises(ConfigError, match="GALMET_ENGINE='fastest'"):
        cpu_engine.engine_candidates("auto")


#: Raw units to dex of the tiny random models that should pass a fast engine's check: a random
#: net's raw outputs are ~0.2, where the ~0.4% of bf16 (or OpenVINO's bf16) can exceed 0.002.
SMALL = {"target_scale": [1e-3]}


def _tiny_model(n_members: int = 2, arch: str = "resnet18", **meta) -> GalmetModel:
    torch.manual_seed(0)
    nets = [build_model(arch, n_targets=1) for _ in range(n_members)]
    member = {"targets": ["oh_p50"], "image_size": 16, "arch": arch, **meta}
    return GalmetModel(nets, {**member, "members": [dict(member) for _ in nets]})


def _images(n: int = 10) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def test_a_failing_fast_path_falls_back_with_one_line_once(monkeypatch, caplog):
    monkeypatch.delenv("GALMET_ENGINE", raising=False)
    monkeypatch.setattr(cpu_engine, "openvino_available", lambda: True)
    monkeypatch.setattr(cpu_engine, "native_bf16", lambda: False)
    calls = []

    def broken(nets, shape, threads):
        calls.append(shape)
        raise RuntimeError("conversion failed: unsupported operation\nsecond line")

    monkeypatch.setitem(cpu_engine.BUILDERS, "openvino", broken)
    model, images = _tiny_model(), _images()
    with caplog.at_level(logging.WARNING, logger="galmet.nn.cpu_engine"):
        first = model.predict(images, device="cpu", tta=False)
        second = model.predict(images, device="cpu", tta=False)
    assert model.engine_used == "eager" and calls == [(3, 16, 16)]  # tried once per model and shape
    lines = [r.getMessage() for r in caplog.records]
    said = "engine openvino unavailable (RuntimeError: conversion failed: unsupported operation); using eager"
    assert lines == [said]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, model.predict(images, device="cpu", tta=False, engine="eager"))


def test_openvino_that_cannot_be_imported_falls_back(monkeypatch, caplog):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    monkeypatch.setattr(cpu_engine, "native_bf16", lambda: True)
    model = _tiny_model(1, **SMALL)
    with caplog.at_level(logging.WARNING, logger="galmet.nn.cpu_engine"):
        model.predict(_images(), device="cpu", tta=False, engine="openvino")
    assert model.engine_used == "bf16"
    assert "engine openvino unavailable (ModuleNotFoundError: import of openvino halted" in caplog.text


def _eager_reference(model: GalmetModel, images: np.ndarray) -> np.ndarray:
    """The float32 computation of galmet before the engines: each member on each of the 8
    dihedral views, channels_last, to target units in float64, mean over members x views."""
    x = to_model_input(center_crop(torch.from_numpy(images), model.crop), *model.norm)
    outs = []
    with torch.inference_mode():
        for net in model.nets:
            net = net.to(memory_format=torch.channels_last).eval()
            outs += [net(dihedral_view(x, i)).double() for i in range(8)]
    return torch.stack(outs).mean(0)[:, 0].numpy()


def test_eager_is_bit_identical_to_the_float32_computation(monkeypatch):
    model, images = _tiny_model(), _images()
    reference = _eager_reference(model, images)
    eager = model.predict(images, device="cpu", engine="eager", batch_size=len(images))
    np.testing.assert_array_equal(eager, reference)
    monkeypatch.delenv("GALMET_ENGINE", raising=False)  # auto on a machine with neither fast path
    monkeypatch.setattr(cpu_engine, "openvino_available", lambda: False)
    monkeypatch.setattr(cpu_engine, "native_bf16", lambda: False)
    np.testing.assert_array_equal(model.predict(images, device="cpu", batch_size=len(images)), reference)
    assert model.engine_used == "eager"
    for member in model.meta["members"]:
        member.update(SMALL)
    bf16 = model.predict(images, device="cpu", engine="bf16", batch_size=len(images))
    assert model.engine_used == "bf16" and not np.array_equal(bf16, reference * 1e-3)  # the comparison can fail


def test_a_bad_engine_is_a_one_line_error(tiny_dataset, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^engine must be one of auto, eager, bf16, openvino, got 'fast'$"):
        InferenceOptions(engine="fast")
    with pytest.raises(ConfigError, match="engine must be one of"):
        _tiny_model(1).predict(_images(2), engine="int8")
    code, _, err = run_cli(capsys, "predict", "sdss400", tiny_dataset, "--out", tmp_path / "p.csv", "--engine", "x")
    assert code == 2 and "--engine: invalid choice: 'x'" in err
    assert not (tmp_path / "p.csv").exists()


def test_cli_records_the_engine_that_ran(tiny_dataset, tmp_path, capsys):
    from astropy.table import Table

    from galmet.nn.bundle import save_bundle

    meta = {"targets": ["oh_p50"], "image_size": 16, **SMALL}
    bundle = save_bundle(tmp_path / "m.pt", build_model("resnet18", 1), meta)
    tables = {}
    for engine in ("eager", "bf16"):
        out = tmp_path / f"{engine}.ecsv"
        code, stdout, _ = run_cli(capsys, "predict", bundle, tiny_dataset, "--out", out, "--engine", engine)
        assert code == 0 and f"cpu, {engine}," in stdout
        tables[engine] = Table.read(out)
        assert tables[engine].meta["engine"] == engine
    assert not np.array_equal(tables["eager"]["oh_p50_pred"], tables["bf16"]["oh_p50_pred"])


def test_a_pickled_model_leaves_its_compiled_engines_behind():
    model = _tiny_model(1)
    model.predict(_images(2), device="cpu", engine="bf16", tta=False)
    assert model._engines
    copy = pickle.loads(pickle.dumps(model))
    assert copy._engines == {} and model._engines
    again = copy.predict(_images(2), device="cpu", tta=False)
    np.testing.assert_array_equal(again, model.predict(_images(2), device="cpu", tta=False))


@pytest.mark.skipif(not cpu_engine.openvino_available(), reason="openvino is not installed")
def test_converted_networks_are_kept_on_disk_and_a_damaged_one_is_converted_again(tmp_path, caplog):
    images = _images(4)
    with caplog.at_level(logging.INFO, logger="galmet.nn.cpu_engine"):
        first = _tiny_model(1, "resnet10", **SMALL).predict(images, device="cpu", engine="openvino", tta=False)
        again = _tiny_model(1, "resnet10", **SMALL)  # a new model object, the same weights: read from the disk cache
        second = again.predict(images, device="cpu", engine="openvino", tta=False)
    said = [r.getMessage() for r in caplog.records]
    assert "(1 converted, 0 from the cache" in said[0] and "(0 converted, 1 from the cache" in said[1]
    np.testing.assert_array_equal(first, second)
    assert again.engine_used == "openvino"
    (entry,) = (tmp_path / "galmet-cache" / "openvino").iterdir()
    (entry / "model.xml").write_text("<not a model")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="galmet.nn.cpu_engine"):
        third = _tiny_model(1, "resnet10", **SMALL).predict(images, device="cpu", engine="openvino", tta=False)
    assert "cannot read" in caplog.text and "(1 converted, 0 from the cache" in caplog.text
    np.testing.assert_array_equal(first, third)
    assert (entry / "model.xml").read_text().startswith("<?xml")  # the entry is whole again


class _Shifted(cpu_engine.Engine):
    """A stand-in fast engine: eager outputs plus a constant (raw units)."""

    name = "openvino"
    shift = 0.0

    def forward(self, inputs, embed):
        raw, emb = super().forward(inputs, embed)
        return [r + self.shift for r in raw], emb


@pytest.mark.parametrize(("shift", "kept"), [(1e-4, True), (0.01, False)])
def test_a_fast_engine_that_changes_a_model_beyond_the_budget_gives_way_to_eager(shift, kept, monkeypatch, caplog):
    monkeypatch.delenv("GALMET_ENGINE", raising=False)
    monkeypatch.setattr(cpu_engine, "openvino_available", lambda: True)
    engine_class = type("Shifted", (_Shifted,), {"shift": shift})
    monkeypatch.setitem(cpu_engine.BUILDERS, "openvino", lambda nets, shape, threads: engine_class(nets))
    model, images = _tiny_model(), _images(40)
    exact = model.predict(images, device="cpu", tta=True, engine="eager", batch_size=8)
    with caplog.at_level(logging.WARNING, logger="galmet.nn.inference"):
        first = model.predict(images, device="cpu", tta=True, batch_size=8)
        again = model.predict(images, device="cpu", tta=True, batch_size=8)
    assert model.engine_used == ("openvino" if kept else "eager")
    lines = [r.getMessage() for r in caplog.records]
    np.testing.assert_array_equal(first, again)
    if kept:
        assert lines == [] and not np.array_equal(first, exact)
        np.testing.assert_allclose(first, exact + shift, atol=1e-6)
    else:  # checked once on the first batch, logged once, every batch eager (the first one too)
        assert len(lines) == 1 and lines[0].startswith("engine openvino changes this model's predictions by 0.0100 dex")
        np.testing.assert_array_equal(first, exact)


@pytest.mark.skipif("bf16" not in FAST, reason="no native bf16 on this CPU")
def test_bf16_on_a_model_whose_outputs_it_cannot_keep_within_the_budget_gives_way_to_eager(caplog):
    model, images = _tiny_model(), _images(16)
    for member in model.meta["members"]:
        member["target_scale"] = [50.0]  # a target in wide units: bf16's ~0.4% is far over 0.002
    with caplog.at_level(logging.WARNING, logger="galmet.nn.inference"):
        pred = model.predict(images, device="cpu", tta=False, engine="bf16")
    assert model.engine_used == "eager" and len(caplog.records) == 1
    np.testing.assert_array_equal(pred, model.predict(images, device="cpu", tta=False, engine="eager"))
