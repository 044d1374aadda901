"""Fetch the catalog's cutouts into ``DATASET/images/<objID>.jpg`` (or ``.fits``), reliably and resumably.

- From any survey's cutout source (:mod:`galmet.sdss.sources`: ``sdss``, the default; ``legacy``;
  ``ps1``), as JPEG or FITS (:class:`DownloadOptions` ``survey``, ``layer``, ``format``). A
  position where the survey has no imaging is a permanent failure of its own
  (``"outside footprint"``), which counts toward neither failure budget.

- Bounded concurrency (``workers`` daemon threads) under one global requests-per-second
  limit; retries with backoff, jitter and ``Retry-After`` (see :mod:`galmet.sdss.skyserver`).
- Every body is decoded and checked (JPEG, RGB or FITS bands, requested size) before it is kept, and
  written atomically (temp file + rename): after a crash or ``kill -9`` only complete,
  valid images exist. Leftover temp files are removed by the next run.
- ``DATASET/manifest.parquet`` holds per objID: status (ok / failed), attempts (over all
  runs), last error, whether the failure is permanent (404, wrong answers, oversized bodies) and
  the image size in bytes, and the survey, layer and format it came as (a manifest from
  before surveys reads as sdss / no layer / jpeg). It is rewritten atomically every few seconds, so a kill loses at
  most that much bookkeeping, never an image.
- A rerun fetches only rows without a valid image; permanent failures are skipped unless
  ``retry_failed``; failures that were only transient (timeouts, 5xx) are tried again. A
  permanent failure is one request's (survey, layer, format, size, scale): a row that failed for
  good with other settings is fetched again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import math
import os
import queue
import re
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import objid_array
from galmet.data.dataset import find_catalog
from galmet.data.surveys import DEFAULT_SURVEY, get_survey
from galmet.errors import ConfigError, DataError, ResourceError, out_of_resources, resource_message
from galmet.io.atomic import atomic_write_bytes, remove_stale_temp_files
from galmet.io.fits_images import FITS_SUFFIX, read_fits, read_fits_header
from galmet.io.images import read_image
from galmet.io.locks import exclusive
from galmet.io.ownership import owned_by_galmet
from galmet.io.progress import progress_bar
from galmet.io.tables import read_table, write_table
from galmet.layout import CATALOG_PARQUET, IMAGES_DIR, MANIFEST, RUN_LOCK
from galmet.paper import SDSS_NATIVE_PIXEL_ARCSEC
from galmet.sdss.skyserver import CUTOUT_SETTINGS, Interrupted
from galmet.sdss.sources import (
    OUTSIDE_FOOTPRINT,
    CutoutSource,
    OutsideFootprint,
    check_scale,
    cutout_source,
    suffix_of,
)
from galmet.sdss.transport import ClientSettings, FailureBudget, HttpClient, Range, ServiceError, check_ranges

log = logging.getLogger(__name__)

#: Pixel scale of the SDSS camera, arcsec (used by the authors' field-scaled mode).
SDSS_PIXEL = SDSS_NATIVE_PIXEL_ARCSEC
#: The columns of a manifest written before galmet knew surveys (read as sdss / no layer / jpeg).
SDSS_MANIFEST_COLUMNS = ("objID", "status", "attempts", "last_error", "permanent", "bytes", "size", "scale", "updated")
MANIFEST_COLUMNS = (*SDSS_MANIFEST_COLUMNS, "survey", "layer", "format")
#: Default of the survey-dependent numbers of :class:`DownloadOptions` (``scale``, ``size``; like
#: None for ``base_url``, ``layer``, ``format``): the survey's own, filled in when the options are made.
SURVEY_DEFAULT: Any = None


@dataclass
class DownloadOptions:
    """Settings of one download run (the CLI options of ``galmet download``).

    The one owner of the download defaults: ``galmet download``'s options, ``galmet predict``'s at
    positions and the Python API's download parameters take theirs from here (the client settings'
    from :data:`galmet.sdss.skyserver.CUTOUT_SETTINGS`), and :meth:`check` is their validation.

    The survey-dependent options (``base_url``, ``scale``, ``size``, ``format``, ``layer``) left
    out take the survey's defaults (:mod:`galmet.data.surveys`) when the options are made: with
    ``survey="sdss"`` (the default) the paper's 128 x 128 JPEGs at 0.296"/pixel from SkyServer DR14.
    (``dataclasses.replace(opts, survey=...)`` keeps the others as they are: use
    :meth:`with_survey` to change the survey.)

    Attributes
    ----------
    base_url : str
        The survey service's root (default: the survey's, e.g. SkyServer DR14 for sdss).
    workers : int
        Concurrent requests at most.
    rate : float or None
        Requests per second over all workers (retries count); None or 0 for no limit.
    retries, timeout, backoff_base
        Retries per image after the first try; total deadline of each request, s; first
        backoff, s.
    max_bytes : int
        Largest response body accepted, bytes (a cutout is a few kB).
    scale : float
        Arcsec per pixel (default: the survey's default pixel scale; sdss: 0.296, the paper's
        38" field).
    size : int
        Width = height of the cutouts, pixels (default: the survey's, 128).
    scale_by_size : bool
        The authors' alternative: scale = 2 * petroR90_r / 0.396 / size per galaxy.
    max_failures : float
        Fraction of the images to fetch that may fail; more stops the run (exit code 1).
    max_consecutive_failures : int
        Fetches in a row (in the order they finish) that may fail after all their retries, for
        any reason (connection failed, timed out, HTTP 5xx/429/404, error pages, wrong images);
        the next stops the run: a dead, overloaded or misconfigured server ends a run in a bounded
        time (with the defaults, 16 rows: two rounds of the 8 workers, about 45 s when the server
        refuses or answers 503 and about 7 min when every request times out, instead of ~210 s per
        row for ever). A fetch that succeeds starts the count again; a row's own failures are
        isolated, a broken server's come in a row. Resumable: the next run tries the transient
        failures again (permanent ones stay failed).
    failure_budget : int
        Requests (attempts, retries included, counted over all workers) in a row that may get no
        answer from the server at all (connection refused or reset, DNS failure, timed out) before
        the run stops: an unreachable server ends it after this many attempts, not after
        ``max_consecutive_failures`` rows of ``retries + 1`` attempts each (with the defaults, 24
        attempts: about 5 s against a refusing server at 5 requests/s, instead of ~50 s). Any
        answer (an image, an error page, a 404 or 503) starts the count again, so a server that
        answers some requests keeps the run going; rows in flight when it stops are not marked
        failed (a rerun fetches them).
    retry_failed : bool
        Try permanent failures of earlier runs again. Without it they are skipped when they were
        failures of this run's request (survey, layer, format, size and scale); a row that failed
        for good with other settings is fetched anyway.
    verify : bool
        Decode every existing image, even those the manifest lists as ok.
    manifest_every : float
        Seconds between manifest rewrites.
    progress : bool
        Report progress on stderr (:func:`galmet.io.progress.progress_bar`: a bar on a terminal,
        plain INFO lines otherwise).
    durable : bool
        fsync each cutout before it is renamed into place (default). False for scratch cutouts
        that are deleted once used (prediction at positions without ``--keep-cutouts``): still
        atomic, and safe against a kill, only not against a power cut.
    survey : str
        The imaging survey (``sdss``, ``legacy``, ``ps1``: :data:`galmet.data.surveys.SURVEYS`).
    layer : str or None
        The survey's image layer (legacy: ``ls-dr10`` by default); None for a survey without layers.
    format : {"jpeg", "fits"}
        The cutouts' format (default: the survey's first; ``fits`` for ps1); cutouts are written
        as ``images/<objID>.jpg`` or ``images/<objID>.fits``.
    """

    base_url: str | None = None
    workers: int = 8
    rate: float | None = CUTOUT_SETTINGS.rate
    retries: int = CUTOUT_SETTINGS.retries
    timeout: float = CUTOUT_SETTINGS.timeout
    backoff_base: float = CUTOUT_SETTINGS.backoff_base
    scale: float = SURVEY_DEFAULT
    size: int = SURVEY_DEFAULT
    scale_by_size: bool = False
    max_failures: float = 0.05
    max_consecutive_failures: int = 16
    failure_budget: int = 24
    retry_failed: bool = False
    verify: bool = False
    manifest_every: float = 5.0
    progress: bool = True
    max_bytes: int = CUTOUT_SETTINGS.max_bytes
    durable: bool = True
    survey: str = DEFAULT_SURVEY
    layer: str | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        """Fill in the survey's defaults (an unknown survey, layer or format is left to :meth:`check`)."""
        try:
            survey = get_survey(self.survey)
            self.survey = survey.name
            self.format = survey.check_format(self.format)
            self.layer = survey.check_layer(self.layer)
        except ConfigError:
            return
        self.base_url = survey.base_url if self.base_url is None else self.base_url
        self.scale = survey.default_pixel_scale if self.scale is None else self.scale
        self.size = survey.default_size if self.size is None else self.size

    def check(self) -> None:
        """ConfigError naming the first bad option (``param=`` its name): the survey, its layer and
        format, the client settings by their :data:`~galmet.sdss.transport.SETTING_RANGES`, the rest
        by :data:`DOWNLOAD_RANGES`, and a scale the survey's service cannot cut at (ps1: 0.25 only)."""
        survey = get_survey(self.survey)
        survey.check_format(self.format)
        survey.check_layer(self.layer)
        self.settings().check()
        check_ranges(DOWNLOAD_RANGES, {name: getattr(self, name) for name in DOWNLOAD_RANGES})
        if self.scale_by_size and survey.name == "ps1":
            raise ConfigError("scale_by_size: ps1 cutouts come at the native 0.25 arcsec per pixel only")
        check_scale(survey, self.scale)

    def settings(self) -> ClientSettings:
        """The client settings (timeout, retries, rate, backoff, body cap) of these options."""
        return ClientSettings(
            timeout=self.timeout,
            retries=self.retries,
            rate=self.rate,
            backoff_base=self.backoff_base,
            max_bytes=self.max_bytes,
        )

    def with_survey(
        self,
        survey: str | None = None,
        layer: str | None = None,
        format: str | None = None,
        size: int | None = None,
        scale: float | None = None,
        base_url: str | None = None,
    ) -> DownloadOptions:
        """A copy for ``survey`` (None: these options' own): the ``layer``, ``format``, ``size``,
        ``scale`` and ``base_url`` given, else these options' when the survey is theirs, else the
        survey's defaults (its default layer and format, size, pixel scale and service root).
        What :func:`dataclasses.replace` cannot do: it would keep another survey's values."""
        info = get_survey(survey if survey is not None else self.survey)
        same = info.name == self.survey
        return dataclasses.replace(
            self,
            survey=info.name,
            base_url=base_url if base_url is not None else (self.base_url if same else None),
            layer=layer if layer is not None else (self.layer if same else None),
            format=format if format is not None else (self.format if same else None),
            size=int(size or (self.size if same else info.default_size)),
            scale=float(scale if scale is not None else (self.scale if same else info.default_pixel_scale)),
        )

    def source(self, client: HttpClient | None = None) -> CutoutSource:
        """The survey's :class:`~galmet.sdss.sources.CutoutSource` these options describe (through
        ``client`` when given: a client of the survey's service, e.g. a test's)."""
        if client is not None:
            return cutout_source(self.survey, layer=self.layer, fmt=self.format, client=client)
        return cutout_source(self.survey, self.base_url, self.layer, self.format, **self.settings().client_kwargs())

    def client(self) -> HttpClient:
        """The service client these options describe (sdss: a
        :class:`~galmet.sdss.skyserver.SkyServerClient`)."""
        return self.source().client

    @property
    def suffix(self) -> str:
        """The file suffix of the cutouts: ``".jpg"`` or ``".fits"``."""
        return suffix_of(self.format)


#: Most concurrent requests a download may have in flight.
MAX_WORKERS = 64
#: The accepted values of the download's own options (the client's: ``SETTING_RANGES``).
DOWNLOAD_RANGES: dict[str, Range] = {
    "workers": Range(1, MAX_WORKERS, integer=True),
    "size": Range(1, 2048, integer=True),
    "scale": Range(0, 100, open_low=True, what="a positive number of arcsec per pixel"),
    "max_failures": Range(0, 1, what="a fraction in [0, 1]"),
    "max_consecutive_failures": Range(1, 1_000_000, integer=True),
    "failure_budget": Range(1, 1_000_000, integer=True),
    "manifest_every": Range(0, 3600, open_low=True, what="a positive number of seconds"),
}


def _start_workers(target, args: tuple, n: int) -> list[threading.Thread]:
    """Start ``n`` daemon worker threads running ``target(*args)``; when the machine refuses a
    thread (``can't start new thread``: address space or process limit), go on with those that
    started, with a warning, or raise :class:`ResourceError` when none did."""
    workers: list[threading.Thread] = []
    for i in range(n):
        w = threading.Thread(target=target, args=args, daemon=True, name=f"galmet-dl-{i}")
        try:
            w.start()
        except RuntimeError as exc:
            if not workers:
                raise ResourceError(resource_message(exc, "threads")) from exc
            log.warning("could start only %d of %d download workers (%s); going on with them", len(workers), n, exc)
            break
        workers.append(w)
    return workers


def _check_workers_alive(workers: list[threading.Thread]) -> None:
    """ResourceError when a worker died (ran out of memory or threads) before being told to stop:
    the task it held would never come back, and the main loop would wait for it forever."""
    dead = [w for w in workers if not w.is_alive()]
    if dead:
        exc = getattr(dead[0], "galmet_error", None) or RuntimeError(f"download worker {dead[0].name} died")
        raise ResourceError(resource_message(exc, out_of_resources(exc) or "memory")) from exc


@dataclass
class DownloadSummary:
    """What a run did. ``ok``/``failed`` count this run's fetches; the rest were skipped."""

    total: int = 0
    to_fetch: int = 0
    ok: int = 0
    failed: int = 0
    present: int = 0
    failed_before: int = 0
    #: Of ``failed``: positions where the survey has no imaging ("outside footprint"): permanent,
    #: and no sign of a failing server (they count toward neither failure budget).
    outside: int = 0
    not_done: int = 0
    requests: int = 0
    interrupted: bool = False
    aborted: bool = False
    #: Why the run stopped early ("" when it did not): the failure budget it exceeded.
    stop_reason: str = ""
    #: The option whose budget stopped the run ("max_failures", "max_consecutive_failures",
    #: "failure_budget"; "" when it did not stop early).
    stop_param: str = ""
    #: Transient failures in a row at the end (see ``DownloadOptions.max_consecutive_failures``).
    streak: int = 0
    #: The last failure's message ("" when none).
    last_error: str = ""
    seconds: float = 0.0
    manifest: Path | None = None
    #: Failures of this run by reason (:func:`failure_reason`), most frequent first in :meth:`line`.
    reasons: Counter = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return self.present + self.failed_before

    def line(self) -> str:
        """One line for the terminal."""
        text = (
            f"download: {self.ok} ok, {self.failed} failed, {self.skipped} skipped "
            f"({self.present} already present, {self.failed_before} failed before)"
        )
        if self.not_done:
            text += f", {self.not_done} not fetched yet"
        text += f"; {self.requests} requests in {self.seconds:.1f} s"
        if self.reasons:
            text += "; failed: " + tally(self.reasons)
        if self.interrupted:
            text += "; interrupted, rerun to resume"
        elif self.aborted:
            text += "; stopped early: too many failures" + (f" ({self.stop_reason})" if self.stop_reason else "")
        return text


def tally(counts: Counter) -> str:
    """``"3 HTTP 404, 1 timed out"``: counts by reason, most frequent first."""
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


#: (pattern of a failure message, its short reason), first match wins (see :func:`failure_reason`).
_REASONS = (
    (re.compile(OUTSIDE_FOOTPRINT), OUTSIDE_FOOTPRINT),
    (re.compile(r"HTTP (\d{3})"), None),
    (re.compile(r"timed out|deadline"), "timed out"),
    (re.compile(r"connection (failed|closed)"), "connection failed"),
    (re.compile(r"over the \d+-byte cap"), "body too large"),
    (re.compile(r"^empty body|: empty body"), "empty body"),
    (re.compile(r"not a JPEG"), "not a JPEG"),
    (re.compile(r"not a FITS"), "not a FITS file"),
    (re.compile(r"bytes of junk"), "junk after the JPEG"),
    (re.compile(r"ra/dec"), "bad position"),
    (re.compile(r"petroR90_r"), "bad petroR90_r"),
)


def failure_reason(error: str) -> str:
    """The short reason of a failed cutout's message, for tallies: ``"outside footprint"``,
    ``"HTTP 404"``, ``"timed out"``, ``"connection failed"``, ``"body too large"``, ``"empty
    body"``, ``"not a JPEG"``, ``"junk after the JPEG"``, ``"not a FITS file"``, ``"bad
    position"``, ``"bad petroR90_r"``, else ``"bad image"`` (an undecodable image, or one of the
    wrong size or band count)."""
    for pattern, reason in _REASONS:
        m = pattern.search(error)
        if m:
            return reason or f"HTTP {m.group(1)}"
    return "bad image"


@dataclass(frozen=True)
class CutoutOutcome:
    """What became of one objID's cutout in a run, as passed to ``download_cutouts(on_result=...)``.

    Attributes
    ----------
    objID : int
    status : {"ok", "failed"}
    path : Path
        ``DATASET/images/<objID>.jpg`` (a valid image when ``status`` is ok).
    error : str
        Why it failed ("" when ok).
    permanent : bool
        Retrying is pointless (404, a wrong answer, an oversized body, unusable ra/dec).
    fetched : bool
        Fetched in this run (False: found valid on disk, or a permanent failure of an earlier run).
    """

    objID: int
    status: str
    path: Path
    error: str = ""
    permanent: bool = False
    fetched: bool = True


@dataclass
class _Result:
    oid: int
    status: str | None  # "ok", "failed", None = not attempted (stopping)
    scale: float = 0.0
    attempts: int = 0
    error: str = ""
    permanent: bool = False
    nbytes: int = 0
    fatal: str = ""
    outside: bool = False  # the survey has no imaging there (not a server failure)


@dataclass
class _Task:
    oid: int
    ra: float
    dec: float
    scale: float


@dataclass
class ManifestRecord:
    """One row of ``manifest.parquet``: what galmet knows about one objID's cutout.

    Attributes
    ----------
    objID : int
    status : {"ok", "failed"}
    attempts : int
        Requests sent for this image over all runs.
    last_error : str
        Why the last attempt failed ("" when ok).
    permanent : bool
        Retrying is pointless (HTTP 404, a wrong answer, an oversized body, unusable ra/dec).
    bytes : int
        Size of the stored JPEG (0 when failed).
    size : int
        Width = height requested, pixels.
    scale : float
        Arcsec per pixel requested.
    updated : str
        UTC ISO time of the last change.
    survey : str
        The survey the cutout is (to be) fetched from (a manifest from before surveys: ``sdss``).
    layer : str or None
        Its layer (None: the survey has none).
    format : {"jpeg", "fits"}
        Its format (a manifest from before surveys: ``jpeg``).
    """

    objID: int
    status: str
    attempts: int = 0
    last_error: str = ""
    permanent: bool = False
    bytes: int = 0
    size: int = 0
    scale: float = 0.0
    updated: str = ""
    survey: str = DEFAULT_SURVEY
    layer: str | None = None
    format: str = "jpeg"


def load_manifest(path: Path) -> dict[int, ManifestRecord]:
    """objID -> manifest record; an unreadable manifest is ignored with a warning (disk is the truth)."""
    if not path.is_file():
        return {}
    try:
        df = read_table(path)
        missing = [c for c in ("objID", "status", "attempts") if c not in df.columns]
        if missing:
            raise DataError(f"{path}: columns {missing} are missing")
    except DataError as exc:
        log.warning("%s; starting a new manifest (images on disk are kept)", exc)
        return {}
    n = len(df)
    defaults = ManifestRecord(0, "")
    cols = {c: df[c].tolist() if c in df.columns else [getattr(defaults, c)] * n for c in MANIFEST_COLUMNS}
    records = {}
    for i in range(n):
        rec = ManifestRecord(
            objID=int(cols["objID"][i]),
            status=str(cols["status"][i]),
            attempts=int(cols["attempts"][i] or 0),
            last_error=cols["last_error"][i] or "",
            permanent=bool(cols["permanent"][i] or False),
            bytes=int(cols["bytes"][i] or 0),
            size=int(cols["size"][i] or 0),
            scale=float(cols["scale"][i] or 0),
            updated=cols["updated"][i] or "",
            survey=str(cols["survey"][i] or DEFAULT_SURVEY),
            layer=_text_or_none(cols["layer"][i]),
            format=str(cols["format"][i] or "jpeg"),
        )
        records[rec.objID] = rec
    return records


def _text_or_none(value) -> str | None:
    """A manifest's text cell: None for a missing value (None, NaN, "")."""
    return None if value is None or pd.isna(value) or value == "" else str(value)


def write_manifest(path: Path, records: dict[int, ManifestRecord]) -> None:
    """Write the manifest atomically, one row per objID, sorted by objID."""
    rows = [records[i] for i in sorted(records)]
    df = pd.DataFrame(
        {
            "objID": np.array([r.objID for r in rows], dtype=np.int64),
            "status": [r.status for r in rows],
            "attempts": np.array([r.attempts for r in rows], dtype=np.int64),
            "last_error": [r.last_error for r in rows],
            "permanent": np.array([r.permanent for r in rows], dtype=bool),
            "bytes": np.array([r.bytes for r in rows], dtype=np.int64),
            "size": np.array([r.size for r in rows], dtype=np.int64),
            "scale": np.array([r.scale for r in rows], dtype=np.float64),
            "updated": [r.updated for r in rows],
            "survey": [r.survey for r in rows],
            "layer": pd.array([r.layer for r in rows], dtype="string"),
            "format": [r.format for r in rows],
        },
        columns=list(MANIFEST_COLUMNS),
    )
    write_table(df, path)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_download_catalog(root: Path, opts: DownloadOptions, catalog: Path | None = None) -> pd.DataFrame:
    """The dataset's catalog (or the table ``catalog``, given) with objID (int64), ra, dec (and
    petroR90_r when scaling by size)."""
    path = catalog if catalog is not None else find_catalog(root)
    if path is None:
        raise DataError(f"{root}: no catalog.parquet (run 'galmet catalog --out {root}' first)")
    if catalog is not None and not catalog.is_file():
        raise DataError(f"{catalog}: no such catalogue file", param="catalog")
    cat = read_table(path)
    need = ["objID", "ra", "dec"] + (["petroR90_r"] if opts.scale_by_size else [])
    for col in need:
        if col not in cat.columns:
            why = " (needed by scale_by_size)" if col == "petroR90_r" else ""
            raise DataError(f"{path}: column {col!r} is missing{why}", param="scale_by_size" if why else None)
    ids = objid_array(cat["objID"], str(path))  # exact: read_table keeps 19-digit IDs exact
    cat = cat.assign(objID=ids).drop_duplicates("objID").reset_index(drop=True)
    return cat


def _check_given_catalog(root: Path, catalog: Path) -> bool:
    """Whether the catalogue table ``catalog`` is still to be copied into the dataset ``root`` (a
    folder, or a name for a new one): False when ``root``'s catalogue is that table already;
    ConfigError when ``root`` has another catalogue, which is never replaced."""
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: is not a directory; expected the dataset folder")
    held = find_catalog(root) if root.is_dir() else None
    if held is None:
        return True
    if held.resolve() == catalog.resolve() or _same_table(read_table(held), read_table(catalog)):
        return False
    raise ConfigError(
        f"dataset {root}: already has a catalogue ({held.name}) that is not {catalog}; give a new folder "
        "for that catalogue's cutouts",
        param="catalog",
    )


def _same_table(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when two catalogue tables have the same columns and cells (dtypes aside: a CSV read back
    from its parquet copy is the same catalogue)."""
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return False
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    return a.equals(b) or a.astype(str).equals(b.astype(str))


def _copy_catalog(root: Path, catalog: Path) -> None:
    """Create the dataset folder ``root`` if need be and write ``catalog`` as its
    ``catalog.parquet``, atomically (a parquet table byte for byte; another format converted)."""
    try:
        root.mkdir(exist_ok=True)
    except OSError as exc:
        raise DataError(f"{root}: cannot create the dataset directory ({exc.strerror})") from None
    dest = root / CATALOG_PARQUET
    if catalog.suffix.lower() == ".parquet":
        atomic_write_bytes(dest, catalog.read_bytes())
    else:
        write_table(read_table(catalog), dest)
    log.info("%s: copied from %s", dest, catalog)


def _scales(cat: pd.DataFrame, opts: DownloadOptions) -> np.ndarray:
    if not opts.scale_by_size:
        return np.full(len(cat), float(opts.scale))
    r90 = pd.to_numeric(cat["petroR90_r"], errors="coerce").to_numpy(dtype=np.float64)
    return 2.0 * r90 / SDSS_PIXEL / opts.size


def download_cutouts(
    dataset: str | os.PathLike,
    opts: DownloadOptions | None = None,
    client: CutoutSource | HttpClient | None = None,
    on_result: Callable[[CutoutOutcome], None] | None = None,
    overwrite: bool = False,
    catalog: str | os.PathLike | None = None,
) -> DownloadSummary:
    """Fetch every missing cutout of ``dataset``; see the module docstring.

    One dataset folder holds one survey's (and layer's, and format's) cutouts: a run of another
    survey or layer than the cutouts the folder's manifest records, or (surveys other than sdss)
    into a folder of galmet cutouts no manifest row accounts for, is refused (ConfigError) before
    any request or write; fetch those into a new folder with ``catalog``.

    Parameters
    ----------
    dataset : path-like
        Dataset directory with ``catalog.parquet`` (objID, ra, dec); with ``catalog``, a folder
        (made if missing) that gets that table as its ``catalog.parquet``.
    opts : DownloadOptions
        Settings; defaults are the paper's cutouts at a polite 5 requests/s.
    client : CutoutSource or HttpClient, optional
        Fetch through this source, or through this client of the survey's service (tests swap its
        ``_request``); default: the source ``opts`` describe (:meth:`DownloadOptions.source`).
    on_result : callable, optional
        Called in the calling thread with a :class:`CutoutOutcome` for every objID as soon as its
        fate is known: found on disk or failed before (while planning), then each fetch as it
        finishes. Lets a caller consume cutouts while the rest are fetched (``galmet predict``
        at positions); an exception it raises stops the run (the manifest is written first).
    overwrite : bool
        Replace a ``manifest.parquet`` that galmet did not write (it is then not read as an
        earlier run's), and fetch each cutout anew over a file at its name that galmet did not
        write (a user's image is never taken as a downloaded cutout); without it either is
        refused before anything is written. Cutouts galmet wrote are never re-fetched for it.
    catalog : path-like, optional
        A catalogue table galmet reads (objID, ra, dec; e.g. another dataset's ``catalog.parquet``),
        copied atomically as ``dataset``'s ``catalog.parquet`` once every check passed: the
        cross-survey set (an SDSS catalogue's labels, another survey's cutouts) in a folder of its
        own. Refused (ConfigError) when ``dataset`` already has another catalogue.

    Returns
    -------
    DownloadSummary
        Counts; ``interrupted`` after Ctrl-C, ``aborted`` (and ``stop_reason``) when failures passed
        ``max_failures`` or ``max_consecutive_failures``.
    """
    opts = opts or DownloadOptions()
    opts.check()
    root = Path(dataset)
    given = Path(catalog) if catalog is not None else None
    if given is None and not root.is_dir():
        raise DataError(f"{root}: no such dataset directory")
    cat = read_download_catalog(root, opts, given)
    copy_catalog = given is not None and _check_given_catalog(root, given)
    manifest = root / MANIFEST
    if (manifest.exists() or manifest.is_symlink()) and not overwrite and not _galmet_manifest(manifest):
        raise ConfigError(
            f"dataset {root}: its {MANIFEST} was not written by galmet; move it away or use overwrite to replace it",
            param=("dataset", "overwrite"),
        )
    records = load_manifest(manifest) if _galmet_manifest(manifest) else {}
    _refuse_other_format(root, records, opts.format)
    _refuse_other_survey(root, records, opts)
    images = root / IMAGES_DIR
    if not overwrite:
        _refuse_foreign_cutouts(images, cat, _fetched_sizes(records), opts.suffix)
    _refuse_unknown_cutouts(root, cat, records, opts)
    source = client if isinstance(client, CutoutSource) else opts.source(client)
    if copy_catalog and given is not None:
        _copy_catalog(root, given)
    if not os.access(root, os.W_OK | os.X_OK):
        raise DataError(f"{root}: cannot write into the dataset directory (permission denied)")
    try:
        images.mkdir(exist_ok=True)
    except OSError as exc:
        raise DataError(f"{root}: cannot write into the dataset directory ({exc.strerror})") from None
    with exclusive(root, RUN_LOCK, "'galmet download'"):
        removed = remove_stale_temp_files(images) + remove_stale_temp_files(root, of=MANIFEST)
        if removed:
            log.info("removed %d temporary files left by an interrupted run", removed)
        return _Run(root, cat, opts, source, on_result, overwrite).run()


def _galmet_manifest(path: Path) -> bool:
    """True when ``path`` is a download manifest galmet wrote: noted in the folder's ledger, or
    (a manifest written before galmet kept ledgers) a regular parquet file whose columns are
    exactly :data:`MANIFEST_COLUMNS` (or those of a manifest from before surveys,
    :data:`SDSS_MANIFEST_COLUMNS`), which no other program writes."""
    if owned_by_galmet(path):
        return True
    if path.is_symlink() or not path.is_file():
        return False
    try:
        import pyarrow.parquet as pq

        return tuple(pq.read_schema(path).names) in (MANIFEST_COLUMNS, SDSS_MANIFEST_COLUMNS)
    except Exception:  # noqa: BLE001 - not a parquet file: not a manifest
        return False


def _refuse_other_format(root: Path, records: dict[int, ManifestRecord], fmt: str | None) -> None:
    """ConfigError when the galmet manifest ``records`` of ``root`` hold cutouts fetched (status
    ``ok``) in another format than ``fmt``: one dataset folder holds one format (a second one
    would leave ``<objID>.jpg`` and ``<objID>.fits`` side by side), so the second is refused
    before anything is written. Another survey or layer in the same format is fetched over."""
    other = sorted({rec.format for rec in records.values() if rec.status == "ok" and rec.format != fmt})
    if other:
        raise ConfigError(
            f"dataset {root}: its {MANIFEST} records {other[0]} cutouts and format is {fmt}; "
            f"a dataset folder holds one image format: download the {fmt} cutouts into another folder",
            param="format",
        )


def _refuse_other_survey(root: Path, records: dict[int, ManifestRecord], opts: DownloadOptions) -> None:
    """ConfigError when the galmet manifest ``records`` of ``root`` hold cutouts fetched (status
    ``ok``) from another survey or layer than ``opts``': a dataset folder holds one survey's (and
    one layer's) cutouts, so fetching another's over them (and recording it) is refused before
    any request or write. Rows that only failed (another survey's footprint) do not bind the
    folder: those are fetched again with this run's settings."""
    mine = (opts.survey, opts.layer)
    held = Counter((rec.survey, rec.layer) for rec in records.values() if rec.status == "ok")
    held.pop(mine, None)
    if not held:
        return
    (survey, layer), n = held.most_common(1)[0]
    raise ConfigError(
        f"dataset {root}: its {MANIFEST} records {n} {_survey_name(survey, layer)} cutouts and this run "
        f"fetches {_survey_name(*mine)}; one folder holds the cutouts of one imaging source: {way_out(root, opts)}",
        param="survey" if survey != opts.survey else "layer",
    )


def _refuse_unknown_cutouts(
    root: Path, cat: pd.DataFrame, records: dict[int, ManifestRecord], opts: DownloadOptions
) -> None:
    """ConfigError when a run of a survey other than sdss finds a galmet cutout at one of the
    catalogue's names (``images/OBJID<suffix>``) that no manifest row of this run's survey, layer
    and format accounts for (a copied folder, another survey's set): its survey is unknown, so it
    is never adopted (nor recorded) as this survey's. A folder whose manifest records ``ok`` cutouts
    of this very request is this survey's (a file without its row is a killed run's cutout, kept);
    a FITS cutout whose header names this survey and layer is taken too. SDSS runs adopt such
    files as before (folders of SDSS JPEGs written before galmet kept manifests)."""
    images = root / IMAGES_DIR
    fetches = (opts.survey, opts.layer, opts.format)
    if opts.survey == DEFAULT_SURVEY or not images.is_dir():
        return
    if any(r.status == "ok" and (r.survey, r.layer, r.format) == fetches for r in records.values()):
        return
    for oid in cat["objID"].to_numpy(dtype=np.int64).tolist():
        rec = records.get(oid)
        path = images / f"{oid}{opts.suffix}"
        if rec is not None and (rec.survey, rec.layer, rec.format) == fetches:
            continue
        if os.path.lexists(path) and owned_by_galmet(path) and not _fits_of(path, opts):
            raise ConfigError(
                f"{path}: has no row in {root / MANIFEST}, so where it was imaged is unknown and it is not taken as a "
                f"{opts.survey} cutout: move {images} away, or {way_out(root, opts)}",
                param="survey",
            )


def _fits_of(path: Path, opts: DownloadOptions) -> bool:
    """True when ``path`` is a FITS cutout whose header names ``opts``' survey and layer."""
    if opts.suffix != FITS_SUFFIX:
        return False
    try:
        meta = read_fits_header(path).meta
    except (DataError, OSError):
        return False
    return meta.get("SURVEY") == opts.survey and (meta.get("LAYER") or None) == opts.layer


def _survey_name(survey: str, layer: str | None) -> str:
    """``"legacy ls-dr10"``, ``"sdss"``: a survey and its layer, as the messages name them."""
    return f"{survey} {layer}" if layer else survey


def way_out(root: Path, opts: DownloadOptions) -> str:
    """The command that downloads ``opts``' cutouts of ``root``'s catalogue into a new folder."""
    catalog = find_catalog(root) or root / CATALOG_PARQUET
    layer = f" --layer {opts.layer}" if opts.layer and opts.layer != get_survey(opts.survey).layers[0] else ""
    fmt = f" --format {opts.format}" if opts.format != get_survey(opts.survey).formats[0] else ""
    return f"download into a new folder: galmet download NEW --catalog {catalog} --survey {opts.survey}{layer}{fmt}"


def _fetched_sizes(records: dict[int, ManifestRecord]) -> dict[int, int]:
    """objID -> bytes of each cutout ``records`` hold as fetched (status ``ok``). A file of
    exactly that size at the cutout's name is the cutout galmet fetched (a download from before
    galmet kept ledgers stays usable)."""
    return {oid: rec.bytes for oid, rec in records.items() if rec.status == "ok" and rec.bytes}


def _downloaded(path: Path, fetched: dict[int, int], oid: int) -> bool:
    """True when the file at cutout ``oid``'s name is galmet's: in the ledger, or a regular file
    (not a link) of the size the galmet manifest recorded for it."""
    if owned_by_galmet(path):
        return True
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and fetched.get(oid) == st.st_size


def _refuse_foreign_cutouts(images: Path, cat: pd.DataFrame, fetched: dict[int, int], suffix: str = ".jpg") -> None:
    """ConfigError when a file at one of the catalogue's cutout names (``images/OBJID<suffix>``) was
    not written by galmet (a user's image, text, a link, a FIFO; see :func:`_downloaded`):
    download never adopts nor replaces it without ``overwrite``."""
    if not images.is_dir():
        return
    for oid in cat["objID"].to_numpy(dtype=np.int64).tolist():
        path = images / f"{oid}{suffix}"
        if os.path.lexists(path) and not _downloaded(path, fetched, oid):
            raise ConfigError(
                f"{path}: exists and was not written by galmet; move it away or use overwrite to fetch over it",
                param=("dataset", "overwrite"),
            )


def _same_scale(recorded: float, scale: float) -> bool:
    """True when two pixel scales (arcsec/px) are the same request: equal to 1e-6, or both NaN (a
    row whose petroR90_r gave no scale under ``scale_by_size``)."""
    if math.isnan(recorded) or math.isnan(scale):
        return math.isnan(recorded) and math.isnan(scale)
    return math.isclose(recorded, scale, rel_tol=1e-6)


class _Run:
    """One download run: plan, fetch concurrently, keep the manifest."""

    def __init__(
        self,
        root: Path,
        cat: pd.DataFrame,
        opts: DownloadOptions,
        source: CutoutSource,
        on_result: Callable[[CutoutOutcome], None] | None = None,
        overwrite: bool = False,
    ):
        self.root, self.cat, self.opts, self.source = root, cat, opts, source
        self.suffix = source.suffix
        self.overwrite = overwrite
        self.on_result = on_result
        self.images = root / IMAGES_DIR
        self.manifest_path = root / MANIFEST
        self.records: dict[int, ManifestRecord] = {}
        if _galmet_manifest(self.manifest_path):
            self.records = load_manifest(self.manifest_path)
        elif self.manifest_path.exists():  # (replaced under overwrite: no earlier run's record)
            log.warning(
                "%s: not written by galmet; starting a new manifest (images on disk are kept)", self.manifest_path
            )
        self.fetched = {} if overwrite else _fetched_sizes(self.records)  # (a cutout galmet wrote before the ledger)
        #: objIDs whose cutout on disk was made with other settings: removed if this run's fetch fails
        self.stale: set[int] = set()
        self.stop = threading.Event()
        self.budget = FailureBudget(opts.failure_budget, self.stop)
        self.summary = DownloadSummary(total=len(cat), manifest=self.manifest_path)

    # -- planning -------------------------------------------------------------------------
    def plan(self) -> list[_Task]:
        """Rows still to fetch; counts present images and earlier permanent failures."""
        todo: list[_Task] = []
        ids = self.cat["objID"].to_numpy(dtype=np.int64)
        ras = pd.to_numeric(self.cat["ra"], errors="coerce").to_numpy(dtype=np.float64)
        decs = pd.to_numeric(self.cat["dec"], errors="coerce").to_numpy(dtype=np.float64)
        scales = _scales(self.cat, self.opts)
        for oid, ra, dec, scale in zip(ids.tolist(), ras, decs, scales, strict=True):
            rec = self.records.get(oid)
            path = self.images / f"{oid}{self.suffix}"
            try:
                mine = _downloaded(path, self.fetched, oid)
                nbytes = path.stat().st_size if mine else -1  # else: fetched over it (overwrite)
            except FileNotFoundError:
                nbytes = -1
            if nbytes >= 0:
                same = rec is not None and rec.status == "ok" and rec.bytes == nbytes
                other_cutout = rec is not None and same and self._other_cutout(rec, float(scale))
                trusted = rec is not None and same and bool(rec.size) and not other_cutout and not self.opts.verify
                if other_cutout:
                    log.debug("%s: made with another size, scale, survey, layer or format; re-fetching", path)
                    self.stale.add(oid)
                elif not trusted:
                    try:
                        self._check_image(path, oid)
                        trusted = True
                        self._record(oid, "ok", 0, "", False, nbytes, float(scale))
                    except DataError as exc:
                        log.warning("%s: re-fetching (%s)", path, str(exc).removeprefix(f"objID {oid}: "))
                if trusted:
                    self.summary.present += 1
                    self._tell(oid, "ok", fetched=False)
                    continue
            if rec is not None and self._failed_for_good(rec, float(scale)):
                self.summary.failed_before += 1
                self._tell(oid, "failed", rec.last_error, True, fetched=False)
                continue
            bad = (
                "ra/dec are not finite numbers"
                if not (math.isfinite(ra) and math.isfinite(dec))
                else f"ra/dec ({ra:g}, {dec:g}) are not a sky position (0 <= ra < 360, -90 <= dec <= 90)"
                if not (0 <= ra < 360 and -90 <= dec <= 90)
                else "petroR90_r is not a positive number (--scale-by-size)"
                if not scale > 0
                else ""
            )
            if bad:
                self._record(oid, "failed", 0, bad, True, 0, float(scale))
                self.summary.failed += 1
                self.summary.reasons[failure_reason(bad)] += 1
                self._tell(oid, "failed", bad, True)
                continue
            todo.append(_Task(oid, float(ra), float(dec), float(scale)))
        return todo

    def _failed_for_good(self, rec: ManifestRecord, scale: float) -> bool:
        """True when ``rec`` is a permanent failure of this very request (survey, layer, format,
        size, scale at ``scale`` arcsec/px) and ``retry_failed`` is off: it is not fetched again.
        A permanent failure of other settings (another survey's footprint, another layer) says
        nothing about this run's request: that row is fetched (its attempts count kept)."""
        if rec.status != "failed" or not rec.permanent or self.opts.retry_failed:
            return False
        if self._other_cutout(rec, scale):
            log.debug("objID %d: failed for good with other settings; fetching it with this run's", rec.objID)
            return False
        return True

    def _other_cutout(self, rec: ManifestRecord, scale: float) -> bool:
        """True when ``rec`` (a cutout on disk, or a failure) was asked with another size, scale
        (``scale``: this run's, arcsec/px), survey, layer or format than this run's. A record
        without a size or scale (a manifest from before they were kept) matches any."""
        opts = self.opts
        return bool(
            (rec.size and rec.size != opts.size)
            or (rec.scale and not _same_scale(rec.scale, scale))
            or (rec.survey, rec.layer, rec.format) != self._fetches()
        )

    def _fetches(self) -> tuple[str, str | None, str]:
        """(survey, layer, format) of this run's cutouts, as the manifest records them."""
        return self.source.survey.name, self.source.layer, self.source.format

    def _check_image(self, path: Path, oid: int) -> None:
        """DataError unless ``path`` decodes as a cutout of this run's size (a FITS one: 3 bands)."""
        if self.suffix == FITS_SUFFIX:
            read_fits(path, self.opts.size, bands=3, where=f"objID {oid}")
        else:
            read_image(path, self.opts.size, where=f"objID {oid}")

    def _tell(self, oid: int, status: str, error: str = "", permanent: bool = False, fetched: bool = True) -> None:
        if self.on_result is not None:
            self.on_result(CutoutOutcome(oid, status, self.images / f"{oid}{self.suffix}", error, permanent, fetched))

    def _record(
        self, oid: int, status: str, attempts: int, error: str, permanent: bool, nbytes: int, scale: float
    ) -> None:
        old = self.records.get(oid)
        self.records[oid] = ManifestRecord(
            oid,
            status,
            (old.attempts if old else 0) + attempts,
            error,
            permanent,
            nbytes,
            self.opts.size,
            scale,
            _now(),
            *self._fetches(),
        )

    def _remove_stale(self, oid: int) -> None:
        """Delete galmet's cutout of ``oid`` made with other settings once this run's fetch of it
        failed: the folder must not offer it as this run's (nor a rerun adopt it as one)."""
        path = self.images / f"{oid}{self.suffix}"
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("%s: cannot remove the cutout made with other settings (%s)", path, exc.strerror)

    # -- one image (worker threads) -------------------------------------------------------
    def fetch(self, task: _Task) -> _Result:
        where = f"objID {task.oid}"
        if self.stop.is_set():
            return _Result(task.oid, None)
        scale = task.scale
        try:
            body, _, attempts = self.source.get_cutout(
                task.ra, task.dec, task.scale, self.opts.size, where=where, stop=self.stop, budget=self.budget
            )
        except Interrupted as exc:  # (stopping: the requests it sent still count)
            return _Result(task.oid, None, attempts=exc.attempts)
        except ServiceError as exc:
            error = str(exc).removeprefix(f"{where}: ")
            outside = isinstance(exc, OutsideFootprint)
            return _Result(task.oid, "failed", scale, exc.attempts, error, exc.permanent, outside=outside)
        name = f"{task.oid}{self.suffix}"
        try:
            atomic_write_bytes(self.images / name, body, durable=self.opts.durable)
        except OSError as exc:
            return _Result(task.oid, None, scale, attempts, fatal=f"{self.images}: cannot write {name} ({exc})")
        return _Result(task.oid, "ok", scale, attempts, nbytes=len(body))

    # -- the run --------------------------------------------------------------------------
    def run(self) -> DownloadSummary:
        t0 = time.monotonic()
        todo = self.plan()
        s = self.summary
        self._announce(len(todo))
        allowed = self.opts.max_failures * s.to_fetch
        bar = None
        if todo:
            bar = progress_bar(
                total=len(todo),
                desc="cutouts",
                unit="img",
                enabled=self.opts.progress,
                dynamic_ncols=True,
                smoothing=0.05,
            )
        tasks: queue.Queue = queue.Queue()
        results: queue.Queue = queue.Queue()
        workers = _start_workers(self._worker, (tasks, results), min(self.opts.workers, max(1, len(todo))))
        outstanding, feed, fatal = 0, iter(todo), ""
        last_flush, interval = time.monotonic(), self.opts.manifest_every
        try:
            while True:
                while not self.stop.is_set() and outstanding < 2 * len(workers):
                    task = next(feed, None)
                    if task is None:
                        break
                    tasks.put(task)
                    outstanding += 1
                if outstanding == 0:
                    break
                try:
                    res = results.get(timeout=0.2)
                except queue.Empty:
                    res = None
                    _check_workers_alive(workers)  # a dead worker's task would be waited for forever
                if res is not None:
                    outstanding -= 1
                    fatal = fatal or self._take(res, bar)
                    if fatal:
                        self.stop.set()
                    self._check_failure_budget(allowed)
                if time.monotonic() - last_flush >= interval:
                    t_write = time.monotonic()
                    write_manifest(self.manifest_path, self.records)
                    last_flush = time.monotonic()
                    # a huge manifest must not take more than ~10% of the main thread's time
                    interval = max(self.opts.manifest_every, 10 * (last_flush - t_write))
        except KeyboardInterrupt:
            s.interrupted = True
            self.stop.set()
            # give in-flight requests a moment; the rest are abandoned (daemon threads), and any
            # image they finish later is found valid on disk by the next run
            deadline = time.monotonic() + 2.0
            with contextlib.suppress(KeyboardInterrupt):
                while outstanding and time.monotonic() < deadline:
                    with contextlib.suppress(queue.Empty):
                        self._take(results.get(timeout=0.1), bar)
                        outstanding -= 1
        finally:
            for _ in workers:
                tasks.put(None)
            if bar is not None:
                bar.close()
            write_manifest(self.manifest_path, self.records)
            s.seconds = time.monotonic() - t0
            s.not_done = max(0, s.to_fetch - s.ok - s.failed)
        if fatal:
            raise DataError(fatal)
        return s

    def _announce(self, n_todo: int) -> None:
        """Count what this run fetches and say so in the log."""
        s = self.summary
        s.to_fetch = n_todo + s.failed
        log.info(
            "%s: %d cutouts to fetch, %d already present, %d failed before%s",
            self.root,
            n_todo,
            s.present,
            s.failed_before,
            " (use --retry-failed to try them again)" if s.failed_before else "",
        )

    def _check_failure_budget(self, allowed: float) -> None:
        """Stop the run (once) when the server is unreachable (``--failure-budget`` requests in a
        row got no answer), the failures exceed ``--max-failures`` of what it fetches, or
        ``--max-consecutive-failures`` fetches in a row failed."""
        s = self.summary
        if s.aborted:
            return
        if self.budget.exhausted:
            s.stop_param = "failure_budget"
            s.stop_reason = (
                f"{self.budget.failures} requests in a row got no answer from the server "
                f"(failure_budget {self.opts.failure_budget}; last: {self.budget.last_error})"
            )
        elif s.failed - s.outside > allowed:
            s.stop_param = "max_failures"
            s.stop_reason = (
                f"{s.failed - s.outside} failures exceed max_failures {self.opts.max_failures:g} of {s.to_fetch} "
                "to fetch"
            )
        elif s.streak >= self.opts.max_consecutive_failures:
            s.stop_param = "max_consecutive_failures"
            s.stop_reason = (
                f"{s.streak} fetches in a row failed after their retries "
                f"(max_consecutive_failures {self.opts.max_consecutive_failures}; last: {s.last_error})"
            )
        else:
            return
        s.aborted = True
        log.error("stopping: %s", s.stop_reason)
        self.stop.set()

    def _worker(self, tasks: queue.Queue, results: queue.Queue) -> None:
        while True:
            task = tasks.get()
            if task is None:
                return
            try:
                results.put(self.fetch(task))
            except Exception as exc:  # noqa: BLE001 - a bug must not hang the main loop
                what = out_of_resources(exc)
                if what is not None:  # (the main thread raises it: see _check_workers_alive)
                    threading.current_thread().galmet_error = exc  # type: ignore[attr-defined]
                    return
                log.exception("objID %s: unexpected error", task.oid)
                results.put(_Result(task.oid, None, fatal=f"objID {task.oid}: unexpected {type(exc).__name__}: {exc}"))

    def _take(self, res: _Result, bar) -> str:
        s = self.summary
        s.requests += res.attempts
        if res.status is None:
            return res.fatal
        self._record(res.oid, res.status, res.attempts, res.error, res.permanent, res.nbytes, res.scale)
        if res.status == "ok" and s.ok == 0:  # the folder's survey on record at once (see _refuse_unknown_cutouts)
            write_manifest(self.manifest_path, self.records)
        if res.status == "failed" and res.oid in self.stale:
            self._remove_stale(res.oid)
        if res.status == "ok":
            s.ok += 1
            s.streak = 0
        elif res.outside:  # an answer: the server works, the survey has no imaging there
            s.failed += 1
            s.outside += 1
            s.reasons[OUTSIDE_FOOTPRINT] += 1
            s.streak = 0
        else:
            s.failed += 1
            s.reasons[failure_reason(res.error)] += 1
            s.streak += 1  # any failure: a dead server's come in a row (so do its error pages and wrong answers)
            s.last_error = res.error
            log.debug("objID %d failed: %s", res.oid, res.error)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"ok={s.ok} failed={s.failed}", refresh=False)
        self._tell(res.oid, res.status, res.error, res.permanent)
        return ""
