"""galmet.io: files, safely.

The public API (each name imported on first use)::

    read_table, write_table   # DataFrames by suffix through the one format registry
    write_qtable, read_any_table  # astropy tables (units, provenance) through the same registry
    table_format, TABLE_FORMATS   # the registry itself
    atomic_path, atomic_write_bytes, atomic_write_text  # temp file + rename
    read_image                # header first, then decode and validate

Modules: :mod:`.tables`, :mod:`.atomic`, :mod:`.images`, :mod:`.safety`, :mod:`.inputs`, :mod:`.locks`,
:mod:`.progress`, :mod:`.jsonfile`, :mod:`.hats` (HATS catalogues in and out: :mod:`.hats_pixels`,
:mod:`.hats_read`, :mod:`.hats_write`).
"""

from galmet._lazy import lazy_exports

_NAMES = {
    "read_table": "galmet.io.tables",
    "write_table": "galmet.io.tables",
    "write_qtable": "galmet.io.tables",
    "read_any_table": "galmet.io.tables",
    "table_format": "galmet.io.tables",
    "TABLE_FORMATS": "galmet.io.tables",
    "atomic_path": "galmet.io.atomic",
    "atomic_write_bytes": "galmet.io.atomic",
    "atomic_write_text": "galmet.io.atomic",
    "read_image": "galmet.io.images",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
