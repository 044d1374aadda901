"""Issue 21, class D: zero positions in every input form give an empty table with the columns a
run writes (no KeyError, no work folder); inputs that no reader can make sense of are one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from faulty_server import FaultyServer
from galmet.errors import DataError
from galmet.nn.bundle import load_model, save_bundle
from galmet.nn.net import build_model

u = pytest.importorskip("astropy.units")
from astropy.coordinates import SkyCoord  # noqa: E402
from astropy.table import QTable, Table  # noqa: E402

FAST = dict(device="cpu", rate=0, retries=1, backoff_base=0.01, timeout=5.0, tta=False)

EMPTY = {
    "SkyCoord": lambda: SkyCoord([] * u.deg, [] * u.deg),
    "DataFrame": lambda: pd.DataFrame({"ra": [], "dec": [], "name": []}),
    "Table": lambda: Table({"ra": np.zeros(0), "dec": np.zeros(0)}),
    "QTable with units": lambda: QTable({"ra": np.zeros(0) * u.deg, "dec": np.zeros(0) * u.deg}),
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("zero") / "m.pt"
    return load_model(save_bundle(path, build_model("resnet18"), {"targets": ["oh_p50"], "image_size": 16}))


@pytest.fixture(scope="module")
def one_row_columns(model):
    import galmet

    with FaultyServer() as srv:
        table = galmet.predict_positions(model, SkyCoord([10.0] * u.deg, [5.0] * u.deg), base_url=srv.url, **FAST)
    return table.colnames


@pytest.mark.parametrize("form", list(EMPTY))
@pytest.mark.parametrize("suffix", ["fits", "parquet", "ecsv", "csv"])
def test_zero_positions_give_an_empty_table_with_every_column(model, one_row_columns, form, suffix, tmp_path):
    import galmet
    from galmet.io.ownership import is_bookkeeping
    from galmet.io.tables import read_table

    out = tmp_path / f"p.{suffix}"
    table = galmet.predict_positions(model, EMPTY[form](), out=out, **FAST)
    assert len(table) == 0
    assert [c for c in table.colnames if c != "name"] == one_row_columns
    assert len(read_table(out)) == 0
    left = sorted(p.name for p in tmp_path.iterdir() if not is_bookkeeping(p.name))
    assert left == [out.name]  # no work folder left or made


@pytest.mark.parametrize(
    ("coords", "msg"),
    [
        ([], "expected a SkyCoord, an astropy Table/QTable or a pandas DataFrame"),
        (pd.DataFrame([[1.0, 2.0, 3.0]], columns=["ra", "ra", "dec"]), "column 'ra' appears twice"),
        (pd.DataFrame({"ra": [1.0], "dec": [2.0], "name": ["x" * 8_000_000]}), "row 0: name is a text of 8000000"),
        (Table({"ra": [1.0], "dec": [2.0], "name": ["y" * 5000]}), "row 0: name is a text of 5000"),
    ],
)
def test_unusable_in_memory_positions_are_one_line_before_any_work(model, coords, msg, tmp_path):
    import galmet

    with pytest.raises(DataError) as info:
        galmet.predict_positions(model, coords, out=tmp_path / "p.fits", **FAST)
    assert msg in str(info.value) and "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())


def _write_positions(path, n):
    """A positions file of ``n`` rows (ra, dec, name) in ``path``'s format (a header-only CSV for n=0)."""
    if path.suffix == ".csv":
        path.write_text("ra,dec,name\n" + "".join(f"{10 + i},5,g{i}\n" for i in range(n)))
        return path
    Table(
        {"ra": np.full(n, 10.0), "dec": np.full(n, 5.0), "name": np.array([f"g{i}" for i in range(n)], dtype="U4")}
    ).write(path, format="ascii.ecsv" if path.suffix == ".ecsv" else None)
    return path


@pytest.mark.parametrize("suffix", ["csv", "ecsv", "parquet", "fits"])
def test_zero_rows_from_a_file_have_the_columns_of_one_row_of_that_file(model, suffix, tmp_path):
    """The same file with and without rows: same columns (no ra_input/dec_input; predictions there)."""
    import galmet
    from galmet.io.tables import read_any_table

    empty = read_any_table(_write_positions(tmp_path / f"empty.{suffix}", 0))
    one = read_any_table(_write_positions(tmp_path / f"one.{suffix}", 1))
    zero_cols = galmet.predict_positions(model, empty, **FAST).colnames
    with FaultyServer() as srv:
        one_cols = galmet.predict_positions(model, one, base_url=srv.url, **FAST).colnames
    assert zero_cols == one_cols
    assert "ra_input" not in zero_cols and "oh_p50_pred" in zero_cols
