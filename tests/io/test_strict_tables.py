"""Classes D and I of issue 21: every command that reads a table reads it strictly, through the
one reader (galmet.io.tables.read_table / read_any_table). A CSV row with more or fewer fields
than its header (pandas would shift ra/dec by a column through its implicit index), a column name
given twice, a text cell over MAX_TEXT_CELL characters: one line naming the line or row, exit 2,
nothing written. Zero rows: an empty table, never a traceback."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.errors import DataError
from galmet.io.tables import MAX_TEXT_CELL, read_any_table, read_table

HEADER = "objID,ra,dec,oh_p50,oh_p50_pred,lgm_tot_p50"
ROWS = [f"{1237648700000000000 + i},{10 + i},{-5 + i},8.{i + 1},8.{i + 2},10.{i}" for i in range(5)]
LONG = "x" * (MAX_TEXT_CELL + 1)

#: defect -> (CSV text, what the one-line message says)
DEFECTS = {
    "extra field": ("\n".join([HEADER, *ROWS[:2], ROWS[2] + ",1.5", *ROWS[3:]]) + "\n", "line 4: 7 fields, more"),
    "extra field in the first row": ("\n".join([HEADER, ROWS[0] + ",9", *ROWS[1:]]) + "\n", "line 2: 7 fields"),
    "too few fields": ("\n".join([HEADER, *ROWS[:3], "1237648700000000099,1,2", ROWS[4]]) + "\n", "line 5: 3 fields"),
    "duplicate column": ("objID,ra,ra,dec,oh_p50,oh_p50_pred\n1,2,3,4,8.5,8.6\n", "column 'ra' appears twice"),
    "long text cell": (
        HEADER + ",name\n" + "\n".join(f"{r},{LONG if i == 3 else 'g'}" for i, r in enumerate(ROWS)),
        "line 5: a cell of",
    ),
    "8 MB text cell": (HEADER + ",name\n" + ROWS[0] + "," + "x" * 8_000_000 + "\n", "line 2: a cell longer than"),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_read_table_refuses_a_malformed_csv_in_one_line(tmp_path, defect):
    text, msg = DEFECTS[defect]
    path = tmp_path / "t.csv"
    path.write_text(text)
    for reader in (read_table, read_any_table):
        with pytest.raises(DataError) as info:
            reader(path)
        assert msg in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_comments_blank_lines_and_quoted_commas_still_read(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('# made by hand\nobjID,ra,dec,name\n\n1,10.5,-3,"NGC 1, core"\n# a note\n2,11,4,M31\n')
    df = read_table(path)
    assert df["name"].tolist() == ["NGC 1, core", "M31"] and df["ra"].tolist() == [10.5, 11.0]
    assert df["objID"].dtype == np.int64


def _parquet_with(path, names, columns):
    pq.write_table(pa.table([pa.array(c) for c in columns], names=names), path)


def test_parquet_and_fits_duplicates_and_long_cells_are_one_line(tmp_path):
    from astropy.table import Table

    dup = tmp_path / "dup.parquet"
    _parquet_with(dup, ["ra", "ra", "dec"], [[1.0], [2.0], [3.0]])
    long = tmp_path / "long.parquet"
    _parquet_with(long, ["ra", "dec", "name"], [[1.0, 2.0], [3.0, 4.0], ["a", "x" * (MAX_TEXT_CELL + 1)]])
    fits = tmp_path / "long.fits"
    Table({"ra": [1.0, 2.0], "dec": [3.0, 4.0], "name": ["a", "y" * (MAX_TEXT_CELL + 5)]}).write(fits)
    for path, msg in ((dup, "column 'ra' appears twice"), (long, "row 1: name is a text of"), (fits, "row 1: name")):
        for reader in (read_table, read_any_table):
            with pytest.raises(DataError) as info:
                reader(path)
            assert msg in str(info.value) and "\n" not in str(info.value), (path, reader)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from galmet.nn.bundle import save_bundle
    from galmet.nn.net import build_model

    root = tmp_path_factory.mktemp("strict")
    ds = make_tiny_dataset(root / "ds", n=12, size=16, split=True)
    bundle = save_bundle(root / "m.pt", build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16})
    cat = pd.read_parquet(ds / "catalog.parquet")
    mass = pd.DataFrame({"objID": cat.objID, "lgm_tot_p50": cat.lgm_tot_p50, "lgm_tot_p50_pred": cat.lgm_tot_p50})
    mass.to_parquet(root / "mass.parquet")
    return root, ds, bundle


def _dataset_with_catalog(root, ds_template, text):
    """A copy of the dataset whose catalogue is ``text`` (catalog.csv)."""
    import shutil

    ds = root / "dsx"
    shutil.copytree(ds_template / "images", ds / "images")
    (ds / "catalog.csv").write_text(text)
    return ds


#: surface -> argv given (table file, work folder, env)
SURFACES = {
    "predict --positions": lambda t, w, e: (
        ["predict", e[2], "--positions", t, "--out", w / "p.fits"]
        + ["--base-url", "http://127.0.0.1:9", "--device", "cpu"]
    ),
    "calibrate": lambda t, w, e: ["calibrate", e[2], t, "--out", w / "c.pt", "--split", "all"],
    "evaluate": lambda t, w, e: ["evaluate", t, "--split", "all", "--json", w / "m.json"],
    "systematics": lambda t, w, e: ["systematics", t, "--dataset", e[1], "--out", w / "s", "--split", "all"],
    "figures": lambda t, w, e: ["figures", t, "--out", w / "f", "--split", "all", "--format", "png"],
    "mzr": lambda t, w, e: (
        ["mzr", "--metallicity", t, "--mass", e[0] / "mass.parquet", "--out", w / "z"] + ["--split", "all", "--no-rf"]
    ),
    "catalog --from-table": lambda t, w, e: ["catalog", "--from-table", t, "--out", w / "cat"],
    "info (dataset catalogue)": lambda t, w, e: ["info", _dataset_with_catalog(w, e[1], t.read_text())],
    "baseline (dataset catalogue)": lambda t, w, e: (
        ["baseline", _dataset_with_catalog(w, e[1], t.read_text())]
        + ["--out", w / "b", "--n-estimators", "5", "--jobs", "1"]
    ),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
@pytest.mark.parametrize("surface", list(SURFACES))
def test_every_table_reading_command_refuses_a_malformed_table(env, surface, defect, tmp_path, capsys):
    text, msg = DEFECTS[defect]
    table = tmp_path / "in.csv"
    table.write_text(text)
    work = tmp_path / "w"
    work.mkdir()
    code = main([str(a) for a in SURFACES[surface](table, work, env)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and msg in err, err
    assert {p.name for p in work.iterdir()} <= {"dsx"}  # nothing written


@pytest.mark.parametrize("surface", list(SURFACES))
def test_every_table_reading_command_takes_a_header_only_table_in_one_line(env, surface, tmp_path, capsys):
    table = tmp_path / "in.csv"
    table.write_text(HEADER + "\n")
    work = tmp_path / "w"
    work.mkdir()
    code = main([str(a) for a in SURFACES[surface](table, work, env)])
    err = capsys.readouterr().err
    assert code in (0, 2) and err.count("\n") <= 1, err  # an empty result or one line; never a traceback
    if surface == "predict --positions":
        assert code == 0 and len(read_table(work / "p.fits")) == 0


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ("#Table1\nobjID,ra,dec\n1237648700000000001,10,5,3\n", "line 3: 4 fields, the header has 3"),
        ("objID,ra,dec\n1237648700000000001,10,5\n1237648700000000002,11\n", "line 3: 2 fields"),
    ],
)
def test_sqlsearch_bodies_are_parsed_strictly(body, msg):
    """The catalogue query's CSV answer: the same rule (a deterministic bad answer, not retried)."""
    from galmet.sdss.skyserver import BadBody, parse_sql_csv

    with pytest.raises(BadBody, match=msg):
        parse_sql_csv(body.encode())
    good = parse_sql_csv(b"objID,ra,dec\n1237648700000000001,10,5\n")
    assert good["ra"].tolist() == [10] and good["objID"].tolist() == [1237648700000000001]


#: nested parquet column kinds astropy cannot read -> (arrow array of 2 rows, its JSON text in row 0)
def _nested_columns():
    import pyarrow as pa

    return {
        "struct": (pa.array([{"a": 1, "b": "x"}, None]), '{"a": 1, "b": "x"}'),
        "map": (pa.array([[("k", 1)], []], type=pa.map_(pa.string(), pa.int64())), '[["k", 1]]'),
        "list of struct": (pa.array([[{"a": 1}], []]), '[{"a": 1}]'),
    }


@pytest.mark.parametrize("kind", ["struct", "map", "list of struct"])
def test_a_nested_parquet_column_is_read_as_json_text_with_a_warning(kind, tmp_path, caplog):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from galmet.io.tables import read_any_table
    from galmet.sdss.coords import sky_positions

    values, text = _nested_columns()[kind]
    path = tmp_path / "pos.parquet"
    pq.write_table(pa.table({"ra": [10.0, 11.0], "extra": values, "dec": [5.0, 6.0], "n": [1, 2]}), path)
    with caplog.at_level(logging.WARNING):
        table = read_any_table(path)
    assert table.colnames == ["ra", "extra", "dec", "n"]  # file order kept
    assert str(table["extra"][0]) == text and str(table["extra"][1]) in ("", "[]")
    assert "extra" in caplog.text and "JSON text" in caplog.text
    assert list(sky_positions(table).dec) == [5.0, 6.0]
