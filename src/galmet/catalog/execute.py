"""Where the partitions run: in this process (a job-array shard), on an embedded local Dask
cluster, or on a running ``dask.distributed`` scheduler.

Each backend calls ``on_done(sidecar)`` as each partition finishes (the progress line) and stops
at the first partition that fails with a galmet error (a dead server): the tasks not started are
cancelled, and the error is raised as one line; finished partitions stay for the rerun. Dask is
imported only here, and only when a cluster is used (``pip install galmet[scale]``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from galmet.catalog.task import PartitionTask, run_partition
from galmet.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["run_in_process", "run_on_dask", "dask_client", "SCHEDULER_TIMEOUT"]

#: Seconds to wait for a scheduler to answer before giving up on it (one line, exit 2).
SCHEDULER_TIMEOUT = 10.0


def _failed(result: dict) -> DataError:
    """The job-stopping error of a partition's result ``{"key", "error", ...}``."""
    return DataError(f"partition {result['key']}: {result['error']}")


def run_in_process(tasks: list[PartitionTask], on_done: Callable[[dict], None]) -> None:
    """Run ``tasks`` one after the other here (the model is loaded once, in this process)."""
    for task in tasks:
        result = run_partition(task)
        if "error" in result:
            raise _failed(result)
        on_done(result)


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "a Dask cluster needs dask.distributed (pip install 'galmet[scale]'); or run slices with shard=(I, N)",
            param="scheduler",
        ) from None
    return distributed


@contextmanager
def dask_client(scheduler: str | os.PathLike | None, n_workers: int | None) -> Iterator[Any]:
    """A ``distributed.Client``: of the running scheduler ``scheduler`` (``tcp://HOST:PORT`` or a
    scheduler file), or of an embedded local cluster of ``n_workers`` processes (default: the
    cores), one thread each, without a dashboard. ConfigError (``param="scheduler"``) when the
    scheduler does not answer within :data:`SCHEDULER_TIMEOUT` seconds."""
    distributed = _require_distributed()
    with _quiet("distributed"):
        yield from _client(distributed, scheduler, n_workers)


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Logger ``name`` (and its children) shows only errors meanwhile: the embedded cluster's
    scheduler and nannies run in this process and would log every worker's coming and going."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _client(distributed: Any, scheduler: str | os.PathLike | None, n_workers: int | None) -> Iterator[Any]:
    if scheduler is not None:
        client = _connect(distributed, scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    n = n_workers or os.cpu_count() or 1
    # no statistical profiler in the workers: on CPython 3.11 it can freeze one (galmet.catalog.task)
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        distributed.LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _connect(distributed: Any, scheduler: str | os.PathLike) -> Any:
    text = str(scheduler)
    address = text if "://" in text else scheduler_file_address(Path(text))
    try:
        return distributed.Client(address, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"scheduler {text}: no Dask scheduler answered within {SCHEDULER_TIMEOUT:g} s ({type(exc).__name__})",
            param="scheduler",
        ) from None


def scheduler_file_address(path: Path) -> str:
    """The scheduler address a Dask scheduler file holds (``{"address": "tcp://..."}``); ConfigError
    (``param="scheduler"``) when it is missing or holds none. (Dask itself would wait for a missing
    file to appear, for ever.)"""
    import json

    if not path.is_file():
        raise ConfigError(
            f"scheduler {path}: no such scheduler file (nor a tcp://HOST:PORT address)", param="scheduler"
        )
    try:
        with open(path, "rb") as f:
            info = json.loads(f.read(1 << 20))
        address = info["address"]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"scheduler {path}: not a Dask scheduler file (no address: {type(exc).__name__})", param="scheduler"
        ) from None
    if not isinstance(address, str) or "://" not in address:
        raise ConfigError(f"scheduler {path}: not a Dask scheduler file (address {address!r})", param="scheduler")
    return address


def n_workers_of(client: Any) -> int:
    """Workers the scheduler has now (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def run_on_dask(client: Any, tasks: list[PartitionTask], on_done: Callable[[dict], None]) -> None:
    """Submit one task per partition and collect them as they finish; at the first failed one,
    cancel the rest and raise its one-line error."""
    distributed = _require_distributed()
    futures = [
        client.submit(run_partition, task, key=f"galmet-partition-{task.key}-{os.getpid()}-{id(task):x}", pure=False)
        for task in tasks
    ]
    keys = {future.key: task.key for future, task in zip(futures, tasks, strict=True)}
    try:
        for future in distributed.as_completed(futures):
            result = _result(future, keys[future.key])
            if "error" in result:
                raise _failed(result)
            on_done(result)
    except BaseException:
        client.cancel(futures, force=True)
        raise


def _result(future: Any, key: str) -> dict:
    """A finished future's result; a worker that died (KilledWorker) or a bug becomes one line."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker's death or an unexpected error, told in one line
        name = type(exc).__name__
        if name == "KilledWorker":
            return {"key": key, "error": "its worker died repeatedly; rerun to resume the partition"}
        raise
