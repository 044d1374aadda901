"""What a dataset directory records about how its images were made: pixel scale, scale mode,
cutout size, data release.

A model bundle stores these (:class:`galmet.nn.bundle.Imaging`) and ``galmet predict`` compares
them with the images it is given. The sources, by preference:

- ``synth_config.yaml`` (``galmet synth``): ``size`` and ``pixel_scale_arcsec`` (synthetic: no
  data release);
- ``manifest.parquet`` (``galmet download``): the ``size`` and ``scale`` of every fetched cutout
  (one scale for all: ``fixed``; scales that differ: the authors' ``scale-by-size`` mode, whose
  pixel scale is then per galaxy and recorded as unknown);
- ``catalog.json`` (``galmet catalog``): the SkyServer it was queried from (``.../dr14``: DR14).

A folder that records none of these (the real SDSS sample, a plain image folder) gives
:data:`UNKNOWN`: every field None, nothing invented.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from galmet.layout import CATALOG_JSON, MANIFEST, SYNTH_CONFIG

log = logging.getLogger(__name__)

#: Scale modes of a cutout set: one pixel scale for all, or the authors' per-galaxy scale.
SCALE_MODES = ("fixed", "scale-by-size")
_RELEASE = re.compile(r"/dr(\d+)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RecordedImaging:
    """How a dataset's images were made, as far as the dataset records it (None: not recorded).

    Attributes
    ----------
    pixel_scale : float or None
        Arcsec per pixel of the images as they are now (a re-binned copy has a coarser scale).
    scale_mode : {"fixed", "scale-by-size"} or None
    fetch_size : int or None
        Pixels per side of the images as fetched or rendered.
    data_release : str or None
        ``"DR14"``, ... (None for synthetic images or when not recorded).
    source : str
        The file the values come from (``""`` when none).
    """

    pixel_scale: float | None = None
    scale_mode: str | None = None
    fetch_size: int | None = None
    data_release: str | None = None
    source: str = ""


UNKNOWN = RecordedImaging()


def recorded_imaging(root: str | Path, image_size: int | None = None) -> RecordedImaging:
    """The imaging a dataset directory records (see the module doc); never raises.

    Parameters
    ----------
    root : path-like
        A dataset directory or image folder.
    image_size : int, optional
        Pixels per side of the images in use. When they differ from the recorded size (images
        re-binned with :meth:`galmet.data.dataset.Dataset.with_images`, which keeps the field of
        view), the pixel scale is scaled to match.
    """
    root = Path(root)
    found = _from_synth_config(root) or _from_manifest(root) or UNKNOWN
    release = _release_from_catalog_json(root)
    if release is not None and found.data_release is None and found.source != SYNTH_CONFIG:
        found = replace(found, data_release=release, source=found.source or CATALOG_JSON)
    if image_size is not None and found.fetch_size and found.pixel_scale and image_size != found.fetch_size:
        found = replace(found, pixel_scale=found.pixel_scale * found.fetch_size / image_size)
    return found


def _from_synth_config(root: Path) -> RecordedImaging | None:
    path = root / SYNTH_CONFIG
    if not path.is_file():
        return None
    try:
        import yaml

        config = yaml.safe_load(path.read_text())
        size, scale = config.get("size"), config.get("pixel_scale_arcsec")
        return RecordedImaging(
            pixel_scale=float(scale) if _positive(scale) else None,
            scale_mode="fixed",
            fetch_size=int(size) if _positive(size) else None,
            source=SYNTH_CONFIG,
        )
    except Exception as exc:  # noqa: BLE001 - an unreadable record is only a lost description
        log.debug("%s: unreadable (%s); imaging not recorded", path, exc)
        return None


def _from_manifest(root: Path) -> RecordedImaging | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        import pandas as pd

        df = pd.read_parquet(path, columns=["status", "size", "scale"])
    except Exception as exc:  # noqa: BLE001 - an unreadable record is only a lost description
        log.debug("%s: unreadable (%s); imaging not recorded", path, exc)
        return None
    ok = df[df["status"] == "ok"]
    sizes = sorted({int(s) for s in ok["size"] if _positive(s)})
    scales = [float(s) for s in ok["scale"] if _positive(s)]
    if not scales:
        return None
    fixed = max(scales) - min(scales) <= 1e-6 * max(scales)
    return RecordedImaging(
        pixel_scale=scales[0] if fixed else None,
        scale_mode="fixed" if fixed else "scale-by-size",
        fetch_size=sizes[0] if len(sizes) == 1 else None,
        source=MANIFEST,
    )


def _release_from_catalog_json(root: Path) -> str | None:
    path = root / CATALOG_JSON
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.debug("%s: unreadable (%s)", path, exc)
        return None
    if isinstance(config.get("data_release"), str):
        return config["data_release"].upper()
    for key in ("base_url", "server"):
        match = _RELEASE.search(str(config.get(key, "")))
        if match:
            return f"DR{match.group(1)}"
    return None


def _positive(value) -> bool:
    try:
        return math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False
