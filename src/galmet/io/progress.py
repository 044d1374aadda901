"""Progress on long work that behaves in a terminal and in a batch log alike.

:func:`progress_bar` is the one way galmet reports progress:

- a real tqdm bar only when stderr is a terminal, the environment variable ``TQDM_DISABLE``
  is unset (or empty, ``0`` or ``false``) and the caller did not pass ``enabled=False``;
- otherwise (a batch job, a pipe, a log file, ``TQDM_DISABLE=1``) a plain INFO log line every
  ``GALMET_PROGRESS_INTERVAL`` seconds (default :data:`DEFAULT_INTERVAL`) with the count, the
  total, the rate and the postfix (e.g. the loss): no carriage returns in the log;
- nothing at all with ``enabled=False``, or inside :func:`progress_disabled` (the CLI's
  ``--no-progress``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from galmet._env import env, env_flag

log = logging.getLogger(__name__)

#: Seconds between two plain progress lines when stderr is not a terminal.
DEFAULT_INTERVAL = 30.0
#: Environment variable that sets that interval (seconds, > 0).
INTERVAL_ENV = "GALMET_PROGRESS_INTERVAL"
#: Depth of :func:`progress_disabled` blocks now open (process-wide: the CLI's switch must reach
#: bars made in worker threads too).
_silenced_depth = 0


@contextlib.contextmanager
def progress_disabled(disabled: bool = True) -> Iterator[None]:
    """Within this block (process-wide), every :func:`progress_bar` is silent when ``disabled``:
    how the CLI's ``--no-progress`` reaches library code that takes no ``progress`` argument."""
    global _silenced_depth
    step = 1 if disabled else 0
    _silenced_depth += step
    try:
        yield
    finally:
        _silenced_depth -= step


def tqdm_disabled_by_env() -> bool:
    """True when ``TQDM_DISABLE`` asks for no bars (tqdm honours it only in some versions)."""
    return env_flag("TQDM_DISABLE")


def progress_interval() -> float:
    """Seconds between plain progress lines: ``$GALMET_PROGRESS_INTERVAL`` when it is a positive
    number, else :data:`DEFAULT_INTERVAL`."""
    raw = env(INTERVAL_ENV)  # empty means unset
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value
        log.warning("%s=%r is not a positive number of seconds; using %g", INTERVAL_ENV, raw, DEFAULT_INTERVAL)
    return DEFAULT_INTERVAL


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def progress_bar(
    total: int | float | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool | None = None,
    *,
    iterable: Iterable | None = None,
    interval: float | None = None,
    **tqdm_kwargs: Any,
):
    """A tqdm-like progress reporter (``update``, ``close``, ``set_postfix``, ``set_description``,
    context manager, iterable when given ``iterable``).

    Parameters
    ----------
    total : int or float, optional
        Expected count (default: ``len(iterable)`` when it has one).
    desc : str
        What is being counted down, shown first (``"epoch 1/10"``).
    unit : str
        Unit of the count (``"img"``, ``"step"``, ``"batch"``).
    enabled : bool, optional
        False: report nothing. None or True: report (a bar on a terminal, plain lines elsewhere).
    iterable : iterable, optional
        Iterate over it through the reporter, counting one per item.
    interval : float, optional
        Seconds between plain lines (default: :func:`progress_interval`).
    **tqdm_kwargs
        Passed to tqdm when a real bar is shown (``leave``, ``dynamic_ncols``, ...).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if enabled is False or _silenced_depth > 0:
        return _SilentBar(iterable, total)
    if _stderr_is_terminal() and not tqdm_disabled_by_env():
        from tqdm.auto import tqdm

        tqdm_kwargs.pop("disable", None)  # decided above (tqdm would read TQDM_DISABLE on its own)
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=False, **tqdm_kwargs)
    return LogProgress(iterable, total, desc, unit, progress_interval() if interval is None else interval)


class _SilentBar:
    """The reporter that reports nothing (``enabled=False``, ``--no-progress``)."""

    def __init__(self, iterable: Iterable | None, total) -> None:
        self.iterable, self.total = iterable, total
        self.n: int | float = 0

    def __iter__(self):
        if self.iterable is None:
            raise TypeError("progress_bar(...) was not given an iterable")
        for item in self.iterable:
            yield item
            self.n += 1

    def update(self, n: int | float = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LogProgress(_SilentBar):
    """Plain INFO lines (``desc: 120/480 img (25%), 3.1 img/s, loss=0.123``) at most every
    ``interval`` seconds, and a last one at :meth:`close` when any was written before and the
    count (or postfix) moved since the last line: the 100% line is written once."""

    def __init__(self, iterable: Iterable | None, total, desc: str, unit: str, interval: float) -> None:
        super().__init__(iterable, total)
        self.desc, self.unit, self.interval = desc, unit, float(interval)
        self.postfix = ""
        self.start = self._last = time.monotonic()
        self.lines = 0
        self.closed = False
        self._shown: tuple = ()

    def __iter__(self):
        if self.iterable is None:
            raise TypeError("progress_bar(...) was not given an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, n: int | float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._emit(now)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(dict(ordered_dict) if ordered_dict else {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def line(self, now: float | None = None) -> str:
        """The progress line as it would be logged now."""
        elapsed = max((now if now is not None else time.monotonic()) - self.start, 1e-9)
        count = f"{_num(self.n)}/{_num(self.total)}" if self.total else _num(self.n)
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        text = f"{self.desc}: " if self.desc else ""
        text += f"{count} {self.unit}{pct}, {self.n / elapsed:.3g} {self.unit}/s, {elapsed:.0f} s"
        return text + (f", {self.postfix}" if self.postfix else "")

    def _emit(self, now: float) -> None:
        self.lines += 1
        self._shown = (self.n, self.postfix)
        log.info("%s", self.line(now))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # short work stays quiet; long work says it finished, unless its last line said so already
            if self.lines and self._shown != (self.n, self.postfix):
                self._emit(time.monotonic())


def _num(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
