"""The registry's entries: every named model galmet knows, and where its weights are.

Three kinds, read in this order (a name may appear once over all of them):

- ``shipped``: a folder ``galmet/models/<name>/`` inside the package holding ``card.json`` and the
  weights file the card names; found by scanning ``galmet/models/*/card.json``, so adding a
  model is adding a folder.
- ``path``: a local bundle file, listed in a registry file as ``{"name": ..., "path": ...}``
  (relative to the registry file's folder); its card is an inline ``"card"`` or the
  ``card.json`` beside the bundle, if any.
- ``url``: ``{"name": ..., "url": ..., "sha256": ..., "size": BYTES}`` (optional ``"version"``,
  ``"card"``), downloaded once into the user cache and verified (:mod:`galmet.registry.fetch`).

Registry files are JSON lists of entries: those named by ``GALMET_MODEL_REGISTRY`` (paths
separated by ``os.pathsep``), then the package's own ``galmet/models/registry.json``. Every entry
is validated; an error is one line naming the file, the entry and the field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from galmet._env import env
from galmet.errors import ConfigError
from galmet.io.ownership import file_sha256
from galmet.layout import BUNDLE
from galmet.registry.card import CARD, NAME_PATTERN, SHA256_PATTERN, ModelCard

#: The environment variable naming extra registry files (``os.pathsep``-separated).
REGISTRY_ENV = "GALMET_MODEL_REGISTRY"
#: The package's own registry file of published (url) models, in the shipped models' folder.
PACKAGE_REGISTRY = "registry.json"
#: The largest download an entry may declare, bytes (the transport's body cap).
MAX_MODEL_BYTES = 1 << 30
KINDS = ("shipped", "path", "url")


@dataclass(frozen=True)
class ModelEntry:
    """One named model.

    Attributes
    ----------
    name : str
        Its registry name.
    kind : {"shipped", "path", "url"}
    location : str
        The weights file (shipped, path) or the URL (url).
    source : str
        Where the entry was found: the shipped folder or the registry file.
    card : ModelCard or None
        Its card (always set for shipped models).
    sha256, size : str or None, int or None
        The weights' digest and size in bytes (required for url entries; from the card otherwise).
    version : str or None
    """

    name: str
    kind: str
    location: str
    source: str
    card: ModelCard | None = None
    sha256: str | None = None
    size: int | None = None
    version: str | None = None

    def describe(self) -> dict:
        """JSON-able summary: name, version, kind, location, source, sha256, size and the card (or None)."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "location": self.location,
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "card": self.card.to_dict() if self.card else None,
        }


def shipped_root() -> Path:
    """The package folder of shipped models (``galmet/models``)."""
    return Path(str(resources.files("galmet").joinpath("models")))


def shipped_entry(folder: Path) -> ModelEntry:
    """The shipped model in ``folder`` (its card names it and its weights file, which must be there)."""
    card = ModelCard.read(folder / CARD)
    if card.name != folder.name:
        raise ConfigError(f"{folder / CARD}: name {card.name!r} differs from its folder's name {folder.name!r}")
    weights = folder / card.weights["file"]
    if not weights.is_file():
        raise ConfigError(f"{folder / CARD}: its weights file {weights.name} is missing from {folder}")
    return ModelEntry(
        card.name,
        "shipped",
        str(weights),
        str(folder),
        card,
        card.weights["sha256"],
        card.weights["size"],
        card.version,
    )


def shipped_entries(root: str | os.PathLike | None = None) -> list[ModelEntry]:
    """The shipped models: every ``ROOT/*/card.json`` (``root`` defaults to :func:`shipped_root`), by name."""
    base = Path(root) if root is not None else shipped_root()
    if not base.is_dir():
        return []
    return [shipped_entry(card.parent) for card in sorted(base.glob(f"*/{CARD}"))]


def registry_files(root: str | os.PathLike | None = None) -> list[Path]:
    """The registry files read: those named by ``GALMET_MODEL_REGISTRY``, then the package's own."""
    named = [Path(p) for p in (env(REGISTRY_ENV) or "").split(os.pathsep) if p.strip()]
    own = (Path(root) if root is not None else shipped_root()) / PACKAGE_REGISTRY
    return named + ([own] if own.is_file() else [])


def file_entries(path: str | os.PathLike) -> list[ModelEntry]:
    """The entries of one registry file (a JSON list), each validated."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the model registry file ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: a model registry file must hold a JSON list of entries, got {type(data).__name__}")
    return [_entry(item, f"{path}: entry {i}", path) for i, item in enumerate(data)]


def _entry(item: Any, where: str, file: Path) -> ModelEntry:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: must be an object with name and url (or path)")
    name = item.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(f"{where}: name must be letters, digits, '.', '_' or '-', got {repr(name)[:60]}")
    where = f"{where} ({name})"
    if ("url" in item) == ("path" in item):
        raise ConfigError(f"{where}: give exactly one of url and path")
    allowed = (
        {"name", "version", "card", "url", "sha256", "size"} if "url" in item else {"name", "version", "card", "path"}
    )
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
    version = item.get("version")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ConfigError(f"{where}: version must be a non-empty text, got {repr(version)[:60]}")
    card = ModelCard.from_dict(item["card"], f"{where} card") if "card" in item else None
    if card is not None and card.name != name:
        raise ConfigError(f"{where}: card name {card.name!r} differs from the entry's name")
    return _url_entry(item, where, file, card) if "url" in item else _path_entry(item, where, file, card)


def _url_entry(item: dict, where: str, file: Path, card: ModelCard | None) -> ModelEntry:
    url, sha, size = item.get("url"), item.get("sha256"), item.get("size")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: url must be an http:// or https:// URL, got {repr(url)[:60]}")
    if not isinstance(sha, str) or not SHA256_PATTERN.match(sha):
        raise ConfigError(f"{where}: sha256 must be 64 lower-case hex digits, got {repr(sha)[:60]}")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_MODEL_BYTES:
        raise ConfigError(f"{where}: size must be the file's size in bytes, 1 to {MAX_MODEL_BYTES}, got {size!r}")
    if card is not None and (card.weights["sha256"] != sha or card.weights["size"] != size):
        raise ConfigError(f"{where}: card weights (sha256, size) differ from the entry's")
    version = item.get("version") or (card.version if card else None)
    return ModelEntry(item["name"], "url", url, str(file), card, sha, size, version)


def _path_entry(item: dict, where: str, file: Path, card: ModelCard | None) -> ModelEntry:
    raw = item.get("path")
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{where}: path must be a non-empty text, got {repr(raw)[:60]}")
    path = Path(os.path.expanduser(raw))
    path = path if path.is_absolute() else file.parent / path
    if path.is_dir():  # a run folder, as every command takes it
        path = path / BUNDLE
    card = card or card_beside(path)
    version = item.get("version") or (card.version if card else None)
    sha = card.weights["sha256"] if card else None
    size = card.weights["size"] if card else None
    return ModelEntry(item["name"], "path", str(path), str(file), card, sha, size, version)


def weights_match(path: str | os.PathLike, sha256: str | None, size: int | None) -> bool:
    """Whether the file ``path`` has the ``size`` (bytes) and ``sha256`` a card or entry gives
    (True when it gives neither)."""
    path = Path(path)
    if size is not None and path.stat().st_size != size:
        return False
    return sha256 is None or file_sha256(path) == sha256


def card_beside(bundle: str | os.PathLike) -> ModelCard | None:
    """The valid ``card.json`` beside a bundle file that names that file as its weights and whose
    sha256 and size are that file's, else None (a card that does not describe the file is not its)."""
    bundle = Path(bundle)
    path = bundle.parent / CARD
    if not path.is_file() or not bundle.is_file():
        return None
    try:
        card = ModelCard.read(path)
    except ConfigError:
        return None
    if card.weights["file"] != bundle.name:
        return None
    return card if weights_match(bundle, card.weights["sha256"], card.weights["size"]) else None


def card_at(path: str | os.PathLike) -> ModelCard | None:
    """The card of a model given by path: a model folder's ``card.json`` (validated: ConfigError
    when it is not a card), a card file itself, or the card beside a bundle file that names it."""
    path = Path(path)
    if path.is_dir():
        return ModelCard.read(path / CARD) if (path / CARD).is_file() else None
    if path.suffix.lower() == ".json":
        return ModelCard.read(path)
    return card_beside(path)


def all_entries(root: str | os.PathLike | None = None, files: list | None = None) -> list[ModelEntry]:
    """Every registry entry: the shipped models under ``root`` (default: the package's), then the
    entries of ``files`` (default: :func:`registry_files`). A name given twice is a ConfigError
    naming both places."""
    found = shipped_entries(root)
    for path in registry_files(root) if files is None else files:
        found += file_entries(path)
    seen: dict[str, ModelEntry] = {}
    for entry in found:
        if entry.name in seen:
            raise ConfigError(
                f"model name {entry.name!r} is given twice: in {seen[entry.name].source} and in {entry.source}"
            )
        seen[entry.name] = entry
    return found
