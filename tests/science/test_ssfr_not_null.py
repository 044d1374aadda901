"""A null test that is not null: MPA-JHU sSFR and O/H share their spectra, so dZ of a perfect
model correlates with the sSFR; every output that compares them says so (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galmet.science.mzr import _ssfr_lines, _ssfr_null_test, ssfr_tests
from galmet.science.stats import SSFR_CAVEAT, fixed_width_bins, ssfr_caveat
from galmet.science.systematics import systematics

DOCS = Path(__file__).resolve().parents[2] / "docs" / "science.md"


def _perfect_model(n: int = 3000, seed: int = 0, shared: float = 0.7) -> pd.DataFrame:
    """Galaxies whose measured Z and sSFR share an error term (``shared``: its correlation), and a
    perfect model: Z_pred = the real Z, so dZ = -(the label's error)."""
    rng = np.random.default_rng(seed)
    mass = rng.uniform(9.0, 11.0, n)
    z_real = 8.9 + 0.2 * (mass - 10) + rng.normal(0, 0.08, n)
    ssfr_real = -10 - 0.3 * (mass - 10) + rng.normal(0, 0.4, n)
    e1, e2 = rng.normal(size=(2, n))
    e_z = 0.05 * e1
    e_s = 0.2 * (shared * e1 + np.sqrt(1 - shared**2) * e2)
    return pd.DataFrame(
        {
            "objID": np.arange(1, n + 1),
            "lgm_tot_p50": mass,
            "oh_p50": z_real + e_z,
            "oh_p50_pred": z_real,
            "specsfr_tot_p50": ssfr_real + e_s,
            "log_ssfr": ssfr_real,
        }
    )


def test_a_perfect_model_correlates_with_a_shared_spectrum_ssfr():
    """The reason for the caveat: r(dZ, sSFR | M) is far from 0 for a model without any error
    of its own, and 0 against an sSFR measured independently."""
    j = _perfect_model()
    edges = fixed_width_bins(j["lgm_tot_p50"], 0.2)
    shared = ssfr_tests(j, "specsfr_tot_p50", edges)["dz"]
    independent = ssfr_tests(j, "log_ssfr", edges)["dz"]
    assert shared["hi"] < -0.2, shared  # dZ = -e_Z, anti-correlated with e_S (expected r = -0.31)
    assert independent["lo"] < 0 < independent["hi"], independent


def test_caveat_only_for_the_spectra_columns():
    for col in ("specsfr_tot_p50", "sfr_tot_p50", "log_ssfr_from_sfr"):
        assert ssfr_caveat(col) == SSFR_CAVEAT
    assert ssfr_caveat("log_ssfr") is None and ssfr_caveat("z") is None
    assert "same spectra" in SSFR_CAVEAT and "perfect" in SSFR_CAVEAT


def test_mzr_output_carries_the_caveat():
    j = _perfect_model(800)
    edges = fixed_width_bins(j["lgm_tot_p50"], 0.2)
    _, res = _ssfr_null_test("specsfr_tot_p50", None, j, edges, 10)
    assert res["caveat"] == SSFR_CAVEAT
    _, clean = _ssfr_null_test("log_ssfr", None, j, edges, 10)
    assert "caveat" not in clean
    assert any(line.strip().startswith("caveat: MPA-JHU") for line in _ssfr_lines(res))
    assert not any("caveat" in line for line in _ssfr_lines(clean))


def test_systematics_marks_the_spectra_ssfr(tmp_path):
    pytest.importorskip("matplotlib")
    from galmet.runs.systematics import format_systematics
    from galmet.science.plots.systematics import plot_systematics

    df = _perfect_model(1500).drop(columns=["log_ssfr"])
    res = systematics(df, "oh_p50", n_boot=100)
    trend = res.trends["specsfr_tot_p50"]
    assert trend["caveat"] == SSFR_CAVEAT and trend["spearman_rho"] < -0.2
    assert "caveat" not in res.trends["lgm_tot_p50"]
    summary = {"target": "oh_p50", "split": "test", "n": 1500, "trends": res.trends}
    text = format_systematics(summary)
    assert "caveat (specsfr_tot_p50): MPA-JHU" in text
    fig = plot_systematics(res)
    notes = [t.get_text() for t in fig.texts]
    assert any(n.startswith("* MPA-JHU") for n in notes)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert sum(t.endswith("*") for t in titles) == 1


def test_docs_say_so():
    text = DOCS.read_text()
    assert "The sSFR test is not null on MPA-JHU data" in text
    assert "SSFR_CAVEAT" in text
