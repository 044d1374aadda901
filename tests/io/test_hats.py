"""HATS in and out (galmet.io.hats): read an LSDB-made catalogue one partition at a time, plan
mixed-order pixels for a flat table, and write predictions as a catalogue LSDB opens and cross-matches."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galmet.errors import ConfigError, DataError
from galmet.io.hats import PROVENANCE_FILE, HatsPixel, is_hats, open_hats, plan_pixels, valid_positions, write_hats

lsdb = pytest.importorskip("lsdb")
hats = pytest.importorskip("hats")
pq = pytest.importorskip("pyarrow.parquet")

UNITS = {"ra_deg": "deg", "dec_deg": "deg", "oh_p50_pred": "dex"}


def _sky(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` positions: half spread over the sky, half in a dense patch (sigma 1 deg) near (150, 2)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    ra = np.r_[rng.uniform(0, 360, half), rng.normal(150, 1.0, n - half)] % 360
    dec = np.r_[np.degrees(np.arcsin(rng.uniform(-1, 1, half))), rng.normal(2, 1.0, n - half)]
    return pd.DataFrame({"objID": np.arange(n, dtype=np.int64) + 10**15, "ra_deg": ra, "dec_deg": dec})


def _lsdb_catalog(df: pd.DataFrame, folder: Path, margin: bool = True) -> Path:
    kwargs = {} if margin else {"margin_threshold": None}
    cat = lsdb.from_dataframe(
        df, ra_column="ra_deg", dec_column="dec_deg", catalog_name="positions", partition_rows=150, **kwargs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat.write_catalog(folder, progress_bar=False)
    return folder


@pytest.fixture(scope="module")
def positions(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """A 1200-row LSDB collection (with its margin), partitions of at most 150 rows."""
    df = _sky(1200)
    return df, _lsdb_catalog(df, tmp_path_factory.mktemp("hats") / "positions")


def _write(out: Path, pieces, **kw) -> None:
    args = dict(
        catalog_name="predictions",
        ra_column="ra_deg",
        dec_column="dec_deg",
        properties={"galmet_model": "sdss400", "galmet_version": "0.1.0"},
        provenance={"model_card": {"name": "sdss400", "targets": ["oh_p50"]}, "command": "galmet predict"},
        column_units=UNITS,
    )
    write_hats(out, pieces, **{**args, **kw})


def _pieces(df: pd.DataFrame, plan, folder: Path) -> list[tuple[HatsPixel, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    pieces = []
    for pixel, rows in plan:
        file = folder / f"{pixel.key}.parquet"
        df.iloc[rows].to_parquet(file)
        pieces.append((pixel, file))
    return pieces


def _predictions(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["oh_p50_pred"] = 8.9 + 0.001 * (df["objID"] % 300)
    out["status"] = np.where(df["objID"] % 7 == 0, "failed", "ok")
    return out


# ---- reading ----


def test_open_hats_reads_the_pixels_and_position_columns_of_an_lsdb_catalogue(positions):
    df, folder = positions
    cat = lsdb.read_hats(folder)
    for path in (folder, folder / "positions"):  # the collection and its primary catalogue
        opened = open_hats(path)
        assert opened.ra_column == "ra_deg" and opened.dec_column == "dec_deg"
        assert opened.name == "positions" and opened.total_rows == len(df)
        expected = sorted(HatsPixel(p.order, p.pixel) for p in cat.get_healpix_pixels())
        assert opened.pixels == expected and len(expected) > 8
        assert len({p.order for p in opened.pixels}) > 1  # the dense patch is split finer


def test_read_returns_exactly_one_partitions_rows(positions):
    df, folder = positions
    opened = open_hats(folder)
    cat = lsdb.read_hats(folder)
    seen = []
    for pixel in opened.pixels:
        rows = opened.read(pixel)
        part = cat.get_partition(pixel.order, pixel.pixel).compute()
        assert sorted(rows["objID"]) == sorted(part["objID"])
        assert isinstance(rows.index, pd.RangeIndex)
        seen.extend(rows["objID"])
    assert sorted(seen) == sorted(df["objID"])
    some = opened.read(opened.pixels[0], columns=["ra_deg", "dec_deg"])
    assert list(some.columns) == ["ra_deg", "dec_deg"]


def test_is_hats_tells_catalogues_from_other_paths(positions, tmp_path):
    _, folder = positions
    assert is_hats(folder) and is_hats(folder / "positions")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "properties").write_text("not=hats\n")
    table = tmp_path / "t.parquet"
    pd.DataFrame({"ra": [1.0]}).to_parquet(table)
    assert not any(is_hats(p) for p in (plain, table, tmp_path / "missing", tmp_path))


def test_open_hats_errors_are_one_line_naming_the_path(positions, tmp_path):
    _, folder = positions
    with pytest.raises(DataError, match="not a HATS catalogue") as err:
        open_hats(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "hats.properties").write_text("obs_collection=x\ndataproduct_type=nonsense\n")
    with pytest.raises(DataError, match="not a HATS catalogue galmet can read") as err:
        open_hats(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="a margin table, not a catalogue of objects"):
        open_hats(folder / "positions_5arcs")  # the collection's margin cache
    assert not is_hats(folder / "positions_5arcs")


def test_the_row_count_comes_from_the_footers_when_the_properties_lack_it(positions, tmp_path):
    df, _ = positions
    folder = _lsdb_catalog(df, tmp_path / "copy", margin=False) / "positions"  # (a collection's catalogue)
    for name in ("hats.properties", "properties"):
        lines = (folder / name).read_text().splitlines()
        (folder / name).write_text("\n".join(x for x in lines if not x.startswith("hats_nrows")) + "\n")
    assert open_hats(folder).total_rows == len(df)


def test_a_missing_or_damaged_partition_is_a_one_line_data_error(positions, tmp_path):
    df, _ = positions
    folder = _lsdb_catalog(df, tmp_path / "copy", margin=False)
    opened = open_hats(folder)
    first, second = opened.pixels[:2]
    opened.pixel_path(first).unlink()
    opened.pixel_path(second).write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="is missing") as err:
        opened.read(first)
    assert f"Npix={first.pixel}.parquet" in str(err.value)
    with pytest.raises(DataError, match="cannot read this HATS partition") as err:
        opened.read(second)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="has no partition"):
        opened.read(HatsPixel(29, 5))


# ---- planning ----


def test_plan_pixels_covers_every_row_once_and_respects_max_rows():
    df = _sky(3000, seed=3)
    ra, dec = df["ra_deg"].to_numpy(copy=True), df["dec_deg"].to_numpy(copy=True)
    ra[[5, 17]], dec[[9]] = np.nan, 95.0
    plan = plan_pixels(ra, dec, 100)
    rows = np.concatenate([r for _, r in plan])
    valid = np.flatnonzero(valid_positions(ra, dec))
    assert sorted(rows) == list(valid) and len(rows) == len(set(rows)) == 2997  # NaN, |dec|>90: nowhere
    assert all(0 < len(r) <= 100 and list(r) == sorted(r) for _, r in plan)
    assert [p for p, _ in plan] == sorted(p for p, _ in plan)
    index = hats.pixel_math.spatial_index.compute_spatial_index(ra[valid], dec[valid])
    where = dict(zip(valid, index, strict=True))
    for pixel, r in plan:  # every row lies in its pixel
        lo, hi = pixel.index_range()
        assert all(lo <= where[i] < hi for i in r)
    dense = [p.order for p, r in plan if abs(ra[r[0]] - 150) < 2 and abs(dec[r[0]] - 2) < 2]
    sparse = [p.order for p, r in plan if abs(dec[r[0]]) > 30]
    assert min(dense) > max(sparse)
    again = plan_pixels(ra, dec, 100)
    assert [p for p, _ in again] == [p for p, _ in plan] and all(
        np.array_equal(a, b) for (_, a), (_, b) in zip(again, plan, strict=True)
    )


def test_plan_pixels_matches_hats_alignment():
    df = _sky(2000, seed=4)
    ra, dec = df["ra_deg"].to_numpy(), df["dec_deg"].to_numpy()
    highest = 6
    histogram = hats.pixel_math.generate_histogram(df, highest, ra_column="ra_deg", dec_column="dec_deg")
    alignment = hats.pixel_math.generate_alignment(histogram, highest_order=highest, threshold=120)
    expected = sorted({HatsPixel(int(t[0]), int(t[1])) for t in alignment if t is not None})
    assert [p for p, _ in plan_pixels(ra, dec, 120)] == expected


def test_plan_pixels_keeps_identical_positions_together_and_checks_its_arguments():
    ra, dec = np.full(7, 10.0), np.full(7, -5.0)
    plan = plan_pixels(ra, dec, 3)
    assert len(plan) == 1 and plan[0][0].order == 29 and list(plan[0][1]) == list(range(7))
    assert plan_pixels([], [], 5) == []
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="max_rows"):
            plan_pixels(ra, dec, bad)


def test_hats_pixel_key_path_and_order():
    p = HatsPixel(3, 123)
    assert p.key == "o3-p000123" and HatsPixel.from_key(p.key) == p
    assert HatsPixel(8, 123456).path == "dataset/Norder=8/Dir=120000/Npix=123456.parquet"
    assert sorted([HatsPixel(2, 1), HatsPixel(1, 40), HatsPixel(1, 3)]) == [
        HatsPixel(1, 3),
        HatsPixel(1, 40),
        HatsPixel(2, 1),
    ]
    with pytest.raises(ConfigError):
        HatsPixel(1, 48)
    with pytest.raises(ConfigError):
        HatsPixel.from_key("o3-p12x")


# ---- writing ----


def test_write_hats_opens_in_lsdb_with_the_same_rows_units_and_provenance(tmp_path):
    df = _predictions(_sky(1500, seed=5))
    pieces = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 200), tmp_path / "pieces")
    out = tmp_path / "out"
    _write(out, pieces)
    cat = lsdb.read_hats(out)
    got = cat.compute().sort_values("objID").reset_index(drop=True)
    assert list(got.columns) == list(df.columns)
    pd.testing.assert_frame_equal(got, df, check_dtype=False)
    assert cat.hc_structure.catalog_info.total_rows == len(df)
    assert sorted(HatsPixel(p.order, p.pixel) for p in cat.get_healpix_pixels()) == sorted(p for p, _ in pieces)
    schema = pq.read_schema(out / "dataset" / "_common_metadata")
    assert schema.field("oh_p50_pred").metadata[b"unit"] == b"dex"
    assert json.loads(schema.metadata[b"galmet.units"]) == UNITS
    votable = schema.metadata[b"IVOA.VOTable-Parquet.content"].decode()
    assert '<FIELD ID="oh_p50_pred" datatype="double" name="oh_p50_pred" unit="dex"/>' in votable
    info = hats.read_hats(out).catalog_info
    assert json.loads(info.extra_dict()["galmet_units"]) == UNITS and info.extra_dict()["galmet_model"] == "sdss400"
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    assert prov["provenance"]["model_card"]["name"] == "sdss400" and prov["column_units"] == UNITS
    assert is_hats(out) and open_hats(out).total_rows == len(df)


def test_written_partitions_are_sorted_by_the_spatial_index(tmp_path):
    df = _predictions(_sky(600, seed=6))
    pieces = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 400), tmp_path / "pieces")
    _write(tmp_path / "out", pieces)
    opened = open_hats(tmp_path / "out")
    for pixel in opened.pixels:
        index = opened.read(pixel)["_healpix_29"].to_numpy()
        assert np.all(np.diff(index) >= 0)


def test_lsdb_crossmatch_against_the_written_catalogue_recovers_the_rows(tmp_path):
    df = _predictions(_sky(800, seed=7))
    pieces = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 100), tmp_path / "pieces")
    _write(tmp_path / "out", pieces)
    written = lsdb.read_hats(tmp_path / "out")
    probe = df.sample(200, random_state=1)[["objID", "ra_deg", "dec_deg"]].rename(columns={"objID": "probe_id"})
    probe["dec_deg"] += 0.1 / 3600  # 0.1 arcsec off
    left = lsdb.from_dataframe(
        probe, ra_column="ra_deg", dec_column="dec_deg", partition_rows=60, margin_threshold=None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the written catalogue has no margin cache)
        matched = left.crossmatch(written, n_neighbors=1, radius_arcsec=1.0, suffixes=("_l", "_r")).compute()
    assert len(matched) == len(probe)
    ids = matched["probe_id_l"].to_numpy(dtype=np.int64)
    assert np.array_equal(ids, matched["objID_r"].to_numpy(dtype=np.int64))
    assert np.allclose(matched["oh_p50_pred_r"].to_numpy(dtype=float), 8.9 + 0.001 * (ids % 300))


def test_a_hats_inputs_pixels_written_back_keep_its_partitioning(positions, tmp_path):
    _, folder = positions
    opened = open_hats(folder)
    pieces = []
    for pixel in opened.pixels:
        rows = _predictions(opened.read(pixel))
        file = tmp_path / f"{pixel.key}.parquet"
        rows.to_parquet(file)
        pieces.append((pixel, file))
    _write(tmp_path / "out", pieces)
    back = open_hats(tmp_path / "out")
    assert back.pixels == opened.pixels and back.total_rows == opened.total_rows
    assert list(back.read(back.pixels[0]).columns).count("_healpix_29") == 1


def test_a_failure_mid_write_leaves_no_catalogue_and_no_temporary_folder(tmp_path):
    df = _predictions(_sky(900, seed=8))
    pieces = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 100), tmp_path / "pieces")
    stray = pd.read_parquet(pieces[-1][1])
    stray.loc[stray.index[0], "dec_deg"] = -stray.loc[stray.index[0], "dec_deg"] - 10  # another pixel
    stray.to_parquet(pieces[-1][1])
    (tmp_path / "site").mkdir()
    out = tmp_path / "site" / "out"
    with pytest.raises(DataError, match="lies outside HEALPix pixel") as err:
        _write(out, pieces)
    assert "\n" not in str(err.value) and pieces[-1][1].name in str(err.value)
    assert list((tmp_path / "site").iterdir()) == []


def test_a_galmet_catalogue_is_replaced_whole_and_survives_a_failed_rewrite(tmp_path):
    df = _predictions(_sky(700, seed=9))
    pieces = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 100), tmp_path / "pieces")
    out = tmp_path / "site" / "out"
    _write(out, pieces)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(DataError):
        _write(out, [*pieces[:-1], (pieces[-1][0], pieces[0][1])])  # the last pixel gets wrong rows
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    coarse = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 700), tmp_path / "coarse")
    _write(out, coarse)  # a galmet catalogue: replaced, nothing of the old one left
    assert sorted(p for p, _ in coarse) == open_hats(out).pixels
    assert len(lsdb.read_hats(out).compute()) == len(df)
    assert [p.name for p in (tmp_path / "site").iterdir()] == ["out"]


def test_write_hats_refuses_a_folder_it_did_not_write(positions, tmp_path):
    df = _predictions(_sky(300, seed=10))
    pieces = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 100), tmp_path / "pieces")
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a HATS catalogue galmet wrote") as err:
        _write(user, pieces)
    assert "\n" not in str(err.value) and (user / "notes.txt").read_text() == "mine"
    _, lsdb_made = positions
    with pytest.raises(ConfigError, match="not a HATS catalogue galmet wrote"):
        _write(lsdb_made, pieces)
    assert is_hats(lsdb_made)
    out = tmp_path / "out"
    _write(out, pieces)
    (out / "dataset" / "extra.txt").write_text("added by a user")
    with pytest.raises(ConfigError, match="has changed since"):
        _write(out, pieces)


def test_write_hats_checks_its_pieces_and_properties(tmp_path):
    df = _predictions(_sky(300, seed=11))
    pieces = _pieces(df, plan_pixels(df["ra_deg"], df["dec_deg"], 100), tmp_path / "pieces")
    parent = pieces[0][0]
    child = HatsPixel(parent.order + 1, parent.pixel * 4)
    with pytest.raises(ConfigError, match="overlap"):
        _write(tmp_path / "out", [*pieces, (child, pieces[0][1])])
    with pytest.raises(DataError, match="is missing"):
        _write(tmp_path / "out", [(parent, tmp_path / "nope.parquet")])
    with pytest.raises(ConfigError, match="not a free property name"):
        _write(tmp_path / "out", pieces, properties={"hats_nrows": "5"})
    with pytest.raises(DataError, match="has no column 'nodec'"):
        _write(tmp_path / "out", pieces, ra_column="ra_deg", dec_column="nodec")
    assert not (tmp_path / "out").exists()


def test_pieces_with_differing_columns_and_types_are_unified(tmp_path):
    df = _predictions(_sky(400, seed=12))
    plan = plan_pixels(df["ra_deg"], df["dec_deg"], 150)
    pieces = _pieces(df, plan, tmp_path / "pieces")
    first, second = pieces[0][1], pieces[1][1]
    a = pd.read_parquet(first)
    a["flags"] = np.arange(len(a), dtype=np.int64)  # int64 here, float64 with a NaN in the next piece
    a["note"] = None  # all null here
    a.to_parquet(first)
    b = pd.read_parquet(second)
    b["flags"] = np.r_[np.nan, np.ones(len(b) - 1)]
    b["note"] = "checked"
    b.to_parquet(second)
    _write(tmp_path / "out", pieces)
    got = lsdb.read_hats(tmp_path / "out").compute()
    assert len(got) == len(df)
    schema = pq.read_schema(tmp_path / "out" / "dataset" / "_common_metadata")
    assert str(schema.field("flags").type) == "double" and str(schema.field("note").type) in ("string", "large_string")
    assert (got["note"] == "checked").sum() == len(b) and got["flags"].isna().sum() == len(df) - len(a) - len(b) + 1
