"""One dataset folder holds one survey's (and layer's) cutouts: another survey over them is refused,
before any request or write; ``--catalog`` puts the cross-survey set in a folder of its own."""

from __future__ import annotations

import shutil

import pytest

from conftest import run_cli, snapshot
from faulty_server import FaultyServer, make_catalog
from galmet.errors import ConfigError
from galmet.io.tables import read_table, write_table
from galmet.sdss.download import DownloadOptions, download_cutouts, load_manifest, write_manifest
from survey_servers import SurveyServer, download_args, download_options


def cli(ds, url, *extra):
    return download_args(ds, url, *extra, retries=1)


def options(url: str, **kw) -> DownloadOptions:
    return download_options(url, retries=1, **kw)


def sdss_folder(root, n: int = 3):
    """``root``: a catalogue and its SDSS cutouts, downloaded from the SkyServer stand-in."""
    root.mkdir(exist_ok=True)
    cat = make_catalog(root, n)
    with FaultyServer() as srv:
        assert download_cutouts(root, options(srv.url)).ok == n
    return cat


def refused(capsys, root, *argv) -> str:
    """Run a download of ``argv`` into ``root`` that must be refused; return its one-line error."""
    before = snapshot(root)
    with SurveyServer() as srv:
        code, _, err = run_cli(capsys, *cli(root, srv.url, *argv))
        assert srv.requests == []  # nothing asked of the service
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert snapshot(root) == before  # byte-identical
    return err


@pytest.mark.parametrize("survey", [["--survey", "legacy"], ["--survey", "ps1", "--format", "jpeg"]])
def test_another_survey_over_an_sdss_dataset_is_refused_and_leaves_it_untouched(tmp_path, capsys, survey):
    sdss_folder(tmp_path)
    err = refused(capsys, tmp_path, *survey)
    assert f"dataset {tmp_path}: its manifest.parquet records 3 sdss cutouts and this run fetches {survey[1]}" in err
    assert f"galmet download NEW --catalog {tmp_path / 'catalog.parquet'} --survey {survey[1]}" in err


@pytest.mark.parametrize(
    "first, second, held",
    [
        (["--survey", "legacy"], ["--survey", "ps1", "--format", "jpeg"], "legacy ls-dr10"),
        (["--survey", "legacy", "--layer", "ls-dr9-north"], ["--survey", "legacy", "--layer", "ls-dr9-south"],
         "legacy ls-dr9-north"),
        (["--survey", "ps1", "--format", "jpeg"], ["--format", "jpeg"], "ps1"),
    ],
)  # fmt: skip
def test_another_survey_or_layer_over_a_folders_cutouts_is_refused(tmp_path, capsys, first, second, held):
    make_catalog(tmp_path, 2)
    with SurveyServer() as srv:
        code, _, err = run_cli(capsys, *cli(tmp_path, srv.url, *first))
    assert code == 0, err
    if "--survey" not in second:  # sdss: SkyServer's stand-in
        before = snapshot(tmp_path)
        with FaultyServer() as srv:
            code, _, err = run_cli(capsys, *cli(tmp_path, srv.url, *second))
            assert sum(srv.counts.values()) == 0
        assert code == 2 and len(err.strip().splitlines()) == 1 and snapshot(tmp_path) == before
    else:
        err = refused(capsys, tmp_path, *second)
    assert f"records 2 {held} cutouts" in err and "one folder holds the cutouts of one imaging source" in err


def test_the_api_refuses_too_and_the_same_survey_still_resumes(tmp_path):
    sdss_folder(tmp_path, 2)
    with SurveyServer() as srv, pytest.raises(ConfigError, match="holds the cutouts of one imaging source") as info:
        download_cutouts(tmp_path, options(srv.url, survey="legacy"))
    assert info.value.param == "survey"
    with FaultyServer() as srv:
        again = download_cutouts(tmp_path, options(srv.url))
        assert (again.present, again.to_fetch) == (2, 0) and sum(srv.counts.values()) == 0


def test_a_copied_folder_without_its_manifest_is_not_taken_as_another_surveys(tmp_path, capsys):
    """SDSS JPEGs copied without their manifest: their survey is unknown, never recorded as legacy's."""
    sdss_folder(tmp_path / "paper", 2)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "paper", copy)
    (copy / "manifest.parquet").unlink()
    err = refused(capsys, copy, "--survey", "legacy")
    assert "has no row in" in err and "so where it was imaged is unknown" in err and "--catalog" in err
    assert not (copy / "manifest.parquet").exists()


def test_a_killed_legacy_runs_cutout_without_its_row_is_kept(tmp_path):
    """A folder of legacy cutouts whose manifest missed the last one (killed before the rewrite):
    the file is that run's, resumed as before."""
    cat = make_catalog(tmp_path, 3)
    with SurveyServer() as srv:
        assert download_cutouts(tmp_path, options(srv.url, survey="legacy")).ok == 3
    records = load_manifest(tmp_path / "manifest.parquet")
    del records[int(cat.objID[0])]
    write_manifest(tmp_path / "manifest.parquet", records)
    with SurveyServer() as srv:
        again = download_cutouts(tmp_path, options(srv.url, survey="legacy"))
        assert srv.requests == []
    assert (again.present, again.to_fetch) == (3, 0)
    assert load_manifest(tmp_path / "manifest.parquet")[int(cat.objID[0])].survey == "legacy"


def test_catalog_takes_another_folders_catalogue_for_the_cross_survey_set(tmp_path, capsys):
    cat = sdss_folder(tmp_path / "paper", 3)
    paper = snapshot(tmp_path / "paper")
    xs = tmp_path / "xs"
    src = tmp_path / "paper" / "catalog.parquet"
    with SurveyServer() as srv:
        code, out, err = run_cli(capsys, *cli(xs, srv.url, "--catalog", src, "--survey", "legacy"))
        assert code == 0, err
        assert "3 ok, 0 failed" in out
        code, out, err = run_cli(capsys, *cli(xs, srv.url, "--catalog", src, "--survey", "legacy"))
        assert code == 0 and "3 already present" in out and len(srv.requests) == 3  # resumed
    assert (xs / "catalog.parquet").read_bytes() == src.read_bytes()
    assert {r.survey for r in load_manifest(xs / "manifest.parquet").values()} == {"legacy"}
    assert sorted(p.name for p in (xs / "images").glob("*.jpg")) == sorted(f"{o}.jpg" for o in cat.objID)
    assert snapshot(tmp_path / "paper") == paper  # the SDSS set untouched


def test_catalog_of_another_format_is_copied_and_a_different_catalogue_is_refused(tmp_path, capsys):
    cat = make_catalog(tmp_path, 2)
    csv = tmp_path / "targets.csv"
    write_table(cat, csv)
    xs = tmp_path / "xs"
    with SurveyServer() as srv:
        code, _, err = run_cli(capsys, *cli(xs, srv.url, "--catalog", csv, "--survey", "legacy"))
    assert code == 0, err
    assert read_table(xs / "catalog.parquet").objID.tolist() == cat.objID.tolist()
    write_table(cat.iloc[:1], tmp_path / "other.csv")
    err = refused(capsys, xs, "--catalog", tmp_path / "other.csv", "--survey", "legacy")
    assert f"dataset {xs}: already has a catalogue (catalog.parquet) that is not {tmp_path / 'other.csv'}" in err


def test_catalog_that_does_not_exist_writes_nothing(tmp_path, capsys):
    xs = tmp_path / "xs"
    with SurveyServer() as srv:
        code, _, err = run_cli(capsys, *cli(xs, srv.url, "--catalog", tmp_path / "nope.parquet", "--survey", "legacy"))
        assert srv.requests == []
    assert code == 2 and "nope.parquet: no such catalogue file" in err and not xs.exists()
