"""The scripts in examples/ run as documented (small settings, CPU, loopback only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _run(script: str, *args, cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_api_end_to_end(tmp_path):
    stdout = _run(
        "api_end_to_end.py", "--out", tmp_path / "ex", "--n", "60", "--size", "16", "--epochs", "1", cwd=tmp_path
    )
    assert "test: N = " in stdout and "RMSE" in stdout
    assert (tmp_path / "ex" / "run" / "model.pt").is_file()


def test_positions_example_against_a_local_server(tmp_path):
    from astropy.table import QTable

    stdout = _run("positions_example.py", "--out", tmp_path / "pred.fits", cwd=tmp_path)
    table = QTable.read(tmp_path / "pred.fits")
    assert len(table) == 3 and np.isfinite(table["oh_p50_pred"].value).all()
    assert str(table["oh_p50_pred"].unit) == "dex" and str(table["ra"].unit) == "deg"
    assert table.meta["PIXSCALE"] == 0.296 and len(table.meta["MODELSHA"]) == 64
    assert "oh_p50_pred" in stdout and "wrote" in stdout
    assert "model sdss400" in stdout  # the shipped model, by name


def test_positions_example_with_real_cutouts_gives_real_metallicities(tmp_path):
    sample = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sdss_sample" / "images"
    if not sample.is_dir():
        pytest.skip(f"the real SDSS sample is absent ({sample})")
    stdout = _run("positions_example.py", "--images", sample, cwd=tmp_path)
    lines = [ln for ln in stdout.splitlines() if ln.strip().endswith(" ok")]
    assert len(lines) == 3, stdout
    assert all(8.0 < float(ln.split()[2]) < 9.4 for ln in lines), stdout


def test_restyle_figure(tmp_path):
    stdout = _run("restyle_figure.py", "--out", tmp_path / "fig.png", cwd=tmp_path)
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "RMSE" in stdout and "center" in stdout
