"""The training options are derived from the one schema: types, ranges, choices and the
defaults --help shows come from galmet.training.config_schema and TrainConfig."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from galmet.cli.options import NEGATED_FIELDS, TRAINING_FIELDS, add_training_options, config_from_args
from galmet.training.config import RECIPE_DEFAULTS, TrainConfig
from galmet.training.config_schema import CHOICES, RANGES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_training_options(p, schedule=True)
    return p


def _action(p: argparse.ArgumentParser, dest: str) -> argparse.Action:
    return next(a for a in p._actions if a.dest == dest)


def test_every_option_sets_a_config_field():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(TRAINING_FIELDS.values()) <= names and set(NEGATED_FIELDS.values()) <= names
    dests = {a.dest for a in _parser()._actions}
    assert set(TRAINING_FIELDS) <= dests and set(NEGATED_FIELDS) - {"no_progress"} <= dests


@pytest.mark.parametrize("name", sorted(RANGES))
def test_each_range_is_the_schemas(name, monkeypatch):
    """Bounds of the option follow RANGES: a changed range changes the option (no copy of it)."""
    dest = next((opt for opt, field in TRAINING_FIELDS.items() if field == name), None)
    if dest is None:
        pytest.skip(f"{name} has no command-line option")
    action = _action(_parser(), dest)
    if action.type is None:
        pytest.skip(f"{name} is not a number option")
    rng = RANGES[name]
    if rng.hi is not None:
        with pytest.raises(argparse.ArgumentTypeError):
            action.type(str(int(rng.hi) + 1))
    narrowed_hi = (rng.lo or 0) + 1
    monkeypatch.setitem(RANGES, name, dataclasses.replace(rng, hi=narrowed_hi))
    with pytest.raises(argparse.ArgumentTypeError):
        _action(_parser(), dest).type(str(int(narrowed_hi) + 1))


def test_choices_come_from_the_schema():
    p = _parser()
    for field, choices in CHOICES.items():
        dest = next(opt for opt, f in TRAINING_FIELDS.items() if f == field)
        assert tuple(_action(p, dest).choices) == choices


def test_list_fields_take_several_values():
    args = _parser().parse_args(
        ["--cycles", "1", "2", "--lr", "1e-3", "2e-3", "3e-3", "--target", "a", "--target", "b"]
    )
    config, changes = config_from_args(args)
    assert config.cycles == [1, 2] and config.lr == [1e-3, 2e-3, 3e-3] and config.targets == ["a", "b"]
    assert set(changes) == {"cycles", "lr", "targets"}


def test_switches_turn_fields_off():
    config, _ = config_from_args(_parser().parse_args(["--no-dihedral", "--no-amp", "--no-standardize"]))
    assert not config.dihedral and not config.amp and not config.standardize_targets


def test_help_shows_the_configs_defaults(monkeypatch):
    monkeypatch.setitem(RECIPE_DEFAULTS, "notebook", {**RECIPE_DEFAULTS["notebook"], "batch_size": 96})
    assert "notebook 96" in _action(_parser(), "batch_size").help
    assert f"default {TrainConfig().beta:g}" in _action(_parser(), "beta").help


def test_training_exports_are_lazy():
    code = (
        "import sys, galmet.training.config, galmet.training as t\n"
        "assert 'torch' not in sys.modules\n"
        "assert t.TrainConfig is galmet.training.config.TrainConfig and 'torch' not in sys.modules\n"
        "assert callable(t.train) and 'TrainConfig' in dir(t)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
