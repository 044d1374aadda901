"""Red-team 10, 12, 19: what a FITS table cannot hold (a column name over 68 characters or not
ASCII, a non-ASCII text cell) is one line naming the column/row at the write, never a traceback;
a non-ASCII provenance value (the command line) is kept, escaped to ASCII, without astropy warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from galmet.errors import DataError
from galmet.io.tables import FITS_MAX_NAME, check_fits_columns, fits_text, write_qtable, write_table

#: case -> (a frame FITS cannot hold, what the message must name)
UNWRITABLE = {
    "long name": (pd.DataFrame({"x" * (FITS_MAX_NAME + 1): [1.0]}), "69-character name"),
    "non-ASCII name": (pd.DataFrame({"név": [1.0]}), "n\\xe9v"),
    "non-ASCII value": (pd.DataFrame({"name": ["a", "Ωmega"]}), "row 1: column name"),
    "control character": (pd.DataFrame({"name": ["a\tb"]}), "row 0: column name"),
}


@pytest.mark.parametrize("case", sorted(UNWRITABLE))
@pytest.mark.parametrize("surface", ["write_table", "write_qtable", "check_fits_columns"])
def test_what_fits_cannot_hold_is_one_line_naming_it(case, surface, tmp_path):
    from astropy.table import Table

    df, named = UNWRITABLE[case]
    out = tmp_path / "t.fits"
    with pytest.raises(DataError) as err:
        if surface == "write_table":
            write_table(df, out)
        elif surface == "write_qtable":
            write_qtable(Table.from_pandas(df), out)
        else:
            check_fits_columns({c: df[c].to_numpy() for c in df.columns}, "t")
    assert "\n" not in str(err.value) and named in str(err.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("suffix", ["csv", "parquet", "ecsv"])
def test_other_formats_still_hold_them(suffix, tmp_path):
    for df, _ in UNWRITABLE.values():
        write_table(df, tmp_path / f"t.{suffix}")


def test_names_and_text_fits_holds_pass():
    check_fits_columns({"x" * FITS_MAX_NAME: np.zeros(2), "name": np.array(["a b", "~!"]), "v": np.zeros((2, 3))}, "t")


@pytest.mark.parametrize("command", ["galmet predict Ωmega.csv --out p.fits", "galmet predict née\x07.csv", "plain"])
def test_a_non_ascii_command_keeps_its_fits_card_escaped(command, tmp_path):
    from astropy.io import fits

    out = tmp_path / "p.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_table(pd.DataFrame({"a": [1.0]}), out, provenance={"command": command})
        header = fits.getheader(out, 1)
    assert header["COMMAND"] == fits_text(command)
    assert all(" " <= c <= "~" for c in header["COMMAND"])
    assert ("\\u03a9" in header["COMMAND"]) == ("Ω" in command)
