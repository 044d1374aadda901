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


def test_several_parameters_each_become_their_flag():
    err = ConfigError("resume and overwrite exclude each other", param=("resume", "overwrite"))
    assert for_flags(err, flags_of(build_parser(), "train")) == "--resume and --overwrite exclude each other"


def test_a_path_keeps_a_word_that_is_a_parameter():
    err = DataError("runs/dataset/out.csv: no truth column 'oh_p50'; pass dataset to join it", param="dataset")
    said = "runs/dataset/out.csv: no truth column 'oh_p50'; pass --dataset to join it"
    assert for_flags(err, {"dataset": "--dataset", "out": "--out"}) == said


def test_a_command_module_names_the_flag_of_a_parameter_named_otherwise():
    train = flags_of(build_parser(), "train")
    assert train["out_dir"] == "--out" and train["fold_seed"] == "--split-seed"
    assert flags_of(build_parser(), "report")["out_html"] == "--out"
    assert flags_of(build_parser(), "lr-find")["num_steps"] == "--steps"


def test_the_library_says_the_parameter_and_the_cli_the_flag(tmp_path, capsys):
    from galmet.cli.main import main
    from galmet.report.build import check_report_output

    with pytest.raises(ConfigError) as info:
        check_report_output([tmp_path, tmp_path])
    assert info.value.param == "out_html" and str(info.value).startswith("out_html is required")
    assert main(["report", str(tmp_path), str(tmp_path)]) == 2
    said = "--out is required when reporting several run folders (where should the report go?)"
    assert capsys.readouterr().err == f"galmet report: error: {said}\n"
    (tmp_path / "x.html").mkdir()
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "x.html")]) == 2
    assert (
        capsys.readouterr().err
        == f"galmet report: error: --out {tmp_path / 'x.html'}: is a directory; give a file name\n"
    )


def test_the_rewrite_ends_sentences_but_leaves_file_names():
    flags = {"out": "--out", "batch_size": "--batch-size"}
    assert for_flags(ConfigError("bad value for batch_size.", param="batch_size"), flags) == (
        "bad value for --batch-size."
    )
    assert for_flags(ConfigError("x: out.csv exists; choose another out", param="out"), flags) == (
        "x: out.csv exists; choose another --out"
    )
