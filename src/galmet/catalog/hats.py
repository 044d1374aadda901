"""HATS catalogues in and out of a catalogue job (through :mod:`galmet.io.hats`).

In: a HATS catalogue keeps its partitioning: one task per HEALPix pixel of it, its rows read a
pixel at a time. Out: a folder ``out`` is written as a HATS catalogue (units, provenance and the
model card in its metadata; error bars and flags as columns) that ``lsdb.read_hats`` opens; the
partitions are then HEALPix pixels, the input's own (a HATS input) or planned from the positions
(:func:`galmet.io.hats.plan_pixels`, at most ``partition_rows`` rows a pixel). Rows without a
usable position have no place on the sky: they are left out of a HATS output (counted, and said).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from galmet.catalog.source import Rows, Source, fingerprint, write_atomically
from galmet.catalog.work import Partition, Tally, WorkFolder
from galmet.columns import STATUS_OK
from galmet.io.tables import table_provenance

log = logging.getLogger(__name__)

__all__ = ["HatsSource", "sky_partitions", "write_hats_output"]


class HatsSource(Source):
    """A HATS catalogue, read a HEALPix pixel at a time (its partitions are the job's)."""

    def __init__(self, path: str | os.PathLike):
        from galmet.io.hats import open_hats

        self.path = Path(path)
        self.where = str(self.path)
        self.hats = open_hats(self.path)
        self.pixels = list(self.hats.pixels)
        self._rows: list[int] = []
        self.n_rows = 0

    def positions(self) -> tuple[np.ndarray, np.ndarray, str]:
        columns = [self.hats.ra_column, self.hats.dec_column]

        def parts():
            self._rows = []
            for pixel in self.pixels:
                frame = self.hats.read(pixel, columns=columns)
                self._rows.append(len(frame))
                yield (
                    frame[columns[0]].to_numpy(dtype=np.float64),
                    frame[columns[1]].to_numpy(dtype=np.float64),
                )

        ra, dec, digest = fingerprint(parts(), [str(p.key) for p in self.pixels])
        self.n_rows = len(ra)
        return ra, dec, digest

    def partitions(self) -> list[tuple[Partition, Rows]]:
        """Its own pixels, in order (after :meth:`positions`)."""
        out: list[tuple[Partition, Rows]] = []
        start = 0
        for i, (pixel, n) in enumerate(zip(self.pixels, self._rows, strict=True)):
            out.append((Partition(pixel.key, i, n, pixel.order, pixel.pixel), range(start, start + n)))
            start += n
        return out

    def write(self, requests: list[tuple[Partition, Rows]], path_of: Callable[[str], Path]) -> None:
        by_key = {p.key: p for p in self.pixels}
        for partition, _ in requests:
            frame = self.hats.read(by_key[partition.key])
            write_atomically(path_of(partition.key), self.where, _frame_writer(frame))


def _frame_writer(frame: Any) -> Callable[[Path], None]:
    """A writer of one pixel's rows as parquet."""

    def write(tmp: Path) -> None:
        frame.to_parquet(tmp, index=False)

    return write


def sky_partitions(ra: np.ndarray, dec: np.ndarray, partition_rows: int) -> list[tuple[Partition, Rows]]:
    """HEALPix pixels of at most ``partition_rows`` rows each, for the rows with a usable position."""
    from galmet.io.hats import plan_pixels
    from galmet.sdss.coords import on_the_sky

    index = np.flatnonzero(on_the_sky(ra, dec))  # the rows the positions job would not call invalid
    left = len(ra) - len(index)
    if left:
        log.warning("catalogue: %d rows have no usable position; a HATS catalogue has no place for them", left)
    plan = plan_pixels(ra[index], dec[index], partition_rows)
    return [
        (Partition(pixel.key, i, len(rows), pixel.order, pixel.pixel), index[np.asarray(rows, dtype=np.int64)])
        for i, (pixel, rows) in enumerate(plan)
    ]


def _astropy_header(schema: Any) -> dict:
    """astropy's header (``datatype``, ``meta``) in a partition's parquet schema; {} without one."""
    from astropy.table.meta import get_header_from_yaml

    raw = (schema.metadata or {}).get(b"table_meta_yaml")
    return {} if raw is None else dict(get_header_from_yaml(raw.decode().splitlines()))


def _units(schema: Any) -> dict[str, str]:
    """Column -> unit string from astropy's metadata of a partition's parquet table."""
    return {d["name"]: str(d["unit"]) for d in _astropy_header(schema).get("datatype", []) if d.get("unit")}


def _partition_meta(schema: Any) -> dict:
    """The positions table's provenance of a partition (data release, server, pixel scale, TTA ...),
    from astropy's metadata of its parquet table; the per-partition counts left out."""
    meta = dict(_astropy_header(schema).get("meta") or {})
    return {k: v for k, v in meta.items() if k not in ("rows", "rows_ok")}


def write_hats_output(out: Path, work: WorkFolder, partitions: list[Partition], tally: Tally, model: Any) -> Path:
    """Write the done partitions as the HATS catalogue ``out`` (:func:`galmet.io.hats.write_hats`)."""
    import pyarrow.parquet as pq

    from galmet.io.hats import HatsPixel, write_hats

    pieces = [(HatsPixel(int(p.order or 0), int(p.pixel or 0)), work.done_table(p.key)) for p in partitions]
    units: dict[str, str] = {}
    for _, path in pieces:
        units.update(_units(pq.read_schema(path)))
    provenance = {
        **(_partition_meta(pq.read_schema(pieces[0][1])) if pieces else {}),  # the settings the partitions ran with
        **table_provenance(),
        "model": Path(model.path).name if model.path is not None else "",
        "engine": ",".join(sorted(tally.engines)),
        "rows": tally.rows,
        "rows_ok": int(tally.statuses.get(STATUS_OK, 0)),
        "statuses": dict(tally.statuses),
        "model_card": model.card or {},
    }
    name = getattr(model, "name", None) or provenance["model"]  # a registered model by its name
    properties = {"galmet_rows_ok": str(provenance["rows_ok"]), "galmet_model": str(name)}
    write_hats(
        out,
        pieces,
        catalog_name=out.name,
        ra_column="ra",
        dec_column="dec",
        properties=properties,
        provenance=json.loads(json.dumps(provenance, default=str)),
        column_units=units,
    )
    return out
