"""Sky positions from what an astronomer has at hand: a SkyCoord, an astropy Table or QTable, a
pandas DataFrame, Quantities, or text (decimal degrees or sexagesimal).

Everything comes out as ICRS right ascension and declination in degrees (float64 arrays), with
the input's own columns kept beside them. astropy is imported only by the functions that need it
(a table of plain numbers in a DataFrame needs none), so importing this module stays cheap.

Column names are matched without regard to case, in this order of preference: ``ra``,
``raj2000``, ``_raj2000``, ``ra_icrs``, ``ra_deg``, ``radeg``, ``ra_j2000``, ``alpha_j2000``
(and the same for ``dec``/``de``); of those present, columns of numbers come before text, so a
VizieR export's computed degrees (``_RAJ2000``/``_DEJ2000``) are used rather than its sexagesimal
``RAJ2000``/``DEJ2000`` (unit ``h:m:s``/``d:m:s``, read as text when they are all there is), and the
choice is logged. A column of angles in any angular unit (a Quantity, or a Table
column with a unit) is converted to degrees; a unitless numeric column is taken as degrees; a
text column is parsed per row: decimal degrees, or sexagesimal (``12h30m49.4s``, ``12:30:49.4``,
``12 30 49.4``: right ascension in hours, declination in degrees, the convention of every
catalogue).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import objid_array
from galmet.errors import DataError
from galmet.io.tables import check_table_cells

log = logging.getLogger(__name__)

#: Column names taken as right ascension / declination, in order of preference (lower case).
RA_NAMES = ("ra", "raj2000", "_raj2000", "ra_icrs", "ra_deg", "radeg", "ra_j2000", "alpha_j2000")
DEC_NAMES = (
    "dec",
    "decj2000",
    "dej2000",
    "_dej2000",
    "de_icrs",
    "dec_icrs",
    "dec_deg",
    "decdeg",
    "dedeg",
    "dec_j2000",
    "de_j2000",
    "delta_j2000",
)


@dataclass
class Positions:
    """Sky positions with the input's columns.

    Attributes
    ----------
    ra, dec : numpy.ndarray
        float64 (N,), ICRS degrees; NaN where a row has no usable position.
    table : astropy.table.QTable or None
        The input's columns as given (units and all); None when the input was a SkyCoord or
        plain angles (no columns of its own).
    frame : pandas.DataFrame
        The input's one-dimensional columns as plain values (no units), N rows: for joins,
        pass-through and the catalogue checks of the predictions' flags.
    ra_column, dec_column : str or None
        The input columns the positions were read from.
    degrees_in_place : bool
        The input's ``ra_column``/``dec_column`` already hold these very degrees (so an output
        may replace them by the degree columns instead of keeping both).
    """

    ra: np.ndarray
    dec: np.ndarray
    table: Any = None
    frame: pd.DataFrame | None = None
    ra_column: str | None = None
    dec_column: str | None = None
    degrees_in_place: bool = False

    def __len__(self) -> int:
        return len(self.ra)

    def valid(self) -> np.ndarray:
        """bool (N,): finite, 0 <= ra <= 360 and -90 <= dec <= 90 degrees (:func:`on_the_sky`)."""
        return on_the_sky(self.ra, self.dec)


def on_the_sky(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """bool (N,): which positions (degrees, (N,) each) are finite with 0 <= ra <= 360 and
    -90 <= dec <= 90; the others are an ``invalid position``."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra <= 360) & (np.abs(dec) <= 90)


def parse_angle(text: str, kind: str) -> float:
    """One angle in degrees from text: decimal degrees (``187.7``) or sexagesimal (``12h30m49.4s``,
    ``12:30:49.4``, ``+12d23m28s``, ``-05 12 30``; right ascension in hours, declination in degrees).

    Parameters
    ----------
    text : str
    kind : {"ra", "dec"}
        Which coordinate (decides the unit of unmarked sexagesimal text and the allowed range).

    Raises
    ------
    ValueError
        One line: not an angle, or outside 0 <= ra < 360 / -90 <= dec <= 90 degrees.
    """
    t = str(text).strip()
    try:
        value = float(t)
    except ValueError:
        value = _sexagesimal(t, kind)
    _check_range(value, kind, t)
    return value


def _sexagesimal(text: str, kind: str) -> float:
    import astropy.units as u
    from astropy.coordinates import Angle

    try:
        return float(Angle(text, unit=u.hourangle if kind == "ra" else u.deg).deg)
    except (ValueError, TypeError, u.UnitsError) as exc:
        what = "right ascension" if kind == "ra" else "declination"
        raise ValueError(
            f"{text!r} is not a {what} (decimal degrees, or sexagesimal such as {_EXAMPLE[kind]})"
        ) from exc


_EXAMPLE = {"ra": "12h30m49.4s or 12:30:49.4", "dec": "+12d23m28s or +12:23:28"}


def _check_range(value: float, kind: str, text: str) -> None:
    ok = math.isfinite(value) and (0 <= value <= 360 if kind == "ra" else -90 <= value <= 90)
    if not ok:
        span = "0 to 360" if kind == "ra" else "-90 to +90"
        raise ValueError(f"{kind} {text} is outside {span} degrees")


def scalar_position(ra: Any, dec: Any = None) -> tuple[float, float]:
    """(ra, dec) in ICRS degrees of one position: a SkyCoord (``dec`` None), or two angles, each a
    number of degrees, an astropy Quantity/Angle, or text (see :func:`parse_angle`).

    Raises
    ------
    DataError
        Not one sky position (an array, a missing dec, a non-angle unit, out of range).
    """
    if dec is None:
        if not _is_skycoord(ra):
            raise DataError("give dec with ra, or one SkyCoord")
        c = _icrs(ra)
        if not c.isscalar:
            raise DataError(f"expected one position, got a SkyCoord of {len(c)}")
        return float(c.ra.deg), float(c.dec.deg)
    out = []
    for value, kind in ((ra, "ra"), (dec, "dec")):
        try:
            deg = parse_angle(value, kind) if isinstance(value, str) else _degrees(value, kind)
            _check_range(deg, kind, f"{deg:g}")
        except ValueError as exc:
            raise DataError(str(exc)) from None
        out.append(deg)
    return out[0], out[1]


def _degrees(value: Any, kind: str) -> float:
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        import astropy.units as u

        try:
            arr = np.asarray(value.to_value(u.deg), dtype=np.float64)
        except u.UnitsError:
            raise ValueError(f"{kind} has unit {value.unit}, not an angle") from None
    else:
        arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 0:
        raise ValueError(f"{kind}: expected one angle, got an array of shape {arr.shape}")
    return float(arr)


def _is_skycoord(obj: Any) -> bool:
    return type(obj).__name__ == "SkyCoord" and type(obj).__module__.startswith("astropy")


def _icrs(coord):
    try:
        return coord.icrs
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for frames it cannot convert
        raise DataError(f"cannot convert the coordinates to ICRS ({type(exc).__name__}: {exc})") from None


def sky_positions(coords: Any, where: str = "positions", *, copy: bool = True) -> Positions:
    """Positions (ICRS degrees) and the input's columns from a SkyCoord, an astropy Table/QTable,
    or a pandas DataFrame.

    Parameters
    ----------
    coords : SkyCoord, astropy.table.Table, pandas.DataFrame, or Positions
        A Table may hold a SkyCoord column instead of ra/dec columns; Positions are returned as they are.
    where : str
        Names the input in error messages.
    copy : bool
        Copy the input's columns (default), so a caller's later change to its table cannot reach
        a run. False shares them (for a table made for this call only, as the command line's read
        of a positions file: a million rows then cost one copy of their columns, not two).

    Raises
    ------
    DataError
        One line: no ra/dec columns, a column that is not angles, a text value that is not an
        angle (naming the row). Rows with missing or out-of-range positions are not an error:
        :meth:`Positions.valid` marks them.
    """
    if isinstance(coords, Positions):
        return coords
    if _is_skycoord(coords):
        c = _icrs(coords)
        ra, dec = np.atleast_1d(c.ra.deg).astype(np.float64), np.atleast_1d(c.dec.deg).astype(np.float64)
        return Positions(ra.ravel(), dec.ravel(), None, pd.DataFrame(index=range(ra.size)))
    if isinstance(coords, pd.DataFrame):
        plain = isinstance(coords.index, pd.RangeIndex) and coords.index.start == 0 and coords.index.step == 1
        frame = coords if plain and not copy else coords.reset_index(drop=True)
        check_table_cells(frame, where)  # a column name twice, an 8 MB name: one line now, not after the run
        (ra_col, ra, ra_deg), (dec_col, dec, dec_deg) = _read_radec(frame, list(map(str, frame.columns)), where)
        table = _qtable_from_pandas(frame)
        return Positions(ra, dec, table, frame, ra_col, dec_col, ra_deg and dec_deg)
    if _is_table(coords):
        from astropy.table import QTable

        table = QTable(coords, copy=copy)
        check_table_cells(table, where)
        frame = _plain_frame(table)
        sky = [name for name in table.colnames if _is_skycoord(table[name])]
        if sky and not _has_radec(table.colnames):
            c = _icrs(table[sky[0]])
            return Positions(np.asarray(c.ra.deg, float), np.asarray(c.dec.deg, float), table, frame)
        (ra_col, ra, ra_deg), (dec_col, dec, dec_deg) = _read_radec(table, list(table.colnames), where)
        return Positions(ra, dec, table, frame, ra_col, dec_col, ra_deg and dec_deg)
    raise DataError(
        f"{where}: expected a SkyCoord, an astropy Table/QTable or a pandas DataFrame with ra/dec, "
        f"got {type(coords).__name__}"
    )


def _is_table(obj: Any) -> bool:
    return any(k.__module__.startswith("astropy.table") and k.__name__ == "Table" for k in type(obj).__mro__)


def _has_radec(names: list[str]) -> bool:
    lower = {n.lower() for n in names}
    return any(n in lower for n in RA_NAMES) and any(n in lower for n in DEC_NAMES)


def _candidates(names: list[str], preferred: tuple[str, ...]) -> list[str]:
    """The columns of ``names`` that may hold one coordinate, best first: exact lower-case names,
    then any case, each in the order of ``preferred``."""
    hits = [n for c in preferred for n in names if n == c]
    hits += [n for c in preferred for n in names if n.lower() == c and n not in hits]
    return hits


def _read_radec(columns: Any, names: list[str], where: str) -> list[tuple[str, np.ndarray, bool]]:
    """[(column, degrees, held in place)] of ra and dec: of the candidate columns (:func:`_candidates`),
    those holding numbers (degrees, or angles with a unit) before text, so a VizieR table's computed
    ``_RAJ2000``/``_DEJ2000`` degrees win over its sexagesimal ``RAJ2000``/``DEJ2000``; a column that
    cannot be read gives way to the next (its error is raised when none can). Logs the choice when
    there was one."""
    chosen = []
    for preferred, kind in ((RA_NAMES, "ra"), (DEC_NAMES, "dec")):
        found = _candidates(names, preferred)
        if not found:
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise DataError(
                f"{where}: no {kind} column (looked for {', '.join(preferred[:4])} ... in any case; columns: {shown})"
            )
        first_error: DataError | None = None
        for name in sorted(found, key=lambda n: not _holds_numbers(columns[n])):  # (stable: by preference)
            try:
                values, in_place = _column_degrees(columns[name], kind, where, name)
            except DataError as exc:
                first_error = first_error or exc
                continue
            chosen.append((name, values, in_place, [n for n in found if n != name]))
            break
        else:
            assert first_error is not None
            raise first_error
    if chosen[0][3] or chosen[1][3]:
        log.info(
            "%s: positions from the columns %s and %s (%s); not from %s",
            where,
            chosen[0][0],
            chosen[1][0],
            "degrees" if _holds_numbers(columns[chosen[0][0]]) else "sexagesimal text",
            ", ".join(chosen[0][3] + chosen[1][3]),
        )
    return [(name, values, in_place) for name, values, in_place, _ in chosen]


def _holds_numbers(col: Any) -> bool:
    """True for a column of numbers (not text, not booleans)."""
    return np.asarray(getattr(col, "value", col) if hasattr(col, "to_value") else col).dtype.kind in "fiu"


#: Units VizieR (and others) give sexagesimal text columns: they say "text", not a unit to apply.
SEXAGESIMAL_UNITS = frozenset({"h:m:s", "d:m:s", "hms", "dms", '"h:m:s"', '"d:m:s"'})


def _column_degrees(col: Any, kind: str, where: str, name: str) -> tuple[np.ndarray, bool]:
    """(float64 degrees, whether the column already held these degrees) of one ra or dec column.

    A column of vectors (one array per row: a FITS ``2D`` column) is a one-line DataError naming
    it. An empty column without a unit holds these degrees whatever its type (a header-only CSV
    reads as text): the output of zero rows has the columns of a non-empty one."""
    shape = getattr(col, "shape", None) or np.shape(col)
    if len(shape) != 1:
        raise DataError(
            f"{where}: column {name} holds a vector of {'x'.join(map(str, shape[1:]))} values per row, "
            f"not one angle (give one {kind} per row)"
        )
    unit = getattr(col, "unit", None)
    if len(col) == 0 and unit is None:
        return np.zeros(0, dtype=np.float64), True
    if unit is not None and not _holds_numbers(col) and str(unit).strip().lower() in SEXAGESIMAL_UNITS:
        unit = None  # sexagesimal text (VizieR's RAJ2000 in "h:m:s"): parsed per row below
    if unit is not None and not isinstance(col, pd.Series):
        import astropy.units as u

        raw = col.value if hasattr(col, "to_value") else col
        try:
            values = (np.asarray(_filled(raw), dtype=np.float64) * u.Unit(unit)).to_value(u.deg)
        except (u.UnitsError, TypeError, ValueError):
            raise DataError(f"{where}: column {name} has unit {unit}, not an angle") from None
        return np.asarray(values, dtype=np.float64), u.Unit(unit) == u.deg
    arr = np.asarray(_filled(col))
    if arr.dtype.kind in "fiu":
        return arr.astype(np.float64), True
    if arr.dtype.kind == "b":
        raise DataError(f"{where}: column {name} holds booleans, not angles")
    out = np.full(len(arr), np.nan)
    for i, v in enumerate(arr.tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        text = (v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)).strip()  # (FITS: bytes)
        if not text or text.lower() in ("nan", "none", "null", "--", "<na>"):
            continue
        try:
            out[i] = float(text)
        except ValueError:
            try:
                out[i] = _sexagesimal(text, kind)
            except ValueError as exc:
                raise DataError(f"{where}: row {i}: column {name}: {exc}") from None
    return out, False


def _filled(col: Any) -> Any:
    """A masked column with its masked cells as NaN (floats) or None (anything else)."""
    mask = getattr(col, "mask", None)
    if mask is None or not np.any(mask):
        return getattr(col, "data", col) if hasattr(col, "filled") else col
    data: Any = np.ma.asarray(col)
    masked = np.ma.getmaskarray(data)
    if data.dtype.kind in "fiu":
        return np.where(masked, np.nan, np.asarray(data.data, dtype=np.float64))
    out = np.asarray(data.data).astype(object)
    out[masked] = None
    return out


def _qtable_from_pandas(frame: pd.DataFrame):
    from astropy.table import QTable

    return QTable.from_pandas(frame) if len(frame.columns) else QTable()


def _plain_frame(table) -> pd.DataFrame:
    """The one-dimensional, non-mixin columns of an astropy table as plain pandas values."""
    out = {}
    for name in table.colnames:
        col = table[name]
        if _is_skycoord(col) or getattr(col, "ndim", 1) != 1:
            continue
        values = col.value if hasattr(col, "to_value") else col
        values = _filled(values)
        arr = np.asarray(values)
        if arr.dtype.kind == "S":
            arr = np.char.decode(arr, "utf-8", errors="replace")
        if arr.dtype.byteorder not in ("=", "|"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        out[name] = arr
    # (views of the table's columns, not a second copy: the table is the Positions' own)
    return pd.DataFrame(out, index=range(len(table)), copy=False)


def cutout_keys(positions: Positions) -> tuple[np.ndarray, str]:
    """(int64 key per row, "objID" or "row"): the objID when every row has one and rows that share
    an objID share the position; else the row number."""
    frame = positions.frame
    col = next((c for c in (frame.columns if frame is not None else []) if str(c).lower() == "objid"), None)
    n = len(positions)
    if col is not None and frame is not None:
        try:
            ids = objid_array(frame[col], "positions", column=str(col))
        except DataError:
            ids = None
        if ids is not None and (ids >= 0).all() and _shared_ids_share_positions(ids, positions.ra, positions.dec):
            return ids, "objID"
    return np.arange(n, dtype=np.int64), "row"


def _shared_ids_share_positions(ids: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> bool:
    """True when every two rows with one objID have the same ra and dec (or both no ra): vectorised
    over the rows sorted by objID (a few arrays of N, not a dict of N Python tuples)."""
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    if not same.any():
        return True
    pairs = np.flatnonzero(same)
    a, b = order[pairs], order[pairs + 1]
    both_missing = np.isnan(ra[a]) & np.isnan(ra[b])
    return bool(np.all(both_missing | ((ra[a] == ra[b]) & (dec[a] == dec[b]))))
