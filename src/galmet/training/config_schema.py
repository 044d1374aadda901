"""The schema of a training configuration: the type, range and finiteness of every field.

:func:`check_config_values` is applied to a config read from YAML (:func:`galmet.training.config.load_config`)
and to every config before training (:meth:`TrainConfig.resolved`), so that ``cycles: 5``,
``lr: abc``, ``batch_size: 8.5`` or ``lr: .inf`` end in one line naming the file and the field,
never in a traceback and never silently coerced.

Types come from the dataclass annotations (``int``, ``float``, ``str``, ``bool``, ``list[...]``,
``... | None``), so a field added later is type-checked without touching this module; ranges
are in :data:`RANGES` and the allowed words of the text fields in :data:`CHOICES`. Integers are
never booleans; floats may be written as integers; every float is finite.

This module is the one place a training option's type, range and choices are written: the
command line (:mod:`galmet.cli.options`) builds its argparse types from it (:func:`field_type`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from galmet.columns import ARCHS
from galmet.data.splits import MAX_SEED
from galmet.errors import ConfigError

RECIPES = ("paper", "onecycle", "notebook")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("adamw", "sgd")
#: Training losses: the paper's RMSE, or the Gaussian (beta-)negative log-likelihood of a
#: heteroscedastic head that predicts a mean and a log-variance per target.
LOSSES = ("rmse", "gaussian")

#: The allowed values of the text fields that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "recipe": RECIPES,
    "arch": ARCHS,
    "optimizer": OPTIMIZERS,
    "loss": LOSSES,
    "device": DEVICES,
}


@dataclass(frozen=True)
class Range:
    """Allowed values of a number (of each element, for a list field) and of a list's length."""

    lo: float | None = None
    hi: float | None = None
    open_low: bool = False
    open_high: bool = False
    max_len: int | None = None

    def holds(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.open_low else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.open_high else v > self.hi))

    def describe(self) -> str:
        lo = "(" if self.open_low else "["
        hi = ")" if self.open_high else "]"
        a = "-inf" if self.lo is None else _num(self.lo)
        b = "inf" if self.hi is None else _num(self.hi)
        return f"in {lo}{a}, {b}{hi}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e10 else f"{v:g}"


#: Ranges of the known numeric fields (list fields: of each element).
RANGES: dict[str, Range] = {
    "targets": Range(max_len=16),
    "epochs": Range(1, 100_000),
    "frozen_epochs": Range(0, 100_000),
    "cycles": Range(1, 100_000, max_len=1000),
    "lr": Range(0, 10, open_low=True, max_len=3),
    "frozen_lr": Range(0, 10, open_low=True),
    "weight_decay": Range(0, 1),
    "batch_size": Range(2, 1 << 13),
    "size": Range(1, 4096),
    "crop": Range(1, 4096),
    "max_zoom": Range(1, 4),
    "seed": Range(0, MAX_SEED),
    "split_seed": Range(0, MAX_SEED),
    "valid_fraction": Range(0, 1, open_high=True),
    "pct_start": Range(0, 1, open_low=True, open_high=True),
    "div_factor": Range(0, 1e6, open_low=True),
    "final_div_factor": Range(0, 1e12, open_low=True),
    "workers": Range(0, 64),
    "momentum": Range(0, 1, open_high=True),
    "sgdr_warmup": Range(0, 1, open_high=True),
    "rotate": Range(0, 180),
    "lighting": Range(0, 1, open_high=True),
    "beta": Range(0, 1),
}


def check_config_values(cls: type, data: dict[str, Any], where: str = "config", ranges: bool = True) -> None:
    """Raise ConfigError (one line: ``WHERE: FIELD must be ..., got VALUE``) for the first field
    of ``data`` whose value does not fit the type (from ``cls``'s annotations) and, with
    ``ranges``, the range (:data:`RANGES`) or choices (:data:`CHOICES`) of that field of the
    dataclass ``cls``. Types include finiteness. Unknown keys are not checked here."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        rng = RANGES.get(f.name, Range()) if ranges else Range()
        problem = _problem(hints[f.name], data[f.name], rng)
        choices = CHOICES.get(f.name, ()) if ranges else ()
        if not problem and choices and data[f.name] is not None and data[f.name] not in choices:
            problem = f"one of {', '.join(choices)}"
        if problem:
            raise ConfigError(f"{where}: {f.name} must be {problem}, got {_show(data[f.name])}")


def field_type(cls: type, name: str) -> tuple[type, bool]:
    """``(scalar type, is_list)`` of field ``name`` of the dataclass ``cls``: ``int | None`` is
    ``(int, False)``, ``list[float] | None`` is ``(float, True)``."""
    tp = typing.get_type_hints(cls)[name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0], True
    return tp, False


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(tp: Any, value: Any, rng: Range) -> str | None:
    """Why ``value`` does not fit type ``tp`` and range ``rng`` (None when it fits)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        problem = _problem(inner[0], value, rng) if len(inner) == 1 else None
        return f"{problem} or null" if problem else None
    if origin is list:
        (item,) = args or (Any,)
        if not isinstance(value, (list, tuple)):
            return f"a list of {_name(item)}s (e.g. [{_example(item)}])"
        if rng.max_len is not None and len(value) > rng.max_len:
            return f"a list of at most {rng.max_len} {_name(item)}s"
        for v in value:
            problem = _problem(item, v, rng)
            if problem:
                return f"a list of {_name(item)}s, each {problem}"
        return None
    if tp is bool:
        return None if isinstance(value, bool) else "true or false"
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"an integer {rng.describe()}"
        return None if rng.holds(value) else f"an integer {rng.describe()}"
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"a number {rng.describe()}"
        if not math.isfinite(value):
            return f"a finite number {rng.describe()}"
        return None if rng.holds(float(value)) else f"a number {rng.describe()}"
    if tp is str:
        return None if isinstance(value, str) and value.strip() else "a non-empty string"
    return None


def _name(tp: Any) -> str:
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(tp, "value")


def _example(tp: Any) -> str:
    return {int: "1, 2", float: "0.001", str: "oh_p50"}.get(tp, "...")
