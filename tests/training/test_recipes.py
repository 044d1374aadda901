"""Recipes and config: phases, per-step schedules against analytic formulas, config validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from galmet.errors import ConfigError
from galmet.training.config import TrainConfig, load_config, save_config
from galmet.training.recipes import build_phases, current_lrs, make_optimizer, make_scheduler, phase_index


def _groups():
    return [[torch.nn.Parameter(torch.zeros(2))] for _ in range(3)]


def _sweep(phase, steps_per_epoch, config):
    opt = make_optimizer(_groups(), phase, config.weight_decay, config.optimizer, config.momentum)
    sched = make_scheduler(opt, phase, steps_per_epoch, config)
    out = []
    for _ in range(phase.epochs * steps_per_epoch):
        out.append(current_lrs(opt))
        opt.step()
        sched.step()
    return np.array(out)


def test_paper_phases_match_the_appendix():
    phases = build_phases(TrainConfig().resolved())
    assert [(p.name, p.start_epoch, p.epochs, p.frozen) for p in phases] == [
        ("frozen", 0, 2, True),
        ("unfrozen", 2, 8, False),
    ]
    assert phases[0].lrs == (0.1, 0.1, 0.1) and phases[0].cycles == (1, 1)
    assert phases[1].lrs == (1e-3, 1e-2, 1e-2) and phases[1].cycles == (1, 1, 2, 4)
    assert [phase_index(phases, e) for e in range(10)] == [0, 0] + [1] * 8
    with pytest.raises(IndexError):
        phase_index(phases, 10)


@pytest.mark.parametrize("steps_per_epoch", [1, 3, 7])
def test_paper_lrs_follow_sgdr_cosine_every_step(steps_per_epoch):
    config = TrainConfig().resolved()
    got = np.concatenate([_sweep(p, steps_per_epoch, config) for p in build_phases(config)])
    expected = []
    for cycle_epochs, maxima in [(1, (0.1,) * 3), (1, (0.1,) * 3)] + [(c, (1e-3, 1e-2, 1e-2)) for c in (1, 1, 2, 4)]:
        n = cycle_epochs * steps_per_epoch
        for j in range(n):
            expected.append([m * (1 + math.cos(math.pi * j / n)) / 2 for m in maxima])
    assert got.shape == (10 * steps_per_epoch, 3)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-9, atol=1e-15)


def test_notebook_phases_are_the_released_fits():
    c = TrainConfig(recipe="notebook").resolved()
    assert (c.optimizer, c.momentum, c.weight_decay, c.batch_size, c.lr, c.frozen_lr, c.epochs) == (
        "sgd",
        0.9,
        0.0,
        128,
        [0.1, 0.1, 0.1],
        0.1,
        10,
    )
    assert (c.rotate, c.lighting, c.max_zoom, c.dihedral, c.sgdr_warmup) == (10.0, 0.05, 1.1, True, 0.05)
    phases = build_phases(c)
    assert [(p.name, p.start_epoch, p.epochs, p.frozen, p.schedule, p.cycles) for p in phases] == [
        ("frozen", 0, 2, True, "constant", ()),  # learn.fit(lr, 2)
        ("unfrozen-const", 2, 1, False, "constant", ()),  # learn.unfreeze(); learn.fit(lr, 1)
        ("unfrozen", 3, 7, False, "sgdr", (1, 2, 4)),  # learn.fit(lr, 3, cycle_len=1, cycle_mult=2)
    ]
    assert phases[2].warmup == 0.05 and all(p.lrs == (0.1, 0.1, 0.1) for p in phases)
    assert [phase_index(phases, e) for e in range(10)] == [0, 0, 1, 2, 2, 2, 2, 2, 2, 2]


@pytest.mark.parametrize("steps_per_epoch", [1, 3, 7, 45])
def test_notebook_lrs_are_constant_then_fastai_sgdr_with_warmup_every_step(steps_per_epoch):
    """fastai 0.7: fit() without cycle_len holds the lr; CosAnneal holds lr/100 while the fit's
    iteration is below (first cycle's steps) / 20 and keeps counting the cosine through it."""
    config = TrainConfig(recipe="notebook").resolved()
    phases = build_phases(config)
    got = np.concatenate([_sweep(p, steps_per_epoch, config) for p in phases])
    expected = [[0.1] * 3] * (3 * steps_per_epoch)  # 2 frozen epochs + 1 epoch, constant
    j = 0  # the SGDR fit's iteration
    for cycle_epochs in (1, 2, 4):
        n = cycle_epochs * steps_per_epoch
        for k in range(n):
            lr = 0.1 / 100 if j < steps_per_epoch / 20 else 0.1 * (1 + math.cos(math.pi * k / n)) / 2
            expected.append([lr] * 3)
            j += 1
    assert got.shape == (10 * steps_per_epoch, 3)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-9, atol=1e-15)
    warm = int(np.ceil(steps_per_epoch / 20))
    assert np.all(got[3 * steps_per_epoch : 3 * steps_per_epoch + warm] == pytest.approx(1e-3))


def test_notebook_optimizer_is_fastai_sgd():
    config = TrainConfig(recipe="notebook").resolved()
    opt = make_optimizer(_groups(), build_phases(config)[0], config.weight_decay, config.optimizer, config.momentum)
    assert isinstance(opt, torch.optim.SGD)
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 0 and not g["nesterov"] for g in opt.param_groups)
    adam = make_optimizer(_groups(), build_phases(TrainConfig().resolved())[0], 0.01)
    assert isinstance(adam, torch.optim.AdamW)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        make_optimizer(_groups(), build_phases(config)[0], 0.0, "lamb")


def test_recipe_defaults_fill_unset_fields_only():
    paper, onecycle = TrainConfig().resolved(), TrainConfig(recipe="onecycle").resolved()
    assert (paper.optimizer, paper.weight_decay, paper.batch_size, paper.rotate, paper.lighting) == (
        "adamw",
        0.01,
        256,
        10.0,
        0.05,
    )
    assert paper.sgdr_warmup == 0.0
    # onecycle keeps the augmentation it always had (dihedral + zoom): documented results use it
    assert (onecycle.optimizer, onecycle.weight_decay, onecycle.rotate, onecycle.lighting) == ("adamw", 0.01, 0.0, 0.0)
    nb = TrainConfig(recipe="notebook", batch_size=64, weight_decay=1e-4, rotate=0, optimizer="adamw").resolved()
    assert (nb.batch_size, nb.weight_decay, nb.rotate, nb.optimizer, nb.lighting) == (64, 1e-4, 0, "adamw", 0.05)
    with pytest.raises(ConfigError, match="notebook recipe's length"):
        TrainConfig(recipe="notebook", epochs=7).resolved()


def test_onecycle_shape():
    config = TrainConfig(recipe="onecycle", epochs=4, lr=[2e-3]).resolved()
    (phase,) = build_phases(config)
    lrs = _sweep(phase, 25, config)[:, 2]
    peak = int(np.argmax(lrs))
    assert lrs[0] == pytest.approx(2e-3 / 25)
    assert lrs.max() == pytest.approx(2e-3, rel=1e-3)
    assert abs(peak - 0.25 * 100) <= 1
    assert lrs[-1] < 2e-3 / 25 / 1e3
    assert np.all(np.diff(lrs[:peak]) > 0) and np.all(np.diff(lrs[peak:]) < 0)


def test_config_defaults_and_resolution():
    c = TrainConfig().resolved()
    assert (c.recipe, c.arch, c.batch_size, c.epochs, c.lr, c.frozen_lr) == (
        "paper",
        "resnet34",
        256,
        10,
        [1e-3, 1e-2, 1e-2],
        0.1,
    )
    assert TrainConfig(recipe="onecycle").resolved().epochs == 30
    assert TrainConfig(lr=[5e-3]).resolved().lr == [5e-3] * 3
    assert TrainConfig(cycles=[1, 2], frozen_epochs=1).resolved().epochs == 4
    assert TrainConfig(epochs=10).resolved().epochs == 10


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 5}, "paper recipe's length"),
        ({"recipe": "onecycle", "epochs": -1}, r"epochs must be an integer in \[1, 100000\]"),
        ({"frozen_epochs": -1}, "frozen_epochs must be an integer in"),
        ({"cycles": [1, 0]}, "cycles must be a list of integers, each an integer in"),
        ({"batch_size": 1}, "batch_size must be an integer in"),
        ({"lr": [1e-3, 1e-2]}, "1 or 3 values"),
        ({"lr": [-1.0]}, r"lr must be a list of numbers, each a number in \(0, 10\]"),
        ({"weight_decay": -0.1}, "weight_decay must be a number in"),
        ({"recipe": "sgd"}, "recipe must be one of"),
        ({"arch": "vgg16"}, "arch must be one of"),
        ({"max_zoom": 0.9}, "max_zoom must be a number in"),
        ({"targets": []}, "at least one target"),
        ({"rotate": -1}, "rotate must be"),
        ({"lighting": 1.5}, "lighting must be"),
        ({"optimizer": "lamb"}, "optimizer must be one of"),
        ({"momentum": 1.0}, "momentum must be"),
        ({"sgdr_warmup": 1.0}, "sgdr_warmup must be a number in"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
        ({"loss": "l1"}, "loss must be one of rmse, gaussian"),
        ({"crop": 4}, "crop must be at least 8 pixels"),
        ({"crop": 64, "size": 32}, "crop 64 is larger than size 32"),
    ],
)
def test_bad_config_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).resolved()


def test_config_yaml_roundtrip(tmp_path):
    c = TrainConfig(recipe="onecycle", targets=["oh_p50", "lgm_tot_p50"], lr=[1e-3, 2e-3, 3e-3]).resolved()
    save_config(c, tmp_path / "config.yaml", extra={"dataset": "x"})
    assert load_config(tmp_path / "config.yaml") == c
    (tmp_path / "bad.yaml").write_text("recipe: paper\nlearning_rate: 3\n")
    with pytest.raises(ConfigError, match="unknown config keys"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.parametrize("total", [2, 3, 4, 5, 8, 13, 1000])
def test_onecycle_survives_every_tiny_run_length(total):
    import torch
    from torch.optim.lr_scheduler import OneCycleLR

    from galmet.training.recipes import onecycle_pct_start

    pct = onecycle_pct_start(0.25, total)
    if total >= 8:
        assert pct == pytest.approx(0.25)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=total, pct_start=pct)
    for _ in range(total):
        opt.step()
        sched.step()


def test_a_schedule_length_error_names_its_three_parameters():
    from galmet.errors import for_flags

    with pytest.raises(ConfigError) as info:
        TrainConfig(epochs=5).resolved()
    assert info.value.param == ("frozen_epochs", "cycles", "epochs") and "--" not in str(info.value)
    flags = {"frozen_epochs": "--frozen-epochs", "cycles": "--cycles", "epochs": "--epochs"}
    assert for_flags(info.value, flags) == (
        "the paper recipe's length is set by --frozen-epochs and --cycles (2 + 1+1+2+4 = 10); got --epochs 5"
    )
