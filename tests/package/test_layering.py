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


def _import_circles(src: Path) -> list[list[str]]:
    """Every set of galmet modules that import each other round a circle (strongly connected
    components of the import graph, function-level imports included), in a subprocess on ``src``."""
    pytest.importorskip("grimp")
    code = r"""
import json, sys
import grimp
graph = grimp.build_graph("galmet", include_external_packages=False)
index, low, stack, on_stack, circles = {}, {}, [], set(), []
def visit(root):
    # iterative Tarjan: (module, iterator over what it imports)
    work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
    index[root] = low[root] = len(index); stack.append(root); on_stack.add(root)
    while work:
        node, edges = work[-1]
        for nxt in edges:
            if nxt not in index:
                index[nxt] = low[nxt] = len(index); stack.append(nxt); on_stack.add(nxt)
                work.append((nxt, iter(sorted(graph.find_modules_directly_imported_by(nxt)))))
                break
            if nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        else:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    m = stack.pop(); on_stack.discard(m); part.append(m)
                    if m == node:
                        break
                if len(part) > 1:
                    circles.append(sorted(part))
for module in sorted(graph.modules):
    if module not in index:
        visit(module)
print(json.dumps(circles))
"""
    import json

    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_no_import_circle_between_any_two_modules():
    """Two modules never import each other, directly or round a longer circle, not even inside a
    function (the contracts cannot see a circle inside one layer, e.g. within cli/ or io/)."""
    assert _import_circles(ROOT / "src") == []


def test_a_circle_through_a_function_level_import_fails(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    # inside nn/: the network's weights module reaching back up to the bundle, inside a function
    weights = src / "galmet" / "nn" / "weights.py"
    weights.write_text(
        weights.read_text() + "\n\ndef _back():\n    from galmet.nn import bundle\n\n    return bundle\n"
    )
    # inside cli/: options importing a command (commands import options)
    options = src / "galmet" / "cli" / "options.py"
    options.write_text(
        options.read_text() + "\n\ndef _back():\n    from galmet.cli.commands import train\n\n    return train\n"
    )
    circles = _import_circles(src)
    assert any("galmet.nn.weights" in c and "galmet.nn.bundle" in c for c in circles), circles
    assert any("galmet.cli.options" in c and "galmet.cli.commands.train" in c for c in circles), circles
    # and the contracts inside nn/ and cli/ break on the same edits
    project = tmp_path
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    out = _lint(project)
    assert out.returncode != 0
    assert "galmet.nn.weights -> galmet.nn.bundle" in out.stdout
    assert "galmet.cli.options -> galmet.cli.commands.train" in out.stdout
