"""A dataset directory fetched at sky positions: ``galmet.load_dataset(coords, cutouts=DIR)``.

The positions (a SkyCoord, an astropy Table/QTable or a pandas DataFrame: :mod:`galmet.sdss.coords`)
become a catalogue with the table's own columns, the cutouts are fetched by the downloader
(:mod:`galmet.sdss.download`), and the folder is loaded by :func:`galmet.data.dataset.load_dataset`.
Neither torch nor astropy is imported unless the positions need astropy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import OBJID
from galmet.errors import ConfigError
from galmet.io.atomic import atomic_write_text
from galmet.io.safety import check_output_dir
from galmet.layout import POSITIONS_CUTOUTS_MARKER
from galmet.sdss.coords import cutout_keys, sky_positions
from galmet.sdss.download import DownloadOptions, download_cutouts
from galmet.sdss.skyserver import DATA_RELEASES, DEFAULT_SCALE

log = logging.getLogger(__name__)


def load_dataset(
    path: Any,
    *args: Any,
    cutouts: str | os.PathLike | None = None,
    scale: float = DEFAULT_SCALE,
    data_release: str = "DR14",
    base_url: str | None = None,
    workers: int = 8,
    rate: float | None = 5.0,
    retries: int = 5,
    timeout: float = 30.0,
    **kwargs: Any,
):
    """``galmet.load_dataset``: a dataset directory or image folder, or a dataset made at sky positions.

    With a path, this is :func:`galmet.data.dataset.load_dataset` (every argument passes through).
    With sky positions (a SkyCoord, an astropy Table/QTable or a pandas DataFrame, as
    :func:`predict_positions` takes them), the SDSS cutouts there are fetched by the downloader
    into ``cutouts`` (a dataset directory: ``catalog.parquet`` with the table's columns, objID,
    ra and dec in degrees; ``images/<objID>.jpg``; ``manifest.parquet``) and that directory is
    loaded. A table's label columns (``oh_p50`` ...) come along, so a labelled table becomes a
    training set. Calling it again with the same positions and folder fetches only what is missing.

    Parameters
    ----------
    path : path-like, or SkyCoord / Table / QTable / DataFrame
    cutouts : path-like
        Where the cutouts go (positions only; required): a new or empty folder, or one this
        function filled before from the same positions.
    scale, data_release, base_url
        Arcsec per pixel; the SDSS data release (DR14, DR16, DR17) or an explicit SkyServer root.
    workers, rate, retries, timeout
        As in ``galmet download``.
    **kwargs
        Passed to :func:`galmet.data.dataset.load_dataset`: ``size`` is also the cutouts' size in
        pixels (default 128); ``on_error`` defaults to ``"skip"`` for positions, so rows whose
        cutout could not be fetched are left out (``Dataset.skipped`` says which and why).
    """
    from galmet.data.dataset import load_dataset as load_folder
    from galmet.data.dataset import write_catalog

    if isinstance(path, (str, os.PathLike)):
        return load_folder(path, *args, **kwargs)
    positions = sky_positions(path, where="load_dataset")
    if cutouts is None:
        raise ConfigError("load_dataset(positions): give cutouts=DIR, the folder the cutouts are fetched into")
    folder = Path(cutouts)
    size = int(kwargs.get("size") or 128)
    if base_url is None:
        if data_release not in DATA_RELEASES:
            raise ConfigError(f"data_release must be one of {', '.join(DATA_RELEASES)}, got {data_release!r}")
        base_url = DATA_RELEASES[data_release]
    opts = DownloadOptions(
        base_url=base_url,
        workers=workers,
        rate=rate,
        retries=retries,
        timeout=timeout,
        size=size,
        scale=float(scale),
        progress=bool(kwargs.get("progress") or False),
        max_failures=1.0,
    )
    opts.check()
    keys, _ = cutout_keys(positions)
    valid = positions.valid()
    frame = positions.frame if positions.frame is not None else pd.DataFrame(index=range(len(positions)))
    catalog = frame.loc[valid].copy()
    for name in [c for c in catalog.columns if str(c).lower() in ("objid", "ra", "dec")]:
        catalog = catalog.drop(columns=name)
    catalog.insert(0, OBJID, keys[valid])
    catalog.insert(1, "ra", positions.ra[valid])
    catalog.insert(2, "dec", positions.dec[valid])
    catalog = catalog.drop_duplicates(OBJID).reset_index(drop=True)
    marker = {"fetch": {"size": size, "scale": float(scale), "base_url": base_url}, "rows": int(len(catalog))}
    marker["fingerprint"] = hashlib.sha256(
        np.ascontiguousarray(catalog[[OBJID]].to_numpy()).tobytes()
        + np.ascontiguousarray(catalog[["ra", "dec"]].to_numpy(dtype=np.float64)).tobytes()
    ).hexdigest()
    check_output_dir(folder, "cutouts")
    marker_file = folder / POSITIONS_CUTOUTS_MARKER
    if marker_file.is_file():
        try:
            old = json.loads(marker_file.read_text())
        except (OSError, ValueError):
            old = None
        if old != json.loads(json.dumps(marker)):
            raise ConfigError(f"cutouts {folder}: holds the cutouts of other positions or settings; choose another")
    elif folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(
            f"cutouts {folder}: not empty and holds no cutouts galmet fetched; give a new or empty folder"
        )
    if (~valid).any():
        log.warning("load_dataset: %d rows without a usable ra/dec are left out", int((~valid).sum()))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker_file, json.dumps(marker, indent=2) + "\n")
    write_catalog(folder, catalog)
    summary = download_cutouts(folder, opts)
    if summary.interrupted:
        raise KeyboardInterrupt
    if summary.failed:
        log.warning("load_dataset: %s", summary.line())
    kwargs.setdefault("on_error", "skip")
    return load_folder(folder, *args, **kwargs)
