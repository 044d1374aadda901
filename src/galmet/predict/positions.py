"""Predict at sky positions, at catalogue scale: positions -> cutouts -> batches -> predictions.

The cutouts are fetched by the downloader (:func:`galmet.sdss.download.download_cutouts`: its
workers, rate limit, retries, validation and manifest), which reports each cutout as soon as it is
on disk; a prediction thread collects them into shards and predicts each shard while the next
cutouts are fetched. Everything lives in a work folder::

    WORK/positions-run.json        settings and fingerprint of the run (a rerun resumes only the same run)
    WORK/shards/shard-000000.parquet  finished rows: row, status, error, predictions, flags (atomic)
    WORK/cutouts/                  a dataset directory: catalog.parquet, images/<key>.jpg (.fits), manifest.parquet
                                   (``keep_cutouts=DIR`` puts it there instead, and keeps it)

Fetching pauses while :data:`BACKLOG_SHARDS` shards' worth of cutouts wait to be predicted
(back-pressure: a slow model does not fill the disk), and a dead server stops the run after the
download's ``max_consecutive_failures`` fetches in a row failed (one-line DataError; the shards
stay, so the rerun resumes, from another ``base_url`` if need be).

After Ctrl-C or ``kill -9`` the same command resumes: rows of finished shards are neither
fetched nor predicted again, cutouts on disk (or failed for good in the manifest) are not fetched
again; rows whose fetch failed only transiently are tried again. When every row is done the
table is assembled from the shards (:func:`galmet.predict.output.positions_table`), written when
:func:`predict_positions` is given ``out``, and only then are the work folder's files (and the
cutouts, unless kept) deleted: a write that fails leaves everything for the rerun.

Each row gets a ``status`` (:data:`galmet.columns.STATUSES`): ``ok``; ``invalid position``
(ra/dec missing or off the sky); ``fetch failed`` (HTTP errors, timeouts, connection failures
after the retries); ``bad image`` (the server sent the wrong image, at once, or an error page to the last
try); ``outside footprint`` (a blank cutout: SDSS has no imaging there). Rows that are not ok
have an ``error`` message and no prediction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import (
    ERROR,
    FLAGS,
    OBJID,
    STATUS,
    STATUS_BAD,
    STATUS_BLANK,
    STATUS_FETCH,
    STATUS_INVALID,
    STATUS_NOT_IN_ARCHIVE,
    STATUS_OK,
    STATUSES,
    TRUTH_FLAGS,
    pred_column,
)
from galmet.data.archive import DEFAULT_MATCH_RADIUS, CutoutArchive, check_apart, check_match_radius, open_archive
from galmet.data.imaging import Imaging
from galmet.data.surveys import DEFAULT_SURVEY, Survey, get_survey
from galmet.errors import ConfigError, DataError
from galmet.io.atomic import atomic_write_text, remove_stale_temp_files
from galmet.io.fits_images import FITS_SUFFIX, read_fits
from galmet.io.images import read_image
from galmet.io.locks import exclusive
from galmet.io.ownership import holds_only_bookkeeping
from galmet.io.progress import progress_bar
from galmet.io.safety import (
    Input,
    check_output_dir,
    check_output_file,
    check_owned_folder,
    model_input,
    remove_empty_dirs,
    remove_files,
)
from galmet.io.tables import (
    check_fits_out,
    file_sha256,
    read_table,
    require_table_format,
    table_provenance,
    write_table,
)
from galmet.layout import (
    CATALOG_PARQUET,
    IMAGES_DIR,
    MANIFEST,
    POSITIONS_CUTOUTS,
    POSITIONS_CUTOUTS_MARKER,
    POSITIONS_RUN,
    POSITIONS_SHARDS,
    POSITIONS_WORK_SUFFIX,
    RUN_LOCK,
    positions_shard,
)
from galmet.nn.device import resolve_device
from galmet.nn.inference import GalmetModel, InferenceOptions, inference_options, named_model
from galmet.paper import DATA_RELEASE, IMAGE_SIZE
from galmet.predict.flags import flag_rows
from galmet.predict.output import ROW, positions_table, write_positions_table
from galmet.sdss.answers import is_blank
from galmet.sdss.at_positions import KEEP, download_options
from galmet.sdss.coords import Positions, cutout_keys, sky_positions
from galmet.sdss.download import (
    DOWNLOAD_RANGES,
    CutoutOutcome,
    DownloadOptions,
    DownloadSummary,
    download_cutouts,
    failure_reason,
)
from galmet.sdss.skyserver import DATA_RELEASES, SkyServerClient
from galmet.sdss.sources import OUTSIDE_FOOTPRINT, check_scale, suffix_of
from galmet.sdss.transport import check_base_url

__all__ = [
    "STATUSES",
    "STATUS_BAD",
    "STATUS_BLANK",
    "STATUS_FETCH",
    "STATUS_INVALID",
    "STATUS_NOT_IN_ARCHIVE",
    "STATUS_OK",
    "FetchSettings",
    "PositionsJob",
    "PositionsOptions",
    "PositionsSummary",
    "default_work_dir",
    "fetch_settings",
    "positions_table",
    "predict_positions",
    "reason_of",
    "status_of",
    "write_positions_table",
]

log = logging.getLogger(__name__)

#: A JPEG cutout whose pixels span at most this many levels (of 255) is blank: no imaging there (a FITS
#: cutout is blank only when its fluxes are: :func:`galmet.sdss.answers.is_blank`).
BLANK_RANGE = 12
#: Seconds a Ctrl-C waits for the shard being predicted before abandoning it.
INTERRUPT_GRACE = 2.0
#: Most rows in one shard of results (each shard is held in memory until it is written).
MAX_SHARD_SIZE = 1 << 20
#: Shard column: the row's outcome is final (a transient fetch failure is tried again on resume).
PERMANENT = "permanent"
#: Fetching pauses while more than this many shards' worth of cutouts wait on disk to be predicted.
BACKLOG_SHARDS = 2
#: Matched archive images whose headers are read to check the archive's image size.
ARCHIVE_SAMPLE = 33


# --- what to fetch --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FetchSettings:
    """How the cutouts are fetched, from the model's imaging metadata (see :func:`fetch_settings`).

    Attributes
    ----------
    size : int
        Pixels per side as fetched.
    scale : float
        Arcsec per pixel (fixed mode).
    scale_mode : {"fixed", "scale-by-size"}
    data_release : str
        The SDSS data release (``""`` for another survey).
    base_url : str
        The root of the survey's cutout service.
    survey : str
        The imaging survey (:data:`galmet.data.surveys.SURVEYS`): the model's, unless a transfer
        experiment asks for another.
    layer : str or None
        The survey's image layer (None: it has none).
    format : {"jpeg", "fits"}
    """

    size: int
    scale: float
    scale_mode: str
    data_release: str
    base_url: str
    survey: str = DEFAULT_SURVEY
    layer: str | None = None
    format: str = "jpeg"

    @property
    def imaging(self) -> Imaging:
        """What these cutouts are, for :meth:`galmet.nn.inference.GalmetModel.check_survey`."""
        bands = get_survey(self.survey).bands
        return replace(
            Imaging.unknown(self.size), survey=self.survey, layer=self.layer, bands=bands, format=self.format
        )


def fetch_settings(
    model: GalmetModel,
    base_url: str | None = None,
    survey: str | None = None,
    layer: str | None = None,
    format: str | None = None,  # noqa: A002 - the name --format and DownloadOptions use
) -> FetchSettings:
    """The cutouts ``model`` was trained on: its bundle's imaging metadata (``model.imaging``:
    survey, layer, format, pixel scale, size), or, for bundles without it, the paper's SDSS DR14
    JPEGs (0.296"/pixel, the model's image size).

    ``base_url`` overrides the service root (a mirror, a test server; default: the data
    release's SkyServer for SDSS, the survey's service otherwise). ``survey``, ``layer`` and
    ``format`` fetch another survey's (or layer's, format's) cutouts than the model's, at the
    model's scale and size (a transfer experiment: the run must allow another survey; a bundle
    that records no pixel scale was trained at its own survey's default,
    :attr:`galmet.data.surveys.Survey.default_pixel_scale`, never the fetched survey's); None:
    the model's (a layer or format the model does not record: the survey's default).
    """
    imaging = model.imaging
    info, layer, fmt = fetch_survey(model, survey, layer, format)
    # the bundle's input size (before any crop the network applies), unless the imaging says how it was fetched;
    # a training set that recorded no scale or release (a folder of cutouts) was, by default, the paper's
    size = imaging.fetch_size or model.image_size or imaging.image_size or IMAGE_SIZE
    scale = model_pixel_scale(model)
    mode = imaging.scale_mode
    release = (imaging.data_release or DATA_RELEASE) if info.name == DEFAULT_SURVEY else ""
    if mode not in ("fixed", "scale-by-size"):
        raise ConfigError(f"{model.path or 'model'}: unknown imaging scale mode {mode!r}")
    _check_fetchable(model, int(size), float(scale), info.name)
    if base_url is None and info.name != DEFAULT_SURVEY:
        base_url = info.base_url
    elif base_url is None:
        if release not in DATA_RELEASES:
            raise ConfigError(
                f"{model.path or 'model'}: trained on {release} cutouts; galmet knows {', '.join(DATA_RELEASES)} "
                "(give the server with base_url)",
                param="base_url",
            )
        base_url = DATA_RELEASES[release]
    root = str(base_url).rstrip("/")
    log.info("positions: fetching %s %s cutouts of %d px at %s", info.name, fmt, int(size), _scale_origin(model))
    return FetchSettings(int(size), float(scale), mode, str(release), root, info.name, layer, fmt)


def model_pixel_scale(model: GalmetModel) -> float:
    """Arcsec per pixel of the cutouts ``model`` was trained on: its bundle's ``imaging.pixel_scale``,
    else its own survey's default (:attr:`galmet.data.surveys.Survey.default_pixel_scale`: SDSS
    0.296, the paper's), whatever survey a transfer experiment fetches."""
    imaging = model.imaging
    if imaging.pixel_scale:
        return float(imaging.pixel_scale)
    return get_survey(imaging.survey).default_pixel_scale


def _scale_origin(model: GalmetModel) -> str:
    """How the log says which pixel scale a positions run fetches at, and where it comes from."""
    scale = model_pixel_scale(model)
    if model.imaging.pixel_scale:
        return f"{scale:g} arcsec/pixel (the model's imaging.pixel_scale)"
    own = model.imaging.survey or DEFAULT_SURVEY
    return f"{scale:g} arcsec/pixel (the model records none: its survey {own}'s default)"


def fetch_survey(
    model: GalmetModel,
    survey: str | None = None,
    layer: str | None = None,
    format: str | None = None,  # noqa: A002 - the name --format and DownloadOptions use
) -> tuple[Survey, str | None, str]:
    """(survey, layer, format) of the cutouts a positions run of ``model`` fetches: the model's
    own, unless ``survey``, ``layer`` or ``format`` ask for others (a layer or format neither
    gives nor the model records: the survey's default); ConfigError for one the survey lacks
    (a model of a format its own survey's service does not serve: one line naming the model)."""
    imaging = model.imaging
    own = survey is None or survey == (imaging.survey or DEFAULT_SURVEY)
    info = get_survey(survey or imaging.survey or DEFAULT_SURVEY)
    layer = info.check_layer(layer if layer is not None or not own else imaging.layer)
    if own and format is None and imaging.format and imaging.format not in info.formats:
        raise ConfigError(_unservable(model, info, imaging.format))
    fmt = info.check_format(format if format is not None or not own else imaging.format)
    return info, layer, fmt


#: How messages name each survey's cutout service.
SERVICES = {"sdss": "SkyServer", "legacy": "the Legacy Survey viewer", "ps1": "PS1's cutout service"}


def _unservable(model: GalmetModel, info: Survey, fmt: str) -> str:
    """The one line of a model trained on ``fmt`` cutouts that ``info``'s service does not serve."""
    what = "fits fluxes" if fmt == "fits" else f"{fmt} images"
    served = " or ".join(info.formats)
    return (
        f"{model.path or 'model'}: the model was trained on {info.name} {what}; "
        f"{SERVICES.get(info.name, info.name)} serves {info.name} cutouts as {served} only, so it cannot predict "
        f"at sky positions (predict a {fmt.upper()} dataset instead)"
    )


def survey_title(survey: str) -> str:
    """How messages name a survey's imaging: ``SDSS``, ``Legacy Surveys``, ``PS1``."""
    return {"sdss": "SDSS", "legacy": "Legacy Surveys", "ps1": "PS1"}.get(survey, survey)


def _check_fetchable(model: GalmetModel, size: int, scale: float, survey: str = DEFAULT_SURVEY) -> None:
    """ConfigError (no parameter: the bundle's own field is named) when the model's cutouts are
    outside what the survey's cutout service gives (:data:`galmet.sdss.download.DOWNLOAD_RANGES`;
    PS1: its native 0.25 arcsec per pixel only)."""
    field_of = "bundle's imaging.fetch_size" if model.imaging.fetch_size else "bundle's image_size"
    title = survey_title(survey)
    own = model.imaging.survey or DEFAULT_SURVEY
    scale_of = (
        "bundle's imaging.pixel_scale"
        if model.imaging.pixel_scale
        else f"model's pixel scale (the bundle records none: {own}'s default)"
    )
    for name, value, what in (("size", size, field_of), ("scale", scale, scale_of)):
        accepted = DOWNLOAD_RANGES[name]
        try:
            accepted.check(name, value)
            if name == "scale":
                check_scale(survey, value)
        except ConfigError:
            unit = "pixels" if name == "size" else "arcsec per pixel"
            can = f"{accepted.lo:g} to {accepted.hi:g} {unit}" if survey != "ps1" or name == "size" else "0.25 only"
            raise ConfigError(
                f"{model.path or 'model'}: the {what} is {value:g} {unit}; {title} cutouts can be fetched "
                f"at {can}, so this model cannot predict at sky positions"
            ) from None


# --- options and summary --------------------------------------------------------------------------
@dataclass
class PositionsOptions:
    """Settings of a positions run (see :func:`predict_positions` for each).

    ``inference`` carries the TTA, batch size and device of the model (its ``progress`` is
    the rows' progress bar: each shard is predicted without one). ``download`` carries the
    fetch settings (workers, rate, retries, timeout, backoff, body cap); its survey, layer,
    format, size and scale are replaced by the model's imaging. ``survey``, ``layer`` and
    ``format`` (None: the model's) fetch another survey's cutouts, which ``allow_other_survey``
    must allow (a transfer experiment: every row is flagged ``OTHER_SURVEY``).
    """

    inference: InferenceOptions = field(default_factory=InferenceOptions)
    flags: bool = True
    shard_size: int = 1024
    flush_every: float = 30.0
    work_dir: Path | None = None
    keep_cutouts: Path | None = None
    base_url: str | None = None
    download: DownloadOptions = field(default_factory=DownloadOptions)
    archive: Path | None = None
    match_radius: float = DEFAULT_MATCH_RADIUS
    survey: str | None = None
    layer: str | None = None
    format: str | None = None
    allow_other_survey: bool = False

    def check(self) -> None:
        """Raise ConfigError naming the first bad option (``param``: its name)."""
        lo, hi = 1, MAX_SHARD_SIZE
        if isinstance(self.shard_size, bool) or not isinstance(self.shard_size, int) or not lo <= self.shard_size <= hi:
            raise ConfigError(
                f"shard_size must be an integer from {lo} to {hi}, got {self.shard_size!r}", param="shard_size"
            )
        if not (
            isinstance(self.flush_every, (int, float)) and math.isfinite(self.flush_every) and self.flush_every > 0
        ):
            raise ConfigError(
                f"flush_every must be a positive number of seconds, got {self.flush_every!r}", param="flush_every"
            )
        self.download.check()
        check_match_radius(self.match_radius)
        if self.survey is not None:
            get_survey(self.survey)
        if self.base_url is not None:
            check_base_url(self.base_url)
        resolve_device(self.inference.device)  # "cuda" without a GPU: refused now, not after the first shard


@dataclass
class PositionsSummary:
    """What a positions run did.

    Attributes
    ----------
    rows : int
        Rows of the input.
    statuses : Counter
        Rows per status (all rows of the finished table).
    resumed : int
        Rows taken from the shards of an earlier, interrupted run.
    predicted : int
        Images passed to the model in this run (a cutout shared by rows counts once).
    fetched : int
        Cutouts fetched in this run (the rest were on disk, or failed before).
    archived : int
        Rows whose cutout this run took from the local cutout archive (``archive``), not fetched.
    download : DownloadSummary or None
        The downloader's own summary (None when nothing was left to fetch).
    reasons : Counter
        Rows not predicted, by reason (:func:`reason_of`: ``HTTP 404``, ``timed out``, ``connection
        failed``, ``not a JPEG``, ``bad image`` ... for fetch failures and bad images, else the status:
        ``outside footprint``, ``invalid position``), over every run of the work folder: they add up
        to the rows whose status is not ``ok``, also after a resume.
    interrupted : bool
    seconds : float
    """

    rows: int = 0
    statuses: Counter = field(default_factory=Counter)
    resumed: int = 0
    predicted: int = 0
    fetched: int = 0
    archived: int = 0
    download: DownloadSummary | None = None
    reasons: Counter = field(default_factory=Counter)
    interrupted: bool = False
    seconds: float = 0.0

    def line(self) -> str:
        """One line for the terminal: rows by status, failures tallied by reason."""
        ok = self.statuses.get(STATUS_OK, 0)
        bad = {s: n for s, n in self.statuses.items() if s != STATUS_OK}
        text = f"positions: {ok} of {self.rows} rows predicted"
        if bad:
            text += ", not predicted: " + ", ".join(f"{n} {s}" for s, n in sorted(bad.items(), key=lambda kv: -kv[1]))
        text += f"; {self.fetched} cutouts fetched, {self.predicted} images predicted in this run"
        if self.archived:
            text += f" ({self.archived} rows from the cutout archive)"
        if self.resumed:
            text += f", {self.resumed} rows resumed from an earlier run"
        if self.reasons:
            text += "; failures by reason: " + ", ".join(f"{n} {r}" for r, n in self.reasons.most_common())
        return text + f" ({self.seconds:.1f} s)"


def reason_of(status: str, error: str) -> str:
    """The tally reason of a row that was not predicted: the short reason of its error
    (:func:`galmet.sdss.download.failure_reason`) when its cutout failed to fetch or was a bad
    image, else its status (``outside footprint``, ``invalid position``)."""
    return failure_reason(error) if status in (STATUS_FETCH, STATUS_BAD) else status


def status_of(outcome: CutoutOutcome) -> str:
    """The row status of a failed cutout: ``invalid position``, ``outside footprint``, ``fetch
    failed`` or ``bad image``."""
    reason = failure_reason(outcome.error)
    if reason == "bad position":
        return STATUS_INVALID
    if reason == OUTSIDE_FOOTPRINT:  # (the survey has no imaging there: blank sky, no PS1 image)
        return STATUS_BLANK
    if reason.startswith("HTTP ") or reason in ("timed out", "connection failed"):
        return STATUS_FETCH
    return STATUS_BAD


# --- the run ----------------------------------------------------------------------------------
class PositionsJob:
    """One positions run: check, then :meth:`run` (resumable), then :meth:`cleanup`.

    Parameters
    ----------
    model : GalmetModel
    positions : Positions
        From :func:`galmet.sdss.coords.sky_positions`.
    opts : PositionsOptions
    client : SkyServerClient, optional
        Fetches the cutouts (tests, or a configured client); default: built from ``opts.download``.
    summary : PositionsSummary, optional
        Filled in as the run goes (default: a new one, :attr:`summary`).
    """

    def __init__(
        self,
        model: GalmetModel,
        positions: Positions,
        opts: PositionsOptions,
        client: SkyServerClient | None = None,
        summary: PositionsSummary | None = None,
    ):
        opts.check()
        self.model, self.positions, self.opts, self.client = model, positions, opts, client
        self.fetch = fetch_settings(
            model, client.base_url if client is not None else opts.base_url, opts.survey, opts.layer, opts.format
        )
        #: What differs from the model's survey (a transfer experiment the options allow), else None.
        asked = [name for name in ("survey", "layer", "format") if getattr(opts, name) is not None]
        instead = f"fetch the model's own (without {', '.join(asked)})" if asked else None
        self.other_survey = model.check_survey(self.fetch.imaging, "positions", opts.allow_other_survey, instead)
        self.n = len(positions)
        self.valid = positions.valid()
        self.keys, self.key_kind = cutout_keys(positions)
        self.petro = self._petro()
        self.temporary = opts.work_dir is None
        self.work = Path(opts.work_dir) if opts.work_dir is not None else None
        self.model_sha = file_sha256(model.path) if model.path is not None and Path(model.path).is_file() else None
        self.summary = summary if summary is not None else PositionsSummary()
        self.summary.rows = self.n
        self.flag_checks: list[str] = []
        self._bar: Any = None
        self._failed = 0
        self.archive: CutoutArchive | None = open_archive(opts.archive) if opts.archive is not None else None
        #: Archive entry of each row within the match radius, -1 for none (:meth:`check` fills it).
        self.matched: np.ndarray | None = None

    # -- checks (nothing is written) ----------------------------------------------------------
    def _petro(self) -> np.ndarray | None:
        if self.fetch.scale_mode != "scale-by-size":
            return None
        frame = self.positions.frame if self.positions.frame is not None else pd.DataFrame()
        col = next((c for c in frame.columns if str(c).lower() == "petror90_r"), None)
        if col is None:
            raise DataError(
                "positions: the model's cutouts were scaled by galaxy size (2 * petroR90_r / 0.396 / size); "
                "the positions need a petroR90_r column (arcsec)"
            )
        return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)

    @property
    def folder(self) -> Path:
        """The work folder (made by :meth:`run` when none was given)."""
        if self.work is None:
            raise RuntimeError("the work folder is made by run()")
        return self.work

    @property
    def cutouts(self) -> Path:
        if self.opts.keep_cutouts is not None:
            return Path(self.opts.keep_cutouts)
        assert self.work is not None
        return self.folder / POSITIONS_CUTOUTS

    def settings(self) -> dict:
        """What must not change between an interrupted run and its resumption."""
        return {
            "fingerprint": self.fingerprint(),
            "model_sha256": self.model_sha,
            "fetch": asdict(self.fetch),
            "tta": self.opts.inference.tta,
            "tta_mode": self.opts.inference.tta_mode,
            "tta_seed": self.opts.inference.tta_seed,
            "flags": self.opts.flags,
        }

    def fingerprint(self) -> str:
        """SHA-256 of the positions (keys, ra, dec, and petroR90_r when scaling by size)."""
        h = hashlib.sha256()
        for arr in (self.keys, self.positions.ra, self.positions.dec, self.petro):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        h.update(self.key_kind.encode())
        return h.hexdigest()

    def check(self) -> None:
        """Refuse (one line) a work folder or cutouts folder that would lose data, before any write."""
        if self.archive is not None:  # (first: the archive's own files would be "not galmet's" below)
            check_apart(self.archive.root, {"work_dir": self.work, "keep_cutouts": self.opts.keep_cutouts})
        if self.work is not None:
            _check_dir(self.work, "work_dir")
            # never adopt (and later delete) a user's files as shards or cutouts
            check_owned_folder(self.work, "work_dir")
            run = self.folder / POSITIONS_RUN
            if run.is_file():
                self._same_run(run)
        if self.opts.keep_cutouts is not None:
            folder = Path(self.opts.keep_cutouts)
            _check_dir(folder, "keep_cutouts")
            check_owned_folder(folder, "keep_cutouts", "cutouts folder")
            marker = folder / POSITIONS_CUTOUTS_MARKER
            if marker.is_file():
                self._same_cutouts(marker)
            elif folder.is_dir() and not holds_only_bookkeeping(folder):
                raise ConfigError(
                    f"keep_cutouts {folder}: is not empty and holds no cutouts of a galmet positions run; "
                    "give a new or empty folder",
                    param="keep_cutouts",
                )
        if self.archive is not None:
            self._check_archive(self.archive)

    def _check_archive(self, archive: CutoutArchive) -> None:
        """Refuse (one line, before any write) an archive whose cutouts are not the model's (size,
        pixel scale, scale mode: read from a sample of the matched images and what the archive
        records); match every row to the archive (:attr:`matched`)."""
        self.matched = archive.match(self.positions.ra, self.positions.dec, self.opts.match_radius)
        hits = np.unique(self.matched[self.matched >= 0])[:ARCHIVE_SAMPLE]
        sample = [p for p in map(archive.image_path, hits.tolist()) if p is not None]
        if not sample:
            return
        im, f = archive.imaging(sample), self.fetch
        other = self.model.check_survey(im, f"archive {archive.root}", self.opts.allow_other_survey)
        self.other_survey = self.other_survey or other
        size_bad = im.image_size is not None and im.image_size != f.size
        scale_bad = (
            f.scale_mode == "fixed"
            and im.pixel_scale is not None
            and not math.isclose(im.pixel_scale, f.scale, rel_tol=1e-3)
        )
        if size_bad or scale_bad or (im.scale_mode is not None and im.scale_mode != f.scale_mode):
            which = f"the model {self.model.path}" if self.model.path else "the model"
            raise DataError(
                f"archive {archive.root}: its cutouts are {im.describe()}; {which} predicts {f.size}x{f.size} px "
                f"cutouts at {f.scale:.4g} arcsec/px ({f.scale_mode}), as it was trained; give an archive of those",
                param="archive",
            )

    def _same_run(self, path: Path) -> None:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"work_dir {path.parent}: unreadable {path.name} ({exc}); remove the folder", param="work_dir"
            ) from None
        new = self.settings()
        diff = [k for k in new if _same_server(old.get(k), k) != _same_server(json.loads(json.dumps(new[k])), k)]
        if diff:
            what = {"fingerprint": "other positions", "model_sha256": "another model"}.get(
                diff[0], f"another {diff[0]}"
            )
            raise ConfigError(
                f"work_dir {path.parent}: holds an unfinished run with {what}; rerun that command to finish it, "
                "or remove the folder (or choose another work folder)",
                param="work_dir",
            )

    def _same_cutouts(self, marker: Path) -> None:
        try:
            old = json.loads(marker.read_text())
        except (OSError, ValueError):
            old = {}
        if (
            _same_server(old.get("fetch"), "fetch") != _same_server(json.loads(json.dumps(asdict(self.fetch))), "fetch")
            or old.get("fingerprint") != self.fingerprint()
        ):
            raise ConfigError(
                f"keep_cutouts {marker.parent}: holds the cutouts of other positions or another imaging; "
                "choose another folder",
                param="keep_cutouts",
            )

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> pd.DataFrame:
        """Fetch and predict every row not done yet; return the rows' results (one per input row,
        by ``row``). Raises KeyboardInterrupt after Ctrl-C, with the finished shards kept."""
        t0 = time.monotonic()
        self.check()
        if self.work is None:
            self.work = Path(tempfile.mkdtemp(prefix="galmet-positions-"))
        try:
            self.work.mkdir(parents=True, exist_ok=True)
            (self.folder / POSITIONS_SHARDS).mkdir(exist_ok=True)
            self.cutouts.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{self.work}: cannot create the work folder ({exc.strerror})") from None
        with exclusive(self.work, RUN_LOCK, "'galmet predict' at positions"):
            try:
                table = self._run_locked()
            finally:
                self.summary.seconds = time.monotonic() - t0
        return table

    def _run_locked(self) -> pd.DataFrame:
        shards = self.folder / POSITIONS_SHARDS
        remove_stale_temp_files(shards)
        run_file = self.folder / POSITIONS_RUN
        if run_file.is_file():
            self._same_run(run_file)
        else:
            atomic_write_text(run_file, json.dumps(self.settings(), indent=2) + "\n")
        atomic_write_text(
            self.cutouts / POSITIONS_CUTOUTS_MARKER,
            json.dumps({"fetch": asdict(self.fetch), "fingerprint": self.fingerprint(), "keys": self.key_kind}) + "\n",
        )
        done = self._load_shards()
        self.summary.resumed = len(done)
        writer = _ShardWriter(self, len(self._shard_files()))
        invalid = [i for i in np.flatnonzero(~self.valid).tolist() if i not in done]
        if invalid:
            writer.write_failed([(i, STATUS_INVALID, "ra/dec missing or off the sky", True) for i in invalid])
        todo = [i for i in np.flatnonzero(self.valid).tolist() if i not in done]
        log.info(
            "%d positions: %d done in an earlier run, %d invalid, %d to fetch and predict (work folder %s)",
            self.n,
            len(done),
            len(invalid),
            len(todo),
            self.work,
        )
        if todo:
            self._fetch_and_predict(todo, writer)
        return self.assemble()

    def _fetch_and_predict(self, todo: list[int], writer: _ShardWriter) -> None:
        """Predict the ``todo`` rows: from the archive's cutouts (when there is one), else from
        fetched ones, in shards (:class:`_Predictor`) while the rest are fetched."""
        predictor = _Predictor(self, writer)
        self._failed = 0
        self._bar = progress_bar(
            total=len(todo),
            desc="positions",
            unit="row",
            enabled=self.opts.inference.progress,
            dynamic_ncols=True,
            smoothing=0.05,
        )
        predictor.start()
        interrupted = aborted = False
        try:
            rest = self._from_archive(todo, predictor) if self.archive is not None else todo
            if rest:
                summary = self._download(rest, predictor)
                self.summary.download = summary
                interrupted, aborted = summary.interrupted, summary.aborted
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            predictor.halt()
            raise
        self._finish(predictor, interrupted)
        if aborted:
            raise self._budget_error(self.summary.download)

    def _from_archive(self, todo: list[int], predictor: _Predictor) -> list[int]:
        """Hand the rows that have a cutout in the archive to ``predictor`` (the archive's own
        files: nothing is copied or fetched); return the rows left to fetch, or, when no server
        was given, hand those over as ``not in archive`` (not final: a rerun with a server or
        another archive tries them again) and return none."""
        archive, matched = self.archive, self.matched
        assert archive is not None and matched is not None
        rows_of: dict[int, list[int]] = {}
        rest: list[int] = []
        for i in todo:
            (rows_of.setdefault(int(matched[i]), []) if matched[i] >= 0 else rest).append(i)
        backlog = self.backlog()
        missing: dict[int, str] = {}
        for entry, rows in rows_of.items():
            if predictor.error is not None:
                raise predictor.error
            path = archive.image_path(entry)
            if path is None:  # catalogued, but its cutout is not there (a failed download)
                rest += rows
                why = f"the archive lists {archive.name(entry)} here but has no image of it"
                missing.update(dict.fromkeys(rows, why))
                continue
            predictor.put(("ok", rows, path, False))
            self.summary.archived += len(rows)
            predictor.wait_for_room(backlog)
        if self.opts.base_url is not None or self.client is not None:
            return sorted(rest)
        radius = self.opts.match_radius
        far = f"no cutout in the archive {archive.root} within {radius:g} arcsec"
        rest.sort()
        for start in range(0, len(rest), self.opts.shard_size):  # (shards of their usual size)
            chunk = rest[start : start + self.opts.shard_size]
            predictor.put(("failed", [(i, STATUS_NOT_IN_ARCHIVE, missing.get(i, far), False) for i in chunk]))
        return []

    def _download(self, todo: list[int], predictor: _Predictor) -> DownloadSummary:
        """Fetch the cutouts of the ``todo`` rows (one per key), handing each to ``predictor``."""
        rows_of: dict[int, list[int]] = {}
        for i in todo:
            rows_of.setdefault(int(self.keys[i]), []).append(i)
        first = [rows[0] for rows in rows_of.values()]
        cat = pd.DataFrame(
            {
                OBJID: np.array(list(rows_of), dtype=np.int64),
                "ra": self.positions.ra[first],
                "dec": self.positions.dec[first],
            }
        )
        if self.petro is not None:
            cat["petroR90_r"] = self.petro[first]
        write_table(cat, self.cutouts / CATALOG_PARQUET)
        backlog = self.backlog()

        def on_result(outcome: CutoutOutcome) -> None:
            if predictor.error is not None:
                raise predictor.error
            rows = rows_of.get(int(outcome.objID), [])
            self.summary.fetched += int(outcome.fetched and outcome.status == "ok")
            if outcome.status == "ok":
                predictor.put(("ok", rows, outcome.path, True))
                predictor.wait_for_room(backlog)  # back-pressure: fetching waits for prediction
            else:
                status = status_of(outcome)
                predictor.put(("failed", [(i, status, outcome.error, outcome.permanent) for i in rows]))

        return download_cutouts(self.cutouts, self._download_options(), self.client, on_result=on_result)

    def _download_options(self) -> DownloadOptions:
        """The downloader's options: the run's, with the model's imaging and no fractional budget
        (the positions budget is ``max_consecutive_failures``: a failed row keeps its place)."""
        # scratch cutouts (deleted once their shard is predicted) need no fsync (BENCHMARKS.md section 10)
        durable = self.opts.keep_cutouts is not None
        f = self.fetch
        imaging: dict[str, Any] = {"survey": f.survey, "layer": f.layer, "format": f.format, "base_url": f.base_url}
        imaging |= {"size": f.size, "scale": f.scale, "scale_by_size": f.scale_mode == "scale-by-size"}
        run = {"progress": False, "max_failures": 1.0, "durable": durable}
        return DownloadOptions(**{**asdict(self.opts.download), **imaging, **run})

    def backlog(self) -> int:
        """Most fetched cutouts that wait to be predicted before fetching pauses (:data:`BACKLOG_SHARDS`
        shards' worth); the requests in flight (at most twice the workers) may still land."""
        return BACKLOG_SHARDS * self.opts.shard_size

    def _finish(self, predictor: _Predictor, interrupted: bool) -> None:
        """Let the predictor finish what was fetched (or, after Ctrl-C, the shard it is on); raise its
        error, or KeyboardInterrupt when interrupted."""
        try:
            if interrupted:
                predictor.halt()
            else:
                predictor.finish()
            while predictor.is_alive() and not interrupted:
                predictor.join(0.2)
        except KeyboardInterrupt:
            predictor.halt()
            interrupted = True
        finally:
            if self._bar is not None:
                self._bar.close()
        if interrupted:
            # a moment for the shard being predicted; then it is abandoned (its rows' cutouts are on
            # disk, so a rerun predicts them again without fetching them)
            with contextlib.suppress(KeyboardInterrupt):
                predictor.join(INTERRUPT_GRACE)
        if predictor.error is not None:
            raise predictor.error
        if interrupted:
            self.summary.interrupted = True
            raise KeyboardInterrupt

    def _budget_error(self, download: DownloadSummary | None) -> DataError:
        """The one-line error of a run the failure budget stopped; the summary tallies the shards so far."""
        table = self._read_shards()
        if len(table):
            self._tally(table)
        done = len(self._load_shards())
        why = download.stop_reason if download is not None else "too many failures"
        where = (
            "the temporary work folder is removed (give work_dir or out to resume)"
            if self.temporary
            else f"{done} of {self.n} rows are finished in {self.work}: rerun the same command to resume"
        )
        return DataError(
            f"positions: stopped, {why}; is {self.fetch.base_url} down? {where}",
            param=(download.stop_param if download is not None else "") or "max_consecutive_failures",
        )

    def tick(self, rows: int, statuses: Counter) -> None:
        """Progress: ``rows`` more rows are in a finished shard (``failed=``: this run's so far)."""
        self._failed += sum(n for s, n in statuses.items() if s != STATUS_OK)
        if self._bar is not None:
            self._bar.set_postfix_str(f"failed={self._failed}", refresh=False)
            self._bar.update(rows)

    # -- shards -------------------------------------------------------------------------------
    def _shard_files(self) -> list[Path]:
        folder = self.folder / POSITIONS_SHARDS
        return sorted(p for p in folder.glob("shard-*.parquet") if p.name == positions_shard(_shard_index(p.name)))

    def _read_shards(self) -> pd.DataFrame:
        frames = []
        for path in self._shard_files():
            try:
                frames.append(read_table(path))
            except DataError as exc:  # written atomically, so only a foreign or damaged file
                log.warning("%s; its rows are predicted again", exc)
                remove_files([path])
        if not frames:
            return pd.DataFrame({ROW: pd.Series([], dtype=np.int64)})
        return pd.concat(frames, ignore_index=True).drop_duplicates(ROW, keep="last")

    def _load_shards(self) -> set[int]:
        """Rows of earlier shards that are final (all but transient fetch failures, tried again)."""
        table = self._read_shards()
        if not len(table):
            return set()
        if (table[ROW] < 0).any() or (table[ROW] >= self.n).any():
            raise ConfigError(
                f"work_dir {self.work}: its shards hold rows this input does not have; remove the folder",
                param="work_dir",
            )
        final = table[PERMANENT].astype(bool) | (table[STATUS] == STATUS_OK)
        return set(table.loc[final, ROW].astype(np.int64).tolist())

    def assemble(self) -> pd.DataFrame:
        """The rows' results from every shard, by row; DataError when a row is missing."""
        table = self._read_shards().sort_values(ROW).reset_index(drop=True)
        if len(table) != self.n:
            missing = sorted(set(range(self.n)) - set(table[ROW].astype(int).tolist()))
            raise DataError(
                f"{self.work}: {len(missing)} rows have no result (first: row {missing[0]}); rerun to finish"
            )
        for name in (FLAGS, TRUTH_FLAGS):
            if name in table.columns:
                table[name] = table[name].fillna(0).astype(np.int64)
        table[ERROR] = table[ERROR].fillna("").astype(str)
        self._tally(table)
        checks = self._stored_flag_checks()
        self.flag_checks = checks
        return table.drop(columns=[PERMANENT])

    def _tally(self, table: pd.DataFrame) -> None:
        """The summary's rows by status and the rows not predicted by reason (:func:`reason_of`),
        from the shards' rows (every run's)."""
        status = table[STATUS].astype(str)
        self.summary.statuses = Counter(status.tolist())
        bad = (status != STATUS_OK).to_numpy()
        errors = table[ERROR].fillna("").astype(str).to_numpy()[bad]
        self.summary.reasons = Counter(map(reason_of, status.to_numpy()[bad].tolist(), errors.tolist()))

    def _stored_flag_checks(self) -> list[str]:
        path = self.folder / POSITIONS_RUN
        with contextlib.suppress(OSError, ValueError):
            return list(json.loads(path.read_text()).get("flag_checks") or [])
        return []

    def remember_flag_checks(self, checks: list[str]) -> None:
        path = self.folder / POSITIONS_RUN
        data = json.loads(path.read_text())
        if data.get("flag_checks") != checks:
            data["flag_checks"] = checks
            atomic_write_text(path, json.dumps(data, indent=2) + "\n")

    # -- after the output is safe -----------------------------------------------------------
    def cleanup(self) -> None:
        """Delete the work folder's files (and the cutouts unless kept): only files galmet wrote."""
        if self.work is None:
            return
        if self.temporary:
            if self.opts.keep_cutouts is not None:
                self._write_kept_catalog()
            shutil.rmtree(self.work, ignore_errors=True)  # a folder this run made for itself
            return
        files = [*self._shard_files(), self.folder / POSITIONS_RUN]
        folders = [self.folder / POSITIONS_SHARDS, self.work]
        if self.opts.keep_cutouts is None:
            cut = self.cutouts
            remove_stale_temp_files(cut / IMAGES_DIR) if (cut / IMAGES_DIR).is_dir() else None
            suffix = suffix_of(self.fetch.format)
            files += [cut / IMAGES_DIR / f"{k}{suffix}" for k in np.unique(self.keys).tolist()]
            files += [cut / n for n in (CATALOG_PARQUET, MANIFEST, POSITIONS_CUTOUTS_MARKER)]
            folders += [cut / IMAGES_DIR, cut]
        else:
            self._write_kept_catalog()
        remove_files(files)
        remove_empty_dirs(folders)

    def _write_kept_catalog(self) -> None:
        """The kept folder's catalogue: every key with a valid cutout on disk (a normal dataset;
        ``images/<key>.jpg``, or ``.fits`` for FITS cutouts)."""
        cut, suffix = self.cutouts, suffix_of(self.fetch.format)
        keys = np.unique(self.keys[self.valid])
        have = np.array([(cut / IMAGES_DIR / f"{k}{suffix}").is_file() for k in keys.tolist()], dtype=bool)
        keys = keys[have]
        first: dict[int, int] = {}
        for i, k in enumerate(self.keys.tolist()):
            first.setdefault(k, i)
        idx = [first[k] for k in keys.tolist()]
        cat = pd.DataFrame({OBJID: keys.astype(np.int64), "ra": self.positions.ra[idx], "dec": self.positions.dec[idx]})
        if self.petro is not None:
            cat["petroR90_r"] = self.petro[idx]
        write_table(cat, cut / CATALOG_PARQUET)

    def meta(self) -> dict:
        """Provenance for the output table's ``meta`` (flat scalars: they become FITS header cards)."""
        meta: dict[str, Any] = {
            **table_provenance(),  # galmet_version, command, date (UTC)
            "model": Path(self.model.path).name if self.model.path is not None else "",
            "model_sha256": self.model_sha or "",
            "data_release": self.fetch.data_release,
            "base_url": self.fetch.base_url,
            "pixel_scale": self.fetch.scale,
            "scale_mode": self.fetch.scale_mode,
            "image_size": self.fetch.size,
            "survey": self.fetch.survey,
            "layer": self.fetch.layer or "",
            "image_format": self.fetch.format,
            "tta": (self.opts.inference.tta_mode if self.opts.inference.tta else "none"),
            # what ran (galmet.nn.cpu_engine); a rerun that predicted nothing records what was asked
            "engine": self.model.engine_used or self.opts.inference.engine,
            "rows": self.n,
            "rows_ok": int(self.summary.statuses.get(STATUS_OK, 0)),
            "flag_checks": ",".join(self.flag_checks),
        }
        if self.model.name:  # a registered model: its name and card version (galmet models show NAME)
            meta["model_name"] = named_model(self.model)
        if self.other_survey is not None:  # a transfer experiment: every row is flagged OTHER_SURVEY
            meta["other_survey"] = self.other_survey
        if self.key_kind == "row":
            meta["cutout_keys"] = "row"
        if self.archive is not None:
            meta["archive"] = str(self.archive.root)
            meta["match_radius"] = self.opts.match_radius
            if self.opts.base_url is None and self.client is None:
                meta["base_url"] = ""  # nothing was fetched: the archive's cutouts only
        return meta


def _same_server(value: Any, key: str) -> Any:
    """A stored setting as a rerun compares it: the cutouts' server (``base_url``) may change (a
    mirror, or a corrected URL after a run stopped at a dead one); their survey, layer, format,
    size, scale and release not."""
    if key == "fetch" and isinstance(value, dict):
        # (a run from before surveys fetched SDSS JPEGs)
        return {"survey": DEFAULT_SURVEY, "layer": None, "format": "jpeg"} | {
            k: v for k, v in value.items() if k != "base_url"
        }
    return value


def _check_dir(folder: Path, param: str) -> None:
    """:func:`galmet.io.safety.check_output_dir` for the folder of parameter ``param`` (its errors carry it)."""
    try:
        check_output_dir(folder, param)
    except ConfigError as exc:
        raise ConfigError(str(exc), param=param) from None


def _shard_index(name: str) -> int:
    try:
        return int(name.removeprefix("shard-").removesuffix(".parquet"))
    except ValueError:
        return -1


class _ShardWriter:
    """Writes shards atomically, numbered from ``start``; each becomes final when renamed."""

    def __init__(self, job: PositionsJob, start: int):
        self.job, self.next = job, start
        files = job._shard_files()
        self.next = max([start, *[_shard_index(p.name) + 1 for p in files]])

    def write(self, frame: pd.DataFrame) -> None:
        path = self.job.folder / POSITIONS_SHARDS / positions_shard(self.next)
        write_table(frame, path)
        self.next += 1
        self.job.tick(len(frame), Counter(frame[STATUS].tolist()))

    def write_failed(self, rows: list[tuple[int, str, str, bool]]) -> None:
        self.write(_failed_frame(rows))


def _failed_frame(rows: list[tuple[int, str, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            ROW: np.array([r[0] for r in rows], dtype=np.int64),
            STATUS: [r[1] for r in rows],
            ERROR: [r[2] for r in rows],
            PERMANENT: np.array([r[3] for r in rows], dtype=bool),
        }
    )


_END = object()


class _Predictor(threading.Thread):
    """Collects finished cutouts into shards and predicts each shard (runs beside the downloader)."""

    def __init__(self, job: PositionsJob, writer: _ShardWriter):
        super().__init__(name="galmet-positions-predict", daemon=True)
        self.job, self.writer = job, writer
        self.inbox: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._waiting = 0  # fetched cutouts not predicted yet (the back-pressure count)
        self._room = threading.Condition()

    def put(self, item) -> None:
        if item[0] == "ok":
            with self._room:
                self._waiting += 1
        self.inbox.put(item)

    @property
    def waiting(self) -> int:
        """Cutouts handed over and not predicted yet."""
        return self._waiting

    def wait_for_room(self, bound: int) -> None:
        """Block while ``bound`` or more cutouts wait to be predicted (while this thread runs)."""
        with self._room:
            while self._waiting >= bound and self.error is None and self.is_alive() and not self._halt.is_set():
                self._room.wait(0.2)

    def _done(self, n: int) -> None:
        with self._room:
            self._waiting -= n
            self._room.notify_all()

    def finish(self) -> None:
        """No more cutouts: predict what is left, then stop."""
        self.inbox.put(_END)

    def halt(self) -> None:
        """Stop after the shard being predicted (the rest stays on disk for a rerun)."""
        self._halt.set()
        self.inbox.put(_END)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self.error = exc

    def _loop(self) -> None:
        opts = self.job.opts
        ok: list[tuple[list[int], Path, bool]] = []
        failed: list[tuple[int, str, str, bool]] = []
        last = time.monotonic()
        ended = False
        while True:
            try:
                item = self.inbox.get(timeout=0.2)
            except queue.Empty:
                item = None
            if self._halt.is_set():
                return
            if item is _END:
                ended = True
            elif item is not None and item[0] == "ok":
                ok.append((item[1], item[2], item[3]))
            elif item is not None:
                failed.extend(item[1])
            waiting = sum(len(rows) for rows, _, _ in ok) + len(failed)
            due = waiting >= opts.shard_size or (waiting and time.monotonic() - last >= opts.flush_every)
            if waiting and (due or (ended and self.inbox.empty())):
                self._shard(ok, failed)
                ok, failed, last = [], [], time.monotonic()
            if ended and self.inbox.empty() and not ok and not failed:
                return

    def _shard(self, ok: list[tuple[list[int], Path, bool]], failed: list[tuple[int, str, str, bool]]) -> None:
        """Predict one shard: ``ok`` holds (rows, image file, whether the file is this run's scratch
        cutout, deleted once predicted; the archive's files are never touched); ``failed`` the rows
        that failed already."""
        job = self.job
        size = job.fetch.size
        images, image_rows = [], []
        for rows, path, scratch in ok:
            try:
                image, blank = self._read(path, size, f"cutout {path.name}" if scratch else f"archive cutout {path}")
            except DataError as exc:
                failed.extend((i, STATUS_BAD, str(exc), False) for i in rows)
                continue
            if blank:
                why = f"blank cutout: no {survey_title(job.fetch.survey)} imaging at this position"
                failed.extend((i, STATUS_BLANK, why, True) for i in rows)
                continue
            images.append(image)
            image_rows.append(rows)
        frames = []
        if images:
            frames.append(self._predict(np.stack(images), image_rows))
        if failed:
            frames.append(_failed_frame(failed))
        self.writer.write(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
        if job.opts.keep_cutouts is None:
            # their rows are final now: the cutouts go while the rest are fetched, not all at the end
            remove_files([path for _, path, scratch in ok if scratch])
        self._done(len(ok))

    def _read(self, path: Path, size: int, where: str) -> tuple[np.ndarray, bool]:
        """(uint8 (size, size, 3), blank) of a cutout file: a JPEG as it is, blank when its pixels
        span at most :data:`BLANK_RANGE` levels; a FITS cutout's fluxes through the model's recorded
        stretch (:mod:`galmet.data.stretch`; the survey's default when the bundle records none),
        blank only when the fluxes are (all zero or not finite: :func:`galmet.sdss.answers.is_blank`,
        the source's own test), never for how dark the stretch renders a faint cutout."""
        if path.suffix != FITS_SUFFIX:
            image = read_image(path, size, where=where)
            return image, int(image.max()) - int(image.min()) <= BLANK_RANGE
        from galmet.data.stretch import as_stretch, default_stretch

        model = self.job.model
        stretch = as_stretch(model.imaging.stretch, f"{model.path or 'model'}: imaging.stretch")
        stretch = stretch or default_stretch(self.job.fetch.survey)
        fluxes = read_fits(path, size, 3, where)
        return np.asarray(stretch.apply(fluxes), dtype=np.uint8), is_blank(fluxes)

    def _predict(self, stack: np.ndarray, image_rows: list[list[int]]) -> pd.DataFrame:
        """Predictions of one shard's images, one row per input row (rows sharing a cutout share it)."""
        job, opts, model = self.job, self.job.opts, self.job.model
        result = model.predict_uncertainty(stack, opts.inference, ood=opts.flags, progress=False)
        job.summary.predicted += len(stack)
        which = np.concatenate([np.full(len(rows), j, dtype=np.int64) for j, rows in enumerate(image_rows)])
        rows = np.concatenate([np.asarray(r, dtype=np.int64) for r in image_rows])
        out = pd.DataFrame({ROW: rows})
        for j, t in enumerate(model.targets):
            out[pred_column(t)] = result.pred[which, j]
            for name, column in result.columns(t).items():
                out[name] = np.asarray(column)[which]
        if opts.flags:
            frame = job.positions.frame
            catalog = frame.iloc[rows].reset_index(drop=True) if frame is not None and len(frame.columns) else None
            out = flag_rows(
                out,
                model,
                stack[which],
                catalog,
                opts.inference.batch_size,
                opts.inference.device,
                pixel_scale=job.fetch.scale,
                ood_score=None if result.ood_score is None else result.ood_score[which],
                other_survey=job.other_survey is not None,
            )
            checks = list(out.attrs.get("flag_checks", []))
            if checks != job.flag_checks:
                job.flag_checks = checks
                job.remember_flag_checks(checks)
        out.insert(1, STATUS, STATUS_OK)
        out.insert(2, ERROR, "")
        out.insert(3, PERMANENT, True)
        return out


# --- the public function ----------------------------------------------------------------------
def default_work_dir(out: str | os.PathLike) -> Path:
    """The work folder of a run that writes ``out`` when none is given: ``OUT.galmet-work``, beside it."""
    out = Path(out)
    return out.with_name(out.name + POSITIONS_WORK_SUFFIX)


# long: the public entry point's docstring documents each parameter; its code is a dozen lines
def predict_positions(
    model: GalmetModel | str | os.PathLike,
    coords: Any,
    options: InferenceOptions | None = None,
    *,
    out: str | os.PathLike | None = None,
    drop_failed: bool = False,
    flags: bool = True,
    base_url: str | None = None,
    download: DownloadOptions | None = None,
    client: SkyServerClient | None = None,
    work_dir: str | os.PathLike | None = None,
    keep_cutouts: str | os.PathLike | None = None,
    shard_size: int = 1024,
    summary: PositionsSummary | None = None,
    overwrite: bool = False,
    archive: str | os.PathLike | None = None,
    match_radius: float = DEFAULT_MATCH_RADIUS,
    survey: str | None = None,
    layer: str | None = None,
    format: str | None = None,  # noqa: A002 - the name --format and DownloadOptions use
    allow_other_survey: bool = False,
    **overrides: Any,
):
    """Predict metallicity (the model's targets) at sky positions; one row per position, none dropped.

    Fetches the cutout at each position with the model's own imaging (``model.imaging``: its
    survey, layer, format, pixel scale and size), concurrently under a rate limit, predicts them
    in shards while the rest are fetched, and returns the table (with ``out``, writes it). A row
    that cannot be predicted keeps its place with a ``status`` and an ``error`` instead of
    stopping the run.

    Parameters
    ----------
    model : GalmetModel, path-like or str
        A loaded model, a bundle file (or run folder), or a model name (``galmet models``).
    coords : SkyCoord, astropy Table/QTable, or pandas DataFrame
        The positions: a SkyCoord (any frame convertible to ICRS), or a table with ra/dec
        columns (``ra``, ``RA``, ``RAJ2000``, ``_RAJ2000``, ``RA_ICRS`` ..., any case) in
        degrees, as Quantities in any angular unit, or as sexagesimal text; a Table may hold a
        SkyCoord column instead. An ``objID`` column names the cutouts (rows sharing an objID
        share one cutout).
    options : galmet.nn.inference.InferenceOptions, optional
        TTA, batch size, device (:meth:`galmet.nn.inference.GalmetModel.predict`) and progress
        (here the rows' progress on stderr, :func:`galmet.io.progress.progress_bar`; False: none).
        With ``tta_mode="fastai"`` the random views are drawn per shard, so they depend on how
        the rows fell into shards.
    out : path-like, optional
        Write the table there (:func:`galmet.predict.output.write_positions_table`; the suffix is
        checked first); the work folder is cleaned up only once it is written, so a failed
        write leaves the shards for a rerun.
    drop_failed : bool
        Return (and write) only the rows whose status is ``ok``.
    flags : bool
        Compute the ``flags`` (and ``ood_score``) columns (:func:`galmet.predict.flags.flag_rows`).
    base_url : str, optional
        The root of the survey's cutout service (the service's paths are appended unchanged);
        default: for SDSS the model's data release's SkyServer (DR14 for older bundles), else
        the survey's own (:attr:`galmet.data.surveys.Survey.base_url`).
    download : galmet.sdss.download.DownloadOptions, optional
        Fetch settings (``workers``, ``rate`` per second over all workers, ``retries``, ``timeout``
        s, ``backoff_base`` s, ``max_bytes``); default ``DownloadOptions()``. Size, scale: the model's.
    client : SkyServerClient, optional
        Fetch through this client instead (its server, timeout, retries and rate).
    work_dir : path-like, optional
        Folder of the shards and cutouts; an interrupted call resumes from it when called again
        with the same model and positions. Default: ``OUT.galmet-work`` beside ``out``, or without
        ``out`` a temporary folder (no resumption).
    keep_cutouts : path-like, optional
        Keep the cutouts in this folder, a normal galmet dataset directory (catalog.parquet,
        images/<objID or row>.jpg, or .fits for a FITS model, manifest.parquet), which a later run
        can use as its ``archive``; default: delete them at the end.
    shard_size : int
        Rows per shard (the unit of work kept after an interruption).
    summary : PositionsSummary, optional
        Filled in with what the run did (rows by status, rows resumed, cutouts fetched, seconds),
        also when it is interrupted.
    overwrite : bool
        Replace an ``out`` galmet did not write (work and cutouts folders: galmet's files only).
    archive : path-like, optional
        A local cutout archive (:mod:`galmet.data.archive`): a dataset directory (catalog.parquet
        or .csv with objID or file, ra, dec; images/<objID>.jpg), such as a site's mirror of the
        survey's cutouts, a ``galmet download`` folder or a ``keep_cutouts`` folder. A row with an
        archived cutout within ``match_radius`` is predicted from that file (not copied, not
        fetched; read, size-checked and blank-checked like a fetched cutout; the archive must
        record, or its images have, the model's size and pixel scale). The other rows are fetched
        from ``base_url`` (or ``client``) when one is given, else get status ``not in archive``
        (tried again by a rerun). The archive is an input: ``out``, ``work_dir`` and
        ``keep_cutouts`` may not be inside it; nothing in it is written.
    match_radius : float
        Arcsec (0 to 60; default 1.0) within which an archived cutout's centre matches a row.
    survey, layer, format : str, optional
        Fetch another survey's (``sdss``, ``legacy``, ``ps1``), layer's or format's cutouts than
        the model's (None: the model's), at the model's pixel scale and size: a transfer
        experiment, which needs ``allow_other_survey``.
    allow_other_survey : bool
        Predict cutouts of another survey, layer, bands or format than the model was trained on
        (``survey`` ..., or an ``archive`` that records another): one warning, every row
        flagged ``OTHER_SURVEY``, and ``other_survey`` in the table's meta. Refused by default
        (:meth:`galmet.nn.inference.GalmetModel.check_survey`), before anything is fetched.
    **overrides
        The keywords of earlier versions: ``tta``, ``tta_mode``, ``tta_seed``, ``batch_size``,
        ``device``, ``progress`` override ``options``; ``workers``, ``rate``, ``retries``,
        ``timeout``, ``backoff_base``, ``max_consecutive_failures``, ``failure_budget`` override ``download``.

    Returns
    -------
    astropy.table.QTable
        The input's columns, ``ra``/``dec`` (ICRS, deg), the predictions (``<target>_pred``,
        ``_spread``, ``_sigma``/``_err``/``_lo68``.. when the model has them; u.dex for oh_p50),
        ``ood_score``, ``flags``, ``status`` and ``error`` (:data:`galmet.columns.STATUSES`);
        ``meta``: the provenance (galmet version, model and SHA-256, data release, survey, layer,
        image format, server, pixel scale in arcsec/pixel, image size in pixels, scale mode, TTA,
        UTC date, flag checks; ``other_survey`` for a transfer experiment).

    Raises
    ------
    DataError, ConfigError
        One line: unusable positions, bad options (``param``), an unreachable server (``failure_budget``:
        that many requests in a row got no answer) or a failing one (``max_consecutive_failures``).
    KeyboardInterrupt
        Ctrl-C: finished shards stay in the work folder (when not temporary) for a rerun.
    """
    from galmet.nn.bundle import load_model

    model = model if isinstance(model, GalmetModel) else load_model(model, device="cpu")
    if out is not None:
        _check_out(Path(out), model, overwrite, archive)
        work_dir = work_dir if work_dir is not None else default_work_dir(out)
    opts = _positions_options(options, download, overrides)
    opts.flags, opts.shard_size, opts.base_url = flags, shard_size, base_url
    opts.work_dir, opts.keep_cutouts, opts.archive = (
        Path(d) if d is not None else None for d in (work_dir, keep_cutouts, archive)
    )
    opts.match_radius = match_radius
    opts.survey, opts.layer, opts.format, opts.allow_other_survey = survey, layer, format, allow_other_survey
    return _run(PositionsJob(model, _fits_checked(sky_positions(coords), out), opts, client, summary), out, drop_failed)


def _fits_checked(positions: Positions, out: str | os.PathLike | None) -> Positions:
    """``positions``, or DataError (``param="out"``) naming the first input column or cell a FITS
    ``out`` cannot hold (:func:`galmet.io.tables.check_fits_out`): the input's columns are carried."""
    if positions.table is not None:
        columns = {n: positions.table[n] for n in positions.table.colnames}
        check_fits_out(out, columns, "the positions' columns")
    return positions


def _run(job: PositionsJob, out: str | os.PathLike | None, drop_failed: bool):
    """Run ``job``, assemble its QTable, write it to ``out`` (when given), and only then clean up the
    work folder (a temporary one goes whatever happens; a given one stays after any failure).

    Zero positions (a header-only CSV, an empty FITS, parquet or ECSV table, an empty SkyCoord,
    Table or DataFrame) are not an error: the table has no rows and every column a run writes, and
    no work folder is made."""
    if job.n == 0:
        table = positions_table(job.positions, _empty_results(job), job.model.targets, job.meta())
        if out is not None:
            write_positions_table(table, out)
        return table
    try:
        table = positions_table(job.positions, job.run(), job.model.targets, job.meta())
        if drop_failed:
            table = table[np.asarray(table[STATUS]) == STATUS_OK]
        if out is not None:
            write_positions_table(table, out)
    except BaseException:
        if job.temporary and job.work is not None:
            shutil.rmtree(job.work, ignore_errors=True)
        raise
    job.cleanup()  # only now: the output is safe
    return table


def _empty_results(job: PositionsJob) -> pd.DataFrame:
    """The results frame of zero positions: the columns :meth:`_Predictor._predict` and
    :func:`flag_rows` give a run of this model and options, with no rows."""
    from galmet.columns import IMAGE_OOD_SCORE, OOD_SCORE, sigma_column, spread_column, uncertainty_columns
    from galmet.nn.net import GAUSSIAN

    model = job.model
    cols: dict[str, pd.Series] = {ROW: pd.Series([], dtype=np.int64)}
    calibrated = model.calibrations
    for t in model.targets:
        names = [pred_column(t), spread_column(t)]
        names += [sigma_column(t)] if model.loss == GAUSSIAN else []
        names += uncertainty_columns(t) if t in calibrated else []
        cols.update({n: pd.Series([], dtype=np.float64) for n in names})
    if job.opts.flags:
        if model.embedding_references() is not None:
            cols[OOD_SCORE] = pd.Series([], dtype=np.float64)
        if model.image_domain_reference() is not None:
            cols[IMAGE_OOD_SCORE] = pd.Series([], dtype=np.float64)
        cols[FLAGS] = pd.Series([], dtype=np.int64)
    cols[STATUS] = pd.Series([], dtype=object)
    cols[ERROR] = pd.Series([], dtype=object)
    return pd.DataFrame(cols)


#: The keywords of :func:`predict_positions` that override its ``options`` and ``download``.
_INFERENCE_KEYWORDS = tuple(f.name for f in dataclasses.fields(InferenceOptions))
_DOWNLOAD_KEYWORDS = (
    "workers",
    "rate",
    "retries",
    "timeout",
    "backoff_base",
    "max_consecutive_failures",
    "failure_budget",
)


def _positions_options(
    options: InferenceOptions | None, download: DownloadOptions | None, overrides: dict[str, Any]
) -> PositionsOptions:
    """The run's options from :func:`predict_positions`'s ``options``, ``download`` and keyword overrides."""
    unknown = sorted(set(overrides) - {*_INFERENCE_KEYWORDS, *_DOWNLOAD_KEYWORDS})
    if unknown:
        raise TypeError(f"predict_positions() got unexpected keyword argument(s): {', '.join(unknown)}")
    inference = inference_options(options, **{k: v for k, v in overrides.items() if k in _INFERENCE_KEYWORDS})
    dl = download_options(download, **{k: overrides.get(k, KEEP) for k in _DOWNLOAD_KEYWORDS})
    return PositionsOptions(inference=inference, download=dataclasses.replace(dl, progress=False))


def _check_out(
    out: Path, model: GalmetModel, overwrite: bool = False, archive: str | os.PathLike | None = None
) -> None:
    """Refuse (ConfigError, ``param="out"``) an output of unknown format, a folder, the model's
    own file, a file inside the cutout ``archive``, an existing file of another kind or (without
    ``overwrite``) one galmet did not write, before anything is fetched."""
    fmt = require_table_format(out, param="out")
    inputs = [model_input(model.path)] if model.path is not None else []
    if archive is not None:
        inputs.append(Input(Path(archive), "the cutout archive", tree=True))
    try:
        check_output_file(out, "out", fmt.kind or "csv", "predictions table", inputs, overwrite=overwrite)
    except ConfigError as exc:
        raise ConfigError(str(exc), param=exc.param or "out") from None
