"""A VizieR export as VizieR writes it: computed degrees in ``_RAJ2000``/``_DEJ2000``, the catalogue's
sexagesimal text in ``RAJ2000``/``DEJ2000`` with units ``h:m:s``/``d:m:s``; in VOTable, CSV and FITS.
The degree columns are used (and the choice is logged); the text alone also works."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("astropy")
from astropy.io import fits  # noqa: E402

from galmet.io.tables import read_any_table  # noqa: E402
from galmet.sdss.coords import sky_positions  # noqa: E402

#: Three galaxies, as VizieR lists them (J/ApJS/..., the NGC names are only labels).
ROWS = [
    ("NGC 4486", 187.705930, 12.391123, "12 30 49.42", "+12 23 28.0"),
    ("NGC 5128", 201.365063, -43.019113, "13 25 27.62", "-43 01 08.8"),
    ("NGC 0224", 10.684708, 41.268750, "00 42 44.33", "+41 16 07.5"),
]
RA = np.array([r[1] for r in ROWS])
DEC = np.array([r[2] for r in ROWS])

VOTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <RESOURCE ID="yCat_1" name="J/A+A/000/00">
  <COOSYS ID="J2000" system="eq_FK5" equinox="J2000"/>
  <TABLE ID="J_A_A_000_00_table1" name="J/A+A/000/00/table1">
   <FIELD name="_RAJ2000" ucd="pos.eq.ra" ref="J2000" datatype="double" width="10" precision="6" unit="deg"/>
   <FIELD name="_DEJ2000" ucd="pos.eq.dec" ref="J2000" datatype="double" width="10" precision="6" unit="deg"/>
   <FIELD name="Name" ucd="meta.id;meta.main" datatype="char" arraysize="8"/>
   <FIELD name="RAJ2000" ucd="pos.eq.ra;meta.main" ref="J2000" datatype="char" arraysize="11" unit="&quot;h:m:s&quot;"/>
   <FIELD name="DEJ2000" ucd="pos.eq.dec;meta.main" datatype="char" arraysize="11" unit="&quot;d:m:s&quot;"/>
   <DATA><TABLEDATA>
{rows}
   </TABLEDATA></DATA>
  </TABLE>
 </RESOURCE>
</VOTABLE>
"""


def _votable(path, degree_columns: bool = True) -> None:
    rows = "\n".join(
        f"    <TR><TD>{ra:.6f}</TD><TD>{dec:+.6f}</TD><TD>{n}</TD><TD>{rt}</TD><TD>{dt}</TD></TR>"
        for n, ra, dec, rt, dt in ROWS
    )
    text = VOTABLE.replace("{rows}", rows)
    if not degree_columns:
        text = text.replace('name="_RAJ2000"', 'name="_RA_"').replace('name="_DEJ2000"', 'name="_DE_"')
    path.write_text(text)


def _csv(path, degree_columns: bool = True) -> None:
    head = "_RAJ2000,_DEJ2000,Name,RAJ2000,DEJ2000" if degree_columns else "x,y,Name,RAJ2000,DEJ2000"
    path.write_text(head + "\n" + "".join(f"{ra:.6f},{dec:+.6f},{n},{rt},{dt}\n" for n, ra, dec, rt, dt in ROWS))


def _fits(path, degree_columns: bool = True) -> None:
    cols = [
        fits.Column(name="_RAJ2000" if degree_columns else "x", format="D", unit="deg", array=RA),
        fits.Column(name="_DEJ2000" if degree_columns else "y", format="D", unit="deg", array=DEC),
        fits.Column(name="Name", format="8A", array=[r[0] for r in ROWS]),
        fits.Column(name="RAJ2000", format="11A", unit="h:m:s", array=[r[3] for r in ROWS]),
        fits.Column(name="DEJ2000", format="11A", unit="d:m:s", array=[r[4] for r in ROWS]),
    ]
    fits.BinTableHDU.from_columns(cols).writeto(path)


WRITERS = {"vot": _votable, "csv": _csv, "fits": _fits}


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_a_vizier_export_uses_its_degree_columns_and_says_so(tmp_path, caplog, suffix):
    path = tmp_path / f"vizier.{suffix}"
    WRITERS[suffix](path)
    with caplog.at_level(logging.INFO, logger="galmet.sdss.coords"):
        pos = sky_positions(read_any_table(path), where=str(path))
    assert (pos.ra_column, pos.dec_column) == ("_RAJ2000", "_DEJ2000")
    np.testing.assert_allclose(pos.ra, RA, atol=1e-9)
    np.testing.assert_allclose(pos.dec, DEC, atol=1e-9)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "_RAJ2000 and _DEJ2000 (degrees); not from RAJ2000, DEJ2000" in said


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_the_sexagesimal_columns_alone_are_read_as_text(tmp_path, suffix):
    path = tmp_path / f"vizier.{suffix}"
    WRITERS[suffix](path, degree_columns=False)
    pos = sky_positions(read_any_table(path), where=str(path))
    assert (pos.ra_column, pos.dec_column) == ("RAJ2000", "DEJ2000")
    np.testing.assert_allclose(pos.ra, RA, atol=1e-4)  # the text's 0.01 s and 0.1"
    np.testing.assert_allclose(pos.dec, DEC, atol=1e-4)


def test_an_unreadable_preferred_column_gives_way_but_none_readable_is_one_line(tmp_path):
    import pandas as pd

    from galmet.errors import DataError

    frame = pd.DataFrame({"ra": ["12h30m", "bad"], "RAJ2000": [187.5, 10.0], "dec": [1.0, 2.0]})
    pos = sky_positions(frame)
    assert pos.ra_column == "RAJ2000" and pos.ra.tolist() == [187.5, 10.0]
    with pytest.raises(DataError, match="row 1: column ra"):
        sky_positions(pd.DataFrame({"ra": ["12h30m", "bad"], "dec": [1.0, 2.0]}))
