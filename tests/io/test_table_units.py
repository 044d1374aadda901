"""FITS and ECSV outputs carry units and provenance; astropy reads them back."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_tiny_dataset
from galmet.columns import column_unit
from galmet.io.tables import file_sha256, read_table, table_provenance, write_table


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "objID": np.array([1237648700000000007, 1237648700000000014], dtype=np.int64),
            "split": ["test", "test"],
            "oh_p50_pred": [8.9, np.nan],
            "oh_p50_spread": [0.01, 0.02],
            "oh_p50_err": [0.1, 0.2],
            "oh_p50_lo68": [8.8, 8.7],
            "oh_p50_hi95": [9.1, 9.2],
            "oh_p50": [8.95, 9.0],
            "lgm_tot_p50_pred": [10.1, 10.4],
            "lgm_tot_p50_err": [0.2, 0.3],
            "lgm_tot_p50": [10.0, 10.5],
            "z": [0.05, 0.1],
            "ra": [185.0, 10.5],
            "dec": [15.8, -1.0],
            "ood_score": [0.5, 1.5],
            "flags": [0, 4],
        }
    )


EXPECTED = {
    "oh_p50_pred": "dex",
    "oh_p50_spread": "dex",
    "oh_p50_err": "dex",
    "oh_p50_lo68": "dex",
    "oh_p50_hi95": "dex",
    "oh_p50": "dex",
    "lgm_tot_p50_pred": "dex(solMass)",
    "lgm_tot_p50_err": "dex",  # a difference of logarithms
    "lgm_tot_p50": "dex(solMass)",
    "z": "",
    "ra": "deg",
    "dec": "deg",
    "ood_score": "",
}


def test_column_units():
    for name, unit in EXPECTED.items():
        assert column_unit(name) == unit, name
    for name in ("objID", "split", "flags", "file", "mystery_pred", "mystery"):
        assert column_unit(name) is None, name


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
def test_units_and_provenance_round_trip(tmp_path, suffix):
    from astropy import units as u
    from astropy.table import Table

    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    out = tmp_path / f"pred{suffix}"
    df = _table()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # writing warns about nothing; reading only that dex is no FITS unit
        write_table(df, out, provenance=table_provenance(model=model, command="galmet predict m.pt ds --out x"))
        warnings.filterwarnings("ignore", message="'dex.*' did not parse as fits unit", category=u.UnitsWarning)
        table = Table.read(out)
    for name, unit in EXPECTED.items():
        # FITS: astropy gives dex back as a unit of that name (it parses no function unit in a TUNIT)
        assert u.Unit(str(table[name].unit)) == u.Unit(unit), name
    for name in ("objID", "split", "flags"):
        assert table[name].unit is None
    assert u.Unit(str(table["lgm_tot_p50"].unit)) == u.dex(u.Msun)
    meta = {k.lower(): v for k, v in table.meta.items()}
    assert meta.get("modelsha", meta.get("model_sha256")) == file_sha256(model)
    assert meta.get("galmet", meta.get("galmet_version")) == __import__("galmet").__version__
    assert meta["command"] == "galmet predict m.pt ds --out x"
    assert meta["date"].endswith("Z") and meta["date"][:2] == "20"
    back = read_table(out)
    assert back["objID"].tolist() == df["objID"].tolist() and back["objID"].dtype == np.int64
    np.testing.assert_array_equal(back["oh_p50_pred"].to_numpy(), df["oh_p50_pred"].to_numpy())
    assert back.attrs["units"]["lgm_tot_p50"] == "dex(solMass)" and back.attrs["units"]["ra"] == "deg"
    assert back.attrs["provenance"]["model_sha256"] == file_sha256(model)


def test_fits_header_has_standard_tunits_and_provenance(tmp_path):
    from astropy.io import fits

    out = tmp_path / "pred.fits"
    write_table(_table(), out)
    header = fits.getheader(out, 1)
    units = {header[f"TTYPE{i}"]: header.get(f"TUNIT{i}") for i in range(1, header["TFIELDS"] + 1)}
    assert units["ra"] == "deg" and units["dec"] == "deg"
    assert units["z"] in ("", None)  # dimensionless (astropy restores it from its serialisation)
    assert header["GALMET"] and header["DATE"] and "COMMAND" in header
    # dex is not a FITS-standard unit, but TOPCAT and CFITSIO readers show a TUNITn all the same
    for name, unit in EXPECTED.items():
        if unit.startswith("dex"):
            assert units[name] == unit, name


def test_csv_and_parquet_unchanged(tmp_path):
    df = _table()
    write_table(df, tmp_path / "p.csv")
    assert pd.read_csv(tmp_path / "p.csv").columns.tolist() == df.columns.tolist()
    write_table(df, tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), df)


def test_default_command_names_galmet(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/site-packages/galmet/__main__.py", "predict", "a b"])
    assert table_provenance()["command"] == "galmet predict 'a b'"


def test_predict_cli_writes_fits_with_units_and_model_hash(tmp_path, capsys):
    from astropy.table import Table

    from galmet.cli.main import main
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    torch.manual_seed(0)
    bundle = save_bundle(tmp_path / "run" / "model.pt", build_model("resnet18", 1), {"image_size": 16})
    ds = make_tiny_dataset(tmp_path / "ds", n=4, size=16)
    for suffix in (".fits", ".ecsv"):
        out = tmp_path / f"p{suffix}"
        code = main(["predict", str(bundle), str(ds), "--out", str(out), "--device", "cpu", "--no-tta"])
        assert code == 0, capsys.readouterr().err
        table = Table.read(out)
        assert str(table["oh_p50_pred"].unit) == "dex" and str(table["ra"].unit) == "deg"
        meta = {k.lower(): v for k, v in table.meta.items()}
        assert meta.get("modelsha", meta.get("model_sha256")) == file_sha256(bundle)
        assert meta["command"] and meta["date"]


def test_one_suffix_registry_names_every_table_format(tmp_path):
    from galmet.errors import ConfigError, DataError
    from galmet.io.tables import TABLE_FORMATS, TABLE_SUFFIXES, format_names, require_table_format, table_format

    cases = {
        "a.parquet": "parquet",
        "A.CSV": "csv",
        "a.ecsv": "ecsv",  # not csv, though it ends in "csv"
        "a.fits": "fits",
        "a.fit": "fits",
        "a.fits.gz": "fits",
        "a.fts": "fits",
        "a.vot": "votable",
        "a.xml": "votable",
    }
    for name, fmt in cases.items():
        assert table_format(name).name == fmt, name
    assert table_format("a.txt") is None and table_format("a.vot", writing=True) is None
    assert ".vot" not in TABLE_SUFFIXES and ".fits.gz" in TABLE_SUFFIXES
    assert [f.name for f in TABLE_FORMATS if f.writable] == ["parquet", "ecsv", "csv", "fits"]
    assert format_names() == ".parquet, .ecsv, .csv or .fits"
    with pytest.raises(ConfigError, match=r"^out a\.vot: unknown table format \(use .parquet") as info:
        require_table_format("a.vot", param="out")
    assert info.value.param == "out"
    text = tmp_path / "x.txt"
    text.write_text("a\n1\n")
    with pytest.raises(DataError, match="unknown table format"):
        read_table(text)
    with pytest.raises(DataError, match="unknown table format"):
        write_table(_table(), tmp_path / "x.vot")


def test_the_registry_reads_and_writes_dataframes_and_qtables_alike(tmp_path):
    from astropy import units as u
    from astropy.table import QTable, Table

    from galmet.io.tables import read_any_table, write_qtable

    qt = QTable({"objID": np.array([1237663716556341422, 7], dtype=np.int64), "oh_p50_pred": [8.9, 9.0] * u.dex})
    qt.meta["model_sha256"] = "abc"
    for suffix in (".parquet", ".ecsv", ".fits", ".csv"):
        path = write_qtable(qt, tmp_path / f"q{suffix}")
        back = read_table(path)
        assert back["objID"].tolist() == qt["objID"].tolist(), suffix
        if suffix in (".ecsv", ".fits"):
            assert back.attrs["units"]["oh_p50_pred"] == "dex" and back.attrs["provenance"]["model_sha256"] == "abc"
    Table({"objID": np.array([1237663716556341422]), "ra": [1.0]}).write(tmp_path / "p.vot", format="votable")
    assert read_table(tmp_path / "p.vot")["objID"].tolist() == [1237663716556341422]
    assert read_any_table(tmp_path / "p.vot")["objID"].tolist() == [1237663716556341422]
    assert isinstance(read_any_table(tmp_path / "q.csv"), pd.DataFrame)  # galmet's exact-ID CSV reader
