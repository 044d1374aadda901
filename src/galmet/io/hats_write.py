"""Write a HATS catalogue from per-pixel parquet files, atomically, with units and provenance.

:func:`write_hats` builds the whole catalogue folder in a temporary sibling folder with the hats
library's writers (partition files ``dataset/Norder=K/Dir=D/Npix=N.parquet`` sorted by
``_healpix_29``, ``_metadata``, ``_common_metadata``, ``partition_info.csv``, ``point_map.fits``,
``skymap.fits``, ``per_partition_statistics.parquet``, ``hats.properties`` and ``properties``)
and renames it into place: a reader never sees a half-written catalogue, and a failure leaves
no ``out`` at all (or the previous one, untouched). Only a kill (``kill -9``, a power cut) leaves
the hidden ``.<out name>.<random>.galmet-hats.tmp`` folder behind, for the user to remove.

galmet's additions, all recoverable without galmet:

- ``galmet_provenance.json`` beside the properties: the caller's provenance (model card,
  command, version ...), the column units and the list of files galmet wrote (so a rerun may
  replace the catalogue, and deletes nothing else);
- in the properties: the caller's short ``properties`` keys, ``galmet_units`` (JSON of column ->
  unit) and ``galmet_provenance`` (the JSON file's name);
- in every partition's parquet schema: each column's unit as the field metadata ``unit``, and
  ``galmet.units`` (JSON) in the schema metadata (hence in ``_common_metadata``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from galmet._optional import require
from galmet.errors import ConfigError, DataError, one_line
from galmet.io.hats_pixels import PURPOSE, SPATIAL_INDEX, SPATIAL_ORDER, HatsPixel, spatial_index, valid_positions
from galmet.io.jsonfile import write_json
from galmet.io.ownership import LEDGER, owned_by_galmet
from galmet.io.safety import check_output_dir

#: galmet's provenance file in the catalogue folder.
PROVENANCE_FILE = "galmet_provenance.json"
#: The order of the point map / skymap galmet writes (as lsdb: at least 8, or the finest pixel's).
SKYMAP_MIN_ORDER = 8
_TMP_SUFFIX = ".galmet-hats.tmp"
_OLD_SUFFIX = ".galmet-hats.old"
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def write_hats(
    out: str | os.PathLike,
    pieces: list[tuple[HatsPixel, Path]],
    *,
    catalog_name: str,
    ra_column: str,
    dec_column: str,
    properties: dict[str, str],
    provenance: dict,
    column_units: dict[str, str],
) -> None:
    """Assemble the HATS catalogue folder ``out`` from one parquet file per pixel.

    Parameters
    ----------
    out : path-like
        The catalogue folder to write. It must not exist, be empty, or be a catalogue galmet
        wrote (replaced as a whole; ConfigError otherwise, before anything is written).
    pieces : list of (HatsPixel, Path)
        Each pixel with the parquet file of its rows (any row order; the ``ra_column`` and
        ``dec_column`` in degrees; no two pixels overlapping). Every row must lie in its pixel
        (DataError naming the file and row otherwise). Empty pieces are left out.
    catalog_name : str
        The catalogue's ``obs_collection``.
    ra_column, dec_column : str
        Its position columns (``hats_col_ra`` / ``hats_col_dec``).
    properties : dict of str to str
        Extra short keys for the properties file (e.g. ``galmet_model``); not HATS' own keys.
    provenance : dict
        What made the catalogue (model card, command, galmet version ...), JSON-able; written to
        ``galmet_provenance.json``.
    column_units : dict of str to str
        Unit of each column that has one (``"dex"``, ``"deg"``), kept in the schema and properties.

    Raises
    ------
    ConfigError
        ``out`` is a file or a folder galmet may not replace; overlapping pixels; a reserved
        property name; a provenance that is not JSON-able; hats not installed.
    DataError
        A piece file missing or unreadable, without the ra/dec columns, with a row without a
        valid position or outside its pixel; columns whose types cannot be unified; no rows at all.
    """
    out = Path(out)
    pieces = _check_pieces(pieces)
    extra = _check_properties(properties, column_units)
    replacing = check_hats_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=_TMP_SUFFIX, dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the catalogue gets the usual permissions
    try:
        written = _build(tmp, pieces, ra_column, dec_column, column_units)
        _finish(tmp, written, catalog_name, ra_column, dec_column, extra)
        _write_provenance(tmp, written, provenance, column_units)
        _swap(tmp, out, replacing)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a folder mkdtemp made for this call: galmet's alone
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_pieces(pieces) -> list[tuple[HatsPixel, Path]]:
    """The pieces as (HatsPixel, Path), in (order, pixel) order; ConfigError for overlapping
    pixels, DataError for a missing file."""
    items = sorted(((pixel, Path(file)) for pixel, file in pieces), key=lambda item: item[0])
    if not items:
        raise ConfigError("pieces: no partitions to write", param="pieces")
    for pixel, file in items:
        if not isinstance(pixel, HatsPixel):
            raise ConfigError(f"pieces: {pixel!r} is not a HatsPixel", param="pieces")
        if not file.is_file():
            raise DataError(f"{file}: partition file of pixel {pixel.key} is missing")
    ranges = sorted((pixel.index_range(), pixel) for pixel, _ in items)
    for (a, pa), (b, pb) in itertools.pairwise(ranges):
        if b[0] < a[1]:
            raise ConfigError(f"pieces: pixels {pa.key} and {pb.key} overlap (or repeat)", param="pieces")
    return items


def _check_properties(properties: dict[str, str], column_units: dict[str, str]) -> dict[str, str]:
    """The extra properties galmet writes: the caller's (checked), ``galmet_units``, ``galmet_provenance``."""
    tp = require("hats.catalog.dataset.table_properties", "scale", PURPOSE)
    reserved = set()
    for name, info in tp.TableProperties.model_fields.items():
        reserved |= {name, info.alias or name}
    extra = {}
    for key, value in properties.items():
        if not isinstance(key, str) or not key.replace("_", "").isalnum() or key in reserved:
            raise ConfigError(
                f"properties: {key!r} is not a free property name (letters, digits, _)", param="properties"
            )
        extra[key] = str(value)
    extra["galmet_units"] = json.dumps(dict(column_units), sort_keys=True)
    extra["galmet_provenance"] = PROVENANCE_FILE
    return extra


def check_hats_out(out: Path) -> bool:
    """ConfigError unless ``out`` is new, an empty folder, or a catalogue galmet wrote; True for the last."""
    check_output_dir(out, "out")
    if not out.exists() or not any(out.iterdir()):
        return False
    if not _galmet_files(out):
        raise ConfigError(
            f"out {out}: exists and is not a HATS catalogue galmet wrote (or has changed since); choose another folder",
            param="out",
        )
    return True


def _galmet_files(folder: Path) -> list[Path] | None:
    """Every file under ``folder`` when galmet wrote them all (its provenance file, in galmet's
    ledger, lists each with its size); None otherwise."""
    listing = folder / PROVENANCE_FILE
    if not owned_by_galmet(listing):
        return None
    try:
        files = json.loads(listing.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    found = []
    for p in folder.rglob("*"):
        if p.is_symlink() or (not p.is_file() and not p.is_dir()):
            return None
        if p.is_dir() or p.name == LEDGER and p.parent == folder or p == listing:
            continue
        rel = p.relative_to(folder).as_posix()
        if files.get(rel) != p.stat().st_size:
            return None
        found.append(p)
    return [*found, listing, folder / LEDGER]


def _build(tmp: Path, pieces, ra_column: str, dec_column: str, column_units: dict[str, str]) -> dict:
    """Write each piece's rows, sorted by ``_healpix_29``, as its partition file; return what was
    written: ``pixels``, ``counts``, ``histogram`` (rows per pixel at ``order``), ``files`` and ``units``."""
    schema = _unified_schema([file for _, file in pieces], ra_column, dec_column, column_units)
    order = max(SKYMAP_MIN_ORDER, max(pixel.order for pixel, _ in pieces))
    written: dict = {"pixels": [], "counts": [], "files": {}, "order": order, "histogram": {}, "units": column_units}
    for pixel, file in pieces:
        table = _partition_table(pixel, file, schema, ra_column, dec_column)
        if table.num_rows == 0:
            continue
        _write_partition(tmp, pixel, table, written)
    if not written["pixels"]:
        raise DataError(f"{pieces[0][1].parent}: no rows to write (every partition file is empty)")
    return written


def _unified_schema(files: list[Path], ra_column: str, dec_column: str, column_units: dict[str, str]):
    """One arrow schema for all partitions (types promoted where pieces differ), columns in the first
    piece's order, ``_healpix_29`` last, units in the field metadata; DataError naming a bad piece."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = []
    for file in files:
        try:
            s = pq.read_schema(file)
        except Exception as exc:  # noqa: BLE001 (pyarrow raises many kinds; each is one bad file)
            raise DataError(f"{file}: cannot read this partition file ({one_line(exc)})") from None
        for col in (ra_column, dec_column):
            if col not in s.names:
                raise DataError(f"{file}: has no column {col!r} (the catalogue's ra/dec columns)")
        schemas.append(pa.schema([f for f in s if not _dropped(f.name)]))
    try:
        merged = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{files[0].parent}: partition files' columns disagree ({one_line(exc)})") from None
    fields = [_with_unit(f, column_units.get(f.name)) for f in merged]
    fields.append(pa.field(SPATIAL_INDEX, pa.int64()))
    meta = {b"galmet.units": json.dumps(dict(column_units), sort_keys=True).encode()}
    return pa.schema(fields, metadata=meta)


def _dropped(name: str) -> bool:
    """A piece's column galmet does not copy: ``_healpix_29`` (recomputed) and pandas' unnamed
    index (``__index_level_0__``: a row number of the piece, not data)."""
    return name == SPATIAL_INDEX or _PANDAS_INDEX.fullmatch(name) is not None


def _with_unit(field, unit: str | None):
    return field.with_metadata({b"unit": unit.encode()}) if unit else field.remove_metadata()


def _partition_table(pixel: HatsPixel, file: Path, schema, ra_column: str, dec_column: str):
    """The piece's rows in ``schema``, with ``_healpix_29``, sorted by it (stably); DataError for
    a row without a valid position or outside ``pixel``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file)
        table = table.drop_columns([c for c in table.column_names if _dropped(c)])
        table = _conform(table, schema)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{file}: cannot read this partition file ({one_line(exc)})") from None
    ra = table[ra_column].to_numpy(zero_copy_only=False).astype(np.float64)
    dec = table[dec_column].to_numpy(zero_copy_only=False).astype(np.float64)
    bad = np.flatnonzero(~valid_positions(ra, dec))
    if len(bad):
        raise DataError(
            f"{file}: row {bad[0]}: {ra_column}/{dec_column} {ra[bad[0]]}, {dec[bad[0]]} is not a sky position"
        )
    index = spatial_index(ra, dec)
    lo, hi = pixel.index_range()
    outside = np.flatnonzero((index < lo) | (index >= hi))
    if len(outside):
        i = outside[0]
        raise DataError(f"{file}: row {i}: ({ra[i]}, {dec[i]}) lies outside HEALPix pixel {pixel.key}")
    table = table.append_column(schema.field(SPATIAL_INDEX), pa.array(index, pa.int64()))
    return table.take(np.argsort(index, kind="stable"))


def _conform(table, schema):
    """``table`` with the columns of ``schema`` (less ``_healpix_29``), in its order and types
    (a column the piece lacks is all null)."""
    import pyarrow as pa

    columns = []
    for f in schema:
        if f.name == SPATIAL_INDEX:
            continue
        col = table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        columns.append(col.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema.remove(schema.get_field_index(SPATIAL_INDEX)))


def _write_partition(tmp: Path, pixel: HatsPixel, table, written: dict) -> None:
    """Write one partition file with hats' parquet settings; note its rows and histogram."""
    import pyarrow.parquet as pq

    fio = require("hats.io.file_io.file_io", "scale", PURPOSE)
    path = tmp / pixel.path
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **fio.get_parquet_write_table_kwargs(table.schema))
    order = written["order"]
    index = table[SPATIAL_INDEX].to_numpy()
    cells, counts = np.unique(index >> (2 * (SPATIAL_ORDER - order)), return_counts=True)
    for c, n in zip(cells.tolist(), counts.tolist(), strict=True):
        written["histogram"][c] = written["histogram"].get(c, 0) + n
    written["pixels"].append(pixel)
    written["counts"].append(table.num_rows)
    written["files"][pixel.path] = path.stat().st_size


def _finish(tmp: Path, written: dict, catalog_name: str, ra_column: str, dec_column: str, extra: dict) -> None:
    """The catalogue-level files, by the hats library: parquet metadata, partition list, maps, properties."""
    hats = require("hats", "scale", PURPOSE)
    pixels = [hats.HealpixPixel(p.order, p.pixel) for p in written["pixels"]]
    hats.io.write_parquet_metadata(tmp, create_metadata=True, create_per_partition_stats=True)
    _write_vo_units(hats, tmp, written["units"])
    partition_info = hats.catalog.PartitionInfo(pixels)
    partition_info.write_to_file(tmp / "partition_info.csv")
    order = written["order"]
    histogram = np.zeros(12 * 4**order, dtype=np.int64)
    histogram[list(written["histogram"])] = list(written["histogram"].values())
    hats.io.file_io.write_fits_image(histogram, tmp / "point_map.fits")
    hats.io.skymap.write_skymap(histogram=histogram, catalog_dir=tmp)
    coverage = float(partition_info.calculate_fractional_coverage())
    props = _table_properties(hats, tmp, written, catalog_name, ra_column, dec_column, extra)
    props.copy_and_update(moc_sky_fraction=round(coverage, 6)).to_properties_file(tmp)
    for path in tmp.rglob("*"):
        if path.is_file() and path.name != LEDGER:
            written["files"][path.relative_to(tmp).as_posix()] = path.stat().st_size


def _write_vo_units(hats, tmp: Path, column_units: dict[str, str]) -> None:
    """The units as IVOA VOParquet metadata in ``_common_metadata`` (hats' own writer; a unit
    that is not a VOUnit, like ``dex``, is kept as written and astropy's warning silenced)."""
    if not column_units:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hats.io.parquet_metadata.write_voparquet_in_common_metadata(tmp, field_units=dict(column_units))


def _table_properties(hats, tmp: Path, written: dict, catalog_name: str, ra_column: str, dec_column: str, extra):
    from galmet._version import __version__

    provenance = hats.catalog.dataset.hats_properties.HatsProperties.new_provenance_dict(
        tmp, builder=f"galmet v{__version__}"
    )
    return hats.catalog.TableProperties(
        catalog_name=catalog_name,
        catalog_type="object",
        total_rows=int(sum(written["counts"])),
        ra_column=ra_column,
        dec_column=dec_column,
        healpix_column=SPATIAL_INDEX,
        healpix_order=SPATIAL_ORDER,
        hats_max_rows=int(max(written["counts"])),
        hats_order=max(p.order for p in written["pixels"]),
        skymap_order=written["order"],
        npix_suffix=".parquet",
        **{**provenance, **extra},
    )


def _write_provenance(tmp: Path, written: dict, provenance: dict, column_units: dict[str, str]) -> None:
    """``galmet_provenance.json``: the caller's provenance, the units, and the files galmet wrote."""
    files = {k: v for k, v in sorted(written["files"].items()) if k != PROVENANCE_FILE}
    try:
        write_json(tmp / PROVENANCE_FILE, {"provenance": provenance, "column_units": column_units, "files": files})
    except TypeError as exc:
        raise ConfigError(f"provenance: not JSON-able ({one_line(exc)})", param="provenance") from None


def _swap(tmp: Path, out: Path, replacing: bool) -> None:
    """Rename the finished catalogue onto ``out``; a previous galmet catalogue there is moved
    aside first and its files (those its provenance lists) deleted afterwards."""
    if not replacing:
        with contextlib.suppress(FileNotFoundError):
            out.rmdir()  # an empty folder (a non-empty one makes this fail: never deleted)
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=_OLD_SUFFIX, dir=out.parent))
    os.rename(out, old / "catalogue")
    os.rename(tmp, out)
    _remove_galmet_tree(old / "catalogue")
    with contextlib.suppress(OSError):
        old.rmdir()


def _remove_galmet_tree(folder: Path) -> None:
    """Delete the files of a catalogue galmet wrote (:func:`_galmet_files`) and its then-empty folders."""
    for path in _galmet_files(folder) or []:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            d.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()
