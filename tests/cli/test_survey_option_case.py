"""--survey, --layer and --format take any case (jpg for jpeg) in every command, normalised to
galmet's lower-case names, which the commands echo; catalog's --base-url names no --survey."""

from __future__ import annotations

import pytest

from conftest import run_cli
from galmet.cli.main import build_parser


@pytest.mark.parametrize(
    ("argv", "fmt"),
    [
        (["download", "ds", "--layer", "LS-DR10", "--format", "FITS"], "fits"),
        (["predict", "sdss400", "--positions", "p", "--out", "o", "--layer", "LS-DR10", "--format", "JPG"], "jpeg"),
        (["synth", "--n", "4", "--out", "s", "--format", "Fits"], "fits"),
    ],
)
def test_survey_options_take_any_case(argv, fmt):
    args = build_parser().parse_args([*argv, "--survey", "Legacy"])
    assert (args.survey, args.format) == ("legacy", fmt)
    assert getattr(args, "layer", "ls-dr10") == "ls-dr10"  # (synth has no --layer)


def test_synth_echoes_the_normalised_names(tmp_path, capsys):
    argv = ["synth", "--n", "4", "--size", "16", "--out", tmp_path / "s", "--workers", "1", "--test", "1"]
    code, out, err = run_cli(capsys, *argv, "--survey", "PS1", "--format", "JPG", "--no-progress")
    assert code == 0, err
    assert "(16x16 px, ps1 jpeg)" in out


def test_catalog_base_url_help_names_no_survey(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["catalog", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--base-url BASE_URL SkyServer root" in text and "--survey" not in text
