"""Optional dependencies: import one, or say in one line which extra installs it.

The heavy parts of galmet that only some commands need are extras (``pyproject.toml``):
``galmet[synth]`` (GalSim, SciPy) for synthetic galaxies, ``galmet[analysis]`` (scikit-learn,
matplotlib) for baselines and figures, ``galmet[explain]`` (captum) for attribution maps.
:func:`require` imports one at the point of use; a missing one is a
:class:`~galmet.errors.ConfigError` (one line, exit code 2 on the command line) naming the
package and the ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from galmet.errors import ConfigError

#: The distribution (pip) name of each optional module, where it differs from the import name.
PIP_NAMES = {"sklearn": "scikit-learn", "galsim": "galsim", "captum": "captum"}
#: What each extra is for, named in the error.
EXTRAS = {
    "synth": "synthetic galaxies",
    "analysis": "baselines and figures",
    "explain": "attribution maps",
}


def missing_message(module: str, extra: str, purpose: str | None = None) -> str:
    """``<pip name> is not installed (needed for <purpose>): pip install 'galmet[<extra>]' ...`` (one line)."""
    top = module.split(".")[0]
    pip_name = PIP_NAMES.get(top, top)
    purpose = purpose or EXTRAS.get(extra, "this command")
    return (
        f"{pip_name} is not installed (needed for {purpose}): pip install 'galmet[{extra}]' (or pip install {pip_name})"
    )


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"galsim"``, ``"sklearn.ensemble"``) or raise a one-line ConfigError.

    Parameters
    ----------
    module : str
        Dotted import name.
    extra : str
        The galmet extra that installs it (``"synth"``, ``"analysis"``, ``"explain"``).
    purpose : str, optional
        What needs it, for the message (default: the extra's purpose).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    ConfigError
        ``module`` (or a package it needs) cannot be imported.
    """
    try:
        # the top-level package first: a submodule already in sys.modules is returned without
        # looking at its parent, which may since have become unimportable
        importlib.import_module(module.split(".")[0])
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(missing_message(module, extra, purpose)) from None
