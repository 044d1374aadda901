"""The nn circle (inference -> bundle -> inference) stays gone: the contract inside nn catches it,
function-level imports included (that a circle added inside nn/ breaks the contracts is shown in
tests/package/test_layering.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_inference_does_not_import_the_bundle_module():
    """Not at module level, not under TYPE_CHECKING, not inside a function."""
    tree = ast.parse((ROOT / "src" / "galmet" / "nn" / "inference.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "galmet.nn.bundle" not in imported and "galmet.nn.bundle_meta" in imported
