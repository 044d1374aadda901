"""Weights of ``url`` registry entries: downloaded once into the user cache, verified before use.

The cache is ``$GALMET_CACHE_DIR/models`` (the folder of galmet's other caches), else
``$XDG_CACHE_HOME/galmet/models``, else ``~/.cache/galmet/models``; a model's weights go to
``<cache>/<name>/<first 16 hex digits of its sha256>/model.pt`` (and its card, when the entry has
one, to ``card.json`` beside it). A download goes through galmet's one bounded HTTP transport
(:class:`galmet.sdss.transport.HttpClient`: a total deadline per request, retries with backoff,
and a body cap equal to the declared size), its sha256 and size are checked in memory, and only
then is it written (atomically: a temporary file renamed into place). A mismatch is a one-line
:class:`~galmet.errors.ConfigError` and nothing is kept. A cached file is verified (sha256) at
each use, so a later resolve does not fetch again; a cached file that no longer matches is never
loaded, and galmet deletes it (and fetches afresh) only while its ledger says the file is still
the one galmet wrote (:mod:`galmet.io.ownership`); otherwise a one-line error asks the user to remove it.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path

from galmet._env import env
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_path, atomic_write_text
from galmet.io.ownership import file_sha256
from galmet.io.safety import remove_files
from galmet.layout import BUNDLE
from galmet.registry.card import CARD
from galmet.registry.entries import ModelEntry
from galmet.sdss.transport import ClientSettings, HttpClient, WrongAnswer

#: How model weights are downloaded: a long deadline (a file of tens of MB), a few retries.
#: ``max_bytes`` is replaced by each entry's declared size.
MODEL_SETTINGS = ClientSettings(timeout=900.0, retries=3, backoff_base=2.0)


def cache_root() -> Path:
    """The folder of downloaded model weights (see the module docstring)."""
    base = env("GALMET_CACHE_DIR")
    if base:
        return Path(base) / "models"
    xdg = env("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "galmet" / "models"


def cached_path(entry: ModelEntry) -> Path:
    """Where the weights of the url entry ``entry`` are (or will be) cached."""
    return cache_root() / entry.name / str(entry.sha256)[:16] / BUNDLE


def is_cached(entry: ModelEntry) -> bool:
    """True when the entry's weights are in the cache with the right size (the sha256 is checked on use)."""
    path = cached_path(entry)
    return path.is_file() and path.stat().st_size == entry.size


def fetch(entry: ModelEntry, settings: ClientSettings = MODEL_SETTINGS) -> Path:
    """The cached, verified weights file of the url entry ``entry``, downloaded when not cached yet.

    Raises
    ------
    ConfigError
        The download's sha256 or size differs from the entry's (nothing is kept), or a cached
        file that does not match was not written by galmet (it is left for the user).
    ServiceError
        The download failed (deadline, retries spent, a body over the declared size).
    """
    path = cached_path(entry)
    if path.is_file():
        if path.stat().st_size == entry.size and file_sha256(path) == entry.sha256:
            return path  # a verified cache hit
        remove_files([path])  # damaged: galmet's own copy goes, and is fetched again
        if path.exists():
            raise ConfigError(
                f"{path}: does not match model {entry.name}'s sha256 and galmet did not write it; remove it"
            )
    body = _download(entry, settings)
    digest = hashlib.sha256(body).hexdigest()
    if digest != entry.sha256:
        raise ConfigError(
            f"{entry.location}: model {entry.name} downloaded with sha256 {digest}, but {entry.source} says "
            f"{entry.sha256}; refused (not kept)"
        )
    with atomic_path(path, sha256=digest) as tmp:
        tmp.write_bytes(body)
    if entry.card is not None:
        card = entry.card.with_weights(BUNDLE, digest, len(body))
        atomic_write_text(path.parent / CARD, card.to_json())
    return path


def _download(entry: ModelEntry, settings: ClientSettings) -> bytes:
    """The body at ``entry.location``: exactly ``entry.size`` bytes, within the settings' deadline and retries."""
    size = int(entry.size or 0)
    parts = urllib.parse.urlsplit(entry.location)

    def accept(body: bytes) -> bytes:
        if len(body) != size:
            raise WrongAnswer(f"got {len(body)} bytes, {entry.source} says {size}")
        return body

    kwargs = {**settings.client_kwargs(), "max_bytes": max(size, 1024)}
    with HttpClient(f"{parts.scheme}://{parts.netloc}", **kwargs) as client:
        body, _ = client.call(entry.location, accept, f"model {entry.name} ({entry.location})")
    return body
