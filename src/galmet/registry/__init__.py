"""galmet.registry: named models, their cards, and where their weights are.

The public API (each name imported on first use)::

    all_entries()         # every named model: shipped folders, registry files' path and url entries
    resolve_model(ref)    # an existing path wins; else a registry name (url weights fetched once); else one line
    ModelCard             # a model card: validated fields, JSON and a text rendering
    ModelEntry            # one registry entry (name, kind, location, card)
    fetch                 # a url entry's weights: downloaded into the user cache, sha256-verified
    cache_root            # the folder of downloaded weights

Modules: :mod:`.card`, :mod:`.entries`, :mod:`.fetch`, :mod:`.resolve`. See docs/models.md.
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "ModelCard": "galmet.registry.card",
    "ModelEntry": "galmet.registry.entries",
    "all_entries": "galmet.registry.entries",
    "shipped_root": "galmet.registry.entries",
    "fetch": "galmet.registry.fetch",
    "cache_root": "galmet.registry.fetch",
    "resolve_model": "galmet.registry.resolve",
    "ResolvedModel": "galmet.registry.resolve",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
