"""The MZR null test's random forest predicts every galaxy it can, each out of sample, and says
how many it leaves out and why."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from galmet.paper import tremonti_mzr

pytest.importorskip("sklearn")


def _catalogue(n=900, seed=4):
    rng = np.random.default_rng(seed)
    m = rng.normal(10.0, 0.5, n)
    zt = tremonti_mzr(m) + rng.normal(0, 0.08, n)
    r = 17.0 - 1.2 * (m - 10) + rng.normal(0, 0.3, n)
    return pd.DataFrame(
        {
            "objID": np.arange(n, dtype=np.int64) + 1,
            "split": np.where(np.arange(n) % 3 == 0, "test", np.where(np.arange(n) % 3 == 1, "valid", "train")),
            "oh_p50": zt,
            "lgm_tot_p50": m,
            "modelMag_g": r + 0.6 + 0.3 * (m - 10),
            "modelMag_r": r,
            "modelMag_i": r - 0.3,
        }
    )


def _files(tmp_path, cat):
    """Predictions of every split (``--split all``), as a user evaluating a whole dataset has them."""
    z = pd.DataFrame({"objID": cat.objID, "split": cat.split, "oh_p50_pred": cat.oh_p50 + 0.01, "oh_p50": cat.oh_p50})
    ms = pd.DataFrame({"objID": cat.objID, "lgm_tot_p50_pred": cat.lgm_tot_p50, "lgm_tot_p50": cat.lgm_tot_p50})
    z.to_parquet(tmp_path / "z.parquet")
    ms.to_parquet(tmp_path / "m.parquet")
    return tmp_path / "z.parquet", tmp_path / "m.parquet"


@pytest.mark.parametrize("lost", [0, 7])
def test_the_forest_covers_every_galaxy_and_counts_the_rest(tmp_path, caplog, lost):
    from galmet.science.mzr import format_mzr, mzr_analysis

    cat = _catalogue()
    cat.loc[cat.index[:lost], "modelMag_g"] = np.nan  # a few galaxies without a magnitude
    with caplog.at_level(logging.WARNING):
        met = mzr_analysis(*_files(tmp_path, cat), dataset=cat, split="all")["metrics"]
    rf = met["null_tests"]["rf"]
    assert rf["of"] == len(cat) and rf["galaxies"] == len(cat) - lost  # not only the 300 test rows
    text = format_mzr(met)
    if lost:
        assert rf["left_out"] == {"no finite gri magnitudes": lost}
        assert f"{len(cat) - lost} of {len(cat)} galaxies: {lost} no finite gri magnitudes" in text
        assert f"predicts {len(cat) - lost} of {len(cat)} galaxies ({lost} no finite gri magnitudes)" in caplog.text
    else:
        assert rf["left_out"] == {} and f"random forest (all {len(cat)} galaxies" in text


def test_galaxies_missing_from_the_given_forest_table_are_counted(tmp_path):
    from galmet.science.mzr import mzr_analysis

    cat = _catalogue()
    rest = cat.iloc[50:]
    rf = pd.DataFrame({"objID": rest.objID, "oh_p50_pred": tremonti_mzr(rest.lgm_tot_p50), "oh_p50": rest.oh_p50})
    met = mzr_analysis(*_files(tmp_path, cat), dataset=cat, split="all", rf=rf)["metrics"]
    assert met["null_tests"]["rf"]["left_out"] == {"no row in the random-forest predictions": 50}


def test_every_prediction_is_out_of_sample():
    from galmet.science.baseline import ForestConfig, out_of_sample_forest

    cat = _catalogue(n=600)
    cat["oh_p50"] = 8.7 + np.random.default_rng(0).normal(0, 0.1, len(cat))  # labels the magnitudes cannot know
    pred = out_of_sample_forest(cat, "gri", "oh_p50", ForestConfig(n_jobs=1))
    assert np.isfinite(pred).all()
    for split in ("train", "valid", "test"):  # an in-sample forest would track the noise it was fitted to
        rows = (cat.split == split).to_numpy()
        assert abs(np.corrcoef(pred[rows], cat.oh_p50[rows])[0, 1]) < 0.3, split  # in sample: about 0.5
    wanted = (cat.split == "test").to_numpy()
    only = out_of_sample_forest(cat, "gri", "oh_p50", ForestConfig(n_jobs=1), rows=wanted)
    assert np.isnan(only[~wanted]).all() and np.allclose(only[wanted], pred[wanted])
