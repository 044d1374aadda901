"""``galmet.predict_catalog``: predictions at the positions of a catalogue of any size, one task per
partition, on this machine or a Dask cluster.

The job: check everything (options, output, work folder, the scheduler answers) before anything
is written; read the positions (streamed for parquet) and fingerprint them; split the rows into
partitions (HATS: its own); write each unfinished partition's input rows to the work folder; run
one task per partition (:func:`galmet.catalog.task.run_partition`: a resumable
:func:`~galmet.predict.positions.predict_positions` of its own); when every partition is done,
assemble the output (:mod:`galmet.catalog.assemble`). A rerun with the same settings skips the
done partitions and resumes the others; a different job in the same work folder is refused.
See docs/catalog.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galmet.catalog.assemble import assemble_table
from galmet.catalog.execute import dask_client, n_workers_of, run_in_process, run_on_dask
from galmet.catalog.hats import HatsSource, sky_partitions, write_hats_output
from galmet.catalog.source import Rows, Source, open_source
from galmet.catalog.task import PartitionTask
from galmet.catalog.work import Partition, WorkFolder
from galmet.columns import STATUS_OK
from galmet.errors import ConfigError
from galmet.io.safety import remove_empty_dirs
from galmet.layout import CATALOG_INPUTS, CATALOG_PARTITIONS, catalog_partition

log = logging.getLogger(__name__)

__all__ = ["CatalogSummary", "predict_catalog", "parse_shard", "DEFAULT_PARTITION_ROWS", "MAX_PARTITION_ROWS"]

#: Rows per partition by default (a task of a few minutes at CPU speed; its cutouts stay on disk until predicted).
DEFAULT_PARTITION_ROWS = 10_000
#: Most rows in one partition (a partition's rows are held in memory by the task that runs it).
MAX_PARTITION_ROWS = 1 << 22
#: predict_positions keywords a catalogue job sets itself, per partition.
_RESERVED = ("out", "work_dir", "summary", "coords", "client", "keep_cutouts", "overwrite")


@dataclass
class CatalogSummary:
    """What a catalogue job did, and where it stands.

    Attributes
    ----------
    partitions : int
        Partitions of the job.
    done : int
        Partitions finished (this run and earlier ones).
    ran : int
        Partitions run by this call.
    rows : int
        Rows of the finished partitions.
    statuses, reasons : Counter
        Rows per status, failures per reason: the finished partitions' sidecars added up.
    workers : Counter
        Finished partitions per worker (``host:pid``).
    out : pathlib.Path or None
        The output, when this call assembled it (every partition done).
    seconds : float
        Wall time of this call.
    """

    partitions: int = 0
    done: int = 0
    ran: int = 0
    rows: int = 0
    statuses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    workers: Counter = field(default_factory=Counter)
    out: Path | None = None
    seconds: float = 0.0

    def line(self) -> str:
        """One line for the terminal."""
        ok = self.statuses.get(STATUS_OK, 0)
        text = f"catalogue: {self.done} of {self.partitions} partitions done ({self.ran} in this run); "
        text += f"{ok} of {self.rows} rows predicted"
        bad = {s: n for s, n in self.statuses.items() if s != STATUS_OK}
        if bad:
            text += ", not predicted: " + ", ".join(f"{n} {s}" for s, n in sorted(bad.items(), key=lambda kv: -kv[1]))
        if self.reasons:
            text += "; by reason: " + ", ".join(f"{n} {r}" for r, n in self.reasons.most_common())
        text += f"; wrote {self.out}" if self.out is not None else f"; {self.partitions - self.done} partitions remain"
        return text + f" ({self.seconds:.1f} s)"


def parse_shard(shard: Any) -> tuple[int, int] | None:
    """``(I, N)`` from ``(I, N)`` or ``"I/N"`` (0 <= I < N); ConfigError (``param="shard"``) otherwise."""
    if shard is None:
        return None
    try:
        i, n = (int(v) for v in (shard.split("/") if isinstance(shard, str) else shard))
        if isinstance(shard, (tuple, list)) and any(isinstance(v, bool) or not isinstance(v, int) for v in shard):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"shard must be I/N (two integers, 0 <= I < N), got {shard!r}", param="shard") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"shard must be I/N with 0 <= I < N, got {i}/{n}", param="shard")
    return i, n


def _check_numbers(partition_rows: Any, n_workers: Any, scheduler: Any, shard: Any) -> None:
    rows = partition_rows
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_PARTITION_ROWS:
        raise ConfigError(
            f"partition_rows must be an integer from 1 to {MAX_PARTITION_ROWS}, got {partition_rows!r}",
            param="partition_rows",
        )
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise ConfigError(f"n_workers must be a positive integer, got {n_workers!r}", param="n_workers")
    if scheduler is not None and n_workers is not None:
        raise ConfigError(
            "scheduler and n_workers exclude each other (a running scheduler has its own workers)",
            param=("scheduler", "n_workers"),
        )
    if shard is not None and (scheduler is not None or n_workers is not None):
        other = "scheduler" if scheduler is not None else "n_workers"
        raise ConfigError(
            f"shard and {other} exclude each other (shard runs its slice in this process, without Dask)",
            param=("shard", other),
        )


def _model(model: Any) -> tuple[Any, Any]:
    """(loaded model, what the tasks get: the bundle's absolute path or registry name, or the model)."""
    from galmet.nn.bundle import load_model
    from galmet.nn.inference import GalmetModel

    if isinstance(model, GalmetModel):
        path = Path(model.path) if model.path is not None else None
        return model, str(path.resolve()) if path is not None and path.is_file() else model
    loaded = load_model(model, device="cpu")
    p = Path(model)
    return loaded, str(p.resolve()) if p.exists() else str(model)


def _positions_keywords(model: Any, options: Any, download: Any, base_url: Any, flags: bool, extra: dict) -> dict:
    """The keywords every partition's predict_positions gets (no progress bars), checked now by a
    run on zero positions (which writes nothing): bad options fail here, in one line."""
    import pandas as pd

    from galmet.nn.inference import inference_options
    from galmet.predict.positions import predict_positions
    from galmet.sdss.at_positions import KEEP, download_options

    reserved = sorted(set(extra) & set(_RESERVED))
    if reserved:
        raise ConfigError(f"predict_catalog sets {', '.join(reserved)} itself, per partition", param=reserved[0])
    from galmet.nn.inference import InferenceOptions

    inference_names = [f.name for f in dataclasses.fields(InferenceOptions)]
    download_names = ("workers", "rate", "retries", "timeout", "backoff_base", "max_consecutive_failures")
    # (paths made absolute: a worker elsewhere may start in another folder)
    rest = {
        k: (v.resolve() if isinstance(v, Path) else v)
        for k, v in extra.items()
        if k not in inference_names and k not in download_names
    }
    inference = inference_options(options, **{k: v for k, v in extra.items() if k in inference_names})
    dl = download_options(download, **{k: extra.get(k, KEEP) for k in download_names})
    keywords = dict(
        options=dataclasses.replace(inference, progress=False),
        download=dataclasses.replace(dl, progress=False),
        base_url=base_url,
        flags=flags,
        **rest,
    )
    try:
        predict_positions(model, pd.DataFrame({"ra": [], "dec": []}), **keywords)
    except TypeError as exc:
        raise ConfigError(f"predict_catalog: {exc}") from None
    return keywords


def _inputs_of(catalog: Any) -> list:
    from galmet.io.safety import Input

    if isinstance(catalog, (str, os.PathLike)):
        p = Path(catalog)
        return [Input(p, "the positions catalogue", tree=p.is_dir())]
    return []


def _is_folder_out(out: Path) -> bool:
    """Whether ``out`` asks for a HATS catalogue: a folder, or a name without a table suffix."""
    from galmet.io.tables import table_format

    return out.is_dir() or (table_format(out, writing=True) is None and not out.suffix)


def _check_out(out: Path, model: Any, catalog: Any, hats: bool, overwrite: bool) -> None:
    from galmet.io.safety import check_output_dir, check_output_file, model_input
    from galmet.io.tables import require_table_format

    inputs = [*([model_input(model.path)] if model.path is not None else []), *_inputs_of(catalog)]
    for item in inputs:
        if item.tree and (item.holds(out) or _inside(item.path, out)):
            raise ConfigError(f"out {out}: is or holds {item.what}, an input of this job; choose another", param="out")
    if hats:
        from galmet.io.hats import check_hats_out

        check_output_dir(out, "out", inputs=inputs)
        check_hats_out(out)  # new, empty, or a catalogue galmet wrote: checked before any work
        return
    fmt = require_table_format(out, param="out")
    check_output_file(out, "out", fmt.kind or "csv", "predictions table", inputs, overwrite=overwrite)


def _inside(path: Path, folder: Path) -> bool:
    a, f = os.path.realpath(path), os.path.realpath(folder)
    return a == f or a.startswith(f.rstrip(os.sep) + os.sep)


def _check_work(work: Path, out: Path, catalog: Any) -> None:
    from galmet.io.safety import check_output_dir, check_owned_folder

    for item in _inputs_of(catalog):
        if item.holds(work) or _inside(item.path, work):
            raise ConfigError(f"work_dir {work}: is or holds {item.what}; choose another folder", param="work_dir")
    if _inside(work, out) or _inside(out, work):
        raise ConfigError(f"work_dir {work}: overlaps out {out}; choose another folder", param="work_dir")
    check_output_dir(work, "work_dir")
    check_owned_folder(work, "work_dir")


def _settings(model: Any, keywords: dict, fingerprint: str, rows: int, partitioning: str, partition_rows: int) -> dict:
    """What must not change between a job and its rerun (the server may: a mirror, a revived one):
    the positions, the partitioning, the model, TTA, engine, flags, and the survey, layer and
    format of the cutouts (:func:`galmet.predict.positions.fetch_survey`)."""
    from galmet.io.tables import file_sha256
    from galmet.predict.positions import fetch_survey

    survey, layer, fmt = fetch_survey(model, keywords.get("survey"), keywords.get("layer"), keywords.get("format"))

    options = keywords["options"]
    path = model.path
    return {
        "fingerprint": fingerprint,
        "rows": rows,
        "partitioning": partitioning,
        "partition_rows": partition_rows,
        "model_sha256": file_sha256(path) if path is not None and Path(path).is_file() else None,
        "tta": options.tta,
        "tta_mode": options.tta_mode,
        "tta_seed": options.tta_seed,
        "engine": options.engine,
        "flags": keywords["flags"],
        "imaging": {"survey": survey.name, "layer": layer, "format": fmt},
    }


def row_partitions(n: int, partition_rows: int) -> list[tuple[Partition, Rows]]:
    """Consecutive rows, ``partition_rows`` at a time."""
    starts = range(0, n, partition_rows)
    return [
        (Partition(catalog_partition(k), k, min(partition_rows, n - a)), range(a, min(a + partition_rows, n)))
        for k, a in enumerate(starts)
    ]


class _Job:
    """One call of :func:`predict_catalog` after its checks: plan, run, assemble."""

    def __init__(self, model: Any, ref: Any, source: Source, work: WorkFolder, keywords: dict, partition_rows: int):
        self.model, self.ref, self.source, self.work = model, ref, source, work
        self.hats_out = False
        self.keywords, self.partition_rows = keywords, partition_rows
        self.partitions: list[Partition] = []
        self.summary = CatalogSummary()
        self._t0 = time.monotonic()

    def plan(self) -> None:
        """Fingerprint the positions, refuse another job's folder, write the missing inputs."""
        ra, dec, fingerprint = self.source.positions()
        if isinstance(self.source, HatsSource):
            planned, how = self.source.partitions(), "hats"
        elif self.hats_out:
            planned, how = sky_partitions(ra, dec, self.partition_rows), "healpix"
        else:
            planned, how = row_partitions(len(ra), self.partition_rows), "rows"
        del ra, dec
        settings = _settings(self.model, self.keywords, fingerprint, self.source.n_rows, how, self.partition_rows)
        self.work.check_same(settings)
        self.partitions = [p for p, _ in planned]
        missing = [(p, r) for p, r in planned if not self.work.is_done(p.key) and not self.work.input(p.key).is_file()]
        if missing:
            log.info("catalogue: writing the input rows of %d partitions to %s", len(missing), self.work.root)
            self.source.write(missing, self.work.input)
        self.work.store(settings, self.partitions)
        self.summary.partitions = len(self.partitions)

    def tasks(self, shard: tuple[int, int] | None) -> list[PartitionTask]:
        """The partitions this run does: those not done, and those whose failed fetches a rerun tries
        again (with their kept cutouts: only the missing ones are fetched)."""
        todo = [(p, self.work.is_done(p.key)) for p in self.partitions]
        todo = [(p, done) for p, done in todo if not done or self.work.to_retry(p.key)]
        if shard is not None:
            todo = [(p, retry) for p, retry in todo if p.index % shard[1] == shard[0]]
        root = str(self.work.root)
        return [PartitionTask(p.key, p.index, root, self.ref, self.keywords, retry=retry) for p, retry in todo]

    def on_done(self, sidecar: dict) -> None:
        """One progress line per finished partition."""
        self.summary.ran += 1
        rows, seconds = int(sidecar.get("rows", 0)), float(sidecar.get("seconds", 0.0))
        log.info(
            "partition %s done (%d this run): %d rows in %.1f s, %.1f rows/s, %d fetched, on %s",
            sidecar.get("key"),
            self.summary.ran,
            rows,
            seconds,
            rows / seconds if seconds > 0 else float("nan"),
            int(sidecar.get("fetched", 0)),
            sidecar.get("worker"),
        )

    def with_rate(self, concurrency: int) -> None:
        """Share the download rate (requests per second over the job) among ``concurrency`` tasks."""
        dl = self.keywords["download"]
        if dl.rate and concurrency > 1:
            self.keywords = {**self.keywords, "download": dataclasses.replace(dl, rate=dl.rate / concurrency)}

    def _write_empty(self, out: Path) -> Path:
        import pandas as pd

        from galmet.predict.positions import predict_positions

        predict_positions(self.model, pd.DataFrame({"ra": [], "dec": []}), out=out, **self.keywords)
        return out

    def finish(self, out: Path) -> CatalogSummary:
        """Tally the sidecars; assemble ``out`` when every partition is done."""
        tally = self.work.tally(self.partitions)
        s = self.summary
        s.done, s.rows, s.statuses, s.reasons, s.workers = (
            tally.partitions,
            tally.rows,
            tally.statuses,
            tally.reasons,
            tally.workers,
        )
        if not self.partitions:  # zero rows: the empty table, with every column a run writes
            s.out = self._write_empty(out)
        elif tally.partitions == len(self.partitions) and self.hats_out:
            s.out = write_hats_output(out, self.work, self.partitions, tally, self.model)
        elif tally.partitions == len(self.partitions):
            s.out = assemble_table(out, self.work, self.partitions, tally)
            remove_empty_dirs([self.work.root / CATALOG_INPUTS, self.work.root / CATALOG_PARTITIONS])
        s.seconds = time.monotonic() - self._t0
        return s


def predict_catalog(
    model: Any,
    catalog: Any,
    out: str | os.PathLike,
    *,
    work_dir: str | os.PathLike | None = None,
    scheduler: str | os.PathLike | None = None,
    shard: Any = None,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    n_workers: int | None = None,
    options: Any = None,
    download: Any = None,
    base_url: str | None = None,
    flags: bool = True,
    overwrite: bool = False,
    **keywords: Any,
) -> CatalogSummary:
    """Predict metallicity at every position of a catalogue, one task per partition, on this
    machine or a Dask cluster; write one table (or a HATS catalogue) when every partition is done.

    Parameters
    ----------
    model : GalmetModel, path-like or str
        A loaded model, a bundle file (or run folder), or a model name (``galmet models``). Tasks
        get its reference (path or name) and load it once per worker process.
    catalog : path-like, or astropy Table/QTable, pandas DataFrame, SkyCoord
        A table file galmet reads (FITS, ECSV, CSV, VOTable, parquet), a folder of parquet files
        (a parquet dataset, streamed), or a table in memory; ra/dec columns as
        :func:`~galmet.predict.positions.predict_positions` finds them.
    out : path-like
        The output: a file with a table suffix (.parquet is streamed a partition at a time;
        .csv, .ecsv, .fits are written whole) with the columns of predict_positions' table.
    work_dir : path-like, optional
        The job's work folder (inputs, partitions' work folders, finished partitions; see
        :mod:`galmet.catalog.work`); default ``OUT.galmet-work`` beside ``out``. It keeps the
        finished partitions after the output is written, so a rerun fetches nothing: remove it
        when done.
    scheduler : str or path-like, optional
        A running Dask scheduler: ``tcp://HOST:PORT`` or its scheduler file. Default: an
        embedded local cluster of ``n_workers`` processes (default: the cores), 1 thread each.
    shard : (I, N) or "I/N", optional
        Run only the partitions whose index % N == I, in this process, without Dask (a job
        array); the shard that finds every partition done writes the output.
    partition_rows : int
        Rows per partition (the unit of work, of memory per task, and of what a killed worker loses).
    n_workers : int, optional
        Processes of the local cluster.
    options, download, base_url, flags
        As :func:`~galmet.predict.positions.predict_positions`. ``download.rate`` is shared
        among the workers (each task fetches at ``rate / workers``).
    overwrite : bool
        Replace an ``out`` file galmet did not write.
    **keywords
        Any other keyword of predict_positions (``tta``, ``batch_size``, ``workers``, ``retries``,
        ``shard_size`` ...), passed to every partition.

    Returns
    -------
    CatalogSummary
        Partitions done, rows by status and failure reason (over every run), and ``out`` when written.

    Raises
    ------
    ConfigError, DataError
        One line: a bad option, an output that would replace an input, a scheduler that does not
        answer, a work folder of another job, or the first partition that failed (a dead server:
        the rest are cancelled; finished partitions stay for the rerun).
    """
    shard_t = parse_shard(shard)
    _check_numbers(partition_rows, n_workers, scheduler, shard_t)
    loaded, ref = _model(model)
    out_path = Path(out)
    hats_out = _is_folder_out(out_path)
    if hats_out and not _has_hats():
        raise ConfigError(f"out {out_path}: a HATS output needs galmet.io.hats, which this galmet lacks", param="out")
    _check_out(out_path, loaded, catalog, hats_out, overwrite)
    kw = _positions_keywords(loaded, options, download, base_url, flags, keywords)
    from galmet.predict.positions import default_work_dir

    work = Path(work_dir) if work_dir is not None else default_work_dir(out_path)
    _check_work(work, out_path, catalog)
    folder = WorkFolder(work.resolve())
    plan = _Plan(catalog, folder, kw, partition_rows, hats_out)
    if shard_t is not None:
        return _run_shard(loaded, plan, shard_t, out_path)
    return _run_dask(loaded, ref, plan, scheduler, n_workers, out_path)


@dataclass
class _Plan:
    """What a job is made of, before its model: the catalogue, work folder, keywords, partitioning."""

    catalog: Any
    work: WorkFolder
    keywords: dict
    partition_rows: int
    hats_out: bool

    def job(self, model: Any, ref: Any) -> _Job:
        job = _Job(model, ref, _open(self.catalog), self.work, self.keywords, self.partition_rows)
        job.hats_out = self.hats_out
        return job


def _has_hats() -> bool:
    try:
        import galmet.io.hats  # noqa: F401
    except ImportError:
        return False
    return True


def _open(catalog: Any) -> Source:
    """The catalogue's source: a HATS catalogue by its pixels, anything else by :func:`open_source`."""
    if isinstance(catalog, (str, os.PathLike)) and Path(catalog).is_dir() and _has_hats():
        from galmet.io.hats import is_hats

        if is_hats(Path(catalog)):
            return HatsSource(catalog)
    return open_source(catalog)


def _run_shard(model, plan: _Plan, shard, out) -> CatalogSummary:
    job = plan.job(model, model)  # in-process: the loaded model
    job.plan()
    run_in_process(job.tasks(shard), job.on_done)
    return _done(job, out)


def _run_dask(model, ref, plan: _Plan, scheduler, n_workers, out) -> CatalogSummary:
    from contextlib import ExitStack

    from galmet.io.locks import exclusive
    from galmet.layout import RUN_LOCK

    with ExitStack() as stack:
        client = stack.enter_context(dask_client(scheduler, n_workers)) if scheduler is not None else None
        plan.work.root.mkdir(parents=True, exist_ok=True)
        stack.enter_context(exclusive(plan.work.root, RUN_LOCK, "'galmet predict' over a catalogue"))
        job = plan.job(model, ref)
        job.plan()
        tasks = job.tasks(None)
        if tasks:
            client = client if client is not None else stack.enter_context(dask_client(None, n_workers))
            job.with_rate(n_workers_of(client))
            tasks = job.tasks(None)
            run_on_dask(client, tasks, job.on_done)
        return _done(job, out)


def _done(job: _Job, out: Path) -> CatalogSummary:
    summary = job.finish(out)
    if summary.out is None:
        left = summary.partitions - summary.done
        log.info("catalogue: %d of %d partitions remain (other shards)", left, summary.partitions)
    return summary
