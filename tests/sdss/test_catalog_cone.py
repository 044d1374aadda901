"""galmet catalog --cone RA DEC RADIUS: the paper's galaxies in a cone, against a loopback SqlSearch."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from faulty_server import FaultyServer
from galmet.cli.main import main
from galmet.errors import ConfigError
from galmet.sdss.catalog import COLUMNS, Cuts
from galmet.sdss.cone import DISTANCE, MAX_RADIUS_ARCMIN, cone_sql, parse_radius, query_cone
from galmet.sdss.skyserver import SkyServerClient

BASE = 1237648700000000000
NEAR = re.compile(r"JOIN dbo\.fGetNearbyObjEq\(([-\d.e]+), ([-\d.e]+), ([\d.e]+)\) AS n ON n\.objID = g\.objID")


def galaxy(i: int, ra: float, dec: float) -> dict:
    row = {name: 0.0 for _, name in COLUMNS}
    row.update(objID=BASE + i, specObjID=3 * 10**17 + i, ra=ra, dec=dec, z=0.07, zErr=1e-5, rChi2=1.1)
    row.update(petroMag_r=17.0, oh_p50=8.9, lgm_tot_p50=10.2, bptclass=1)
    row.update({f"modelMag_{b}": m for b, m in zip("ugriz", (19.0, 17.6, 16.9, 16.5, 16.2), strict=True)})
    return row


def sky() -> pd.DataFrame:
    """Galaxies 2, 6, 11.5, 40 arcmin north of (150, 2)."""
    return pd.DataFrame([galaxy(k, 150.0, 2.0 + d / 60) for k, d in enumerate((40.0, 11.5, 2.0, 6.0))])


def responder(table: pd.DataFrame, seen: list | None = None):
    """SqlSearch imitation of fGetNearbyObjEq joined to the paper's query: rows within r arcmin, with distance."""

    def reply(cmd: str, n_before: int):
        if seen is not None:
            seen.append(cmd)
        ra, dec, r = map(float, NEAR.search(cmd).groups())
        assert "FROM SpecObj AS s\n  JOIN Galaxy AS g ON g.objID = s.bestObjID" in cmd and "s.rChi2 < 2" in cmd
        d = (
            np.degrees(
                np.arccos(
                    np.clip(
                        np.sin(np.radians(dec)) * np.sin(np.radians(table["dec"]))
                        + np.cos(np.radians(dec))
                        * np.cos(np.radians(table["dec"]))
                        * np.cos(np.radians(table["ra"] - ra)),
                        -1,
                        1,
                    )
                )
            )
            * 60
        )
        rows = table.assign(distance_arcmin=d)[d <= r].sample(frac=1, random_state=1)  # any order
        return 200, "text/plain", ("#Table1\n" + rows.to_csv(index=False)).encode()

    return reply


FAST = ["--rate", "0", "--retries", "1", "--backoff-base", "0.001", "--no-progress"]


@pytest.mark.parametrize(
    ("text", "arcmin"),
    [("10", 10.0), ("10arcmin", 10.0), ("0.5deg", 30.0), ("30arcsec", 0.5), ("5'", 5.0), ('90"', 1.5), ("3deg", 180)],
)
def test_radius_units(text, arcmin):
    assert math.isclose(parse_radius(text), arcmin)


def test_radius_as_an_astropy_quantity():
    import astropy.units as u

    assert math.isclose(parse_radius(0.25 * u.deg), 15.0)
    with pytest.raises(ConfigError, match="not an angle"):
        parse_radius(3 * u.m)


@pytest.mark.parametrize("text", ["0", "-1", "3.01deg", "181", "abc", "10 parsec", "nan", "inf"])
def test_a_bad_radius_is_refused(text):
    with pytest.raises(ConfigError, match="radius"):
        parse_radius(text)


def test_cone_sql_joins_the_function_to_the_papers_query():
    sql = cone_sql(150.0, 2.0, 12.5, Cuts(), top=7)
    assert sql.startswith("SELECT TOP 7")
    assert "JOIN dbo.fGetNearbyObjEq(150, 2, 12.5) AS n ON n.objID = g.objID" in sql
    assert "n.distance AS distance_arcmin" in sql
    assert all(c in sql for c in Cuts().sql_conditions())
    for table in ("SpecObj AS s", "Galaxy AS g", "GalSpecInfo AS i", "GalSpecLine AS l", "GalSpecExtra AS e"):
        assert table in sql


def test_payload_mode_sends_nothing_and_takes_sexagesimal():
    p = query_cone(SkyServerClient("http://127.0.0.1:9"), "10h00m00s", "+02d00m00s", "0.1deg", get_query_payload=True)
    assert p.url.endswith("/SkyServerWS/SearchTools/SqlSearch") and p.params["format"] == "csv"
    assert "dbo.fGetNearbyObjEq(150, 2, 6)" in p.params["cmd"]


def test_cone_writes_the_galaxies_within_the_radius_nearest_first(tmp_path, capsys):
    out = tmp_path / "ds"
    seen: list[str] = []
    with FaultyServer(sql_responder=responder(sky(), seen)) as srv:
        rc = main(["catalog", "--out", str(out), "--cone", "150", "2", "0.2deg", "--base-url", srv.url, *FAST])
    assert rc == 0, capsys.readouterr().err
    assert len(seen) == 1 and "fGetNearbyObjEq(150, 2, 12)" in seen[0]
    cat = pd.read_parquet(out / "catalog.parquet")
    assert cat["objID"].tolist() == [BASE + 2, BASE + 3, BASE + 1]  # 2, 6, 11.5 arcmin; 40 is outside
    assert np.allclose(cat[DISTANCE], [2, 6, 11.5], atol=1e-6) and cat["objID"].dtype == np.int64
    assert set(cat["split"]) <= {"train", "valid", "test"}
    meta = json.loads((out / "catalog.json").read_text())
    assert meta["cone"] == {"ra": 150.0, "dec": 2.0, "radius_arcmin": 12.0} and "fGetNearbyObjEq" in meta["sql"]


def test_negative_declination_and_a_sexagesimal_one(tmp_path, capsys):
    for dec in ("-2.5", " -2:30:00"):
        assert main(["catalog", "--dry-run", "--cone", "150", dec, "1"]) == 0
        assert "fGetNearbyObjEq(150, -2.5, 1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("cone", "message"),
    [
        (["150", "2", "4deg"], "--cone: radius 4deg must be above 0 and at most 180 arcmin (3 deg), got 240 arcmin"),
        (["150", "2", "ten"], "--cone: radius 'ten' is not an angle"),
        (["361", "2", "1"], "--cone: ra 361 is outside 0 to 360 degrees"),
        (["150", "91", "1"], "--cone: dec 91 is outside -90 to +90 degrees"),
        (["12hh", "2", "1"], "--cone: '12hh' is not a right ascension"),
    ],
)
def test_a_bad_cone_is_one_line_exit_2_before_anything(tmp_path, capsys, cone, message):
    with FaultyServer(sql_responder=responder(sky())) as srv:
        rc = main(["catalog", "--out", str(tmp_path / "ds"), "--cone", *cone, "--base-url", srv.url, *FAST])
        assert sum(srv.sql_counts.values()) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"galmet catalog: error: {message}"), err
    assert not (tmp_path / "ds").exists()


def test_an_empty_cone_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    with FaultyServer(sql_responder=responder(sky())) as srv:
        rc = main(["catalog", "--out", str(tmp_path / "ds"), "--cone", "20", "-30", "5", "--base-url", srv.url, *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no galaxies within 5 arcmin of ra 20 dec -30 pass the cuts" in err[0]
    assert not (tmp_path / "ds" / "catalog.parquet").exists()


def test_the_limit_and_the_cuts_reach_the_sql(capsys):
    assert main(["catalog", "--dry-run", "--cone", "150", "2", "5", "--limit", "3", "--petro-r-max", "17.5"]) == 0
    out = capsys.readouterr().out
    assert "SELECT TOP 3" in out and "g.petroMag_r < 17.5" in out and "g.petroMag_r < 18" not in out
    assert re.search(r"^cone: https://skyserver\.sdss\.org/dr14/SkyServerWS/SearchTools/SqlSearch\?cmd=", out, re.M)
    assert MAX_RADIUS_ARCMIN == 180


@pytest.mark.remote_data
def test_real_skyserver_cone_around_a_sample_galaxy(tmp_path):
    """Around the real galaxy at (ra, dec) SkyServer gives for a sample objID: it is found at distance ~0."""
    client = SkyServerClient()
    where = client.sql_search("SELECT TOP 1 g.objID, g.ra, g.dec FROM Galaxy AS g WHERE g.objID = 1237648704043942146")
    ra, dec = float(where["ra"].iloc[0]), float(where["dec"].iloc[0])
    out = tmp_path / "ds"
    assert main(["catalog", "--out", str(out), "--cone", str(ra), str(dec), "1arcmin", "--retries", "2"]) == 0
    cat = pd.read_parquet(out / "catalog.parquet")
    assert cat["objID"].iloc[0] == 1237648704043942146 and cat[DISTANCE].iloc[0] < 0.01
    assert (cat[DISTANCE] <= 1.0).all() and (cat["petroMag_r"] < 18).all()
