"""The one-way import rule (docs/architecture.md), as import-linter contracts in pyproject.toml.

The contracts run here against the real tree, every stage must appear in them, and a deliberately
added upward import (a function-level one, the kind that hid the old plotting <-> analysis cycle)
must break them.
"""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]


def _lint(project: Path) -> subprocess.CompletedProcess:
    """Run import-linter with ``project``'s pyproject.toml on ``project/src``'s galmet."""
    pytest.importorskip("importlinter")
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_contracts_hold_on_the_tree():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout


def test_every_stage_is_in_the_layers():
    import galmet

    layers = next(c for c in _contracts() if c["name"] == "Stages import downwards only")["layers"]
    named = {part.strip() for layer in layers for part in layer.split("|")}
    stages = {f"galmet.{m.name}" for m in pkgutil.iter_modules(galmet.__path__) if m.name != "__main__"}
    assert stages - named == set(), f"stages missing from the layers contract: {sorted(stages - named)}"


def test_an_upward_import_breaks_the_contract(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    splits = project / "src" / "galmet" / "data" / "splits.py"
    splits.write_text(
        splits.read_text() + "\n\ndef _upward():\n    from galmet.training.loop import train\n\n    return train\n"
    )
    out = _lint(project)
    assert out.returncode != 0
    assert "galmet.data is not allowed to import galmet.training" in out.stdout
    assert "galmet.data.splits -> galmet.training.loop" in out.stdout

    # a cycle inside science (compute importing a plot) is caught too
    shutil.copy(ROOT / "src" / "galmet" / "data" / "splits.py", splits)
    metrics = project / "src" / "galmet" / "science" / "metrics.py"
    metrics.write_text(
        metrics.read_text() + "\n\ndef _draw():\n    import galmet.science.plots\n\n    return galmet.science.plots\n"
    )
    out = _lint(project)
    assert out.returncode != 0 and "galmet.science.metrics -> galmet.science.plots" in out.stdout
