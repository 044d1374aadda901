"""The nn circle (inference -> bundle -> inference) stays gone: the contract inside nn catches it,
function-level imports included."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint(project: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("importlinter")
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_inference_does_not_import_the_bundle_module():
    """Not at module level, not under TYPE_CHECKING, not inside a function."""
    tree = ast.parse((ROOT / "src" / "galmet" / "nn" / "inference.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "galmet.nn.bundle" not in imported and "galmet.nn.bundle_meta" in imported


def test_a_function_level_import_of_the_bundle_in_inference_breaks_the_nn_contract(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    inference = project / "src" / "galmet" / "nn" / "inference.py"
    inference.write_text(
        inference.read_text()
        + "\n\ndef _circle():\n    from galmet.nn.bundle import load_model\n\n    return load_model\n"
    )
    out = _lint(project)
    assert out.returncode != 0
    assert "nn: bundle over inference over the network's parts BROKEN" in out.stdout
    assert "galmet.nn.inference -> galmet.nn.bundle" in out.stdout
