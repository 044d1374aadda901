"""The prepared full-model recipe (benchmarks/full_model_recipe.sh) runs end to end in its smoke mode:
synthetic data -> train -> calibrate on valid -> test once -> card -> `galmet models pack --half`,
and the package it writes is a registry entry galmet loads by folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "full_model_recipe.sh"

pytest.importorskip("galsim")


@pytest.mark.slow
def test_recipe_smoke_packs_a_loadable_model_with_its_card(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "recipe"
    run = ["bash", str(SCRIPT), "--smoke", "recipe"]  # OUT relative to the caller's folder
    res = subprocess.run(run, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    package = out / "package"
    card = json.loads((package / "card.json").read_text())
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert card["metrics"]["n"] == metrics["n"] == 60
    assert card["metrics"]["rmse"] == pytest.approx(metrics["rmse"], abs=1e-4)
    assert card["weights"]["size"] == (package / "model.pt").stat().st_size
    assert (out / "test_access.log").read_text().count("--split test") == 1
    from galmet.nn.bundle import load_model

    model = load_model(package / "model.pt")
    assert model.name == "smoke-recipe" and model.card is not None and model.card["name"] == "smoke-recipe"
    # a rerun reuses every finished step: the test split is not scored a second time
    res = subprocess.run(run, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "test_access.log").read_text().count("--split test") == 1


def test_recipe_refuses_a_missing_dataset_in_one_line(tmp_path):
    res = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "nope"), str(tmp_path / "out")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "no such dataset directory" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
