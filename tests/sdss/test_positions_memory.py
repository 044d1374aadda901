"""The parse/validate path of ``galmet predict --positions`` holds each column about once: integer
IDs are not turned into a Python int per row, the command's own table is not copied again, and the
cutout keys' check is vectorised (benchmarks/positions_memory.py measures the whole path)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from galmet.columns import objid_array
from galmet.sdss.coords import Positions, cutout_keys, sky_positions

N = 100_000


def _peak(fn) -> float:
    """Peak bytes allocated (numpy buffers included) while ``fn()`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _columns(n: int = N) -> dict:
    rng = np.random.default_rng(0)
    return {
        "objID": 1237648702973083820 + np.arange(n, dtype=np.int64),
        "ra": rng.uniform(0, 360, n),
        "dec": rng.uniform(-90, 90, n),
        "z": rng.uniform(0, 1, n),
    }


def test_integer_ids_are_converted_without_a_python_int_per_row():
    ids = pd.Series(_columns()["objID"])
    peak = _peak(lambda: objid_array(ids))
    assert peak < 1.5 * 8 * N, peak  # the int64 result only (an object array of ints: ~40 bytes a row)
    np.testing.assert_array_equal(objid_array(ids), ids.to_numpy())


def test_the_commands_own_table_is_not_copied_and_a_callers_is():
    from astropy.table import QTable

    table = QTable(_columns())
    shared = _peak(lambda: sky_positions(table, copy=False))
    copied = _peak(lambda: sky_positions(table))
    assert shared < 2.5 * 8 * N, shared  # ra and dec in degrees, not another copy of every column
    assert copied > shared + 3 * 8 * N  # (the default copies the caller's four columns)
    private = sky_positions(table)
    table["z"][0] = -1.0  # the caller changes its table afterwards: a copied run does not see it
    assert private.table["z"][0] != -1.0 and private.frame["z"][0] != -1.0
    frame = pd.DataFrame(_columns(10))
    p = sky_positions(frame)
    frame.loc[0, "z"] = -1.0
    assert p.frame["z"][0] != -1.0


def _keys_by_loop(ids: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> bool:
    """The rule, row by row: rows sharing an objID share ra and dec (or both have no ra)."""
    seen: dict[int, tuple[float, float]] = {}
    for k, r, d in zip(ids.tolist(), ra.tolist(), dec.tolist(), strict=True):
        first = seen.setdefault(k, (r, d))
        if first != (r, d) and not (math.isnan(r) and math.isnan(first[0])):
            return False
    return True


@pytest.mark.parametrize("seed", range(40))
def test_the_vectorised_key_check_keeps_the_rule(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    ids = rng.integers(0, max(1, n // 2), n).astype(np.int64)  # many shared IDs
    base_ra, base_dec = rng.uniform(0, 360, n), rng.uniform(-90, 90, n)
    ra, dec = base_ra[ids % n], base_dec[ids % n]  # rows sharing an ID share the position ...
    for _ in range(int(rng.integers(0, 3))):  # ... unless one is changed, or made missing
        i = int(rng.integers(0, n))
        what = rng.integers(0, 3)
        if what == 0:
            ra[i] += 1e-6
        elif what == 1:
            dec[i] = np.nan
        else:
            ra[ids == ids[i]] = np.nan
    keys, kind = cutout_keys(Positions(ra, dec, None, pd.DataFrame({"objID": ids})))
    assert (kind == "objID") == _keys_by_loop(ids, ra, dec), (ids, ra, dec)
    if kind == "row":
        np.testing.assert_array_equal(keys, np.arange(n))
