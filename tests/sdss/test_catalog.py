"""galmet catalog: the paper's SQL, chunked queries against a faulty server, local cuts."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from faulty_server import FaultyServer
from galmet.cli.main import main
from galmet.sdss.catalog import COLUMNS, Cuts, apply_cuts, build_sql, merge_chunks, ra_bands

#: Every cut of the paper (shared/docs/PAPER.md, "Data"), as it must appear in the SQL.
PAPER_CUTS = [
    "s.rChi2 < 2",
    "e.oh_p50 <> -9999",
    *[f"g.modelMag_{b} > 10" for b in "ugriz"],
    *[f"g.modelMag_{b} < 25" for b in "ugriz"],
    "g.modelMag_u - g.modelMag_r > 0",
    "g.modelMag_u - g.modelMag_r < 6",
    "s.z > 0.02",
    "s.zErr > 0",
    "s.zErr < 0.01",
    "g.petroMag_r > 10",
    "g.petroMag_r < 18",
]
TABLES = [
    "FROM SpecObj AS s",
    "JOIN Galaxy AS g",
    "JOIN GalSpecInfo AS i",
    "JOIN GalSpecLine AS l",
    "JOIN GalSpecExtra AS e",
]


def good_row(i: int) -> dict:
    """A row that passes every cut."""
    row = {name: 0.0 for _, name in COLUMNS}
    row.update(
        objID=1237648700000000000 + i,
        specObjID=300000000000000000 + i,
        ra=10.0 + i,
        dec=1.0,
        z=0.07,
        zErr=0.00001,
        rChi2=1.1,
        petroMag_r=17.0,
        petroR50_r=2.0,
        petroR90_r=6.0,
        oh_p16=8.8,
        oh_p50=8.9,
        oh_p84=9.0,
        lgm_tot_p50=10.2,
        sfr_tot_p50=0.1,
        bptclass=1,
    )
    row.update({f"modelMag_{b}": m for b, m in zip("ugriz", (19.0, 17.6, 16.9, 16.5, 16.2), strict=True)})
    return row


#: Rows that each fail exactly one cut (strict bounds: the boundary value fails).
FAILING = [
    {"rChi2": 2.0},
    {"rChi2": np.nan},
    {"oh_p50": -9999.0},
    {"oh_p50": np.nan},
    {"modelMag_u": 25.0},
    {"modelMag_g": 10.0},
    {"modelMag_z": 9.5},
    {"modelMag_i": 26.0},
    {"modelMag_u": 16.8},  # u - r = -0.1
    {"modelMag_u": 23.0, "modelMag_r": 16.9},  # u - r = 6.1
    {"z": 0.02},
    {"zErr": 0.0},
    {"zErr": 0.01},
    {"petroMag_r": 18.0},
    {"petroMag_r": 10.0},
]


def hand_made_table() -> tuple[pd.DataFrame, set[int]]:
    rows, passing = [], set()
    for i in range(6):  # passing rows, some right next to the bounds
        row = good_row(i)
        if i == 1:
            row.update(rChi2=1.999, z=0.0201, zErr=0.00999, petroMag_r=17.999)
        if i == 2:
            row.update(modelMag_u=24.99, modelMag_r=19.0, petroMag_r=10.01)  # u - r = 5.99
        rows.append(row)
        passing.add(row["objID"])
    for j, change in enumerate(FAILING):
        row = good_row(100 + j)
        row.update(change)
        rows.append(row)
    return pd.DataFrame(rows), passing


def test_dry_run_prints_every_cut_and_the_urls_and_sends_nothing(capsys):
    with FaultyServer() as srv:
        rc = main(["catalog", "--dry-run", "--chunks", "4", "--base-url", srv.url])
        assert sum(srv.sql_counts.values()) == 0 and not srv.log
    out = capsys.readouterr().out
    assert rc == 0
    for text in PAPER_CUTS + TABLES:
        assert text in out, text
    urls = re.findall(
        r"^chunk (\d)/4 \(ra [\d.-]+ deg\): (http://127\.0\.0\.1:\d+/SkyServerWS/SearchTools/SqlSearch\?cmd=\S+&format=csv)$",
        out,
        re.MULTILINE,
    )
    assert [u[0] for u in urls] == ["1", "2", "3", "4"]


def test_cut_values_are_parameters(capsys):
    assert (
        main(
            [
                "catalog",
                "--dry-run",
                "--chunks",
                "1",
                "--petro-r-max",
                "17.77",
                "--z-min",
                "0.05",
                "--rchi2-max",
                "1.5",
                "--limit",
                "7",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "g.petroMag_r < 17.77" in out and "s.z > 0.05" in out and "s.rChi2 < 1.5" in out
    assert "SELECT TOP 7" in out and "g.petroMag_r < 18" not in out


def test_sql_selects_the_columns_systematics_and_calibration_need():
    # galmet systematics bins the residuals against inclination, size and fibre magnitude, and
    # galmet evaluate weighs the label's own uncertainty: the query must return them, by these names
    sql = build_sql(Cuts())
    for expr in ("g.expAB_r", "g.petroR50_r", "g.petroR90_r", "g.fiberMag_r", "e.oh_p16", "e.oh_p84", "e.bptclass"):
        assert re.search(rf"^\s*{re.escape(expr)},?$", sql, re.MULTILINE), expr
    names = [name for _, name in COLUMNS]
    assert {"expAB_r", "petroR50_r", "fiberMag_r", "oh_p16", "oh_p84"} <= set(names)
    assert len(names) == len(set(names))


def test_sql_and_local_cuts_come_from_one_list():
    sql = build_sql(Cuts(), (0.0, 10.0))
    assert all(c in sql for c in Cuts().sql_conditions()) and "g.ra >= 0" in sql and "g.ra < 10" in sql
    assert len(Cuts().describe()) == len(PAPER_CUTS)
    assert ra_bands(3) == [(0.0, 120.0), (120.0, 240.0), (240.0, 360.0)]


@pytest.mark.parametrize("suffix", [".fits", ".csv", ".parquet"])
def test_from_table_keeps_exactly_the_rows_that_pass(tmp_path, suffix, capsys):
    table, passing = hand_made_table()
    path = tmp_path / f"mpajhu{suffix}"
    if suffix == ".fits":
        from astropy.table import Table

        t = Table.from_pandas(table)
        for name in t.colnames:  # FITS files often shout: the column names match up to case
            t.rename_column(name, name.upper())
        t.write(path)
    elif suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path)
    out = tmp_path / "ds"
    assert main(["catalog", "--out", str(out), "--from-table", str(path), "--test", "2", "--seed", "3"]) == 0
    cat = pd.read_parquet(out / "catalog.parquet")
    assert set(cat["objID"]) == passing and cat["objID"].dtype == np.int64
    assert (cat["split"] == "test").sum() == 2 and set(cat["split"]) <= {"train", "valid", "test"}
    assert "6 galaxies" in capsys.readouterr().out
    assert json.loads((out / "catalog.json").read_text())["cuts"]["petro_r_max"] == 18.0


def test_from_table_missing_column_is_one_line_exit_2(tmp_path, capsys):
    table, _ = hand_made_table()
    path = tmp_path / "t.csv"
    table.drop(columns=["zErr"]).to_csv(path, index=False)
    assert main(["catalog", "--out", str(tmp_path / "ds"), "--from-table", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"galmet catalog: error: {path}: column 'zErr' (needed for the cut 'zErr > 0') is missing"


def test_existing_catalog_needs_overwrite(tmp_path, capsys):
    table, _ = hand_made_table()
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    args = ["catalog", "--out", str(tmp_path / "ds"), "--from-table", str(path)]
    assert main(args) == 0
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_out_is_required_without_dry_run(capsys):
    assert main(["catalog"]) == 2
    assert "--out DATASET is required" in capsys.readouterr().err


# -- the query against the local faulty server -----------------------------------------------
def sky(n_per_band: int = 4, bands: int = 3) -> pd.DataFrame:
    rows = []
    for b in range(bands):
        for k in range(n_per_band):
            row = good_row(b * 100 + k)
            row["ra"] = 360.0 / bands * b + 1.0 + k
            rows.append(row)
    df = pd.DataFrame(rows)
    dup = df.iloc[[0]].copy()  # the same galaxy again, with a second spectrum, in the last band
    dup["ra"], dup["specObjID"] = 359.0, dup["specObjID"] + 7
    return pd.concat([df, dup], ignore_index=True)


def responder(table: pd.DataFrame, faults: dict[int, list[str]]):
    """SqlSearch imitation: rows of ``table`` inside the SQL's ra band, TOP N; ``faults`` per band index."""

    def reply(cmd: str, n_before: int):
        lo, hi = map(float, re.search(r"g\.ra >= ([\d.]+)\s+AND g\.ra < ([\d.]+)", cmd).groups())
        band = int(round(lo / (hi - lo)))
        plan = faults.get(band, [])
        if n_before < len(plan):
            return plan[n_before]
        rows = table[(table["ra"] >= lo) & (table["ra"] < hi)]
        top = re.match(r"SELECT TOP (\d+)", cmd)
        if top:
            rows = rows.head(int(top.group(1)))
        return 200, "text/plain", ("#Table1\n" + rows.to_csv(index=False)).encode()

    return reply


def test_chunked_query_survives_a_failing_chunk_and_merges(tmp_path, capsys):
    table = sky()
    with FaultyServer(sql_responder=responder(table, {1: ["500", "html"]})) as srv:
        rc = main(
            [
                "catalog",
                "--out",
                str(tmp_path / "ds"),
                "--base-url",
                srv.url,
                "--chunks",
                "3",
                "--rate",
                "0",
                "--backoff-base",
                "0.001",
                "--timeout",
                "2",
                "--seed",
                "1",
            ]
        )
        counts = sorted(srv.sql_counts.values())
    assert rc == 0, capsys.readouterr().err
    assert counts == [1, 1, 3]  # the failing chunk took three requests, the others one
    cat = pd.read_parquet(tmp_path / "ds" / "catalog.parquet")
    assert len(cat) == 12 and cat["objID"].is_unique and cat["objID"].is_monotonic_increasing
    assert cat["objID"].dtype == np.int64 and cat["specObjID"].dtype == np.int64
    first = cat[cat["objID"] == table["objID"].iloc[0]].iloc[0]
    assert first["specObjID"] == table["specObjID"].iloc[0]  # the duplicate kept its first spectrum
    assert cat["oh_p50"].dtype == np.float64 and "split" in cat
    meta = json.loads((tmp_path / "ds" / "catalog.json").read_text())
    assert meta["base_url"] == srv.url and meta["rows"] == 12 and "s.rChi2 < 2" in meta["sql"]


def test_a_chunk_that_keeps_failing_is_named(tmp_path, capsys):
    with FaultyServer(sql_responder=responder(sky(), {2: ["text"] * 9})) as srv:
        rc = main(
            [
                "catalog",
                "--out",
                str(tmp_path / "ds"),
                "--base-url",
                srv.url,
                "--chunks",
                "3",
                "--rate",
                "0",
                "--retries",
                "2",
                "--backoff-base",
                "0.001",
            ]
        )
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "galmet catalog" in line]
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("galmet catalog: error: chunk 3/3 (ra 240-360 deg): text error page: 'ERROR:")
    assert "gave up after 3 requests" in err[0]
    assert not (tmp_path / "ds" / "catalog.parquet").exists()


def test_a_rerun_after_a_failed_chunk_only_asks_for_the_missing_chunks(tmp_path, capsys):
    table = sky()
    args = [
        "catalog",
        "--out",
        str(tmp_path / "ds"),
        "--chunks",
        "3",
        "--rate",
        "0",
        "--retries",
        "1",
        "--backoff-base",
        "0.001",
        "--no-progress",
    ]
    with FaultyServer(sql_responder=responder(table, {1: ["503"] * 2})) as srv:
        assert main(args + ["--base-url", srv.url]) == 2
        assert "chunk 2/3" in capsys.readouterr().err
        assert sorted(srv.sql_counts.values()) == [1, 2]  # chunk 1 done, chunk 2 failed twice, 3 never sent
        assert main(args + ["--base-url", srv.url]) == 0
        counts = sorted(srv.sql_counts.values())
    assert counts == [1, 1, 3]  # chunk 1 came from the cache; 2 was asked again, 3 for the first time
    assert len(pd.read_parquet(tmp_path / "ds" / "catalog.parquet")) == 12
    assert not (tmp_path / "ds" / ".catalog_chunks").exists()


def test_limit_stops_early(tmp_path):
    with FaultyServer(sql_responder=responder(sky(), {})) as srv:
        assert (
            main(
                [
                    "catalog",
                    "--out",
                    str(tmp_path / "ds"),
                    "--base-url",
                    srv.url,
                    "--chunks",
                    "3",
                    "--rate",
                    "0",
                    "--limit",
                    "5",
                ]
            )
            == 0
        )
        sent = list(srv.sql_counts)
    assert len(sent) == 2 and sent[0].startswith("SELECT TOP 5") and sent[1].startswith("SELECT TOP 1")
    assert len(pd.read_parquet(tmp_path / "ds" / "catalog.parquet")) == 5


def with_tables(reply, tables):
    """``reply`` for the catalogue chunks; the DBObjects table check answered with ``tables``."""

    def both(cmd: str, n_before: int):
        if "FROM DBObjects" in cmd:
            return 200, "text/plain", ("#Table1\nname\n" + "".join(f"{t}\n" for t in tables)).encode()
        return reply(cmd, n_before)

    return both


CHUNK_ARGS = ["--chunks", "3", "--rate", "0", "--retries", "0", "--no-progress"]


def test_data_release_checks_the_tables_then_queries_and_records_the_release(tmp_path, capsys):
    tables = ("SpecObj", "Galaxy", "GalSpecInfo", "GalSpecLine", "GalSpecExtra")
    with FaultyServer(sql_responder=with_tables(responder(sky(), {}), tables)) as srv:
        out = tmp_path / "ds"
        rc = main(["catalog", "--out", str(out), "--data-release", "dr16", "--base-url", srv.url, *CHUNK_ARGS])
        sent = list(srv.sql_counts)
    assert rc == 0, capsys.readouterr().err
    assert "FROM DBObjects" in sent[0] and len(sent) == 4  # the check first, then the three chunks
    meta = json.loads((out / "catalog.json").read_text())
    assert meta["data_release"] == "DR16" and meta["base_url"] == srv.url


def test_a_release_without_a_paper_table_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    tables = ("SpecObj", "Galaxy", "GalSpecInfo", "GalSpecExtra")
    with FaultyServer(sql_responder=with_tables(responder(sky(), {}), tables)) as srv:
        out = tmp_path / "ds"
        rc = main(["catalog", "--out", str(out), "--data-release", "DR17", "--base-url", srv.url, *CHUNK_ARGS])
        sent = list(srv.sql_counts)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "DR17" in err[0] and "GalSpecLine" in err[0] and "GalSpecInfo" not in err[0]
    assert len(sent) == 1  # no chunk was asked for
    assert not out.exists()


def test_without_data_release_the_catalog_records_the_release_its_url_names(tmp_path):
    with FaultyServer(sql_responder=responder(sky(), {})) as srv:
        assert main(["catalog", "--out", str(tmp_path / "ds"), "--base-url", srv.url, *CHUNK_ARGS]) == 0
        assert not any("DBObjects" in cmd for cmd in srv.sql_counts)  # no check unless a release is chosen
    assert json.loads((tmp_path / "ds" / "catalog.json").read_text())["data_release"] is None


def test_dry_run_names_the_data_release(capsys):
    assert main(["catalog", "--dry-run", "--data-release", "DR17", "--chunks", "2"]) == 0
    out = capsys.readouterr().out
    assert "for DR17" in out and "https://skyserver.sdss.org/dr17/SkyServerWS/SearchTools/SqlSearch?" in out


def test_merge_of_nothing_is_an_empty_typed_table():
    df = merge_chunks([])
    assert len(df) == 0 and df["objID"].dtype == np.int64


def test_apply_cuts_drops_repeated_objids():
    table, passing = hand_made_table()
    kept = apply_cuts(pd.concat([table, table.iloc[[0]]]), where="t")
    assert set(kept["objID"]) == passing and kept["objID"].is_unique


@pytest.mark.remote_data
def test_real_query_limit_5_and_two_cutouts(tmp_path):
    from galmet.io.images import read_image
    from galmet.sdss.download import DownloadOptions, download_cutouts

    out = tmp_path / "real"
    assert main(["catalog", "--out", str(out), "--limit", "5", "--retries", "2"]) == 0
    cat = pd.read_parquet(out / "catalog.parquet")
    assert len(cat) == 5 and cat["objID"].dtype == np.int64
    c = Cuts()
    assert (cat["petroMag_r"] < c.petro_r_max).all() and (cat["z"] > c.z_min).all()
    assert (cat["rChi2"] < c.rchi2_max).all() and (cat["oh_p50"] != c.oh_missing).all()
    cat.head(2).to_parquet(out / "catalog.parquet")
    summary = download_cutouts(out, DownloadOptions(workers=2, rate=1.0, progress=False))
    assert summary.ok == 2 and summary.failed == 0
    for oid in cat["objID"].head(2):
        assert read_image(out / "images" / f"{oid}.jpg", 128).shape == (128, 128, 3)


def test_download_never_fetches_an_invalid_position(tmp_path):
    """A catalogue written by hand with dec = 95 and ra = 360: each row fails as a bad position
    before any request (the server named here does not exist: a request would fail otherwise)."""
    from galmet.data.dataset import write_catalog
    from galmet.sdss.download import DownloadOptions, download_cutouts

    root = tmp_path / "ds"
    root.mkdir()
    write_catalog(root, pd.DataFrame([{**good_row(1), "dec": 95.0}, {**good_row(2), "ra": 360.0}]))
    opts = DownloadOptions(base_url="http://127.0.0.1:9", retries=0, workers=1, timeout=1.0)
    summary = download_cutouts(root, opts)
    assert summary.failed == 2 and summary.reasons["bad position"] == 2, summary
