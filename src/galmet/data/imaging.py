"""How images were made: :class:`Imaging` (survey bands, pixel scale, sizes, crop, scale mode,
data release), the one description a dataset directory records and a model bundle stores.

A model bundle stores the imaging of its training images (meta ``imaging``, the dict of
:meth:`Imaging.to_dict`) and ``galmet predict`` compares it with what the images it is given
record. What a dataset directory records (:func:`recorded_imaging`), by preference:

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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from galmet.data.surveys import DEFAULT_SURVEY, FORMATS, SURVEYS
from galmet.errors import ConfigError
from galmet.layout import CATALOG_JSON, MANIFEST, SYNTH_CONFIG
from galmet.paper import BANDS, DATA_RELEASE, PIXEL_SCALE_ARCSEC

log = logging.getLogger(__name__)

#: Scale modes of a cutout set: one pixel scale for all, or the authors' per-galaxy scale.
SCALE_MODES = ("fixed", "scale-by-size")
#: Largest image side (pixels) an imaging description accepts.
MAX_PIXELS = 4096


def check_image_size(size, param: str = "size") -> int | None:
    """``size`` (image width and height, pixels) as an int, or None when None.

    Raises
    ------
    ConfigError
        One line naming ``param`` for anything but an integer 1-:data:`MAX_PIXELS` (a bool, a
        float such as 64.5, text, 0, -1, a huge number).
    """
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ConfigError(f"{param} must be a whole number of pixels, got {size!r}", param=param)
    if not 1 <= int(size) <= MAX_PIXELS:
        raise ConfigError(f"{param} must be 1-{MAX_PIXELS} pixels, got {int(size)}", param=param)
    return int(size)


_RELEASE = re.compile(r"/dr(\d+)\b", re.IGNORECASE)
_DATA_RELEASE = re.compile(r"DR[1-9][0-9]?")


@dataclass(frozen=True)
class Imaging:
    """How a set of images was made: what a model was trained on, or what a dataset records.

    Fields left out take the paper's values (its SDSS DR14 ``gri`` cutouts at 0.296 arcsec per
    pixel, one scale for all): ``Imaging(image_size=64)`` is what a bundle written before galmet
    recorded its imaging reads as. A field that is None is not known (not recorded).

    Attributes
    ----------
    image_size : int or None
        Pixels per side of the images as they are used: for a model, what the network sees
        (after its crop); for a dataset, its images now (a re-binned copy is smaller).
    pixel_scale : float or None
        Arcsec per pixel (None: unknown, or per galaxy with ``scale-by-size``). For a dataset,
        of its images as they are now (a re-binned copy has a coarser scale).
    scale_mode : {"fixed", "scale-by-size"} or None
        One pixel scale for all images, or the authors' scale = 2 petroR90_r / 0.396 / size.
    fetch_size : int or None
        Pixels per side of the images as fetched or rendered, before any crop (None: unknown).
    crop : int or None
        The central pixels a network sees (None: the whole image).
    data_release : str or None
        The SDSS data release of the cutouts (``"DR14"``; None: synthetic or unknown).
    bands : str or None
        The survey's bands of the images, bluest first, shown as R, G, B reddest first:
        ``"gri"`` (i -> R, r -> G, g -> B); ``"grz"`` for the Legacy Surveys.
    survey : str or None
        The imaging survey (a name in :data:`galmet.data.surveys.SURVEYS`: ``sdss``, ``legacy``,
        ``ps1``); None: unknown.
    layer : str or None
        The survey's image layer (Legacy Surveys ``ls-dr10``...); None: the survey has none, or unknown.
    format : {"jpeg", "fits"} or None
        How the images are stored: colour JPEG/PNG, or FITS float fluxes (bands, H, W); None: unknown.
    stretch : dict or None
        For FITS fluxes: the recorded mapping from fluxes to the network's input
        (:mod:`galmet.data.stretch`'s dict form); None for JPEGs (the survey's own rendering).
    source : str
        The file the description comes from (``""`` when none); not part of the imaging: left
        out of comparisons and of :meth:`to_dict`.
    """

    image_size: int | None
    pixel_scale: float | None = PIXEL_SCALE_ARCSEC
    scale_mode: str | None = "fixed"
    fetch_size: int | None = None
    crop: int | None = None
    data_release: str | None = DATA_RELEASE
    bands: str | None = BANDS
    survey: str | None = DEFAULT_SURVEY
    layer: str | None = None
    format: str | None = "jpeg"
    stretch: dict | None = None
    source: str = field(default="", compare=False)

    @classmethod
    def unknown(cls, image_size: int | None = None, source: str = "") -> Imaging:
        """Nothing recorded but (optionally) the size of the images in use."""
        return cls(
            image_size,
            pixel_scale=None,
            scale_mode=None,
            data_release=None,
            bands=None,
            survey=None,
            format=None,
            source=source,
        )

    def trained_on(self, fetch_size: int, crop: int | None = None) -> Imaging:
        """The imaging a network trained on these images records: ``fetch_size`` pixels per side
        as loaded, of which it sees the central ``crop`` (None: all); an unrecorded scale mode
        or band set reads as the paper's (``fixed``, ``gri``)."""
        return replace(
            self,
            image_size=crop or fetch_size,
            fetch_size=fetch_size,
            crop=crop,
            scale_mode=self.scale_mode or "fixed",
            bands=self.bands or BANDS,
            survey=self.survey or DEFAULT_SURVEY,
            format=self.format or "jpeg",
            source="",
        )

    def to_dict(self) -> dict:
        """The JSON-able form a bundle stores (every field but ``source``)."""
        out = asdict(self)
        del out["source"]
        return out

    @classmethod
    def from_dict(cls, raw, where: str = "imaging") -> Imaging:
        """The :class:`Imaging` of :meth:`to_dict`'s form, checked field by field.

        ``scale_mode``, ``bands``, ``survey`` and ``format`` left out read as ``fixed``, ``gri``,
        ``sdss`` and ``jpeg`` (what a bundle written before galmet knew surveys was trained on); the
        other fields left out read as None. ``image_size`` is required.

        Raises
        ------
        ConfigError
            One line starting with ``where`` and naming the field, for a value that does not fit.
        """
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be a mapping, got {repr(raw)[:60]}")
        unknown = sorted(set(raw) - (set(cls.__dataclass_fields__) - {"source"}))
        if unknown:
            raise ConfigError(f"{where} has unknown field {unknown[0]!r}")

        def bad(name: str, want: str) -> ConfigError:
            return ConfigError(f"{where}.{name} must be {want}, got {repr(raw.get(name))[:60]}")

        def pixels(name: str, optional: bool) -> int | None:
            v = raw.get(name)
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_PIXELS:
                raise bad(name, ("null or " if optional else "") + f"an integer from 1 to {MAX_PIXELS} pixels")
            return v

        image_size, fetch_size, crop = pixels("image_size", False), pixels("fetch_size", True), pixels("crop", True)
        scale = raw.get("pixel_scale")
        if scale is not None and (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not (math.isfinite(scale) and 0 < scale <= 100)
        ):
            raise bad("pixel_scale", "null or a number of arcsec per pixel in (0, 100]")
        mode = raw.get("scale_mode", "fixed")
        if mode not in SCALE_MODES:
            raise bad("scale_mode", " or ".join(SCALE_MODES))
        release = raw.get("data_release")
        if release is not None and not (isinstance(release, str) and _DATA_RELEASE.fullmatch(release)):
            raise bad("data_release", f"null or an SDSS data release like {DATA_RELEASE!r}")
        survey, layer, fmt, stretch = _survey_fields(raw, bad)
        if stretch is not None:
            from galmet.data.stretch import Stretch

            Stretch.from_dict(stretch, f"{where}.stretch")  # one line naming the field, e.g. imaging.stretch.Q
        bands = raw.get("bands", BANDS)
        all_bands = SURVEYS[survey].all_bands if survey else "ugrizy"
        if not (isinstance(bands, str) and len(bands) == 3 and set(bands) <= set(all_bands) and len(set(bands)) == 3):
            raise bad("bands", f"three distinct {survey or 'survey'} bands from {all_bands!r} (e.g. {BANDS!r})")
        return cls(
            image_size=image_size,
            pixel_scale=None if scale is None else float(scale),
            scale_mode=mode,
            fetch_size=fetch_size,
            crop=crop,
            data_release=release,
            bands=bands,
            survey=survey,
            layer=layer,
            format=fmt,
            stretch=stretch,
        )

    def describe(self) -> str:
        """One line for people, e.g. ``64x64 px (central crop 64 of 128 px cutouts) at 0.296
        arcsec/px, fixed, DR14, gri`` (a survey other than SDSS, a layer and FITS are named too:
        ``..., legacy ls-dr10, grz, fits``)."""
        size = f"{self.image_size}x{self.image_size} px" if self.image_size is not None else "images of any size"
        if self.crop is not None:
            size += f" (central crop {self.crop} of {self.fetch_size or '?'} px cutouts)"
        scale = f"{self.pixel_scale:.4g} arcsec/px" if self.pixel_scale is not None else "unknown arcsec/px"
        mode = self.scale_mode or "unknown scale mode"
        line = f"{size} at {scale}, {mode}, {self.data_release or 'no data release'}, {self.bands or 'unknown bands'}"
        if self.survey not in (None, DEFAULT_SURVEY) or self.layer:
            line = line.replace(", no data release", "") + f", {self.survey or 'unknown survey'}"
            line += f" {self.layer}" if self.layer else ""
        return line + (f", {self.format}" if self.format not in (None, "jpeg") else "")


def _survey_fields(raw: dict, bad) -> tuple[str | None, str | None, str | None, dict | None]:
    """``survey``, ``layer``, ``format`` and ``stretch`` of :meth:`Imaging.from_dict`'s ``raw``, checked."""
    survey = raw.get("survey", DEFAULT_SURVEY)
    if survey is not None and survey not in SURVEYS:
        raise bad("survey", f"null or one of {', '.join(SURVEYS)}")
    layer = raw.get("layer")
    if layer is not None and not (survey and layer in SURVEYS[survey].layers):
        raise bad("layer", f"null or a layer of {survey or 'its survey'}")
    fmt = raw.get("format", "jpeg")
    if fmt is not None and fmt not in FORMATS:
        raise bad("format", f"null or one of {', '.join(FORMATS)}")
    stretch = raw.get("stretch")
    if stretch is not None and not isinstance(stretch, dict):
        raise bad("stretch", "null or a mapping")
    return survey, layer, fmt, stretch


#: What a folder that records nothing gives: every field None.
UNKNOWN = Imaging.unknown()


def recorded_imaging(
    root: str | Path, image_size: int | None = None, *, sample: str | Path | None = None, stretch: dict | None = None
) -> Imaging:
    """The imaging a dataset directory records (see the module doc); never raises.

    Parameters
    ----------
    root : path-like
        A dataset directory or image folder.
    image_size : int, optional
        Pixels per side of the images in use (the result's ``image_size``). When they differ
        from the recorded size (images re-binned with
        :meth:`galmet.data.dataset.Dataset.with_images`, which keeps the field of view), the
        pixel scale is scaled to match.
    sample : path-like, optional
        One of its image files (a loaded dataset's first row); default: the first image file
        found in ``root/images`` (or ``root``). When it is a FITS cutout, its header fills what
        the records above leave unknown (:func:`galmet.data.fits_header_imaging.with_fits_header`).
    stretch : dict, optional
        For FITS: the stretch the images are decoded with (a loaded dataset's); default: the
        one ``synth_config.yaml`` records, else the survey's default
        (:func:`galmet.data.stretch.default_stretch`).

    Returns
    -------
    Imaging
        Unrecorded fields None (bands are recorded only by FITS headers and synth_config.yaml).
    """
    from galmet.data.fits_header_imaging import with_fits_header

    root = Path(root)
    found = replace(_from_synth_config(root) or _from_manifest(root) or UNKNOWN, image_size=image_size)
    found = with_fits_header(root, found, sample)
    release = _release_from_catalog_json(root)
    sdss = found.survey in (None, DEFAULT_SURVEY)
    if release is not None and sdss and found.data_release is None and found.source != SYNTH_CONFIG:
        found = replace(found, data_release=release, source=found.source or CATALOG_JSON)
    if image_size is not None and found.fetch_size and found.pixel_scale and image_size != found.fetch_size:
        found = replace(found, pixel_scale=found.pixel_scale * found.fetch_size / image_size)
    if found.format == "fits":
        from galmet.data.stretch import default_stretch

        found = replace(found, stretch=stretch or found.stretch or default_stretch(found.survey).to_dict())
    return found


def _from_synth_config(root: Path) -> Imaging | None:
    path = root / SYNTH_CONFIG
    if not path.is_file():
        return None
    try:
        import yaml

        config = yaml.safe_load(path.read_text())
        size, scale = config.get("size"), config.get("pixel_scale_arcsec")
        found = replace(
            UNKNOWN,
            pixel_scale=float(scale) if _positive(scale) else None,
            scale_mode="fixed",
            fetch_size=int(size) if _positive(size) else None,
            source=SYNTH_CONFIG,
        )
        return _synth_survey_fields(found, config)
    except Exception as exc:  # noqa: BLE001 - an unreadable record is only a lost description
        log.debug("%s: unreadable (%s); imaging not recorded", path, exc)
        return None


def _synth_survey_fields(found: Imaging, config: dict) -> Imaging:
    """``found`` with the ``survey``, ``layer``, ``format``, ``bands`` and ``stretch`` a
    synth_config.yaml records (``galmet synth --survey``); a value that does not fit is left out."""
    survey = config.get("survey")
    survey = survey if survey in SURVEYS else None
    layer = config.get("layer")
    fmt = config.get("format")
    bands, stretch = config.get("bands"), config.get("stretch")
    return replace(
        found,
        survey=survey,
        layer=layer if survey and layer in SURVEYS[survey].layers else None,
        format=fmt if fmt in FORMATS else None,
        bands=bands if isinstance(bands, str) and len(bands) == 3 else None,
        stretch=stretch if isinstance(stretch, dict) else None,
    )


def _from_manifest(root: Path) -> Imaging | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        import pandas as pd
        import pyarrow.parquet as pq

        from galmet.io.tables import PARQUET_READ

        names = set(pq.read_schema(path).names)
        columns = ["status", "size", "scale"] + [c for c in ("survey", "layer", "format") if c in names]
        df = pd.read_parquet(path, columns=columns, **PARQUET_READ)
    except Exception as exc:  # noqa: BLE001 - an unreadable record is only a lost description
        log.debug("%s: unreadable (%s); imaging not recorded", path, exc)
        return None
    ok = df[df["status"] == "ok"]
    sizes = sorted({int(s) for s in ok["size"] if _positive(s)})
    scales = [float(s) for s in ok["scale"] if _positive(s)]
    if not scales:
        return None
    fixed = max(scales) - min(scales) <= 1e-6 * max(scales)
    return replace(
        UNKNOWN,
        pixel_scale=scales[0] if fixed else None,
        scale_mode="fixed" if fixed else "scale-by-size",
        fetch_size=sizes[0] if len(sizes) == 1 else None,
        source=MANIFEST,
        **_manifest_survey(ok),
    )


def _manifest_survey(ok) -> dict:
    """survey, layer and format of a manifest's ok rows when they agree (a manifest from before
    surveys: sdss, no layer, jpeg); {} when its rows disagree (a mixed set: not one survey's)."""
    import pandas as pd

    def one(column: str, default):
        if column not in ok.columns:
            return {default}
        return {None if pd.isna(v) or v == "" else str(v) for v in ok[column]} or {default}

    surveys, layers, formats = one("survey", DEFAULT_SURVEY), one("layer", None), one("format", "jpeg")
    if len(surveys) != 1 or len(layers) != 1 or len(formats) != 1:
        return {}
    survey, layer, fmt = surveys.pop(), layers.pop(), formats.pop()
    if survey not in SURVEYS or fmt not in FORMATS:
        return {}
    return {"survey": survey, "layer": layer, "format": fmt, "bands": SURVEYS[survey].bands}


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
