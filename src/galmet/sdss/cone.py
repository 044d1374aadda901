"""The paper's galaxies within a radius of a sky position (``galmet catalog --cone``).

One SkyServer query: the paper's joins and cuts (:func:`galmet.sdss.catalog.build_sql`), joined
to SkyServer's table function ``dbo.fGetNearbyObjEq(ra, dec, r)`` (degrees, degrees, arcmin),
which returns the primary objects within ``r`` arcminutes with their ``distance`` (arcmin).
"""

from __future__ import annotations

import math
import re
import threading

from galmet.errors import ConfigError
from galmet.sdss.catalog import QUERY_RANGES, Cuts, build_sql, merge_chunks

#: The largest cone radius, arcmin (3 degrees: a few thousand of the paper's galaxies at most,
#: one SqlSearch request well within its time and row limits).
MAX_RADIUS_ARCMIN = 180.0
#: Arcminutes per unit of a radius written as text (a bare number is arcmin, as SkyServer's).
RADIUS_UNITS = {
    "arcsec": 1 / 60,
    "asec": 1 / 60,
    '"': 1 / 60,
    "arcmin": 1.0,
    "amin": 1.0,
    "'": 1.0,
    "deg": 60.0,
    "degree": 60.0,
    "degrees": 60.0,
    "d": 60.0,
}
#: The distance column of a cone catalogue (arcmin from the centre).
DISTANCE = "distance_arcmin"
_RADIUS = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z'\"]*)\s*")


def parse_radius(value) -> float:
    """A cone radius in arcmin from a number (arcmin), text with a unit (``10arcmin``, ``0.5deg``,
    ``30arcsec``, ``5'``; a bare number is arcmin) or an astropy angle Quantity.

    Raises
    ------
    ConfigError
        One line: not an angle, not positive, or over :data:`MAX_RADIUS_ARCMIN`.
    """
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        import astropy.units as u

        try:
            arcmin = float(value.to_value(u.arcmin))
        except (u.UnitsError, TypeError):
            raise ConfigError(f"radius {value} is not an angle", param="radius") from None
    elif isinstance(value, str):
        m = _RADIUS.fullmatch(value)
        unit = m.group(2).lower() if m else ""
        if m is None or (unit and unit not in RADIUS_UNITS):
            raise ConfigError(
                f"radius {value!r} is not an angle (a number of arcmin, or e.g. 10arcmin, 0.5deg, 30arcsec)",
                param="radius",
            )
        arcmin = float(m.group(1)) * RADIUS_UNITS.get(unit, 1.0)
    else:
        arcmin = float(value)
    if not math.isfinite(arcmin) or arcmin <= 0 or arcmin > MAX_RADIUS_ARCMIN:
        raise ConfigError(
            f"radius {value} must be above 0 and at most {MAX_RADIUS_ARCMIN:g} arcmin (3 deg), got {arcmin:g} arcmin",
            param="radius",
        )
    return arcmin


def cone_center(ra, dec) -> tuple[float, float]:
    """(ra, dec) ICRS degrees from numbers (degrees), text (decimal or sexagesimal) or Quantities;
    ConfigError (one line) when it is not a position on the sky."""
    from galmet.errors import DataError
    from galmet.sdss.coords import scalar_position

    try:
        return scalar_position(ra, dec)
    except DataError as exc:
        raise ConfigError(str(exc), param="center") from None


def cone_sql(ra: float, dec: float, radius_arcmin: float, cuts: Cuts | None = None, top: int | None = None) -> str:
    """The paper's SQL restricted to within ``radius_arcmin`` of (ra, dec) degrees, with each
    galaxy's distance from the centre (arcmin) as :data:`DISTANCE`."""
    ra_, dec_, r_ = (format(float(v), ".10g") for v in (ra, dec, radius_arcmin))
    near = f"dbo.fGetNearbyObjEq({ra_}, {dec_}, {r_})"
    join = f"JOIN {near} AS n ON n.objID = g.objID"
    return build_sql(cuts or Cuts(), top=top, extra_columns=[("n.distance", DISTANCE)], join=join)


def query_cone(
    client,
    ra,
    dec,
    radius,
    cuts: Cuts | None = None,
    limit: int | None = None,
    stop: threading.Event | None = None,
    *,
    get_query_payload: bool = False,
):
    """The paper's galaxies (its columns, labels and cuts) within ``radius`` of (ra, dec).

    Parameters
    ----------
    client : galmet.sdss.skyserver.SkyServerClient
    ra, dec : float, str or Quantity
        The centre: degrees, decimal or sexagesimal text (``12h30m49.4s``, ``+12d23m28s``), or angles.
    radius : float, str or Quantity
        Arcmin when a number; see :func:`parse_radius`. At most :data:`MAX_RADIUS_ARCMIN`.
    limit : int, optional
        At most this many galaxies (SQL ``TOP``: any ``limit`` of them, not necessarily the nearest).
    get_query_payload : bool
        Return the :class:`~galmet.sdss.transport.RequestPayload` instead and send nothing.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy, nearest first, with :data:`DISTANCE` (arcmin).
    """
    ra, dec = cone_center(ra, dec)
    arcmin = parse_radius(radius)
    cuts = cuts or Cuts()
    cuts.check()
    if limit is not None:
        QUERY_RANGES["limit"].check("limit", limit)
    sql = cone_sql(ra, dec, arcmin, cuts, limit)
    if get_query_payload:
        return client.sql_payload(sql)
    where = f"cone of {arcmin:g} arcmin at ra {ra:g} dec {dec:g}"
    frame = client.sql_search(sql, where=where, expect_columns=("objID",), stop=stop)
    merged = merge_chunks([frame])
    if DISTANCE in merged.columns:
        merged[DISTANCE] = merged[DISTANCE].astype(float)
        merged = merged.sort_values(DISTANCE, kind="stable").reset_index(drop=True)
    return merged
