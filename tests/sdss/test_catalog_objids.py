"""galmet catalog --objids: the paper's columns for a user's own objIDs, against a loopback SqlSearch."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faulty_server import FaultyServer
from galmet.cli.main import main
from galmet.sdss.by_objid import (
    FAILED,
    MAX_URL_CHARS,
    NO_SPECTRUM,
    NOT_GALAXY,
    NOT_IN_MPAJHU,
    PASSES,
    objid_chunks,
    query_objids,
)
from galmet.sdss.catalog import COLUMNS
from galmet.sdss.skyserver import SkyServerClient

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdss_sample"
BASE = 1237648700000000000
#: Every column of the paper that comes from the spectrum or MPA-JHU (NULL without them).
SPECTRAL = ["z", "zErr", "rChi2", "oh_p16", "oh_p50", "oh_p84", "lgm_tot_p50", "sfr_tot_p50", "bptclass"]


def known_row(i: int, **change) -> dict:
    """A row the objID query returns for a primary galaxy with an MPA-JHU spectrum that passes every cut."""
    row = {name: 0.0 for _, name in COLUMNS}
    row.update(objID=BASE + i, specObjID=300000000000000000 + i, ra=10.0 + i, dec=1.0, z=0.07, zErr=1e-5)
    row.update(rChi2=1.1, petroMag_r=17.0, petroR50_r=2.0, petroR90_r=6.0, oh_p16=8.8, oh_p50=8.9, oh_p84=9.0)
    row.update(lgm_tot_p50=10.2, sfr_tot_p50=0.1, bptclass=1, type=3, mode=1)
    row.update({f"modelMag_{b}": m for b, m in zip("ugriz", (19.0, 17.6, 16.9, 16.5, 16.2), strict=True)})
    row.update(change)
    return row


def sky() -> pd.DataFrame:
    """What the stand-in SkyServer knows: objIDs BASE+0..BASE+9 pass, +20 fails petroMag_r, +21 has
    no spectrum, +22 is a star, +23 a spectrum without MPA-JHU row, +24 two cuts."""
    rows = [known_row(i) for i in range(10)]
    rows.append(known_row(20, petroMag_r=18.5))
    rows.append(known_row(21, specObjID=0, **{c: np.nan for c in SPECTRAL}))
    rows.append(known_row(22, type=6))
    rows.append(known_row(23, **{c: np.nan for c in SPECTRAL if c not in ("z", "zErr", "rChi2")}))
    rows.append(known_row(24, z=0.01, modelMag_u=26.0))
    return pd.DataFrame(rows)


def responder(table: pd.DataFrame, plan: list[str] | None = None, seen: list | None = None):
    """SqlSearch imitation of the objID query: the rows of ``table`` whose objID is IN the list;
    ``plan``: the actions (faulty_server's) of the first requests of each SQL text; ``seen``
    collects every SQL text received."""

    def reply(cmd: str, n_before: int):
        if seen is not None:
            seen.append(cmd)
        if n_before < len(plan or []):
            return plan[n_before]  # type: ignore[index]
        assert "FROM PhotoObjAll AS g LEFT JOIN SpecObj AS s ON s.bestObjID = g.objID" in cmd
        ids = [int(t) for t in re.search(r"WHERE g\.objID IN \(([\d,]+)\)$", cmd).group(1).split(",")]
        rows = table[table["objID"].isin(ids)]
        return 200, "text/plain", ("#Table1\n" + rows.to_csv(index=False)).encode()

    return reply


FAST = ["--rate", "0", "--retries", "2", "--backoff-base", "0.001", "--no-progress"]


def write_list(path: Path, ids) -> Path:
    path.write_text("# my galaxies\nobjID\n" + "".join(f"{i}\n" for i in ids))
    return path


def test_text_list_drops_failing_rows_counts_each_reason_and_names_the_unknown(tmp_path, capsys):
    order = [BASE + 5, BASE + 20, BASE + 99, BASE + 1, BASE + 21, BASE + 22, BASE + 23, BASE + 24, BASE + 98]
    ids = write_list(tmp_path / "ids.txt", order)
    out = tmp_path / "ds"
    with FaultyServer(sql_responder=responder(sky())) as srv:
        rc = main(["catalog", "--out", str(out), "--objids", str(ids), "--base-url", srv.url, *FAST])
        assert sum(srv.sql_counts.values()) == 1  # nine objIDs: one request
    text = capsys.readouterr().out
    assert rc == 0, text
    cat = pd.read_parquet(out / "catalog.parquet")
    assert cat["objID"].tolist() == [BASE + 5, BASE + 1]  # the input's order, only the passing rows
    assert cat["objID"].dtype == np.int64 and PASSES not in cat and "split" in cat
    assert "objIDs: 9 given, 7 known to SkyServer, 2 pass the cuts" in text
    assert f"objIDs SkyServer does not know: 2 (first: {BASE + 99}, {BASE + 98}); not written" in text
    assert "objIDs failing a cut: 5, dropped (--keep-failing keeps them)" in text
    meta = json.loads((out / "catalog.json").read_text())["objids"]
    assert meta["unknown"] == 2 and meta["unknown_first"] == [BASE + 99, BASE + 98] and meta["passing"] == 2
    assert meta["failing"] == {
        "petroMag_r < 18": 1,
        NO_SPECTRUM: 1,
        NOT_GALAXY: 1,
        NOT_IN_MPAJHU: 1,
        "modelMag_u < 25": 1,
        "modelMag_u - modelMag_r < 6": 1,
        "z > 0.02": 1,
    }


def test_keep_failing_keeps_every_known_row_flagged_with_its_reasons(tmp_path):
    order = [BASE + 20, BASE + 21, BASE + 22, BASE + 23, BASE + 24, BASE + 3, BASE + 77]
    ids = write_list(tmp_path / "ids.txt", order)
    out = tmp_path / "ds"
    with FaultyServer(sql_responder=responder(sky())) as srv:
        assert (
            main(["catalog", "--out", str(out), "--objids", str(ids), "--keep-failing", "--base-url", srv.url, *FAST])
            == 0
        )
    cat = pd.read_parquet(out / "catalog.parquet")
    assert cat["objID"].tolist() == order[:-1]  # the unknown objID is never written
    reasons = dict(zip(cat["objID"], cat[FAILED], strict=True))
    assert reasons[BASE + 20] == "petroMag_r < 18"
    assert reasons[BASE + 21] == NO_SPECTRUM  # not also every cut on the spectrum it does not have
    assert reasons[BASE + 22] == NOT_GALAXY
    assert reasons[BASE + 23] == NOT_IN_MPAJHU  # its spectrum's own cuts pass; no MPA-JHU cut listed
    assert reasons[BASE + 24] == "modelMag_u < 25; modelMag_u - modelMag_r < 6; z > 0.02"
    assert reasons[BASE + 3] == ""
    assert cat[PASSES].tolist() == [False] * 5 + [True]
    assert np.isnan(cat.loc[cat["objID"] == BASE + 21, "oh_p50"]).all()
    assert cat.loc[cat["objID"] == BASE + 21, "specObjID"].item() == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits", ".ecsv"])
def test_a_table_keeps_its_columns_and_order_and_its_split_is_respected(tmp_path, capsys, caplog, suffix):
    ids = [BASE + 7, BASE + 2, BASE + 9, BASE + 4, BASE + 0, BASE + 20]
    table = pd.DataFrame(
        {
            "OBJID": ids,  # any case
            "my_note": list("abcdef"),
            "oh_p50": [1.0] * 6,  # the user's own (stale) value: SkyServer's replaces it
            "split": ["test", "train", "train", "train", "test", "train"],
        }
    )
    path = tmp_path / f"mine{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".parquet":
        table.to_parquet(path)
    else:
        from astropy.table import Table

        Table.from_pandas(table).write(path)
    out = tmp_path / "ds"
    with FaultyServer(sql_responder=responder(sky())) as srv:
        rc = main(["catalog", "--out", str(out), "--objids", str(path), "--base-url", srv.url, *FAST])
    assert rc == 0, capsys.readouterr().err
    cat = pd.read_parquet(out / "catalog.parquet")
    assert cat["objID"].tolist() == ids[:5]
    assert cat["my_note"].tolist() == list("abcde")
    assert (cat["oh_p50"] == 8.9).all()  # SkyServer's value
    assert cat.loc[cat["objID"].isin([BASE + 7, BASE + 0]), "split"].eq("test").all()
    assert set(cat["split"]) <= {"train", "valid", "test"} and (cat["split"] == "test").sum() == 2
    assert "column(s) oh_p50 replaced by SkyServer's values" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f"{BASE}\nabc\n", "line 2: 'abc' is not an SDSS objID (a positive 64-bit integer)"),
        (f"{BASE}\n-5\n", "line 2: '-5' is not an SDSS objID"),
        (f"{BASE}\n{2**63}\n", f"line 2: '{2**63}' is not an SDSS objID"),
        (f"{BASE}\n\n{BASE + 1}\n{BASE}\n", f"line 4: objID {BASE} repeats line 1"),
        ("# nothing\n", "no objIDs (one a line expected)"),
    ],
)
def test_a_bad_line_is_one_line_exit_2_before_any_query(tmp_path, capsys, content, message):
    path = tmp_path / "ids.txt"
    path.write_text(content)
    with FaultyServer(sql_responder=responder(sky())) as srv:
        rc = main(["catalog", "--out", str(tmp_path / "ds"), "--objids", str(path), "--base-url", srv.url, *FAST])
        assert sum(srv.sql_counts.values()) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"galmet catalog: error: {path}: {message}"), err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"id": [BASE]}), "no objID column (columns: id)"),
        (pd.DataFrame({"objID": [str(BASE), "12x"]}), "row 1: objID '12x'"),
        (pd.DataFrame({"objID": [BASE, 0]}), "row 1: objID 0 is not an SDSS objID"),
        (pd.DataFrame({"objID": [BASE, BASE + 1, BASE]}), f"row 2: objID {BASE} repeats row 0"),
    ],
)
def test_a_bad_table_row_is_one_line_exit_2_before_any_query(tmp_path, capsys, frame, message):
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    with FaultyServer(sql_responder=responder(sky())) as srv:
        rc = main(["catalog", "--out", str(tmp_path / "ds"), "--objids", str(path), "--base-url", srv.url, *FAST])
        assert sum(srv.sql_counts.values()) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"galmet catalog: error: {path}: {message}"), err


def test_many_objids_go_in_chunks_within_the_url_bound_each_sent_once(tmp_path):
    many = sky()
    many = pd.concat([many, pd.DataFrame([known_row(1000 + k) for k in range(140)])], ignore_index=True)
    ids = many["objID"].tolist()[::-1]
    client = SkyServerClient("http://127.0.0.1:9")
    payloads = query_objids(client, ids, get_query_payload=True)  # sends nothing (the port is closed)
    assert len(payloads) >= 3
    assert all(len(p.full_url) <= MAX_URL_CHARS for p in payloads)
    sent = [int(t) for p in payloads for t in re.search(r"IN \(([\d,]+)\)", p.params["cmd"]).group(1).split(",")]
    assert sent == ids  # every objID once, in order
    path = write_list(tmp_path / "ids.txt", ids)
    seen: list[str] = []
    with FaultyServer(sql_responder=responder(many, seen=seen)) as srv:
        assert (
            main(["catalog", "--out", str(tmp_path / "ds"), "--objids", str(path), "--base-url", srv.url, *FAST]) == 0
        )
        urls = [urllib.parse.unquote_plus(u) for u in seen]
    assert len(seen) == len(payloads)
    assert len(pd.read_parquet(tmp_path / "ds" / "catalog.parquet")) == 150
    assert [p.params["cmd"] for p in payloads] == urls


def test_chunks_respect_a_smaller_bound():
    from galmet.sdss.by_objid import objid_sql

    client = SkyServerClient("http://127.0.0.1:9")
    ids = [BASE + k for k in range(30)]
    bound = len(client.sql_url(objid_sql([]))) + 100  # room for 4 objIDs (19 digits + %2C each)
    chunks = objid_chunks(client, ids, max_url=bound)
    assert [len(c) for c in chunks] == [4] * 7 + [2]
    assert np.concatenate(chunks).tolist() == ids
    assert all(len(client.sql_url(objid_sql(c))) <= bound for c in chunks)
    assert len(client.sql_url(objid_sql(ids[:5]))) > bound  # one more would not fit


def test_a_failing_chunk_is_retried_and_one_that_keeps_failing_is_named(tmp_path, capsys):
    ids = write_list(tmp_path / "ids.txt", [BASE + k for k in range(3)])
    args = ["catalog", "--objids", str(ids), *FAST]
    with FaultyServer(sql_responder=responder(sky(), ["500", "html"])) as srv:
        assert main([*args, "--out", str(tmp_path / "a"), "--base-url", srv.url]) == 0
        assert list(srv.sql_counts.values()) == [3]
    with FaultyServer(sql_responder=responder(sky(), ["text"] * 9)) as srv:
        rc = main([*args, "--out", str(tmp_path / "b"), "--base-url", srv.url])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "galmet catalog" in line]
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"galmet catalog: error: objID chunk 1/1 (3 objIDs from {BASE})")
    assert not (tmp_path / "b" / "catalog.parquet").exists()


def test_none_known_or_none_passing_is_one_line_exit_2(tmp_path, capsys):
    unknown = write_list(tmp_path / "u.txt", [BASE + 500, BASE + 501])
    failing = write_list(tmp_path / "f.txt", [BASE + 20, BASE + 22])
    with FaultyServer(sql_responder=responder(sky())) as srv:
        rc1 = main(["catalog", "--out", str(tmp_path / "a"), "--objids", str(unknown), "--base-url", srv.url, *FAST])
        rc2 = main(["catalog", "--out", str(tmp_path / "b"), "--objids", str(failing), "--base-url", srv.url, *FAST])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("galmet catalog: error")]
    assert rc1 == rc2 == 2 and len(err) == 2
    assert f"knows none of the 2 objIDs (first: {BASE + 500}, {BASE + 501})" in err[0]
    assert "none of the 2 objIDs SkyServer knows passes the cuts" in err[1] and "--keep-failing" in err[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--limit", "3"], "--limit does not apply to --objids"),
        (["--from-table", "x.csv"], "--from-table and --objids do not go together"),
        (["--cone", "10", "1", "5"], "--objids and --cone do not go together"),
    ],
)
def test_options_that_do_not_go_with_objids(tmp_path, capsys, extra, message):
    ids = write_list(tmp_path / "ids.txt", [BASE])
    assert main(["catalog", "--out", str(tmp_path / "ds"), "--objids", str(ids), *extra]) == 2
    assert message in capsys.readouterr().err


def test_dry_run_prints_the_sql_and_every_url_and_sends_nothing(tmp_path, capsys):
    ids = write_list(tmp_path / "ids.txt", [BASE + 1, BASE + 2])
    with FaultyServer() as srv:
        assert main(["catalog", "--dry-run", "--objids", str(ids), "--base-url", srv.url]) == 0
        assert sum(srv.sql_counts.values()) == 0
    out = capsys.readouterr().out
    assert f"WHERE g.objID IN ({BASE + 1},{BASE + 2})" in out
    assert "LEFT JOIN GalSpecExtra AS e ON e.specObjID = s.specObjID" in out
    assert re.search(r"^objID chunk 1/1: http://127\.0\.0\.1:\d+/SkyServerWS/SearchTools/SqlSearch\?cmd=", out, re.M)


def test_the_real_sample_list_is_read_and_checked_offline():
    if not (SAMPLE / "catalog.csv").is_file():
        pytest.skip(f"the real SDSS sample is not at {SAMPLE}")
    from galmet.sdss.by_objid import read_objid_file

    table = read_objid_file(SAMPLE / "catalog.csv")
    assert (
        len(table) == 500 and table["objID"].dtype == np.int64 and list(table.columns) == ["objID", "oh_p50", "split"]
    )
    chunks = objid_chunks(SkyServerClient(), table["objID"].to_numpy())
    assert sum(len(c) for c in chunks) == 500 and len(chunks) < 15


@pytest.mark.remote_data
def test_real_skyserver_returns_the_sample_galaxies_labels(tmp_path):
    if not (SAMPLE / "catalog.csv").is_file():
        pytest.skip(f"the real SDSS sample is not at {SAMPLE}")
    sample = pd.read_csv(SAMPLE / "catalog.csv", dtype={"objID": str}).head(3)
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(sample["objID"]) + f"\n{BASE + 12345}\n")
    assert (
        main(["catalog", "--out", str(tmp_path / "ds"), "--objids", str(path), "--retries", "2", "--keep-failing"]) == 0
    )
    cat = pd.read_parquet(tmp_path / "ds" / "catalog.parquet")
    assert cat["objID"].astype(str).tolist() == sample["objID"].tolist()
    assert np.allclose(cat["oh_p50"], sample["oh_p50"].astype(float), atol=1e-4)
    assert cat["ra"].between(0, 360).all() and cat["modelMag_r"].between(10, 25).all()


def test_the_real_sample_enriched_by_a_stand_in_skyserver_gets_the_random_forest(tmp_path, capsys):
    """The real sample's objID list -> catalog --objids (a stand-in answering for all 500, its labels
    and made-up magnitudes) -> baseline now fits the forest too, and the sample's test rows stay test."""
    if not (SAMPLE / "catalog.csv").is_file():
        pytest.skip(f"the real SDSS sample is not at {SAMPLE}")
    sample = pd.read_csv(SAMPLE / "catalog.csv", dtype={"objID": str})
    rng = np.random.default_rng(0)
    rows = []
    for k, (oid, oh) in enumerate(zip(sample["objID"], sample["oh_p50"], strict=True)):
        r = 17.5 - 2.0 * (oh - 8.9) + rng.normal(0, 0.1)
        mags = (r + 1.8, r + 0.6, r, r - 0.35, r - 0.6)
        bands = {f"modelMag_{b}": m for b, m in zip("ugriz", mags, strict=True)}
        rows.append(known_row(k, objID=int(oid), oh_p50=oh, **bands))
    out = tmp_path / "sample"
    with FaultyServer(sql_responder=responder(pd.DataFrame(rows))) as srv:
        args = ["catalog", "--out", str(out), "--objids", str(SAMPLE / "catalog.csv"), "--base-url", srv.url]
        assert main([*args, *FAST]) == 0
        assert sum(srv.sql_counts.values()) == len(objid_chunks(SkyServerClient(srv.url), sample["objID"].astype(int)))
    cat = pd.read_parquet(out / "catalog.parquet")
    assert cat["objID"].astype(str).tolist() == sample["objID"].tolist()
    assert (cat["split"] == "test").sum() == 100 and (cat["split"] == "test").eq(sample["split"] == "test").all()
    (out / "images").symlink_to(SAMPLE / "images")  # (or galmet download: a dataset has its images)
    assert main(["baseline", str(out), "--out", str(tmp_path / "base"), "--jobs", "1"]) == 0
    metrics = json.loads((tmp_path / "base" / "baseline_metrics.json").read_text())
    assert metrics["rf"]["n"] == 100 and metrics["rf"]["rmse"] < metrics["constant"]["rmse"]
