"""Every FITS table galmet writes: no two column names equal without regard to case (FITS and
CFITSIO ignore case), and a ``TUNITn`` for every unit, dex included, while astropy still reads
the units back."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset
from galmet.io.tables import fits_column_names, read_table, write_qtable, write_table

u = pytest.importorskip("astropy.units")
fits = pytest.importorskip("astropy.io.fits")
from astropy.table import QTable  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src" / "galmet"


def _header_columns(path) -> dict[str, str | None]:
    """TTYPEn -> TUNITn (None when absent) of the first table HDU, read with astropy.io.fits alone."""
    header = fits.getheader(path, 1)
    return {header[f"TTYPE{i}"]: header.get(f"TUNIT{i}") for i in range(1, header["TFIELDS"] + 1)}


def _assert_no_case_clash(names) -> None:
    lower = [n.lower() for n in names]
    assert len(set(lower)) == len(lower), names


def test_fits_column_names_renames_the_foreign_one_deterministically():
    assert fits_column_names(["objID", "ra", "dec", "oh_p50_pred"]) == {}
    # galmet's own name keeps it wherever it stands; the user's becomes <name>_input
    assert fits_column_names(["RA", "DEC", "ra", "dec"]) == {"RA": "RA_input", "DEC": "DEC_input"}
    assert fits_column_names(["ra", "RA"]) == {"RA": "RA_input"}
    assert fits_column_names(["Status", "status", "ERROR", "error"]) == {
        "Status": "Status_input",
        "ERROR": "ERROR_input",
    }
    # neither is galmet's: the first in table order keeps its name
    assert fits_column_names(["Name", "NAME", "name"]) == {"NAME": "NAME_input", "name": "name_input2"}
    # an existing <name>_input (any case) is never overwritten
    assert fits_column_names(["RA", "ra", "ra_INPUT"]) == {"RA": "RA_input2"}
    assert fits_column_names(["RA", "ra", "ra_INPUT"]) == fits_column_names(["RA", "ra", "ra_INPUT"])


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "objID": np.array([1237648700000000007, 1237648700000000014], dtype=np.int64),
            "RA": ["12h30m49.4s", "0h42m44.3s"],  # the user's text
            "ra": [187.7058, 10.6846],  # galmet's degrees
            "OH_P50_PRED": ["theirs", "theirs"],
            "oh_p50_pred": [8.9, 9.0],
            "lgm_tot_p50": [10.0, 10.5],
        }
    )


def _positions_qtable():
    from galmet.predict.output import positions_table
    from galmet.sdss.coords import sky_positions

    user = QTable({"RA": ["12h30m49.4s", "0h42m44.3s"], "DEC": ["+12d23m28s", "+41d16m09s"], "Status": ["a", "b"]})
    positions = sky_positions(user)
    results = pd.DataFrame(
        {"row": [0, 1], "oh_p50_pred": [8.9, 9.0], "oh_p50_err": [0.1, 0.1], "status": ["ok", "ok"], "error": ["", ""]}
    )
    return positions_table(positions, results, ["oh_p50"], {"galmet_version": "x"})


def _write_positions(path):
    from galmet.predict.output import write_positions_table

    return write_positions_table(_positions_qtable(), path)


def _write_qtable(path):
    table = QTable.from_pandas(_frame())
    table["ra"] = table["ra"] * u.deg
    return write_qtable(table, path)


WRITERS = {
    "write_table": lambda path: write_table(_frame(), path),
    "write_qtable": _write_qtable,
    "write_positions_table": _write_positions,
}


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_fits_writer_renames_case_clashes_with_a_warning(tmp_path, caplog, writer, suffix):
    out = tmp_path / f"t{suffix}"
    with caplog.at_level(logging.WARNING):
        WRITERS[writer](out)
    columns = _header_columns(out)
    _assert_no_case_clash(columns)
    assert "FITS column names ignore case" in caplog.text and "RA -> RA_input" in caplog.text
    assert list(read_table(out)["RA_input"]) == ["12h30m49.4s", "0h42m44.3s"]  # text as str, not bytes
    assert columns["ra"] == "deg" and "RA_input" in columns
    back = QTable.read(out, character_as_bytes=False)
    if writer == "write_positions_table":
        assert list(back["RA_input"]) == ["12h30m49.4s", "0h42m44.3s"] and list(back["Status_input"]) == ["a", "b"]
        assert list(back["status"]) == ["ok", "ok"]
        np.testing.assert_allclose(back["ra"].to_value(u.deg), [187.7058, 10.6846], atol=1e-3)
    else:
        assert list(back["RA_input"]) == ["12h30m49.4s", "0h42m44.3s"]
        np.testing.assert_allclose(back["oh_p50_pred"].value, [8.9, 9.0])
        assert list(back["OH_P50_PRED_input"]) == ["theirs", "theirs"]


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_other_formats_keep_the_names(tmp_path, writer):
    out = tmp_path / "t.ecsv"
    WRITERS[writer](out)
    names = QTable.read(out).colnames
    assert "RA" in names and "ra" in names and "RA_input" not in names


def _code_of(path: Path) -> str:
    """A module's code without its docstrings and comments (a usage example in a docstring is not a write)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0] = ast.Pass()
    return ast.unparse(tree)


def test_only_io_tables_writes_fits():
    """The renaming and the TUNITs live in io/tables: no other module may write a FITS file itself
    (but io/fits_images, which writes FITS image cutouts, not tables)."""
    pattern = re.compile(r"format\s*=\s*[\"']fits|\.writeto\(|table_to_hdu|BinTableHDU")
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.relative_to(SRC).as_posix() not in ("io/tables.py", "io/fits_images.py") and pattern.search(_code_of(p))
    ]
    assert offenders == []


DEX = {"oh_p50_pred": "dex", "oh_p50_err": "dex", "oh_p50_lo68": "dex", "oh_p50": "dex", "lgm_tot_p50": "dex(solMass)"}


@pytest.mark.parametrize("kind", ["dataframe", "qtable", "masked qtable"])
def test_tunit_for_every_unit_and_astropy_reads_them_back(tmp_path, kind):
    df = pd.DataFrame({name: [8.9, 9.0] for name in DEX} | {"ra": [1.0, 2.0], "z": [0.1, 0.2], "flags": [0, 4]})
    out = tmp_path / "t.fits"
    if kind == "dataframe":
        write_table(df, out)
    else:
        table = QTable({name: df[name].to_numpy() * u.Unit(unit) for name, unit in DEX.items()})
        table["ra"] = df["ra"].to_numpy() * u.deg
        table["flags"] = df["flags"].to_numpy()
        if kind == "masked qtable":
            table = QTable(table, masked=True)
            table["oh_p50_pred"].mask = [False, True]
        write_qtable(table, out)
    columns = _header_columns(out)
    for name, unit in DEX.items():
        assert columns[name] == unit, name
    assert columns["ra"] == "deg" and columns["flags"] is None
    back = QTable.read(out)
    for name, unit in {**DEX, "ra": "deg"}.items():
        assert u.Unit(str(back[name].unit)) == u.Unit(unit), name
    if kind == "masked qtable":
        assert list(np.ma.getmaskarray(back["oh_p50_pred"])) == [False, True]
    else:
        np.testing.assert_allclose(back["oh_p50_pred"].value, [8.9, 9.0])
    assert read_table(out).attrs["units"]["lgm_tot_p50"] == "dex(solMass)"


@pytest.fixture
def tiny_run(tmp_path):
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    torch.manual_seed(0)
    bundle = save_bundle(tmp_path / "run" / "model.pt", build_model("resnet18", 1), {"image_size": 16})
    return bundle, make_tiny_dataset(tmp_path / "ds", n=4, size=16)


@pytest.mark.parametrize("command", ["predict", "embed"])
def test_fits_outputs_of_the_commands_carry_dex_tunits(tmp_path, capsys, tiny_run, command):
    from galmet.cli.main import main

    bundle, ds = tiny_run
    out = tmp_path / "out.fits"
    extra = ["--no-tta"] if command == "predict" else []
    code = main([command, str(bundle), str(ds), "--out", str(out), "--device", "cpu", *extra])
    assert code == 0, capsys.readouterr().err
    columns = _header_columns(out)
    _assert_no_case_clash(columns)
    assert columns["oh_p50"] == "dex" and columns["lgm_tot_p50"] == "dex(solMass)" and columns["ra"] == "deg"
    if command == "predict":
        assert columns["oh_p50_pred"] == "dex"


def test_positions_command_with_the_users_ra_text_writes_one_ra(tmp_path, capsys, tiny_run):
    """The issue's case end to end: a FITS target list with sexagesimal ``RA``/``DEC`` text, to a
    FITS output: galmet's ``ra``/``dec`` (deg) and the user's text as ``RA_input``/``DEC_input``."""
    from faulty_server import FaultyServer
    from galmet.cli.main import main

    bundle, _ = tiny_run
    targets = QTable({"RA": ["12h30m49.4s", "0h42m44.3s"], "DEC": ["+12d23m28s", "+41d16m09s"], "Name": ["a", "b"]})
    targets.write(tmp_path / "targets.fits")
    out = tmp_path / "pred.fits"
    with FaultyServer() as srv:
        argv = ["predict", str(bundle), "--positions", str(tmp_path / "targets.fits"), "--out", str(out)]
        code = main([*argv, "--base-url", srv.url, "--rate", "0", "--device", "cpu", "--no-tta", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    columns = _header_columns(out)
    _assert_no_case_clash(columns)
    assert columns["ra"] == "deg" and columns["dec"] == "deg" and columns["oh_p50_pred"] == "dex"
    assert {"RA_input", "DEC_input", "Name"} <= set(columns)
    back = QTable.read(out, character_as_bytes=False)
    assert list(back["RA_input"]) == ["12h30m49.4s", "0h42m44.3s"] and list(back["status"]) == ["ok", "ok"]
    np.testing.assert_allclose(back["ra"].to_value(u.deg), [187.7058, 10.6846], atol=1e-3)
