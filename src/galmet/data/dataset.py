"""Dataset directories: catalog + images, validated on load, with a memory-mapped decode cache.

A dataset directory (see docs/architecture.md)::

    DATASET/
      catalog.parquet     one row per galaxy: objID (int64), ra, dec, z, modelMag_u..z,
                          petroR90_r, oh_p50 (label, dex), lgm_tot_p50, split, ...
                          (catalog.csv is read too: that is how the real SDSS sample ships)
      images/<objID>.jpg  RGB cutouts, all the same size (128x128 for SDSS)
                          (or images/<objID>.fits: float32 fluxes (3, H, W), bands bluest first)
      images.npy          decode cache: uint8 (N, H, W, 3), row order = catalog order

A plain folder of JPEG/PNG (or FITS) images (no catalog) loads too, for prediction: its rows
are the files in sorted order, with a ``file`` column and ``objID`` taken from numeric file names
(when every name is a distinct integer in the 64-bit range).

FITS cutouts are decoded through a :class:`~galmet.data.stretch.Stretch` (``load_dataset(...,
stretch=)``, else the one the dataset records, else its survey's default) into the same uint8
RGB as a JPEG; the decode cache is keyed on the stretch, and :attr:`Dataset.imaging` records
it. A dataset holds one format: JPEG/PNG and FITS rows together are refused in one line.

The image size is the one most of the images have (read from their headers before anything is
decoded), not the first row's: an odd image is a bad row, whatever its place.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.columns import DEFAULT_TARGET, FILE, LABEL_RANGES, OBJID, float_array, objid_array
from galmet.data.cache import cache_key, cache_location, file_digests, open_cache, write_cache
from galmet.data.fits_header_imaging import is_fits_path
from galmet.data.fits_rows import disagreeing_rows
from galmet.data.flux_images import image_format, read_fits_rgb, read_row_header, resolve_stretch
from galmet.data.imaging import Imaging, check_image_size, recorded_imaging
from galmet.data.labels import invalid_label_mask, label_problem
from galmet.data.splits import assign_splits, check_split_column
from galmet.data.stretch import Stretch
from galmet.errors import DataError
from galmet.io.fits_images import FITS_SUFFIXES
from galmet.io.images import IMAGE_SUFFIXES, ImageHeader, check_header, read_image
from galmet.io.inputs import special_kind
from galmet.io.progress import progress_bar
from galmet.io.tables import PARQUET_READ, read_table, write_table
from galmet.layout import CATALOG_NAMES, CATALOG_PARQUET, IMAGES_DIR, MANIFEST
from galmet.paper import BANDS, TEST_FRACTION, VALID_FRACTION

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """A validated set of galaxies: a catalog table and one image per row.

    Attributes
    ----------
    root : Path
        The dataset directory (or image folder).
    catalog : pandas.DataFrame
        One row per galaxy, index 0..N-1, with a ``split`` column (train/valid/test).
    paths : list of Path
        Image file of each row.
    image_size : int
        Width = height of every image, pixels.
    skipped : list of str
        One line per row dropped with ``on_error="skip"``.
    split_source : {"catalogue", "assigned"}
        Whether the ``split`` column came with the catalogue or was drawn by galmet
        (:func:`~galmet.data.splits.assign_splits`). Drawn splits of an unlabelled set mean
        nothing: :attr:`has_splits` is then False and summaries say "splits: none".
    stretch : Stretch or None
        For FITS cutouts: the flux stretch the images were decoded with; None for JPEG/PNG.
    """

    root: Path
    catalog: pd.DataFrame
    paths: list[Path]
    image_size: int
    cache_path: Path | None = None
    skipped: list[str] = field(default_factory=list)
    _images: np.ndarray | None = field(default=None, repr=False)
    split_source: str = "catalogue"
    stretch: Stretch | None = None

    def __len__(self) -> int:
        return len(self.catalog)

    @property
    def names(self) -> list[str]:
        """A label for each row: ``objID`` when known, else the file name."""
        return _names(self.catalog, self.paths)

    @property
    def labels(self) -> list[str]:
        """The label columns the catalogue holds (those of :data:`~galmet.columns.LABEL_RANGES`
        with at least one finite value), in that table's order; empty for an unlabelled set."""
        out = []
        for col in LABEL_RANGES:
            if col in self.catalog.columns:
                values = pd.to_numeric(self.catalog[col], errors="coerce").to_numpy(dtype=float)
                if np.isfinite(values).any():
                    out.append(col)
        return out

    @property
    def has_splits(self) -> bool:
        """True when the ``split`` column means something: the catalogue gave it, or the set is
        labelled (training uses the drawn split). An unlabelled folder's drawn split is not shown."""
        return "split" in self.catalog.columns and (self.split_source == "catalogue" or bool(self.labels))

    def split_counts(self) -> dict[str, int]:
        """Rows per split (train, valid, test, in that order); empty when :attr:`has_splits` is False."""
        if not self.has_splits:
            return {}
        counts = self.catalog["split"].astype(str).value_counts()
        return {s: int(counts.get(s, 0)) for s in ("train", "valid", "test")}

    def __repr__(self) -> str:
        # short on purpose (a notebook echoes it): counts and ranges, never the catalogue itself
        labels = self.labels
        if labels:
            v = pd.to_numeric(self.catalog[labels[0]], errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            more = f" (+{len(labels) - 1} more)" if len(labels) > 1 else ""
            label_text = f"labels: {labels[0]} [{v.min():.2f}, {v.max():.2f}]{more}"
        else:
            label_text = "no labels"
        counts = self.split_counts()
        split_text = "/".join(f"{s} {n}" for s, n in counts.items()) if counts else "none"
        root = str(self.root)
        root = root if len(root) <= 80 else "..." + root[-77:]
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        images = "" if self.has_images else ", images not loaded"
        kind = "FITS fluxes" if self.stretch is not None else BANDS
        return (
            f"<Dataset {len(self)} galaxies, {self.image_size}x{self.image_size} {kind}, {label_text}, "
            f"splits: {split_text}{skipped}{images}, root={root!r}>"
        )

    @property
    def imaging(self) -> Imaging:
        """How its images were made, as far as the dataset records it
        (:func:`galmet.data.imaging.recorded_imaging` at :attr:`image_size`, with the stretch
        its FITS cutouts were decoded with; read on each access)."""
        stretch = self.stretch.to_dict() if self.stretch is not None else None
        sample = self.paths[0] if self.paths else None
        return recorded_imaging(self.root, self.image_size, sample=sample, stretch=stretch)

    @property
    def has_images(self) -> bool:
        """True when the images were loaded (``load_dataset(..., load_images=True)``)."""
        return self._images is not None

    def images(self) -> np.ndarray:
        """All images as uint8 (N, H, W, 3); memory-mapped from the decode cache when there is one."""
        if self._images is None:
            raise DataError(f"{self.root}: images were not loaded (load_dataset(..., load_images=False))")
        return self._images

    def without_images(self) -> Dataset:
        """The same rows without their images (cheap to subset when only labels are needed)."""
        return dataclasses.replace(self, _images=None, cache_path=None)

    def with_images(self, images: np.ndarray) -> Dataset:
        """The same rows with other images, uint8 (N, S, S, 3) in row order (e.g. re-binned ones)."""
        images = np.asarray(images)
        if (
            images.ndim != 4
            or images.shape[0] != len(self)
            or images.shape[1] != images.shape[2]
            or images.shape[3] != 3
            or images.dtype != np.uint8
        ):
            raise DataError(
                f"{self.root}: replacement images must be uint8 ({len(self)}, S, S, 3), "
                f"got {images.dtype} {images.shape}"
            )
        return dataclasses.replace(self, _images=images, image_size=int(images.shape[1]), cache_path=None)

    def with_stretch(self, stretch: Stretch | dict | None) -> Dataset:
        """The same rows with their FITS fluxes decoded through ``stretch`` (e.g. a model's
        ``imaging.stretch``, so its input is made as its training images were): ``self`` when
        ``stretch`` is None, is the stretch already applied, or the images are JPEG/PNG.

        Raises
        ------
        ConfigError
            ``stretch`` does not fit (one line naming the field).
        DataError
            An image that decoded before does not now (changed on disk).
        """
        if stretch is None or self.stretch is None:
            return self
        stretch = Stretch.from_dict(stretch, "stretch")
        if stretch == self.stretch:
            return self
        out = dataclasses.replace(self, stretch=stretch, _images=None, cache_path=None)
        if self._images is not None:
            images, problems = decode_all(out)
            if problems:
                raise DataError(problems[min(problems)])
            out._images = images
        return out

    def split_indices(self, split: str | Sequence[str]) -> np.ndarray:
        """Row indices (int64) whose ``split`` is ``split`` (or one of several)."""
        wanted = [split] if isinstance(split, str) else list(split)
        return np.flatnonzero(self.catalog["split"].isin(wanted).to_numpy())

    def subset(self, rows: np.ndarray | str | Sequence[str]) -> Dataset:
        """A new Dataset with the given row indices, or the rows of the given split(s)."""
        if isinstance(rows, str) or (len(rows) and isinstance(rows[0], str)):
            rows = self.split_indices([str(r) for r in ([rows] if isinstance(rows, str) else rows)])
        rows = np.asarray(rows, dtype=np.int64)
        images = None if self._images is None else self._images[rows]
        return Dataset(
            root=self.root,
            catalog=self.catalog.iloc[rows].reset_index(drop=True),
            paths=[self.paths[i] for i in rows],
            image_size=self.image_size,
            cache_path=None,
            skipped=list(self.skipped),
            _images=images,
            split_source=self.split_source,
            stretch=self.stretch,
        )

    def targets(self, columns: str | Sequence[str]) -> np.ndarray:
        """Label columns as float32 (N, T); raise DataError naming the first row whose label is
        not a label by the rules of :mod:`galmet.data.labels` (missing, not a number, infinite,
        out of range, a sentinel)."""
        columns = [columns] if isinstance(columns, str) else list(columns)
        check_target_columns(self.catalog, columns, self.root)
        labels = [float_array(self.catalog[c], str(self.root), f"label {c}") for c in columns]
        for c, v in zip(columns, labels, strict=True):
            bad = np.flatnonzero(np.isnan(v) | invalid_label_mask(c, v))
            if len(bad):
                i = int(bad[0])
                raise DataError(f"{_row_label(self, i)}: label {c} {label_problem(c, v[i])}")
        return np.stack(labels, axis=1).astype(np.float32)


def _row_label(ds: Dataset, i: int) -> str:
    return f"{ds.root}: objID {ds.names[i]} ({ds.paths[i].name})"


def check_target_columns(catalog: pd.DataFrame, columns: Iterable[str], where: Path | str) -> None:
    """Raise DataError if a target column is missing, non-numeric or entirely NaN."""
    for col in columns:
        if col not in catalog.columns:
            raise DataError(
                f"{where}: target column {col!r} is not in the catalog "
                f"(columns: {', '.join(map(str, catalog.columns))})"
            )
        values = pd.to_numeric(catalog[col], errors="coerce")
        if values.isna().all():
            raise DataError(f"{where}: target column {col!r} has no numeric values")


def find_catalog(root: Path) -> Path | None:
    """The catalog file of a dataset directory, or None for a plain image folder; DataError when
    a catalogue name is a FIFO, device or socket (never opened: a FIFO blocks)."""
    for name in CATALOG_NAMES:
        special = special_kind(root / name)
        if special is not None and special != "directory":
            raise DataError(f"{root / name}: is a {special}, not a regular file; expected the dataset's catalogue")
        if (root / name).is_file():
            return root / name
    return None


def load_dataset(
    path: str | os.PathLike,
    targets: Sequence[str] | None = None,
    on_error: str = "raise",
    size: int | None = None,
    load_images: bool = True,
    cache: bool | str | os.PathLike = True,
    test: float | int = TEST_FRACTION,
    valid_fraction: float = VALID_FRACTION,
    split_seed: int = 0,
    progress: bool | None = None,
    stretch: Stretch | dict | None = None,
) -> Dataset:
    """Load and validate a dataset directory or a folder of images.

    Parameters
    ----------
    path : path-like
        A dataset directory (``catalog.parquet`` or ``catalog.csv`` + ``images/``), or a
        folder of ``.jpg``/``.jpeg``/``.png`` (or ``.fits``) images.
    targets : sequence of str, optional
        Label columns that must be finite (and within :data:`LABEL_RANGES` when known).
        Default: ``oh_p50`` when the catalog has it, else none.
    on_error : {"raise", "skip"}
        Bad rows (missing or undecodable image, wrong size or mode, NaN or out-of-range
        label) raise a one-line DataError naming the objID and file (default), or are
        dropped and counted in ``Dataset.skipped``.
    size : int, optional
        Required image width and height in pixels (1-4096; anything else is a ConfigError
        naming ``size``); default: the size most images have.
    load_images : bool
        Decode (or memory-map) the images; False only validates the catalog and file presence.
    cache : bool or path
        Use and build the decode cache ``images.npy``. True puts it in the dataset directory
        (or, when that is not writable, under ``$GALMET_CACHE_DIR`` or ``~/.cache/galmet``);
        a path puts it there; False decodes into memory every time.
    test, valid_fraction, split_seed
        How to make the ``split`` column when the catalog has none; see
        :func:`galmet.data.splits.assign_splits`. An existing split column is respected.
    progress : bool, optional
        Show a progress bar while decoding; default: when there are more than 2,000 images.
    stretch : Stretch or dict, optional
        For FITS cutouts: the flux -> uint8 RGB stretch (:class:`~galmet.data.stretch.Stretch`
        or its dict form, e.g. a model's ``imaging.stretch``); default: the one the dataset
        records (synth_config.yaml), else its survey's default. Ignored for JPEG/PNG images.
    """
    if on_error not in ("raise", "skip"):
        raise DataError(f"on_error must be 'raise' or 'skip', got {on_error!r}", param="on_error")
    size = check_image_size(size)
    if stretch is not None:
        stretch = Stretch.from_dict(stretch, "stretch")
    root = _existing_folder(path)
    catalog_file = find_catalog(root)
    catalog, paths, problems = _rows(root, catalog_file)
    if "split" in catalog.columns:  # rows as in the file, before any is dropped
        check_split_column(catalog, str(catalog_file or root))

    if targets is None:
        targets = [DEFAULT_TARGET] if DEFAULT_TARGET in catalog.columns else []
    targets = list(targets)
    check_target_columns(catalog, targets, catalog_file or root)

    names = _names(catalog, paths)
    _find_label_problems(root, catalog, paths, names, targets, problems)
    known_failures = _find_missing_images(root, paths, names, problems)
    problems = _settle(problems, on_error)
    if known_failures:
        log.info(
            "%s: %d galaxies have no image because their download failed (see manifest.parquet)",
            root,
            len(known_failures),
        )
        problems.update(known_failures)

    keep = np.array([i for i in range(len(catalog)) if i not in problems], dtype=np.int64)
    catalog, paths, names = (
        catalog.iloc[keep].reset_index(drop=True),
        [paths[i] for i in keep],
        [names[i] for i in keep],
    )
    if len(catalog) == 0:
        raise DataError(f"{root}: no usable images" + (f" ({len(problems)} bad rows skipped)" if problems else ""))
    given = "split" in catalog.columns
    where = str(catalog_file or root)
    catalog["split"] = assign_splits(catalog, test=test, valid_fraction=valid_fraction, seed=split_seed, where=where)
    if OBJID in catalog.columns:
        catalog[OBJID] = objid_array(catalog[OBJID], str(catalog_file or root))

    skipped = sorted(problems.values())
    fits = _fits_decoding(root, paths, stretch)  # (stretch, recorded, given); stretch None for JPEGs
    if load_images:
        ds = _load_images(root, catalog, paths, names, skipped, size, on_error, cache, progress, *fits)
    else:
        size = size if size is not None else _sampled_size(root, paths, names)
        ds = Dataset(root=root, catalog=catalog, paths=paths, image_size=int(size), skipped=skipped, stretch=fits[0])
    ds.split_source = "catalogue" if given else "assigned"
    if ds.skipped:
        log.warning("%s: skipped %d bad rows (first: %s)", root, len(ds.skipped), ds.skipped[0])
    return ds


def _fits_decoding(root: Path, paths: list[Path], given) -> tuple[Stretch | None, Imaging | None, bool]:
    """For FITS rows: the stretch they are decoded with (``given``, else the recorded one, else
    the survey's default: :func:`~galmet.data.flux_images.resolve_stretch`), the imaging the
    dataset records (its first row's header filling the rest) and whether the stretch was
    ``given``; (None, None, False) for JPEG/PNG rows."""
    if image_format(root, paths) != "fits":
        return None, None, False
    recorded = recorded_imaging(root, sample=paths[0])
    return resolve_stretch(given, recorded), recorded, given is not None


def _rows(root: Path, catalog_file: Path | None) -> tuple[pd.DataFrame, list[Path], dict[int, str]]:
    """The catalogue (index 0..N-1), each row's image path, and the rows already known bad (a
    plain folder's unreadable file names): from ``catalog_file``, else the folder's images."""
    problems: dict[int, str] = {}
    if catalog_file is not None:
        catalog = read_table(catalog_file)
        paths = _catalog_image_paths(root, catalog, catalog_file)
    else:
        catalog, paths, problems = _image_folder_rows(root)
    return catalog.reset_index(drop=True), paths, problems


def _existing_folder(path: str | os.PathLike) -> Path:
    """``path`` as a Path; DataError when it does not exist or is not a folder."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such dataset directory or image folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (expected a dataset directory or an image folder)")
    return root


def _find_label_problems(
    root: Path, catalog: pd.DataFrame, paths: list[Path], names: list[str], targets: list[str], problems: dict
) -> None:
    """Add to ``problems`` (row -> one line) each row whose label in ``targets`` is not a label by
    the rules of :mod:`galmet.data.labels` (missing, not a number, infinite, outside
    :data:`~galmet.columns.LABEL_RANGES`, a sentinel); a row keeps its first problem."""
    for col in targets:
        raw = catalog[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        for row in np.flatnonzero(np.isnan(values) | invalid_label_mask(col, values)).tolist():
            what = label_problem(col, values[row], raw.iloc[row])
            problems.setdefault(row, f"{root}: objID {names[row]} ({paths[row].name}): label {col} {what}")


def _find_missing_images(root: Path, paths: list[Path], names: list[str], problems: dict) -> dict[int, str]:
    """Add to ``problems`` each row (without one yet) whose image file is missing or a folder;
    return instead the rows whose download ``galmet download`` recorded as failed (row -> line):
    those are dropped whatever ``on_error`` says."""
    failed = _failed_downloads(root)
    known_failures: dict[int, str] = {}
    for i, p in enumerate(paths):
        if i not in problems and not p.is_file():
            if names[i] in failed:
                known_failures[i] = f"{root}: objID {names[i]}: no image (download failed: {failed[names[i]]})"
            elif p.is_dir():
                problems[i] = f"{root}: objID {names[i]}: image path {p} is a folder, not an image file"
            elif (special := special_kind(p)) is not None:  # (never opened: a FIFO blocks, a device never ends)
                problems[i] = f"{root}: objID {names[i]}: image path {p} is a {special}, not an image file"
            elif p.is_symlink():
                problems[i] = f"{root}: objID {names[i]}: image path {p} is a dangling or looping symbolic link"
            else:
                problems[i] = f"{root}: objID {names[i]}: image file {p} not found"
    return known_failures


def _failed_downloads(root: Path) -> dict[str, str]:
    """objID -> last error of the rows ``galmet download`` recorded as failed in manifest.parquet.

    Such rows are dropped (and listed in ``Dataset.skipped``) rather than failing the load: the
    downloader already reported them, and a few permanent 404s are normal for SDSS.
    """
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        man = pd.read_parquet(path, columns=["objID", "status", "last_error"], **PARQUET_READ)
    except Exception as exc:  # noqa: BLE001 - an unreadable manifest only loses this convenience
        log.warning("%s: cannot read the download manifest (%s); ignoring it", path, exc)
        return {}
    man = man[man["status"] == "failed"]
    return {str(int(o)): str(e) for o, e in zip(man["objID"], man["last_error"], strict=True)}


def _where(root: Path, name: str, path: Path) -> str:
    return f"{root}: objID {name} ({path.name})"


def read_headers(root: Path, paths: list[Path], names: list[str]) -> tuple[dict[int, ImageHeader], dict[int, str]]:
    """The header of every image (no pixel decoded), and a problem line for each unreadable one."""
    headers: dict[int, ImageHeader] = {}
    problems: dict[int, str] = {}

    def work(i: int) -> None:
        try:
            headers[i] = read_row_header(paths[i], _where(root, names[i], paths[i]))
        except DataError as exc:
            problems[i] = str(exc)

    if len(paths) < 64:
        for i in range(len(paths)):
            work(i)
    else:
        with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) * 2)) as pool:
            list(pool.map(work, range(len(paths)), chunksize=64))
    return headers, problems


def majority_size(root: Path, headers: Iterable[ImageHeader]) -> int:
    """The width = height that most images have (ties: the first row's); DataError when no
    header could be read or most images are not square."""
    counts = collections.Counter((h.width, h.height) for h in headers)
    if not counts:
        raise DataError(f"{root}: no image could be decoded")
    (w, h), n = counts.most_common(1)[0]
    if w != h:
        raise DataError(f"{root}: most images ({n}) are {w}x{h} pixels; galmet needs square images")
    return int(w)


def _sampled_size(root: Path, paths: list[Path], names: list[str], sample: int = 33) -> int:
    """The majority size of up to ``sample`` evenly spaced images (when the images are not loaded)."""
    rows = sorted(set(np.linspace(0, len(paths) - 1, min(sample, len(paths))).astype(int).tolist()))
    headers, problems = read_headers(root, [paths[i] for i in rows], [names[i] for i in rows])
    if not headers:
        raise DataError(problems[min(problems)] if problems else f"{root}: no image could be decoded")
    return majority_size(root, headers.values())


def _settle(problems: dict[int, str], on_error: str) -> dict[int, str]:
    if problems and on_error == "raise":
        first = problems[min(problems)]
        more = len(problems) - 1
        # skip_bad: the name of this choice in TrainConfig, the run functions and the CLI (--skip-bad)
        suffix = f" (and {more} more bad rows; use skip_bad to drop them)" if more else ""
        raise DataError(first + suffix, param="skip_bad" if more else None)
    return problems


def _names(catalog: pd.DataFrame, paths: list[Path]) -> list[str]:
    if "objID" in catalog.columns:
        return [str(v) for v in catalog["objID"]]
    return [p.name for p in paths]


def _readable_name(name: str) -> bool:
    """True when a file name is valid UTF-8 (a name that is not ends up in every output table)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _catalog_image_paths(root: Path, catalog: pd.DataFrame, catalog_file: Path) -> list[Path]:
    if "file" in catalog.columns:
        return [root / str(f) for f in catalog["file"]]
    if "objID" not in catalog.columns:
        raise DataError(f"{catalog_file}: catalog needs an objID column (or a file column)")
    catalog["objID"] = objid_array(catalog["objID"], str(catalog_file))
    dup = catalog["objID"].duplicated()
    if dup.any():
        raise DataError(f"{catalog_file}: objID {catalog['objID'][dup].iloc[0]} appears more than once")
    images = root / IMAGES_DIR
    _refuse_two_formats(images, catalog["objID"])
    paths, found = [], []
    for oid in catalog["objID"]:
        p = images / f"{oid}.jpg"
        if not p.exists():
            for suffix in (".jpeg", ".png", *FITS_SUFFIXES):
                if (alt := images / f"{oid}{suffix}").exists():
                    p = alt
                    break
        paths.append(p)
        found.append(p.exists())
    if any(f and is_fits_path(p) for p, f in zip(paths, found, strict=True)):  # a FITS set: missing rows too
        paths = [p if f else p.with_suffix(FITS_SUFFIXES[0]) for p, f in zip(paths, found, strict=True)]
    return paths


def _refuse_two_formats(images: Path, objids: pd.Series) -> None:
    """DataError (one line) when one of ``objids`` has both a JPEG/PNG and a FITS file in
    ``images`` (two formats fetched into one folder): which one a row means is unknown. One
    directory listing, no per-row lookups."""
    try:
        names = [e.name for e in os.scandir(images)]
    except OSError:
        return  # no images folder: each row's missing image is reported as such
    fits: dict[str, str] = {}
    other: dict[str, str] = {}
    for name in sorted(names):
        stem, dot, suffix = name.rpartition(".")
        suffix = f".{suffix.lower()}"
        if dot and suffix in FITS_SUFFIXES + IMAGE_SUFFIXES:
            (fits if suffix in FITS_SUFFIXES else other).setdefault(stem, name)
    both = sorted(set(fits).intersection(other).intersection(objids.astype(str)))
    if both:
        stem = both[0]
        raise DataError(
            f"{images}: objID {stem} has both {other[stem]} and {fits[stem]}; a dataset holds one format: "
            "move one format's files to another folder"
        )


def _image_folder_rows(root: Path) -> tuple[pd.DataFrame, list[Path], dict[int, str]]:
    """Rows of a plain image folder (or its ``images/``): every JPEG/PNG name in sorted order.

    Returns the catalogue (``file``, and ``objID`` when every name is a distinct integer), the
    paths, and a problem line for each file whose name is not valid UTF-8. A special file under an
    image name (a FIFO, a link to a device, a dangling or looping link) is a row like any other:
    reading it is a problem line naming it (never opened), so it is refused like a corrupt JPEG,
    or skipped and counted with ``skip_bad``; never silently left out. Folders are left out.
    """
    folder = root / IMAGES_DIR if (root / IMAGES_DIR).is_dir() else root
    paths = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES + FITS_SUFFIXES and not p.name.startswith(".") and not p.is_dir()
    )
    if not paths:
        raise DataError(f"{root}: no catalog (catalog.parquet/catalog.csv) and no .jpg/.png/.fits images")
    problems = {
        i: f"{root}: file name {ascii(p.name)} is not valid UTF-8; rename it"
        for i, p in enumerate(paths)
        if not _readable_name(p.name)
    }
    files = [str(p.relative_to(root)) if i not in problems else "" for i, p in enumerate(paths)]
    catalog = pd.DataFrame({FILE: files})
    stems = [p.stem for p in paths]
    if all(re.fullmatch(r"[0-9]{1,19}", s) for s in stems):
        ids = [int(s) for s in stems]
        if len(set(ids)) < len(ids):
            dup = next(s for s in stems if ids.count(int(s)) > 1)
            log.warning("%s: several images are named %s (.jpg and .png?); rows are identified by file", root, dup)
        elif max(ids) <= np.iinfo(np.int64).max:
            catalog.insert(0, OBJID, np.array(ids, dtype=np.int64))
    return catalog, paths, problems


def _load_images(
    root: Path,
    catalog: pd.DataFrame,
    paths: list[Path],
    names: list[str],
    skipped: list[str],
    size: int | None,
    on_error: str,
    cache,
    progress,
    stretch: Stretch | None = None,
    recorded=None,
    given: bool = False,
) -> Dataset:
    """The Dataset with its images: memory-mapped from a decode cache made for exactly these
    files (and, for FITS, this ``stretch``; see :mod:`galmet.data.cache`), else decoded
    (headers checked first: for FITS, each row's imaging against the set's and ``recorded``'s,
    :func:`~galmet.data.fits_rows.disagreeing_rows`) and cached. ``given``: ``stretch`` is the
    caller's, not the one the first row's header chose."""
    location = cache_location(root, cache)
    digests = file_digests(paths) if location is not None else []
    recipe = stretch.to_dict() if stretch is not None else None
    if location is not None:
        cached = open_cache(location, cache_key(names, paths, digests, recipe), size)
        if cached is not None:
            ds = Dataset(root, catalog, paths, int(cached.shape[1]), location, list(skipped), cached)
            ds.stretch = stretch
            return ds

    headers, problems = read_headers(root, paths, names)
    if stretch is not None:  # FITS: a row of another survey, bands, unit or scale is a bad row
        odd = disagreeing_rows(paths, headers, recorded)
        for i, line in odd.items():
            problems[i], _ = line, headers.pop(i)
        stretch = stretch if given else _set_stretch(root, paths, stretch, odd, headers)
        recipe = stretch.to_dict()
    if size is None:
        if not headers:  # not one readable image: report the first, or how many were skipped
            _settle(problems, on_error)
            raise DataError(f"{root}: no usable images ({len(skipped) + len(problems)} bad rows skipped)")
        size = majority_size(root, headers.values())
    ds = Dataset(root=root, catalog=catalog, paths=paths, image_size=int(size), skipped=list(skipped), stretch=stretch)
    images, decode_problems = decode_all(ds, names, progress, headers=headers)
    problems.update(decode_problems)
    problems = _settle(problems, on_error)
    if problems:
        keep = np.array([i for i in range(len(ds)) if i not in problems], dtype=np.int64)
        all_skipped = ds.skipped + sorted(problems.values())
        ds = ds.subset(keep)
        ds.skipped = all_skipped
        images = images[keep]
        names = [names[i] for i in keep]
        digests = [digests[i] for i in keep] if digests else digests
        if len(ds) == 0:
            raise DataError(f"{ds.root}: no usable images ({len(all_skipped)} bad rows skipped)")
    ds._images = images
    if location is not None:
        key = cache_key(names, ds.paths, digests, recipe)
        try:
            write_cache(location, images, key)
            ds._images, ds.cache_path = open_cache(location, key, ds.image_size), location
        except OSError as exc:
            log.warning("could not write decode cache %s (%s); continuing from memory", location, exc)
        if ds._images is None:  # written but not readable back (a file system that lies): use memory
            ds._images, ds.cache_path = images, None
    return ds


def _set_stretch(root: Path, paths: list[Path], stretch: Stretch, odd: dict, headers: dict) -> Stretch:
    """``stretch`` (the dataset's, not a caller's), unless the first row, whose header chose it
    where no record did, is not of the set (``odd``): then the one the first row of the set
    chooses (:func:`~galmet.data.imaging.recorded_imaging` of the first row in ``headers``)."""
    if 0 not in odd or not headers:
        return stretch
    good = min(headers)
    return resolve_stretch(None, recorded_imaging(root, sample=paths[good]))


def decode_all(
    ds: Dataset,
    names: list[str] | None = None,
    progress: bool | None = None,
    workers: int | None = None,
    headers: dict[int, ImageHeader] | None = None,
):
    """Decode every image of ``ds``; return (uint8 (N, H, W, 3), {row: problem line}).

    Each image's header is checked against ``ds.image_size`` (and the decompression-bomb limit)
    before it is decoded; ``headers`` (from :func:`read_headers`) saves reading them again.
    FITS cutouts go through ``ds.stretch``; their non-finite fluxes (taken as 0) are counted
    in the log.
    """
    names = names or ds.names
    n, s = len(ds), ds.image_size
    out = np.zeros((n, s, s, 3), dtype=np.uint8)
    problems: dict[int, str] = {}
    nonfinite: dict[int, int] = {}

    def work(i: int) -> None:
        where = _where(ds.root, names[i], ds.paths[i])
        try:
            if headers is not None:
                if i not in headers:
                    return  # its header was unreadable: the caller has the problem already
                check_header(headers[i], s, where)
            if ds.stretch is not None and is_fits_path(ds.paths[i]):
                out[i], nonfinite[i] = read_fits_rgb(ds.paths[i], s, ds.stretch, where)
            else:
                out[i] = read_image(ds.paths[i], s, where=where)
        except DataError as exc:
            problems[i] = str(exc)

    show = progress if progress is not None else n > 2000
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool:  # PIL decodes outside the GIL
        for _ in progress_bar(
            iterable=pool.map(work, range(n)), total=n, desc="decoding images", unit="img", enabled=show
        ):
            pass
    bad = {i: k for i, k in nonfinite.items() if k and i not in problems}
    if bad:
        log.info(
            "%s: %d NaN/inf flux values in %d FITS images (first: %s) were taken as 0",
            ds.root,
            sum(bad.values()),
            len(bad),
            _where(ds.root, names[min(bad)], ds.paths[min(bad)]),
        )
    return out, problems


def write_catalog(root: str | os.PathLike, catalog: pd.DataFrame) -> Path:
    """Write ``catalog`` as ``root/catalog.parquet`` atomically (objID stored as int64)."""
    catalog = catalog.copy()
    if OBJID in catalog.columns:
        catalog[OBJID] = objid_array(catalog[OBJID], "catalog")
    return write_table(catalog, Path(root) / CATALOG_PARQUET)


def as_dataset(dataset, **load_kwargs) -> Dataset:
    """``dataset`` itself when it is a :class:`Dataset`, else :func:`load_dataset` of it.

    Parameters
    ----------
    dataset : path-like or Dataset
    **load_kwargs
        Passed to :func:`load_dataset`; ignored for a Dataset, which is used as it is.
    """
    if isinstance(dataset, Dataset):
        return dataset
    return load_dataset(dataset, **load_kwargs)
