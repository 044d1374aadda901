"""Library errors name API parameters; the command line says the flag the user typed instead."""

from __future__ import annotations

import pytest

from galmet.cli.main import build_parser, flags_of
from galmet.errors import ConfigError, DataError, for_flags
from galmet.nn.inference import InferenceOptions


def test_library_error_names_the_parameter_not_a_flag():
    with pytest.raises(ConfigError) as info:
        InferenceOptions(batch_size=0)
    assert info.value.param == "batch_size"
    assert "batch_size" in str(info.value) and "--" not in str(info.value)


def test_the_cli_rewrites_the_parameter_to_its_flag():
    flags = flags_of(build_parser(), "predict")
    assert flags["batch_size"] == "--batch-size" and flags["tta_mode"] == "--tta-mode"
    err = ConfigError("batch_size must be an integer of at least 1, got 0", param="batch_size")
    assert for_flags(err, flags) == "--batch-size must be an integer of at least 1, got 0"
    # only the whole word, once; an error without a parameter is left alone
    err = ConfigError("tta_mode_x and tta_mode: bad", param="tta_mode")
    assert for_flags(err, flags) == "tta_mode_x and --tta-mode: bad"
    assert for_flags(DataError("x.jpg: batch_size"), flags) == "x.jpg: batch_size"


def test_a_command_with_no_such_flag_keeps_the_parameter():
    err = ConfigError("tta_mode must be one of dihedral, fastai", param="tta_mode")
    assert for_flags(err, flags_of(build_parser(), "synth")) == str(err)
