"""Each stage's package is its public API (astropy's habit): every exported name resolves, the
exports are lazy, and the torch-free stages stay torch-free through them."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

PACKAGES = ["data", "io", "nn", "sdss", "synthetic", "training", "predict", "science", "report"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_export_resolves_and_no_export_hides_a_module(name):
    package = importlib.import_module(f"galmet.{name}")
    assert package.__all__, f"galmet.{name} exports nothing"
    for export in package.__all__:
        assert getattr(package, export) is not None
        assert importlib.util.find_spec(f"galmet.{name}.{export}") is None, f"{export} hides a module"
    assert set(package.__all__) <= set(dir(package))


def test_torch_free_stages_stay_torch_free_through_their_exports():
    code = (
        "import sys, galmet.science as s, galmet.io as io, galmet.data as d\n"
        "[getattr(m, n) for m in (s, io, d) for n in m.__all__]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_load_dataset_shows_its_real_signature():
    import galmet

    params = inspect.signature(galmet.load_dataset).parameters
    assert "cutouts" in params and not any(p.kind is p.VAR_POSITIONAL for p in params.values())
