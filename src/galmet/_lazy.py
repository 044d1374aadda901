"""Lazy public names for a package ``__init__`` (astropy's habit: the API is the package).

``__getattr__, __dir__ = lazy_exports(__name__, {"name": "module", ...})`` makes ``pkg.name``
import ``module`` on first use, so importing a package stays as cheap as its lightest module and
heavy dependencies (torch, astropy) load only when a name that needs them is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` serving ``names`` (public name -> defining module)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
