"""Splits, the dihedral group, re-binning and atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galmet.data.splits import assign_splits
from galmet.data.transforms import dihedral, rebin
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_path, atomic_write_bytes, remove_stale_temp_files
from galmet.io.ownership import record_temp
from galmet.io.tables import read_table, write_table


def test_split_by_count_and_fraction():
    cat = pd.DataFrame({"objID": np.arange(1000)})
    s = assign_splits(cat, test=250, seed=1)
    assert (s == "test").sum() == 250 and (s == "valid").sum() == 150 and (s == "train").sum() == 600
    f = assign_splits(cat, test=0.1, seed=1)
    assert (f == "test").sum() == 100
    with pytest.raises(ConfigError):
        assign_splits(cat, test=2000)
    with pytest.raises(ConfigError):
        assign_splits(pd.DataFrame({"split": ["train", "bogus"]}))


def test_dihedral_group_has_eight_distinct_elements():
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    views = {dihedral(img, i).tobytes() for i in range(8)}
    assert len(views) == 8
    np.testing.assert_array_equal(dihedral(img, 0), img)
    np.testing.assert_array_equal(dihedral(img, 1), np.rot90(img))


def test_rebin_block_average():
    img = np.zeros((1, 4, 4, 1), np.uint8)
    img[0, :2, :2, 0] = 100
    out = rebin(img, 2)
    assert out.shape == (1, 2, 2, 1) and out[0, 0, 0, 0] == 100 and out[0, 1, 1, 0] == 0
    assert rebin(img, 1)[0, 0, 0, 0] == 25
    with pytest.raises(ConfigError):
        rebin(img, 3)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p for p in tmp_path.iterdir() if p.name != ".galmet-written"] == [target]  # (and galmet's ledger)
    (tmp_path / ".out.bin.abc.galmet.tmp").write_bytes(b"x")
    record_temp(tmp_path / ".out.bin.abc.galmet.tmp")  # (as a killed atomic write leaves it)
    (tmp_path / ".notes.tmp").write_bytes(b"a user's file")  # not galmet's: it stays
    (tmp_path / ".notes.bak1.galmet.tmp").write_bytes(b"a user's file")  # a temp name, not noted: it stays
    assert remove_stale_temp_files(tmp_path) == 1
    assert (tmp_path / ".notes.tmp").read_bytes() == (tmp_path / ".notes.bak1.galmet.tmp").read_bytes()


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".fits"])
def test_table_round_trip(tmp_path, suffix):
    df = pd.DataFrame({"objID": np.array([1237648704043942146, 2], np.int64), "oh_p50": [8.9, 9.1]})
    path = write_table(df, tmp_path / f"t{suffix}")
    back = read_table(path)
    assert back["objID"].tolist() == df["objID"].tolist()
    np.testing.assert_allclose(back["oh_p50"], df["oh_p50"])


def test_atomic_write_uses_normal_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644
