"""HATS catalogues in and out: the one module the catalogue engine imports.

HATS (Hierarchical Adaptive Tiling Scheme) is the partitioned Parquet layout that LSDB reads,
cross-matches and runs on Dask: a folder per catalogue, one Parquet file per HEALPix pixel of
mixed orders (``dataset/Norder=K/Dir=D/Npix=N.parquet``), a partition list and a properties
file. galmet reads positions from one partition at a time and writes its predictions as one::

    is_hats(path)                      # a folder the hats library reads as a catalogue
    open_hats(path) -> HatsInput       # .pixels, .ra_column, .dec_column, .name, .total_rows, .read(pixel)
    plan_pixels(ra, dec, max_rows)     # a flat table's rows -> mixed-order pixels (hats-import's alignment)
    write_hats(out, pieces, ...)       # per-pixel parquet files -> a catalogue folder, atomically
    HatsPixel(order, pixel)            # .key, .path, ordering

Modules: :mod:`.hats_pixels` (pixels and the partitioning), :mod:`.hats_read`, :mod:`.hats_write`.
hats and lsdb are optional (``pip install 'galmet[scale]'``) and imported only when used.
"""

from __future__ import annotations

from galmet.io.hats_pixels import SPATIAL_INDEX, HatsPixel, plan_pixels, valid_positions
from galmet.io.hats_read import HatsInput, is_hats, open_hats
from galmet.io.hats_write import PROVENANCE_FILE, check_hats_out, write_hats

__all__ = [
    "check_hats_out",
    "HatsPixel",
    "HatsInput",
    "is_hats",
    "open_hats",
    "plan_pixels",
    "valid_positions",
    "write_hats",
    "SPATIAL_INDEX",
    "PROVENANCE_FILE",
]
