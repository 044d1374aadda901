"""A dataset directory fetched at sky positions: ``galmet.load_dataset(coords, cutouts=DIR)``.

The positions (a SkyCoord, an astropy Table/QTable or a pandas DataFrame: :mod:`galmet.sdss.coords`)
become a catalogue with the table's own columns, the cutouts are fetched by the downloader
(:mod:`galmet.sdss.download`), and the folder is loaded by :func:`galmet.data.dataset.load_dataset`.
Neither torch nor astropy is imported unless the positions need astropy.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import inspect
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from galmet.columns import OBJID
from galmet.data.dataset import Dataset, write_catalog
from galmet.data.dataset import load_dataset as load_folder
from galmet.errors import ConfigError, DataError
from galmet.io.atomic import atomic_write_text
from galmet.io.ownership import holds_only_bookkeeping
from galmet.io.safety import check_output_dir, check_owned_folder
from galmet.layout import POSITIONS_CUTOUTS_MARKER
from galmet.sdss.coords import Positions, cutout_keys, sky_positions
from galmet.sdss.download import DownloadOptions, download_cutouts
from galmet.sdss.skyserver import DATA_RELEASES, DEFAULT_DATA_RELEASE

log = logging.getLogger(__name__)


class _Keep(enum.Enum):
    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


#: Default of the ``rate`` keyword: keep the rate of the ``download`` options, whose defaults
#: :class:`~galmet.sdss.download.DownloadOptions` owns (a sentinel, not None: ``rate=None``
#: means no rate limit). The other download keywords use None for the same.
KEEP: Literal[_Keep.KEEP] = _Keep.KEEP
#: The folder loader's defaults, which this loader passes on unchanged.
_FOLDER = {name: p.default for name, p in inspect.signature(load_folder).parameters.items()}


def download_options(download: DownloadOptions | None = None, **overrides: Any) -> DownloadOptions:
    """A copy of ``download`` (default: ``DownloadOptions()``) with the ``overrides`` (the
    ``workers``, ``rate``, ``retries`` ... keywords of the positions functions) that are given:
    not :data:`KEEP`, and not None except for ``rate`` (None: no rate limit)."""
    given = {k: v for k, v in overrides.items() if v is not KEEP and (v is not None or k == "rate")}
    return dataclasses.replace(download if download is not None else DownloadOptions(), **given)


def load_dataset(
    path: Any,
    targets: Sequence[str] | None = None,
    on_error: str | None = None,
    size: int | None = None,
    load_images: bool = True,
    cache: bool | str | os.PathLike = True,
    test: float | int = _FOLDER["test"],
    valid_fraction: float = _FOLDER["valid_fraction"],
    split_seed: int = _FOLDER["split_seed"],
    progress: bool | None = None,
    *,
    stretch: Any = None,
    cutouts: str | os.PathLike | None = None,
    scale: float | None = None,
    data_release: str = DEFAULT_DATA_RELEASE,
    base_url: str | None = None,
    download: DownloadOptions | None = None,
    workers: int | None = None,
    rate: float | None | Literal[_Keep.KEEP] = KEEP,
    retries: int | None = None,
    timeout: float | None = None,
    survey: str | None = None,
    layer: str | None = None,
    format: str | None = None,
) -> Dataset:
    """``galmet.load_dataset``: a dataset directory or image folder, or a dataset made at sky positions.

    With a path, this is :func:`galmet.data.dataset.load_dataset`. With sky positions (a SkyCoord,
    an astropy Table/QTable or a pandas DataFrame, as :func:`galmet.predict.predict_positions`
    takes them), the survey's cutouts there (SDSS by default) are fetched by the downloader into
    ``cutouts`` (a dataset directory: ``catalog.parquet`` with the table's columns, objID, ra and
    dec in degrees; ``images/<objID>.jpg`` or ``.fits``; ``manifest.parquet``) and that directory
    is loaded. A
    table's label columns (``oh_p50`` ...) come along, so a labelled table becomes a training
    set. Calling it again with the same positions and folder fetches only what is missing.

    Parameters
    ----------
    path : path-like, or SkyCoord / Table / QTable / DataFrame
    targets, size, load_images, cache, test, valid_fraction, split_seed, progress, stretch
        As in :func:`galmet.data.dataset.load_dataset`; at positions ``size`` is also the
        cutouts' size in pixels (default: ``download.size``, 128) and ``progress`` shows the
        download's progress too.
    on_error : {"raise", "skip"}, optional
        Default ``"raise"`` for a path, ``"skip"`` for positions: rows whose cutout could not
        be fetched are left out (``Dataset.skipped`` says which and why).
    cutouts : path-like
        Where the cutouts go (positions only; required): a new or empty folder, or one this
        function filled before from the same positions.
    scale : float, optional
        Arcsec per pixel (default: ``download.scale``: the survey's default, the paper's 0.296
        for sdss).
    data_release, base_url
        The SDSS data release (DR14, DR16, DR17), or an explicit service root (default for
        another survey: its own, :attr:`galmet.data.surveys.Survey.base_url`).
    download : galmet.sdss.download.DownloadOptions, optional
        The fetch settings (workers, rate, retries, timeout, backoff, body cap); their defaults
        are ``DownloadOptions()``'s.
    workers, rate, retries, timeout
        Override those of ``download`` (as in ``galmet download``; ``rate=None`` or 0: no limit;
        the others None, and ``rate`` :data:`KEEP`: keep ``download``'s).
    survey, layer, format
        The imaging survey (``sdss``, ``legacy``, ``ps1``; default: ``download.survey``, sdss), its
        layer and the cutout format (``jpeg`` or ``fits``; default: the survey's), as ``galmet
        download --survey --layer --format``. A survey other than ``download``'s takes its own
        default size and scale unless given.
    """
    folder_args: dict[str, Any] = dict(targets=targets, load_images=load_images, cache=cache, test=test)
    folder_args.update(valid_fraction=valid_fraction, split_seed=split_seed, progress=progress, stretch=stretch)
    if isinstance(path, (str, os.PathLike)):
        return load_folder(path, on_error=on_error or "raise", size=size, **folder_args)
    positions = sky_positions(path, where="load_dataset")
    if cutouts is None:
        raise ConfigError(
            "load_dataset(positions): give cutouts=DIR, the folder the cutouts are fetched into", param="cutouts"
        )
    opts = download_options(download, workers=workers, rate=rate, retries=retries, timeout=timeout)
    opts = opts.with_survey(survey, layer, format, size, scale)
    opts = dataclasses.replace(
        opts, base_url=_root(opts, base_url, data_release), progress=bool(progress or False), max_failures=1.0
    )
    opts.check()
    folder = Path(cutouts)
    catalog = _positions_catalog(positions)
    _claim(folder, catalog, opts)
    write_catalog(folder, catalog)
    summary = download_cutouts(folder, opts)
    if summary.interrupted:
        raise KeyboardInterrupt
    if summary.aborted:  # a dead server: not a dataset of the few cutouts fetched before it stopped
        raise DataError(
            f"load_dataset: stopped, {summary.stop_reason}; is {opts.base_url} down? The cutouts fetched so "
            f"far stay in {folder}: call again to resume",
            param=summary.stop_param or "max_consecutive_failures",
        )
    if summary.failed:
        log.warning("load_dataset: %s", summary.line())
    return load_folder(folder, on_error=on_error or "skip", size=opts.size, **folder_args)


def _root(opts: DownloadOptions, base_url: str | None, data_release: str) -> str | None:
    """The service root: ``base_url``, else for sdss the ``data_release``'s SkyServer, else the survey's."""
    if base_url is not None or opts.survey != "sdss":
        return base_url or opts.base_url
    if data_release not in DATA_RELEASES:
        raise ConfigError(
            f"data_release must be one of {', '.join(DATA_RELEASES)}, got {data_release!r}", param="data_release"
        )
    return DATA_RELEASES[data_release]


def _positions_catalog(positions: Positions) -> pd.DataFrame:
    """One row per cutout key of the valid positions: objID, ra, dec (deg), then the table's own
    columns (its objID/ra/dec replaced); a warning counts the positions left out."""
    keys, _ = cutout_keys(positions)
    valid = positions.valid()
    frame = positions.frame if positions.frame is not None else pd.DataFrame(index=range(len(positions)))
    catalog = frame.loc[valid].copy()
    for name in [c for c in catalog.columns if str(c).lower() in ("objid", "ra", "dec")]:
        catalog = catalog.drop(columns=name)
    catalog.insert(0, OBJID, keys[valid])
    catalog.insert(1, "ra", positions.ra[valid])
    catalog.insert(2, "dec", positions.dec[valid])
    if (~valid).any():
        log.warning("load_dataset: %d rows without a usable ra/dec are left out", int((~valid).sum()))
    return catalog.drop_duplicates(OBJID).reset_index(drop=True)


def _without_server(marker):
    """A cutouts marker as a later call compares it: the server (``base_url``) may change (a mirror,
    or a corrected URL after a dead one); the positions, size and scale may not."""
    if isinstance(marker, dict) and isinstance(marker.get("fetch"), dict):
        return {**marker, "fetch": {k: v for k, v in marker["fetch"].items() if k != "base_url"}}
    return marker


def _claim(folder: Path, catalog: pd.DataFrame, opts: DownloadOptions) -> None:
    """Make ``folder`` the cutouts folder of these positions and settings (its marker file), or
    refuse (ConfigError, ``param="cutouts"``) a folder that holds anything else."""
    fetch: dict[str, Any] = {"size": opts.size, "scale": opts.scale, "base_url": opts.base_url}
    if (opts.survey, opts.format) != ("sdss", "jpeg"):  # (a folder of SDSS JPEGs keeps the marker it had)
        fetch.update(survey=opts.survey, layer=opts.layer, format=opts.format)
    marker = {"fetch": fetch, "rows": len(catalog)}
    marker["fingerprint"] = hashlib.sha256(
        np.ascontiguousarray(catalog[[OBJID]].to_numpy()).tobytes()
        + np.ascontiguousarray(catalog[["ra", "dec"]].to_numpy(dtype=np.float64)).tobytes()
    ).hexdigest()
    try:
        check_output_dir(folder, "cutouts")
        check_owned_folder(folder, "cutouts", "cutouts folder")  # a user's files are never taken for cutouts
    except ConfigError as exc:
        raise ConfigError(str(exc), param="cutouts") from None
    marker_file = folder / POSITIONS_CUTOUTS_MARKER
    if marker_file.is_file():
        try:
            old = json.loads(marker_file.read_text())
        except (OSError, ValueError):
            old = None
        if _without_server(old) != _without_server(json.loads(json.dumps(marker))):
            raise ConfigError(
                f"cutouts {folder}: holds the cutouts of other positions or settings; choose another", param="cutouts"
            )
    elif folder.is_dir() and not holds_only_bookkeeping(folder):
        raise ConfigError(
            f"cutouts {folder}: not empty and holds no cutouts galmet fetched; give a new or empty folder",
            param="cutouts",
        )
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker_file, json.dumps(marker, indent=2) + "\n")
