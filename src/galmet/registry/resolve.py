"""One rule for every model argument: an existing path wins; else a registry name; else one line.

:func:`resolve_model` turns what a user typed (``RUN/model.pt``, ``RUN``, ``sdss400``) into the
bundle file to read and, for a named model, its registry entry and card. ``galmet.load_model``
and every command that takes a model go through it; a command that only checks its outputs
against its inputs first calls it with ``fetch=False`` (no download before the checks), and
:func:`model_input` gives that input to :mod:`galmet.io.safety`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from galmet.errors import ConfigError
from galmet.io.safety import Input
from galmet.io.safety import model_input as path_input
from galmet.layout import BUNDLE
from galmet.registry.card import NAME_PATTERN, ModelCard
from galmet.registry.entries import ModelEntry, all_entries, card_beside, weights_match


@dataclass(frozen=True)
class ResolvedModel:
    """A model argument resolved.

    Attributes
    ----------
    path : Path
        The bundle file (or run folder) to read; for a url model, its cached copy.
    name : str or None
        The registry name, when the argument was one.
    entry : ModelEntry or None
        Its registry entry.
    card : ModelCard or None
        Its card: the entry's, or the ``card.json`` beside a bundle given by path that names it.
    """

    path: Path
    name: str | None = None
    entry: ModelEntry | None = None
    card: ModelCard | None = None


def find_entry(name: str, root: str | os.PathLike | None = None) -> ModelEntry | None:
    """The registry entry called ``name``, or None (``root``: the shipped models' folder, for tests)."""
    return next((e for e in all_entries(root) if e.name == name), None)


def unknown_model(text: str, root: str | os.PathLike | None = None) -> ConfigError:
    """The one-line error for a model argument that is neither a path nor a registered name."""
    names = sorted(e.name for e in all_entries(root))
    known = ", ".join(names) if names else "none registered"
    return ConfigError(f"{text}: no such model bundle, and no registered model of that name (known models: {known})")


def resolve_model(
    ref: str | os.PathLike, fetch_weights: bool = True, root: str | os.PathLike | None = None
) -> ResolvedModel:
    """Resolve a model argument: an existing file or folder wins; else a registry name; else a
    ConfigError naming the argument and listing the known names.

    ``fetch_weights=False`` never downloads: a url model not cached yet resolves to where its
    cache file will be (for checking a command's outputs against its inputs before any write).
    """
    path = Path(ref)
    if path.exists():
        return ResolvedModel(path, card=card_beside(path / BUNDLE if path.is_dir() else path))
    text = os.fspath(ref)
    entry = find_entry(text, root) if NAME_PATTERN.match(text) else None
    if entry is None:
        raise unknown_model(text, root)
    if entry.kind == "url":
        from galmet.registry.fetch import cached_path, fetch  # (the HTTP stack only when a url model is used)

        found = fetch(entry) if fetch_weights else cached_path(entry)
    else:
        found = Path(entry.location)
        if not found.is_file():
            raise ConfigError(f"{entry.source}: the weights of model {entry.name} ({found}) are missing")
        if not weights_match(found, entry.sha256, entry.size):
            raise ConfigError(
                f"{found}: the weights of model {entry.name} are not the ones its card names (sha256 or size "
                f"differs from {entry.source}); reinstall galmet or repack the model"
            )
    return ResolvedModel(found, entry.name, entry, entry.card)


def model_input(ref: str | os.PathLike, what: str = "the model bundle") -> Input:
    """The model argument ``ref`` (a path or a registry name) as an input a command must not write
    over (:class:`galmet.io.safety.Input`); never downloads."""
    return path_input(resolve_model(ref, fetch_weights=False).path, what)
