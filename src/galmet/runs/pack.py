"""``galmet models pack``: a bundle and its card as a model folder the registry reads.

``pack_model(BUNDLE, CARD, OUT)`` writes ``OUT/model.pt`` (a copy of the bundle; ``half=True``:
float16 weights), ``OUT/card.json`` (the card with its ``weights`` filled in: file name,
sha256, size in bytes) and ``OUT/entry.json`` (the ``url`` registry entry that publishes the
weights, its ``url`` a placeholder to replace), after checking everything before the first write: the card's fields,
that the card's imaging matches the bundle's, and the folder (new, empty, or holding only files
galmet wrote; never the input's folder or a training run's). The result is what a shipped model
folder (``galmet/models/<name>/``) holds, and :func:`url_entry` is the registry entry to publish
the weights at a URL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from galmet.errors import ConfigError
from galmet.io.atomic import atomic_write_text
from galmet.io.locks import holds_folder_lock
from galmet.io.ownership import file_sha256
from galmet.io.safety import Input, check_not_run_model, check_output_dir, check_owned_folder
from galmet.layout import BUNDLE
from galmet.nn.bundle import copy_bundle, load_model
from galmet.nn.inference import GalmetModel
from galmet.registry.card import CARD, ModelCard
from galmet.registry.entries import shipped_root
from galmet.registry.resolve import model_input

#: The registry entry pack writes beside the card (not package data: a shipped folder needs only the card and weights).
ENTRY = "entry.json"
#: Stands for the URL in the registry entry :func:`pack_model` prints; a registry refuses it until replaced.
URL_PLACEHOLDER = "REPLACE WITH THE https:// URL OF model.pt"


@dataclass(frozen=True)
class Packed:
    """What :func:`pack_model` wrote: the folder, the bundle file and the filled-in card."""

    folder: Path
    bundle: Path
    card: ModelCard


def pack_model(
    bundle: str | os.PathLike,
    card: str | os.PathLike,
    out: str | os.PathLike,
    half: bool = False,
    overwrite: bool = False,
) -> Packed:
    """Write the model folder ``out`` (``model.pt``, ``card.json``, ``entry.json``) from ``bundle``
    and the card file ``card``.

    Parameters
    ----------
    bundle : path-like or str
        A model bundle, a run directory holding one, or a registered model's name.
    card : path-like
        The card (JSON); its ``weights`` may be missing (they are filled in).
    out : path-like
        The folder to write: new, empty, or holding only files galmet wrote (``overwrite``: a
        user's file at ``model.pt``, ``card.json`` or ``entry.json`` is replaced too).
    half : bool
        Store the weights as float16 (about half the bytes; loading casts back to float32).
    """
    draft = ModelCard.read(card, weights=False)
    _check_shipped_folder(Path(out), draft.name)
    source = model_input(bundle)
    inputs = [source, Input(Path(card), "the model card")]
    files = [(BUNDLE, "bundle", "model bundle"), (CARD, "json", "model card"), (ENTRY, "json", "registry entry")]
    folder = check_output_dir(out, "out", files, inputs, overwrite=overwrite)
    check_not_run_model(folder / BUNDLE, "out")
    if not overwrite:
        check_owned_folder(folder, "out", "model folder")
    model = load_model(bundle)
    check_card_fits(draft, model, str(card))
    return _write(out=folder, src=model.path or source.path, draft=draft, half=half, overwrite=overwrite)


def _check_shipped_folder(out: Path, name: str) -> None:
    """Inside the package's models folder, ``out`` must be ``models/<the card's name>``: a shipped
    folder named otherwise would stop every model lookup (ConfigError before anything is written)."""
    root = shipped_root().resolve()
    where = out.resolve()
    if where == root or (where.parent == root and where.name != name):
        raise ConfigError(
            f"{out}: a shipped model's folder must be {root / name} (the card's name, {name!r})", param="out"
        )


@holds_folder_lock("out", "galmet models pack")
def _write(out: Path, src: Path, draft: ModelCard, half: bool, overwrite: bool) -> Packed:
    if not overwrite:
        check_owned_folder(out, "out", "model folder")  # again, under the lock
    target = copy_bundle(src, out / BUNDLE, half=half)
    card = draft.with_weights(BUNDLE, file_sha256(target), target.stat().st_size)
    atomic_write_text(out / CARD, card.to_json())
    atomic_write_text(out / ENTRY, json.dumps(url_entry(card), indent=2) + "\n")
    return Packed(out, target, card)


def check_card_fits(card: ModelCard, model: GalmetModel, where: str) -> None:
    """ConfigError when the card's imaging contradicts the bundle's: its ``image_size`` is neither
    the bundle's image size nor its fetch size, or its crop, bands or pixel scale differ."""
    imaging = model.imaging
    sizes = {size for size in (model.image_size, imaging.fetch_size) if size is not None}
    if sizes and card.imaging["image_size"] not in sizes:
        said = " or ".join(str(size) for size in sorted(sizes))
        raise ConfigError(f"{where}: imaging.image_size is {card.imaging['image_size']!r}, but the bundle's is {said}")
    pairs = (
        ("crop", model.crop, card.imaging["crop"]),
        ("bands", imaging.bands, card.imaging["bands"]),
    )
    for field, ours, theirs in pairs:
        if ours is not None and ours != theirs:
            raise ConfigError(f"{where}: imaging.{field} is {theirs!r}, but the bundle's is {ours!r}")
    scale = imaging.pixel_scale
    if scale is not None and abs(scale - card.imaging["pixel_scale"]) > 1e-6 * scale:
        raise ConfigError(
            f"{where}: imaging.pixel_scale is {card.imaging['pixel_scale']!r}, but the bundle's is {scale!r}"
        )


def url_entry(card: ModelCard, url: str = URL_PLACEHOLDER) -> dict:
    """The registry entry (``url`` kind) that publishes the packed weights at ``url``."""
    weights = card.weights
    return {
        "name": card.name,
        "version": card.version,
        "url": url,
        "sha256": weights["sha256"],
        "size": weights["size"],
        "card": card.to_dict(),
    }
