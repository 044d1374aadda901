"""predict_catalog with HATS: a flat table written as a HATS catalogue (sky partitions), a HATS
catalogue read pixel by pixel and written back with its partitioning; LSDB opens the output and
cross-matches it with the input; rows without a position are said, not written."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from catalog_helpers import FAST, bundle_fixture, hats_input  # noqa: F401 (the bundle fixture)

from faulty_server import FaultyServer

lsdb = pytest.importorskip("lsdb")
pytest.importorskip("hats")


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    ra = np.r_[rng.uniform(0, 360, n // 2), rng.normal(150, 0.5, n - n // 2)] % 360
    dec = np.r_[rng.uniform(-60, 60, n // 2), rng.normal(2, 0.5, n - n // 2)]
    return pd.DataFrame({"objID": np.arange(n, dtype=np.int64) + 1237648702973083820, "ra": ra, "dec": dec})


def _read(folder) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lsdb.read_hats(folder).compute()


def test_a_flat_table_comes_out_as_a_hats_catalogue_lsdb_reads(tmp_path, bundle):
    import galmet

    frame = _frame(30)
    frame.loc[4, "dec"] = np.nan  # no place on the sky: left out, said
    path = tmp_path / "targets.parquet"
    frame.to_parquet(path, index=False)
    out = tmp_path / "pred_hats"
    with FaultyServer() as srv:
        summary = galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=6, base_url=srv.url, **FAST)
        again = galmet.predict_catalog(bundle, path, out, shard=(0, 1), partition_rows=6, base_url=srv.url, **FAST)
    assert summary.out == out and summary.partitions > 2 and again.ran == 0
    got = _read(out)
    assert len(got) == 29 and set(got["status"]) == {"ok"} and np.isfinite(got["oh_p50_pred"]).all()
    assert sorted(got["objID"]) == sorted(frame["objID"].drop(index=4))
    written = json.loads((out / "galmet_provenance.json").read_text())
    provenance = written["provenance"]
    assert written["column_units"]["oh_p50_pred"] == "dex" and written["column_units"]["ra"] == "deg"
    assert provenance["rows_ok"] == 29 and provenance["model"] == "model.pt" and "model_card" in provenance
    # the settings the partitions ran with, as a flat table's metadata has them
    assert provenance["engine"] == "eager" and provenance["data_release"] == "DR14" and provenance["tta"] == "none"
    assert provenance["pixel_scale"] > 0 and provenance["base_url"].startswith("http://127.0.0.1")


def test_a_hats_catalogue_keeps_its_partitioning_and_cross_matches(tmp_path, bundle):
    import galmet
    from galmet.io.hats import open_hats

    frame = _frame(24)
    inp = hats_input(frame, tmp_path / "targets")
    out = tmp_path / "pred"
    with FaultyServer() as srv:
        summary = galmet.predict_catalog(bundle, inp, out, shard=(0, 1), base_url=srv.url, **FAST)
        table = galmet.predict_catalog(bundle, inp, tmp_path / "pred.parquet", shard=(0, 1), base_url=srv.url, **FAST)
    pixels = [p.key for p in open_hats(inp).pixels]
    assert summary.partitions == len(pixels) and [p.key for p in open_hats(out).pixels] == pixels
    assert table.done == len(pixels) and len(pd.read_parquet(tmp_path / "pred.parquet")) == 24
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matched = lsdb.read_hats(out).crossmatch(lsdb.read_hats(inp), radius_arcsec=0.1, suffixes=("", "_in")).compute()
    assert len(matched) == 24 and (matched["objID"].to_numpy() == matched["objID_in"].to_numpy()).all()


def test_a_folder_out_holding_other_files_is_refused_before_any_fetch(tmp_path, bundle, capsys):
    from conftest import run_cli

    frame = _frame(12)
    path = tmp_path / "targets.parquet"
    frame.to_parquet(path, index=False)
    out = tmp_path / "userdir"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with FaultyServer() as srv:
        argv = ["predict", bundle, "--positions", path, "--out", out, "--partition-rows", "5", "--shard", "0/1"]
        code, _, err = run_cli(capsys, *argv, "--base-url", srv.url, "--no-tta", "--device", "cpu")
        requests = sum(srv.counts.values())
    assert code == 2 and "is not a HATS catalogue galmet wrote" in err and err.count("\n") == 1, err
    assert requests == 0 and not (tmp_path / "userdir.galmet-work").exists()
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "precious"
