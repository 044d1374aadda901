"""The work folder of a catalogue job: where each partition's files live, the job's settings,
and the finished partitions' sidecars.

::

    WORK/catalog-run.json       settings, fingerprint of the positions, and the partitions (key, rows)
    WORK/inputs/<key>.parquet   a partition's input rows (removed once the partition is done)
    WORK/partitions/<key>/      the partition's positions work folder (shards, cutouts: resumable)
    WORK/done/<key>.parquet     the partition's predictions table (written atomically)
    WORK/done/<key>.json        its sidecar: rows, statuses, failure reasons, seconds, worker
                                (written last: a partition is done when its sidecar is there)

Everything is written atomically (:mod:`galmet.io.atomic`), so several processes (the shards of a
job array, Dask workers) may share the folder: each partition's files are written by one task.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from galmet.errors import ConfigError
from galmet.io.atomic import atomic_write_text
from galmet.layout import CATALOG_DONE, CATALOG_INPUTS, CATALOG_PARTITIONS, CATALOG_RUN, RETRY_CUTOUTS_SUFFIX

#: The ``imaging`` setting of a job stored before galmet knew surveys: SDSS JPEGs.
BEFORE_SURVEYS = {"survey": "sdss", "layer": None, "format": "jpeg"}

__all__ = ["Partition", "WorkFolder", "Tally"]


@dataclass(frozen=True)
class Partition:
    """One unit of work: a key (file-name safe), its place in the job and its number of rows.

    ``order``/``pixel`` are its HEALPix pixel when the job is partitioned by sky (HATS), else None.
    """

    key: str
    index: int
    rows: int
    order: int | None = None
    pixel: int | None = None


@dataclass
class Tally:
    """What the finished partitions' sidecars add up to (every run of the work folder).

    Attributes
    ----------
    partitions : int
        Partitions done.
    rows : int
        Their rows.
    statuses : Counter
        Rows per status (:data:`galmet.columns.STATUSES`).
    reasons : Counter
        Rows that failed to fetch or gave a bad image, by reason.
    seconds : float
        Seconds the partitions' tasks took, summed (worker time, not wall time).
    engines : Counter
        Partitions by the inference engine that predicted them (``auto`` decides per process).
    workers : Counter
        Partitions per worker (``host:pid``).
    """

    partitions: int = 0
    rows: int = 0
    statuses: Counter = None  # type: ignore[assignment]
    reasons: Counter = None  # type: ignore[assignment]
    seconds: float = 0.0
    workers: Counter = None  # type: ignore[assignment]
    engines: Counter = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.statuses = self.statuses if self.statuses is not None else Counter()
        self.reasons = self.reasons if self.reasons is not None else Counter()
        self.workers = self.workers if self.workers is not None else Counter()
        self.engines = self.engines if self.engines is not None else Counter()

    def add(self, sidecar: dict) -> None:
        """Add one partition's sidecar."""
        self.partitions += 1
        self.rows += int(sidecar.get("rows", 0))
        self.statuses.update({str(k): int(v) for k, v in (sidecar.get("statuses") or {}).items()})
        self.reasons.update({str(k): int(v) for k, v in (sidecar.get("reasons") or {}).items()})
        self.seconds += float(sidecar.get("seconds", 0.0))
        self.workers[str(sidecar.get("worker", "?"))] += 1
        if sidecar.get("engine"):
            self.engines[str(sidecar["engine"])] += 1


class WorkFolder:
    """The paths of a catalogue job's work folder ``root`` and its bookkeeping."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def run_file(self) -> Path:
        return self.root / CATALOG_RUN

    def input(self, key: str) -> Path:
        """The partition's input rows."""
        return self.root / CATALOG_INPUTS / f"{key}.parquet"

    def partition(self, key: str) -> Path:
        """The partition's positions work folder."""
        return self.root / CATALOG_PARTITIONS / key

    def cutouts(self, key: str) -> Path:
        """The partition's fetched cutouts, kept while some of its rows may be fetched again."""
        return self.root / CATALOG_PARTITIONS / f"{key}{RETRY_CUTOUTS_SUFFIX}"

    def to_retry(self, key: str) -> bool:
        """Whether a done partition has rows a rerun fetches again (its sidecar's ``retry`` count)."""
        done_with_rows = self.is_done(key) and self.input(key).is_file()
        return done_with_rows and int(self.read_sidecar(key).get("retry", 0)) > 0

    def done_table(self, key: str) -> Path:
        """The partition's predictions table."""
        return self.root / CATALOG_DONE / f"{key}.parquet"

    def sidecar(self, key: str) -> Path:
        """The partition's sidecar (its presence marks the partition done)."""
        return self.root / CATALOG_DONE / f"{key}.json"

    def is_done(self, key: str) -> bool:
        return self.sidecar(key).is_file() and self.done_table(key).is_file()

    def read_sidecar(self, key: str) -> dict:
        """The sidecar of a done partition; ConfigError naming it when it is unreadable."""
        path = self.sidecar(key)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"work_dir {path}: unreadable sidecar ({exc}); remove it to redo the partition") from None
        if not isinstance(data, dict):
            raise ConfigError(f"work_dir {path}: not a galmet sidecar; remove it to redo that partition")
        return data

    def write_sidecar(self, key: str, data: dict) -> None:
        atomic_write_text(self.sidecar(key), json.dumps(data, indent=2, sort_keys=True) + "\n")

    def tally(self, partitions: list[Partition]) -> Tally:
        """The sidecars of the done ones among ``partitions``, added up."""
        total = Tally()
        for p in partitions:
            if self.is_done(p.key):
                total.add(self.read_sidecar(p.key))
        return total

    # -- the job's settings ----------------------------------------------------------------
    def stored(self) -> dict | None:
        """The settings a job stored here, or None (none yet)."""
        if not self.run_file.is_file():
            return None
        try:
            data = json.loads(self.run_file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"work_dir {self.root}: unreadable {CATALOG_RUN} ({exc}); remove the folder", param="work_dir"
            ) from None
        return data if isinstance(data, dict) else None

    def check_same(self, settings: dict) -> None:
        """ConfigError (one line, ``param="work_dir"``) when the folder holds another job."""
        old = self.stored()
        if old is None:
            return
        new = json.loads(json.dumps(settings))
        old = {"imaging": BEFORE_SURVEYS, **old}  # (a job stored before galmet knew surveys fetched SDSS JPEGs)
        diff = [k for k in new if k != "partitions" and old.get(k) != new[k]]
        if diff:
            named = {"fingerprint": "other positions", "model_sha256": "another model", "imaging": "another survey"}
            what = named.get(diff[0], f"another {diff[0]}")
            raise ConfigError(
                f"work_dir {self.root}: holds a catalogue job with {what}; rerun that command to finish it, "
                "or remove the folder (or choose another work folder)",
                param="work_dir",
            )

    def store(self, settings: dict, partitions: list[Partition]) -> None:
        """Write the job's settings and partitions (atomically)."""
        data = {**settings, "partitions": [asdict(p) for p in partitions]}
        atomic_write_text(self.run_file, json.dumps(data, indent=2) + "\n")

    def stored_partitions(self) -> list[Partition] | None:
        """The partitions of the stored job, or None."""
        old = self.stored()
        if old is None or not isinstance(old.get("partitions"), list):
            return None
        return [Partition(**p) for p in old["partitions"]]


def worker_name() -> str:
    """``host:pid`` of this process (the sidecars name the worker that did each partition)."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and Counters turned into plain JSON values."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
