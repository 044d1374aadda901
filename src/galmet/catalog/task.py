"""One partition of a catalogue job, run wherever a task runs (a Dask worker, a job-array shard).

:func:`run_partition` reads the partition's input rows, runs
:func:`galmet.predict.positions.predict_positions` on them with the partition's own work folder
(so its resumption, per-row statuses, failure budget and cutout reuse apply: a worker killed
midway costs at most what that partition had not written), writes the partition's table, then
its sidecar (which marks it done), and removes its input rows. The model is loaded once per
process: tasks carry its reference (a registry name or a bundle path), not the loaded network.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galmet.catalog.work import WorkFolder, jsonable, worker_name
from galmet.columns import STATUS_FETCH, STATUS_NOT_IN_ARCHIVE
from galmet.errors import GalmetError

__all__ = ["PartitionTask", "run_partition", "cached_model"]

#: Statuses of rows that a rerun of the job tries again.
RETRIED_STATUSES = (STATUS_FETCH, STATUS_NOT_IN_ARCHIVE)

#: Models loaded in this process, by reference.
_MODELS: dict[str, Any] = {}


@dataclass(frozen=True)
class PartitionTask:
    """What a worker needs to run one partition (picklable).

    Attributes
    ----------
    key : str
        The partition (file names under the work folder).
    index : int
        Its place in the job (0-based).
    work : str
        The job's work folder.
    model : str or GalmetModel
        A model reference (registry name, bundle or run folder path: loaded once per process), or
        a loaded model (when it has no file).
    keywords : dict
        Keywords of :func:`~galmet.predict.positions.predict_positions` (options, download,
        base_url, flags, shard_size, and any other it takes).
    retry : bool
        Run a done partition again because some of its rows failed to fetch: its kept cutouts are
        reused (only the missing ones are fetched) and its table and sidecar replaced.
    """

    key: str
    index: int
    work: str
    model: Any
    keywords: dict = field(default_factory=dict)
    retry: bool = False


def cached_model(model: Any) -> Any:
    """The loaded model of a reference (loaded on first use in this process), or ``model`` itself."""
    if not isinstance(model, (str, Path)):
        return model
    ref = str(model)
    if ref not in _MODELS:
        from galmet.nn.bundle import load_model

        _MODELS[ref] = load_model(ref, device="cpu")
    return _MODELS[ref]


def run_partition(task: PartitionTask) -> dict:
    """Run one partition; return its sidecar, or ``{"key", "error", "type"}`` after a galmet error
    (a dead server, a bad input row set: the job stops on it; the partition's shards stay)."""
    from galmet.io.safety import remove_empty_dirs, remove_files
    from galmet.io.tables import read_any_table
    from galmet.predict.positions import PositionsSummary, predict_positions

    _stop_worker_profiler()
    work = WorkFolder(task.work)
    started, t0 = time.time(), time.monotonic()
    summary = PositionsSummary()
    try:
        model = cached_model(task.model)
        loaded = time.monotonic()
        table = read_any_table(work.input(task.key))
        predict_positions(
            model,
            table,
            out=work.done_table(task.key),
            work_dir=work.partition(task.key),
            summary=summary,
            keep_cutouts=work.cutouts(task.key),
            **{**task.keywords, "overwrite": task.retry or task.keywords.get("overwrite", False)},
        )
    except GalmetError as exc:
        return {"key": task.key, "error": str(exc), "type": type(exc).__name__, "worker": worker_name()}
    sidecar = _sidecar(task, summary, time.monotonic() - t0, loaded - t0)
    sidecar["engine"] = getattr(model, "engine_used", None) or ""  # what ran here (auto decides per process)
    sidecar.update(started=round(started, 3), finished=round(time.time(), 3))  # UNIX seconds: a timeline
    work.write_sidecar(task.key, sidecar)
    if not sidecar["retry"]:  # nothing to fetch again: the input rows and cutouts go
        remove_files([work.input(task.key)])
        shutil.rmtree(work.cutouts(task.key), ignore_errors=True)  # (galmet's own, inside its work folder)
    remove_empty_dirs([work.partition(task.key)])
    return sidecar


def _stop_worker_profiler() -> None:
    """Stop the statistical profiler of the Dask worker running this task (when there is one).

    Every 10 ms it calls ``sys._current_frames()``, which on CPython 3.11 can deadlock the whole
    process when a garbage collection inside it meets a thread being started (the downloader
    starts a timer thread per request): seen here as a worker frozen midway through a partition,
    every thread waiting for the GIL. The embedded cluster starts its workers without it; this
    covers workers started elsewhere (``dask worker``; or set
    ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False`` in their environment).
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not in a Dask worker
        return
    for name in ("profile", "profile-cycle"):
        callback = worker.periodic_callbacks.get(name)
        if callback is not None and callback.is_running():
            worker.loop.add_callback(callback.stop)  # (thread-safe: the worker's event loop stops it)


def _sidecar(task: PartitionTask, summary: Any, seconds: float, model_seconds: float) -> dict:
    """The partition's record: rows by status and failure reason (every run of its work folder),
    what this run fetched and predicted, seconds (model loading included), the worker."""
    return jsonable(
        {
            "key": task.key,
            "index": task.index,
            "rows": summary.rows,
            "statuses": dict(summary.statuses),
            "reasons": dict(summary.reasons),
            # rows a rerun fetches again (a failed fetch, no archived cutout): the partition keeps
            # its input rows and cutouts for that
            "retry": sum(int(summary.statuses.get(s, 0)) for s in RETRIED_STATUSES),
            "resumed": summary.resumed,
            "fetched": summary.fetched,
            "predicted": summary.predicted,
            "seconds": round(seconds, 3),
            "positions_seconds": round(summary.seconds, 3),
            "model_seconds": round(model_seconds, 3),
            "worker": worker_name(),
        }
    )
