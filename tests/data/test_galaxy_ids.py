"""The sets of galaxies a bundle records (galmet.data.galaxy_ids) and the training record itself."""

import numpy as np
import pandas as pd
import pytest

from galmet.data.galaxy_ids import GalaxyIdSet, key_hashes, row_keys
from galmet.errors import ConfigError


def test_membership_round_trips_through_the_stored_form():
    ids = [str(1237648720693755918 + 7 * i) for i in range(500)]
    s = GalaxyIdSet.of(ids[:300])
    back = GalaxyIdSet.from_dict(s.to_dict())
    assert len(back) == 300
    inside = back.contains(ids)
    assert inside[:300].all() and not inside[300:].any()


def test_keys_of_a_table_match_a_dataset_s_names():
    t = pd.DataFrame({"objID": np.array([1237648720693755918, 5], dtype=np.int64)})
    assert row_keys(t) == ["1237648720693755918", "5"]
    assert row_keys(pd.DataFrame({"file": ["a/b/x.jpg", "y.jpg"]})) == ["x.jpg", "y.jpg"]
    assert row_keys(pd.DataFrame({"ra": [1.0]})) is None
    assert key_hashes(["5"])[0] == key_hashes([5])[0]


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(n=d["n"] + 1),
        lambda d: d.update(hashes_b64="!!"),
        lambda d: d.update(version=99),
        lambda d: d.pop("hashes_b64"),
    ],
)
def test_a_malformed_record_is_refused_in_one_line(edit):
    d = GalaxyIdSet.of(["1", "2", "3"]).to_dict()
    edit(d)
    with pytest.raises(ConfigError, match="where: malformed"):
        GalaxyIdSet.from_dict(d, "where")


def test_unsorted_hashes_are_refused():
    s = GalaxyIdSet.of(["1", "2", "3"])
    d = GalaxyIdSet(s.hashes[::-1].copy()).to_dict()
    with pytest.raises(ConfigError, match="sorted"):
        GalaxyIdSet.from_dict(d)
