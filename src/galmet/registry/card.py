"""Model cards: what a named model is, what it was trained on, how well it does, and its weights file.

A card is a JSON object (``card.json`` beside the weights) read by :meth:`ModelCard.from_dict`,
which checks every field and raises a one-line :class:`~galmet.errors.ConfigError` naming the
file and the field (``card.json: metrics.rmse must be a number >= 0, got -1``). Its fields:

- ``name`` (a registry name: letters, digits, ``.``, ``_``, ``-``), ``version`` (text);
- ``survey`` (e.g. ``"SDSS DR14"``) and ``imaging``: ``bands`` (``"gri"``), ``pixel_scale``
  (arcsec/px), ``image_size`` (pixels per side the images are fetched at), ``crop`` (null or the
  central pixels the network sees), ``format`` (``"jpeg"``);
- ``architecture`` (text, e.g. ``"resnet18, ImageNet start, 1 output"``);
- ``training``: ``n_galaxies``, ``source``, ``selection``, ``label``;
- ``metrics`` on a named held-out set: ``set``, ``n``, ``rmse`` (dex) and ``rmse_ci`` [lo, hi]
  (dex), ``nmad`` (dex), ``coverage68`` / ``coverage95`` (fractions 0-1; null when uncalibrated);
- ``calibration``: ``method`` (text) and ``coverage`` (the nominal levels, fractions 0-1);
- ``intended_use`` (text), ``limits`` (list of texts), ``citation``, ``acknowledgement`` (texts);
- ``weights``: ``file`` (a file name beside the card), ``sha256`` (64 hex digits), ``size`` (bytes).
  ``galmet models pack`` fills these three.

Torch-free: listing models never loads one.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from galmet.errors import ConfigError

#: A registry name (also a folder name): a letter or digit first, then letters, digits, ``.``, ``_``, ``-``.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: A sha256 digest as written in cards and registry entries.
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
#: The card's file name in a model folder.
CARD = "card.json"

_SECTIONS: dict[str, tuple[str, ...]] = {
    "imaging": ("bands", "pixel_scale", "image_size", "crop", "format"),
    "training": ("n_galaxies", "source", "selection", "label"),
    "metrics": ("set", "n", "rmse", "rmse_ci", "nmad", "coverage68", "coverage95"),
    "calibration": ("method", "coverage"),
    "weights": ("file", "sha256", "size"),
}
_TEXTS = ("name", "version", "survey", "architecture", "intended_use", "citation", "acknowledgement")


class _Checker:
    """Raises one-line ConfigErrors naming ``where`` and the field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, name: str, want: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.where}: {name} must be {want}, got {repr(value)[:60]}")

    def text(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "a non-empty text", value)
        return value

    def number(self, name: str, value: Any, lo: float = -math.inf, hi: float = math.inf, null: bool = False):
        if value is None and null:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not lo <= value <= hi:
            bounds = f" from {lo:g} to {hi:g}" if math.isfinite(hi) else f" >= {lo:g}" if math.isfinite(lo) else ""
            raise self.fail(name, f"{'null or ' if null else ''}a finite number{bounds}", value)
        return float(value)

    def integer(self, name: str, value: Any, lo: int = 0, null: bool = False):
        if value is None and null:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self.fail(name, f"{'null or ' if null else ''}an integer >= {lo}", value)
        return value

    def section(self, data: dict, key: str) -> dict:
        value = data.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, f"an object with {', '.join(_SECTIONS[key])}", value)
        missing = [k for k in _SECTIONS[key] if k not in value]
        if missing:
            raise ConfigError(f"{self.where}: {key}.{missing[0]} is missing")
        return value


@dataclass(frozen=True)
class ModelCard:
    """A model card (see the module docstring for every field, its unit and its rule)."""

    name: str
    version: str
    survey: str
    imaging: dict
    architecture: str
    training: dict
    metrics: dict
    calibration: dict
    intended_use: str
    limits: list = field(default_factory=list)
    citation: str = ""
    acknowledgement: str = ""
    weights: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = CARD, weights: bool = True) -> ModelCard:
        """A validated card; ``weights=False`` accepts a card whose ``weights`` are not filled in yet
        (the input of ``galmet models pack``). ConfigError (one line naming ``where`` and the field)."""
        check = _Checker(where)
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a model card must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ConfigError(f"{where}: unknown card field {unknown[0]!r}")
        for key in _TEXTS:
            check.text(key, data.get(key))
        if not NAME_PATTERN.match(data["name"]):
            raise check.fail(
                "name", "letters, digits, '.', '_' or '-' (a letter or digit first, 64 at most)", data["name"]
            )
        sections = {key: dict(check.section(data, key)) for key in _SECTIONS if key != "weights" or weights}
        _check_imaging(check, sections["imaging"])
        _check_training(check, sections["training"])
        _check_metrics(check, sections["metrics"])
        _check_calibration(check, sections["calibration"])
        limits = data.get("limits")
        if not isinstance(limits, list) or not all(isinstance(x, str) and x.strip() for x in limits):
            raise check.fail("limits", "a list of non-empty texts", limits)
        if weights:
            _check_weights(check, sections["weights"])
        fields: dict[str, Any] = {k: data[k] for k in _TEXTS}
        fields.update({k: sections.get(k, {}) for k in _SECTIONS}, limits=list(limits))
        return cls(**fields)

    @classmethod
    def read(cls, path: str | os.PathLike, weights: bool = True) -> ModelCard:
        """The card in the JSON file ``path`` (ConfigError naming it when unreadable or invalid)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the model card ({type(exc).__name__}: {exc})") from None
        return cls.from_dict(data, str(path), weights=weights)

    def to_dict(self) -> dict:
        """The card as JSON-able data (:meth:`from_dict` reads it back)."""
        return asdict(self)

    def to_json(self) -> str:
        """The card as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def with_weights(self, file: str, sha256: str, size: int) -> ModelCard:
        """A copy naming the weights file ``file`` with its sha256 and size (bytes), validated."""
        data = {**self.to_dict(), "weights": {"file": file, "sha256": sha256, "size": size}}
        return ModelCard.from_dict(data, f"card of {self.name}")

    def render(self) -> str:
        """The card as text for a terminal (``galmet models show NAME``)."""
        return "\n".join(_render_lines(self)) + "\n"


def _check_imaging(check: _Checker, imaging: dict) -> None:
    check.text("imaging.bands", imaging["bands"])
    check.number("imaging.pixel_scale", imaging["pixel_scale"], 1e-6, 3600.0)
    size = check.integer("imaging.image_size", imaging["image_size"], 1)
    crop = check.integer("imaging.crop", imaging["crop"], 1, null=True)
    if crop is not None and crop > size:
        raise check.fail("imaging.crop", f"null or at most imaging.image_size ({size})", crop)
    check.text("imaging.format", imaging["format"])


def _check_training(check: _Checker, training: dict) -> None:
    check.integer("training.n_galaxies", training["n_galaxies"], 1)
    for key in ("source", "selection", "label"):
        check.text(f"training.{key}", training[key])


def _check_metrics(check: _Checker, metrics: dict) -> None:
    check.text("metrics.set", metrics["set"])
    check.integer("metrics.n", metrics["n"], 1)
    rmse = check.number("metrics.rmse", metrics["rmse"], 0.0)
    ci = metrics["rmse_ci"]
    if ci is not None and (
        not isinstance(ci, list)
        or len(ci) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in ci)
        or not ci[0] <= rmse <= ci[1]
    ):
        raise check.fail("metrics.rmse_ci", f"null or [lo, hi] with lo <= rmse ({rmse:g}) <= hi", ci)
    check.number("metrics.nmad", metrics["nmad"], 0.0, null=True)
    for key in ("coverage68", "coverage95"):
        check.number(f"metrics.{key}", metrics[key], 0.0, 1.0, null=True)


def _check_calibration(check: _Checker, calibration: dict) -> None:
    check.text("calibration.method", calibration["method"])
    levels = calibration["coverage"]
    if not isinstance(levels, list):
        raise check.fail("calibration.coverage", "a list of nominal levels (fractions 0-1)", levels)
    for level in levels:
        check.number("calibration.coverage", level, 0.0, 1.0)


def _check_weights(check: _Checker, weights: dict) -> None:
    """The ``weights`` section: a plain file name, a sha256 (64 lower-case hex digits), a size in bytes."""
    name = check.text("weights.file", weights["file"])
    if name in (".", "..") or "/" in name or "\\" in name or name.startswith(".") or name == CARD:
        raise check.fail("weights.file", "a plain file name beside the card (e.g. model.pt)", name)
    if not isinstance(weights["sha256"], str) or not SHA256_PATTERN.match(weights["sha256"]):
        raise check.fail("weights.sha256", "64 lower-case hex digits", weights["sha256"])
    check.integer("weights.size", weights["size"], 1)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}{unit}"
    return f"{value}{unit}"


def _render_lines(card: ModelCard) -> list[str]:
    im, tr, me, ca, we = card.imaging, card.training, card.metrics, card.calibration, card.weights
    ci = me.get("rmse_ci")
    lines = [
        f"{card.name} {card.version}",
        f"  survey        {card.survey}",
        f"  imaging       {im['bands']}, {_fmt(im['pixel_scale'])} arcsec/px, {im['image_size']} px"
        + (f", central {im['crop']} px" if im.get("crop") else "")
        + f", {im['format']}",
        f"  architecture  {card.architecture}",
        f"  training      {tr['n_galaxies']} galaxies from {tr['source']}; label {tr['label']}",
        f"  selection     {tr['selection']}",
        f"  metrics       on {me['set']} (n={me['n']}): RMSE {_fmt(me['rmse'])} dex"
        + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")
        + f", NMAD {_fmt(me.get('nmad'))} dex, 68% coverage {_fmt(me.get('coverage68'))}, "
        f"95% coverage {_fmt(me.get('coverage95'))}",
        f"  calibration   {ca['method']} (levels {', '.join(f'{v:g}' for v in ca['coverage']) or 'none'})",
        f"  intended use  {card.intended_use}",
        "  limits",
        *[f"    - {text}" for text in card.limits],
        f"  citation      {card.citation}",
        f"  acknowledge   {card.acknowledgement}",
    ]
    if we:
        lines.append(f"  weights       {we['file']} ({we['size']} bytes, sha256 {we['sha256']})")
    return lines
