"""The input of a catalogue job, read a partition at a time.

:func:`open_source` takes what :func:`galmet.predict_catalog` accepts: a table galmet reads today
(FITS, ECSV, CSV, VOTable, parquet), a folder of parquet files (a parquet dataset), a HATS
catalogue, or an in-memory table (astropy Table/QTable, pandas DataFrame, SkyCoord). Each source
gives the positions of every row (ICRS degrees: the fingerprint of the job, and the sky partitions
of a HATS output) and writes the input rows of each partition to its own parquet file, which is
what a task reads.

A parquet file or dataset is streamed with pyarrow, a batch at a time: besides the ra/dec arrays
(16 bytes a row) the driver holds at most one partition's rows. A table in another format is
read whole (as the one-machine path reads it).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from galmet.catalog.work import Partition
from galmet.errors import DataError, GalmetError, one_line
from galmet.io.atomic import atomic_path

log = logging.getLogger(__name__)

__all__ = ["Source", "TableSource", "ParquetSource", "open_source", "PARQUET_SUFFIXES"]

#: Suffixes of the files of a parquet dataset folder.
PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
#: Rows per batch read from a parquet input (the memory of one batch is held beside one partition's).
BATCH_ROWS = 65536
#: Rows (an index array, or a range of consecutive rows) of one partition.
Rows = np.ndarray | range


class Source:
    """A catalogue to partition: its rows' positions and a writer of each partition's rows."""

    where: str = "catalogue"
    n_rows: int = 0

    def positions(self) -> tuple[np.ndarray, np.ndarray, str]:
        """(ra, dec, fingerprint): float64 (N,) ICRS degrees (NaN where unusable), and the SHA-256
        of the positions and column names (a rerun resumes only the same catalogue)."""
        raise NotImplementedError

    def write(self, requests: list[tuple[Partition, Rows]], path_of: Callable[[str], Path]) -> None:
        """Write the rows of each requested partition to ``path_of(key)`` (parquet, atomically)."""
        raise NotImplementedError


def fingerprint(parts: Iterator[tuple[np.ndarray, np.ndarray]], names: list[str]) -> tuple[np.ndarray, np.ndarray, str]:
    h = hashlib.sha256("\x00".join(names).encode())
    ras, decs = [], []
    for ra, dec in parts:
        h.update(np.ascontiguousarray(ra, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(dec, dtype=np.float64).tobytes())
        ras.append(ra)
        decs.append(dec)
    ra = np.concatenate(ras) if ras else np.zeros(0)
    dec = np.concatenate(decs) if decs else np.zeros(0)
    return ra.astype(np.float64), dec.astype(np.float64), h.hexdigest()


class TableSource(Source):
    """An in-memory table: a pandas DataFrame or an astropy Table/QTable (a file read whole)."""

    def __init__(self, table: Any, where: str = "positions"):
        self.table, self.where = table, where
        self.n_rows = len(table)

    def _names(self) -> list[str]:
        return [str(c) for c in (self.table.columns if _is_pandas(self.table) else self.table.colnames)]

    def positions(self) -> tuple[np.ndarray, np.ndarray, str]:
        from galmet.sdss.coords import sky_positions

        p = sky_positions(self.table, where=self.where)
        return fingerprint(iter([(p.ra, p.dec)]), self._names())

    def write(self, requests: list[tuple[Partition, Rows]], path_of: Callable[[str], Path]) -> None:
        for partition, rows in requests:
            index = np.arange(rows.start, rows.stop) if isinstance(rows, range) else np.asarray(rows)
            pandas = _is_pandas(self.table)
            part = self.table.iloc[index].reset_index(drop=True) if pandas else self.table[index]
            write_atomically(path_of(partition.key), self.where, _table_writer(part, pandas))


def _is_pandas(table: Any) -> bool:
    """Whether ``table`` is a pandas DataFrame (an astropy Table has an ``iloc`` too, for its indices)."""
    import pandas as pd

    return isinstance(table, pd.DataFrame)


def _table_writer(part: Any, pandas: bool) -> Callable[[Path], None]:
    """A writer of one in-memory partition as parquet (pandas', or astropy's: units kept)."""

    def write(tmp: Path) -> None:
        if pandas:
            part.to_parquet(tmp, index=False)
        else:
            part.write(tmp, format="parquet", overwrite=True)

    return write


def write_atomically(path: Path, where: str, writer: Callable[[Path], None]) -> None:
    """Write one partition's input with ``writer(tmp)``, atomically (not durable: scratch)."""
    try:
        with atomic_path(path, durable=False) as tmp:
            writer(tmp)
    except GalmetError:
        raise
    except Exception as exc:  # noqa: BLE001 - a column parquet cannot hold is the input's
        raise DataError(f"{where}: cannot write its rows as parquet ({one_line(exc)})") from None


class ParquetSource(Source):
    """A parquet file, or a folder of parquet files (a parquet dataset, files in name order),
    read a batch at a time with pyarrow."""

    def __init__(self, path: str | os.PathLike):
        import pyarrow.dataset as ds

        self.path = Path(path)
        self.where = str(self.path)
        try:
            files = _parquet_files(self.path)
            self.dataset = ds.dataset(files, format="parquet")
            self.n_rows = int(self.dataset.count_rows())
        except GalmetError:
            raise
        except Exception as exc:  # noqa: BLE001 - not parquet, damaged, or schemas that differ
            raise DataError(f"{self.path}: cannot read it as parquet ({one_line(exc)})") from None
        meta = dict(self.dataset.schema.metadata or {})
        meta.pop(b"pandas", None)  # its index would not match a partition's rows
        self.metadata = meta
        self.names = list(self.dataset.schema.names)

    def _batches(self, columns: list[str] | None = None) -> Iterator[Any]:
        try:
            yield from self.dataset.to_batches(columns=columns, batch_size=BATCH_ROWS, use_threads=False)
        except Exception as exc:  # noqa: BLE001 - a damaged file midway
            raise DataError(f"{self.path}: cannot read it as parquet ({one_line(exc)})") from None

    def _frame(self, batch: Any) -> Any:
        """A batch as a table :func:`sky_positions` reads: its columns with the units the file's
        astropy metadata gives them (angles in hours or radians are converted)."""
        import pyarrow as pa

        table = pa.Table.from_batches([batch]).replace_schema_metadata(self.metadata)
        if b"table_meta_yaml" in self.metadata:
            return _astropy_from_arrow(table)
        return table.to_pandas()

    def positions(self) -> tuple[np.ndarray, np.ndarray, str]:
        from galmet.sdss.coords import sky_positions

        head = next(iter(self.dataset.to_batches(batch_size=16, use_threads=False)), None)
        if head is None or self.n_rows == 0:
            return fingerprint(iter([]), self.names)
        first = sky_positions(self._frame(head), where=self.where)
        columns = [c for c in (first.ra_column, first.dec_column) if c is not None]
        if len(columns) != 2:  # a column of SkyCoords: every column is needed
            columns = self.names

        def parts() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for batch in self._batches(columns):
                p = sky_positions(self._frame(batch), where=self.where)
                yield p.ra, p.dec

        return fingerprint(parts(), self.names)

    def write(self, requests: list[tuple[Partition, Rows]], path_of: Callable[[str], Path]) -> None:
        ranges = [(p, r) for p, r in requests if isinstance(r, range)]
        for partition, rows in requests:
            if not isinstance(rows, range):
                self._write_table(path_of(partition.key), self.dataset.take(np.asarray(rows, dtype=np.int64)))
        if ranges:
            self._write_ranges(ranges, path_of)

    def _write_ranges(self, ranges: list[tuple[Partition, range]], path_of: Callable[[str], Path]) -> None:
        """Stream the batches once, cutting out the requested ranges (in order; one held at a time)."""
        import pyarrow as pa

        ranges = sorted(ranges, key=lambda pr: pr[1].start)
        held: list[Any] = []
        k, offset = 0, 0
        for batch in self._batches():
            end = offset + batch.num_rows
            while k < len(ranges) and ranges[k][1].start < end:
                partition, rows = ranges[k]
                lo, hi = max(rows.start, offset), min(rows.stop, end)
                if hi > lo:
                    held.append(batch.slice(lo - offset, hi - lo))
                if rows.stop > end:
                    break
                self._write_table(path_of(partition.key), pa.Table.from_batches(held, schema=batch.schema))
                held, k = [], k + 1
            offset = end
            if k >= len(ranges):
                return

    def _write_table(self, path: Path, table: Any) -> None:
        import pyarrow.parquet as pq

        table = table.replace_schema_metadata(self.metadata)
        write_atomically(path, self.where, lambda tmp: pq.write_table(table, tmp))


def _astropy_from_arrow(table: Any) -> Any:
    """An arrow table written by astropy (``table_meta_yaml``) as the QTable astropy would read."""
    import io

    import pyarrow.parquet as pq
    from astropy.table import QTable

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    return QTable.read(buffer, format="parquet")


def _parquet_files(path: Path) -> list[str]:
    """The parquet files of a file or a dataset folder (recursively, in name order)."""
    if path.is_file():
        return [str(path)]

    def hidden(p: Path) -> bool:  # _SUCCESS, _metadata, .crc and hidden folders are not data
        return any(s.startswith((".", "_")) for s in p.relative_to(path).parts)

    files = sorted(
        str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES and not hidden(p)
    )
    if not files:
        raise DataError(f"{path}: is a folder without parquet files; expected a parquet dataset or a HATS catalogue")
    return files


def open_source(catalog: Any) -> Source:
    """The :class:`Source` of ``catalog``: a path (table file, parquet file or dataset folder; a
    HATS catalogue is opened by :mod:`galmet.catalog.hats_source`) or an in-memory table/SkyCoord."""
    if isinstance(catalog, (str, os.PathLike)):
        path = Path(catalog)
        if not path.exists():
            raise DataError(f"{path}: positions file not found")
        if path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES:
            return ParquetSource(path)
        from galmet.io.tables import read_any_table

        return TableSource(read_any_table(path), where=str(path))
    if type(catalog).__name__ == "SkyCoord":
        from astropy.table import QTable

        c = catalog.icrs
        return TableSource(QTable({"ra": c.ra.deg, "dec": c.dec.deg}), where="positions")
    if hasattr(catalog, "iloc") or hasattr(catalog, "colnames"):
        return TableSource(catalog, where="positions")
    raise DataError(
        f"catalog: expected a table file, a parquet dataset or HATS folder, a Table, DataFrame or SkyCoord; "
        f"got {type(catalog).__name__}",
        param="catalog",
    )
