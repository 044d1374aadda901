"""The output of a finished catalogue job, from its partitions' tables.

A parquet ``out`` is streamed, a partition at a time, with ``pyarrow.parquet.ParquetWriter``: the
memory is one partition's, whatever the catalogue's size. Other table formats (CSV, ECSV, FITS)
are written through galmet's table writer from the whole table (hold it in memory; prefer
parquet or HATS at scale). A folder ``out`` is a HATS catalogue (:func:`galmet.io.hats.write_hats`).

The columns are those of :func:`galmet.predict.positions.predict_positions`' table, in its order;
a partition in which no row could be predicted has no prediction columns of its own and gets
them as NaN (flags 0), as the one-machine table has them for such rows. The table's metadata
(units, provenance) is the partitions', with ``rows``/``rows_ok`` of the whole catalogue.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from galmet.catalog.work import Partition, Tally, WorkFolder
from galmet.columns import STATUS_OK
from galmet.io.atomic import atomic_path
from galmet.io.tables import table_provenance

__all__ = ["assemble_table", "merged_schema", "table_meta"]


def _schemas(work: WorkFolder, partitions: list[Partition]) -> list[Any]:
    import pyarrow.parquet as pq

    return [pq.read_schema(work.done_table(p.key)) for p in partitions]


def merged_schema(schemas: list[Any]) -> Any:
    """The output schema: the widest partition's (its fields in order, then any others'), with its metadata."""
    import pyarrow as pa

    widest = max(schemas, key=lambda s: len(s.names))
    fields = list(widest)
    seen = set(widest.names)
    for schema in schemas:
        for f in schema:
            if f.name not in seen:
                fields.append(f)
                seen.add(f.name)
    meta = dict(widest.metadata or {})
    for schema in schemas:  # astropy's text widths: the widest over the partitions (else it truncates)
        for key, value in (schema.metadata or {}).items():
            if key.startswith(b"table::len::"):
                meta[key] = str(max(int(value), int(meta.get(key, b"0")))).encode()
    return pa.schema(fields, metadata=meta)


def table_meta(schema: Any, tally: Tally, extra: dict[str, Any]) -> dict[bytes, bytes]:
    """``schema``'s metadata with astropy's table meta updated: provenance of this assembly, the
    catalogue's ``rows`` and ``rows_ok``, and ``extra`` (partitions ...)."""
    from astropy.io.misc import yaml
    from astropy.table.meta import get_header_from_yaml

    meta = dict(schema.metadata or {})
    raw = meta.get(b"table_meta_yaml")
    if raw is None:
        return meta
    header = get_header_from_yaml(raw.decode().splitlines())
    table = dict(header.get("meta") or {})
    table.update(table_provenance())
    table.update({"rows": tally.rows, "rows_ok": int(tally.statuses.get(STATUS_OK, 0)), **extra})
    header["meta"] = table
    meta[b"table_meta_yaml"] = yaml.dump(header).encode()
    return meta


def _conformed(table: Any, schema: Any) -> Any:
    """``table`` with ``schema``'s columns in order: a missing one filled (NaN, 0, False, "")."""
    import numpy as np
    import pyarrow as pa

    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table[f.name].cast(f.type))
            continue
        n = table.num_rows
        if pa.types.is_floating(f.type):
            fill = pa.array(np.full(n, np.nan), type=f.type)
        elif pa.types.is_integer(f.type):
            fill = pa.array(np.zeros(n, dtype=np.int64)).cast(f.type)
        elif pa.types.is_boolean(f.type):
            fill = pa.array(np.zeros(n, dtype=bool))
        elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            fill = pa.array([""] * n, type=f.type)
        else:
            fill = pa.nulls(n, type=f.type)
        columns.append(fill)
    return pa.Table.from_arrays(columns, schema=schema)


def write_parquet(path: Path, work: WorkFolder, partitions: list[Partition], tally: Tally, extra: dict) -> int:
    """Stream the partitions' tables into one parquet file at ``path`` (atomically); return its rows."""
    import pyarrow.parquet as pq

    schema = merged_schema(_schemas(work, partitions))
    schema = schema.with_metadata(table_meta(schema, tally, extra))
    rows = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for p in partitions:
            table = _conformed(pq.read_table(work.done_table(p.key), use_threads=False), schema)
            writer.write_table(table)
            rows += table.num_rows
    return rows


def assemble_table(out: str | os.PathLike, work: WorkFolder, partitions: list[Partition], tally: Tally) -> Path:
    """Write the job's table to ``out`` (its suffix gives the format), from the done partitions in order."""
    from galmet.io.tables import table_format

    out = Path(out)
    extra: dict = {"partitions": len(partitions)}
    if tally.engines:  # every engine that predicted a partition (each within 0.002 dex of float32)
        extra["engine"] = ",".join(sorted(tally.engines))
    fmt = table_format(out, writing=True)
    if fmt is not None and fmt.name == "parquet":
        write_parquet(out, work, partitions, tally, extra)
        return out
    from astropy.table import QTable

    from galmet.predict.output import write_positions_table

    merged = work.root / "assembled.parquet"
    write_parquet(merged, work, partitions, tally, extra)
    try:
        write_positions_table(QTable.read(merged, format="parquet"), out)
    finally:
        merged.unlink(missing_ok=True)
    return out
