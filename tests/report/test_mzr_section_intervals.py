"""The report's MZR table shows each mass / Z_MZR / Z_pred score with its 95% bootstrap interval."""

from __future__ import annotations

import numpy as np

from galmet.report.html import Paths
from galmet.report.sections import _mzr_section
from galmet.science.metrics import bootstrap_metrics, regression_metrics


def _scores(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t = rng.normal(9.0, 0.2, 300)
    p = t + rng.normal(0, 0.1, 300)
    return {**regression_metrics(t, p), "intervals": bootstrap_metrics(t, p, 200)}


def test_mzr_scores_carry_their_intervals_and_old_jsons_still_show(tmp_path):
    m = {"n": 300, "split": "test", "mass": _scores(0), "z_mzr": _scores(1), "z_pred": _scores(2)}
    html = _mzr_section([(tmp_path / "mzr.json", m)], Paths(tmp_path))
    for key, stat in (("mass", "rmse"), ("mass", "nmad"), ("z_mzr", "rmse"), ("z_pred", "rmse")):
        b = m[key]["intervals"][stat]
        assert f"{m[key][stat]:.4f} [{b['lo95']:.4f}, {b['hi95']:.4f}]" in html
    # a JSON written before the intervals: the value alone
    old = {
        k: ({kk: vv for kk, vv in v.items() if kk != "intervals"} if isinstance(v, dict) else v) for k, v in m.items()
    }
    html = _mzr_section([(tmp_path / "mzr.json", old)], Paths(tmp_path))
    assert f"{m['z_pred']['rmse']:.4f}</td>" in html and "[" not in html.split("Z_pred vs Z_true")[1].split("</tr>")[0]
