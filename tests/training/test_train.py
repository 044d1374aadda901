"""The training loop on tiny data: the paper schedule step by step, exact resume, several targets,
run-directory rules and one-line errors for bad input."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.data.dataset import load_dataset
from galmet.data.transforms import rebin
from galmet.layout import CHECKPOINT as CHECKPOINT_NAME
from galmet.training.config import TrainConfig, load_config
from galmet.training.loop import StepInfo, train

TINY = dict(arch="resnet18", weights="none", batch_size=8, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """32 galaxies, 16 px: 6 test, 5 valid, 21 train -> 3 steps of batch 8 per epoch."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", n=32, size=16)


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_paper_schedule_frozen_body_then_sgdr_every_step(tiny, tmp_path):
    records = []
    snap = {}

    def on_step(info: StepInfo):
        body, head = info.model.body, info.model.head
        if info.global_step == 0:
            snap["body"] = {k: v.clone() for k, v in body.state_dict().items()}
            snap["head"] = {k: v.clone() for k, v in head.state_dict().items()}
        frozen = info.epoch < 2
        assert all(p.requires_grad is not frozen for p in body.parameters())
        assert all(p.requires_grad for p in head.parameters())
        if frozen:
            assert all(p.grad is None for p in body.parameters())
        if info.epoch == 1 and info.step == 2:
            # After every forward/backward of the frozen epochs (and all their optimizer steps but
            # this last one, which has no body gradients) the body is untouched, BatchNorm
            # statistics included, while the head has trained.
            for k, v in body.state_dict().items():
                assert torch.equal(v, snap["body"][k]), k
            assert any(not torch.equal(v, snap["head"][k]) for k, v in head.state_dict().items())
        if info.epoch == 2 and info.step == 0:
            for k, v in body.named_parameters():
                assert torch.equal(v, snap["body"][k]), k
        records.append((info.epoch, info.step, info.lrs))

    result = train(tiny, tmp_path / "run", TrainConfig(**TINY), on_step=on_step)
    steps = 3
    assert len(records) == 10 * steps
    assert [e for e, _, _ in records] == [e for e in range(10) for _ in range(steps)]
    expected = []
    for cycle, maxima in [(1, (0.1,) * 3)] * 2 + [(c, (1e-3, 1e-2, 1e-2)) for c in (1, 1, 2, 4)]:
        n = cycle * steps
        expected += [[m * (1 + math.cos(math.pi * j / n)) / 2 for m in maxima] for j in range(n)]
    np.testing.assert_allclose(np.array([lr for _, _, lr in records]), np.array(expected), rtol=1e-9, atol=0)

    final_body = {k[5:]: v for k, v in _weights(result.bundle_path).items() if k.startswith("body.")}
    assert any(not torch.equal(v, snap["body"][k]) for k, v in final_body.items())
    h = result.history
    assert list(h["epoch"]) == list(range(1, 11))
    assert list(h["phase"]) == ["frozen"] * 2 + ["unfrozen"] * 8
    assert {"train_rmse_oh_p50", "valid_rmse_oh_p50", "lr_group0", "lr_group2", "time_s", "images_per_s"} <= set(
        h.columns
    )
    assert (h["valid_rmse_oh_p50"] > 0).all() and np.isfinite(h["valid_rmse_oh_p50"]).all()
    on_disk = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(on_disk) == 10
    cfg = load_config(tmp_path / "run" / "config.yaml")
    assert (cfg.recipe, cfg.epochs, cfg.cycles, cfg.lr) == ("paper", 10, [1, 1, 2, 4], [1e-3, 1e-2, 1e-2])


def test_notebook_recipe_trains_with_sgd_constant_fits_and_warmup(tiny, tmp_path):
    records = []

    def on_step(info: StepInfo):
        body = info.model.body
        assert all(p.requires_grad is not (info.epoch < 1) for p in body.parameters())
        records.append(info.lrs)

    config = TrainConfig(**TINY, recipe="notebook", frozen_epochs=1, cycles=[1, 1, 2])
    result = train(tiny, tmp_path / "nb", config, on_step=on_step, keep_checkpoint=True)
    steps = 3
    expected = [[0.1] * 3] * (2 * steps)  # fit(lr, 1) frozen, fit(lr, 1) unfrozen: constant
    for j in range(3 * steps):  # one SGDR fit, cycles of 1 and 2 epochs; lr/100 while j < 3 / 20
        k, n = (j, steps) if j < steps else (j - steps, 2 * steps)
        expected.append([0.001 if j < steps / 20 else 0.1 * (1 + math.cos(math.pi * k / n)) / 2] * 3)
    np.testing.assert_allclose(np.array(records), np.array(expected), rtol=1e-9, atol=0)
    assert list(result.history["phase"]) == ["frozen", "unfrozen-const", "unfrozen", "unfrozen", "unfrozen"]
    cfg = load_config(tmp_path / "nb" / "config.yaml")
    assert (cfg.recipe, cfg.optimizer, cfg.momentum, cfg.weight_decay, cfg.rotate, cfg.lighting) == (
        "notebook",
        "sgd",
        0.9,
        0.0,
        10.0,
        0.05,
    )
    ckpt = torch.load(tmp_path / "nb" / CHECKPOINT_NAME, map_location="cpu", weights_only=False)
    assert "momentum_buffer" in next(iter(ckpt["optimizer"]["state"].values()))  # SGD with momentum


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_epoch", [1, 2])
def test_resume_after_interrupted_epoch_is_bitwise_identical(tiny, tmp_path, stop_epoch):
    # frozen epoch, then cycles of 1 and 1 epoch: stop_epoch 1 resumes at the phase boundary,
    # stop_epoch 2 inside the SGDR phase (optimizer and scheduler state restored).
    config = TrainConfig(**TINY, frozen_epochs=1, cycles=[1, 1])
    full = train(tiny, tmp_path / "full", config)

    def interrupt(info):
        if info.epoch == stop_epoch and info.step == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(tiny, tmp_path / "cut", config, on_step=interrupt)
    assert (tmp_path / "cut" / CHECKPOINT_NAME).is_file() and not (tmp_path / "cut" / "model.pt").exists()
    assert len(pd.read_csv(tmp_path / "cut" / "history.csv")) == stop_epoch
    resumed = train(tiny, tmp_path / "cut", None, resume=True)

    a, b = _weights(full.bundle_path), _weights(resumed.bundle_path)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    cols = ["train_rmse_oh_p50", "valid_rmse_oh_p50", "lr_group1"]
    pd.testing.assert_frame_equal(full.history[cols], resumed.history[cols])


def test_a_run_saved_before_the_new_fields_resumes_as_it_was_trained(tiny, tmp_path):
    """A checkpoint and config.yaml from before the fastai rotation/lighting and the optimizer
    fields: resuming replays the old behaviour (AdamW, no rotation, no lighting), exactly."""
    import yaml

    from galmet.training.config import LEGACY_DEFAULTS

    old_behaviour = TrainConfig(**TINY, frozen_epochs=1, cycles=[1], rotate=0.0, lighting=0.0)
    full = train(tiny, tmp_path / "full", old_behaviour)

    def interrupt(info):
        if info.epoch == 1 and info.step == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(tiny, tmp_path / "old", old_behaviour, on_step=interrupt)
    ckpt_path = tmp_path / "old" / CHECKPOINT_NAME
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    for key in LEGACY_DEFAULTS:  # as an older galmet wrote them
        ckpt["config"].pop(key)
    torch.save(ckpt, ckpt_path)
    cfg_path = tmp_path / "old" / "config.yaml"
    data = yaml.safe_load(cfg_path.read_text())
    for key in LEGACY_DEFAULTS:
        data.pop(key)
    cfg_path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["train", str(tiny), "--out", str(tmp_path / "old"), "--resume", "--no-progress"]) == 0
    a, b = _weights(full.bundle_path), _weights(tmp_path / "old" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_several_targets_and_in_memory_rebinned_dataset(tiny, tmp_path):
    from galmet.nn.bundle import load_model

    ds = load_dataset(tiny, targets=["oh_p50", "lgm_tot_p50"])
    small = dataclasses.replace(ds, _images=rebin(np.asarray(ds.images()), 8), image_size=8)
    config = TrainConfig(**TINY, recipe="onecycle", epochs=2, targets=["oh_p50", "lgm_tot_p50"])
    result = train(small, tmp_path / "run", config)
    assert {"valid_rmse_oh_p50", "valid_rmse_lgm_tot_p50", "train_rmse_lgm_tot_p50"} <= set(result.history.columns)
    assert set(result.valid_rmse) == {"oh_p50", "lgm_tot_p50"}

    model = load_model(result.bundle_path)
    assert model.targets == ["oh_p50", "lgm_tot_p50"] and model.image_size == 8
    y = ds.subset("train").targets(["oh_p50", "lgm_tot_p50"])
    np.testing.assert_allclose(model.meta["target_shift"], y.mean(0), rtol=1e-5)
    np.testing.assert_allclose(model.meta["target_scale"], y.std(0), rtol=1e-4)
    pred = model.predict(small.images()[:6], tta=False)
    assert pred.shape == (6, 2)
    # Predictions come back in target units (dex), not standardised units.
    assert np.all(np.abs(pred - y.mean(0)) < 6 * y.std(0))


def test_crop_trains_on_the_centre_and_the_bundle_crops_full_size_images(tiny, tmp_path):
    from galmet.nn.augment import to_model_input
    from galmet.nn.bundle import load_model

    config = TrainConfig(**TINY, recipe="onecycle", epochs=1, crop=8)
    seen = []
    result = train(tiny, tmp_path / "run", config, on_step=lambda info: seen.append(info.step))
    assert seen and load_config(tmp_path / "run" / "config.yaml").crop == 8
    model = load_model(result.bundle_path)
    assert model.crop == 8 and model.image_size == 16
    assert torch.load(result.bundle_path, weights_only=True)["bundle_version"] == 2

    images = np.asarray(load_dataset(tiny).images()[:5])
    pred = model.predict(images, tta=False)
    # The network itself sees only the central 8 x 8 pixels ...
    with torch.no_grad():
        raw = model.net(to_model_input(torch.from_numpy(images[:, 4:12, 4:12].copy()))).numpy()[:, 0]
    np.testing.assert_allclose(
        pred, raw * model.meta["target_scale"][0] + model.meta["target_shift"][0], rtol=1e-5, atol=1e-6
    )
    # ... so changing the border changes nothing, and changing the centre does.
    border = images.copy()
    border[:, :4] = 255
    np.testing.assert_allclose(model.predict(border, tta=False), pred, rtol=1e-6)
    centre = images.copy()
    centre[:, 6:10, 6:10] = 255
    assert np.abs(model.predict(centre, tta=False) - pred).max() > 1e-4


def test_uncropped_bundles_keep_version_1(tiny, tmp_path):
    result = train(tiny, tmp_path / "run", TrainConfig(**TINY, recipe="onecycle", epochs=1))
    bundle = torch.load(result.bundle_path, weights_only=True)
    assert bundle["bundle_version"] == 1 and bundle["meta"]["crop"] is None


def _cli(capsys, *argv):
    code = main(["train", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_cli_run_refuses_to_overwrite_and_resumes_finished_run(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        tiny,
        "--out",
        run,
        "--arch",
        "resnet18",
        "--weights",
        "none",
        "--batch-size",
        "8",
        "--recipe",
        "onecycle",
        "--epochs",
        "1",
        "--no-progress",
    ]
    code, out, err = _cli(capsys, *args)
    assert code == 0, err
    assert "model bundle:" in out and "valid RMSE (oh_p50)" in out
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "history.csv", "model.pt"}
    assert not (run / "checkpoint.pt").exists()  # a finished run drops its optimizer state
    before = (run / "model.pt").read_bytes()

    code, _, err = _cli(capsys, *args)
    assert code == 2 and "already holds a finished run" in err and len(err.splitlines()) == 1
    assert (run / "model.pt").read_bytes() == before

    code, _, err = _cli(capsys, tiny, "--out", run, "--resume", "--no-progress")
    assert code == 0, err
    assert (run / "model.pt").read_bytes() == before

    code, _, err = _cli(capsys, tiny, "--out", run, "--resume", "--lr", "0.5")
    assert code == 2 and "different settings than the finished run (lr)" in err and len(err.splitlines()) == 1


def _write_variant(root, tmp_path, name, edit_catalog=None, edit_images=None):
    import shutil

    from galmet.data.dataset import write_catalog

    dst = tmp_path / name
    shutil.copytree(root, dst, ignore=shutil.ignore_patterns("images.npy", "images.json"))
    cat = pd.read_parquet(dst / "catalog.parquet")
    if edit_catalog:
        cat = edit_catalog(cat)
        write_catalog(dst, cat)
    if edit_images:
        edit_images(dst, cat)
    return dst


def _odd_size_image(dst, cat):
    from galmet.io.images import encode_jpeg

    (dst / "images" / f"{cat['objID'].iloc[3]}.jpg").write_bytes(encode_jpeg(np.zeros((20, 20, 3), np.uint8)))


@pytest.mark.parametrize(
    "name, edit_catalog, edit_images, extra, message",
    [
        ("no_train", lambda c: c.assign(split="test"), None, [], "no rows with split 'train'"),
        (
            "no_valid",
            lambda c: c.assign(split=np.where(np.arange(len(c)) < 8, "test", "train")),
            None,
            ["--valid-fraction", "0"],
            "no rows with split 'valid'",
        ),
        ("nan_target", lambda c: c.assign(oh_p50=np.nan), None, [], "has no numeric values"),
        ("missing_target", None, None, ["--target", "gas_temperature"], "'gas_temperature' is not in the catalog"),
        ("mixed_sizes", None, _odd_size_image, [], "image is 20x20 pixels, expected 16x16"),
        ("bad_epochs", None, None, ["--recipe", "onecycle", "--epochs", "-2"], "--epochs: must be an integer from 1"),
        ("paper_epochs", None, None, ["--epochs", "3"], "paper recipe's length"),
        ("crop_too_small", None, None, ["--crop", "4"], "crop must be at least 8 pixels"),
        ("crop_too_big", None, None, ["--crop", "24"], "smaller than --crop 24"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny, tmp_path, capsys, name, edit_catalog, edit_images, extra, message):
    ds = _write_variant(tiny, tmp_path, name, edit_catalog, edit_images) if (edit_catalog or edit_images) else tiny
    run = tmp_path / f"run_{name}"
    code, _, err = _cli(
        capsys,
        ds,
        "--out",
        run,
        "--arch",
        "resnet18",
        "--weights",
        "none",
        "--batch-size",
        "8",
        "--no-progress",
        *extra,
    )
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("galmet train: error:")
    assert message in err
    assert not run.exists()


def test_unreadable_checkpoint_and_missing_cuda(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 this is not a checkpoint")
    code, _, err = _cli(capsys, tiny, "--out", run, "--resume")
    assert code == 2 and "cannot read checkpoint" in err and len(err.splitlines()) == 1
    assert (run / CHECKPOINT_NAME).read_bytes().startswith(b"PK\x03\x04 this")

    code, _, err = _cli(capsys, tiny, "--out", tmp_path / "fresh", "--resume")
    assert code == 2 and "no checkpoint.pt to resume from" in err

    code, _, err = _cli(capsys, tiny, "--out", run, "--weights", "none")
    assert code == 2 and "unfinished run" in err

    if not torch.cuda.is_available():
        code, _, err = _cli(capsys, tiny, "--out", tmp_path / "gpu", "--device", "cuda", "--weights", "none")
        assert code == 2 and "CUDA is not available" in err and not (tmp_path / "gpu").exists()


def test_background_checkpoint_writer_snapshots_state(tmp_path):
    from galmet.layout import HISTORY as HISTORY_NAME
    from galmet.training.checkpoint import CheckpointWriter as _Writer
    from galmet.training.checkpoint import cpu_copy as _cpu_copy

    w = torch.zeros(3)
    writer = _Writer(tmp_path, background=True)  # the CUDA path, exercised on the CPU
    writer.submit(_cpu_copy({"model": {"w": w}, "history": [{"epoch": 1}]}))
    w += 1  # training goes on while the file is written: the snapshot must not see this
    writer.wait()
    ck = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert torch.equal(ck["model"]["w"], torch.zeros(3))
    assert list(pd.read_csv(tmp_path / HISTORY_NAME)["epoch"]) == [1]

    writer.run = tmp_path / "sub"
    writer.submit({"model": {"w": w}, "history": [], "bad": lambda: 0})
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):  # a lambda cannot be saved
        writer.wait()


def test_memory_mapped_path_matches_in_ram_path(tiny, tmp_path, monkeypatch):
    import galmet.training.data as gt

    config = TrainConfig(**TINY, recipe="onecycle", epochs=2)
    in_ram = train(tiny, tmp_path / "ram", config)
    monkeypatch.setattr(gt, "RAM_FRACTION", 0.0)  # pretend nothing fits: batches come from images.npy
    mapped = train(tiny, tmp_path / "mmap", dataclasses.replace(config, workers=1))
    a, b = _weights(in_ram.bundle_path), _weights(mapped.bundle_path)
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_compile_on_cpu_trains_and_saves_a_plain_bundle(tiny, tmp_path):
    """--compile (torch.compile, ~1 min of compilation on the CPU): same run directory, a bundle
    without compile wrappers that loads and predicts."""
    from galmet.nn.bundle import load_model

    result = train(tiny, tmp_path / "run", TrainConfig(**TINY, recipe="onecycle", epochs=1, compile=True, device="cpu"))
    assert len(result.history) == 1 and np.isfinite(result.final_valid_rmse)
    model = load_model(result.bundle_path)
    assert not any(k.startswith("_orig_mod") for k in model.net.state_dict())
    pred = model.predict(np.asarray(load_dataset(tiny).images()[:3]), tta=False)
    assert pred.shape == (3,) and np.all(np.isfinite(pred))


@pytest.mark.parametrize("sub", ["images", "images/run", "images/a/b"])
def test_library_train_refuses_an_out_dir_inside_an_input_of_the_dataset(tmp_path, sub):
    from conftest import snapshot
    from galmet.errors import ConfigError

    ds = make_tiny_dataset(tmp_path / "ds", n=8, size=16)
    before = snapshot(ds)
    with pytest.raises(ConfigError, match="is inside the dataset's images folder .*an input of this command") as err:
        train(ds, ds / sub)
    assert err.value.param == "out_dir" and snapshot(ds) == before and not (ds / sub / "config.yaml").exists()


def test_cli_train_out_inside_the_images_says_so(tiny, tmp_path, capsys):
    assert main(["train", str(tiny), "--out", str(tiny / "images" / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is inside the dataset's images folder" in err and "an input of this command" in err
    assert "config.yaml is" not in err and len(err.splitlines()) == 1
