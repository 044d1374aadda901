"""Issue 21 item 21: a training entry point given a dict for ``config`` takes it as the
TrainConfig fields it names (bad keys refused in one line), anything else is a one-line
ConfigError naming ``config``; never an AttributeError."""

from __future__ import annotations

import pytest

from galmet.errors import ConfigError
from galmet.training.config import TrainConfig, as_train_config


def _train(config, tmp_path):
    from galmet.training.loop import train

    return train(tmp_path / "no-dataset", tmp_path / "run", config=config)


def _lr_find(config, tmp_path):
    from galmet.training.lr_find import lr_find

    return lr_find(tmp_path / "no-dataset", config=config)


def _cross_validate(config, tmp_path):
    from galmet.runs.crossval import cross_validate

    return cross_validate(tmp_path / "no-dataset", tmp_path / "cv", config)


ENTRY_POINTS = {"train": _train, "lr_find": _lr_find, "cross_validate": _cross_validate}


def test_a_mapping_is_read_as_the_fields_it_names():
    assert as_train_config({"epochs": 3, "arch": "resnet18"}) == TrainConfig(epochs=3, arch="resnet18")
    assert as_train_config(None) is None


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(
    ("config", "match"),
    [({"epochs": 1, "nonsense": 2}, "unknown config keys"), (["epochs", 1], "must be a TrainConfig or a mapping")],
)
def test_a_bad_config_is_one_config_error(entry, config, match, tmp_path):
    with pytest.raises(ConfigError, match=match) as info:
        ENTRY_POINTS[entry](config, tmp_path)
    assert "\n" not in str(info.value)
