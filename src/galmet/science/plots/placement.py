"""Where things go on a figure: axis limits from the data's own range, and legends and insets
where the data are not.

- :func:`data_limits`: an axis range that shows the bulk of the values and their ordinary tails,
  without letting a few far outliers (or a fixed range) stretch the axis;
- :func:`inset_corner`: of the four corners of an axes, the one where an inset of a given size
  covers the fewest data points;
- :func:`place_legend`: a legend at the place (corners first) where its drawn box covers the
  fewest data points and no other box (an inset) given to avoid.

Points are counted in display coordinates, so the answer is the one the drawn figure shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Legend places tried by :func:`place_legend`, in order of preference (a tie keeps the earlier).
LEGEND_PLACES = (
    "upper left",
    "lower right",
    "upper right",
    "lower left",
    "center left",
    "center right",
    "upper center",
    "lower center",
)


def data_limits(values, margin: float = 0.05, core: tuple[float, float] = (5.0, 95.0), reach: float = 0.5):
    """An axis range (lo, hi) for ``values`` from their own spread.

    The ``core`` percentiles' range, extended to the smallest and largest value as far as
    ``reach`` times its width on each side (ordinary tails are shown whole, a far outlier does
    not stretch the axis), then widened by ``margin`` of the result on each side.

    Parameters
    ----------
    values : array-like, shape (N,)
        Finite values are used; NaN and infinities are ignored.

    Returns
    -------
    (float, float)
        In the values' units; (0, 1) when none is finite, value +- 0.5 when all are equal.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, core)
    width = hi - lo
    lo, hi = max(float(v.min()), lo - reach * width), min(float(v.max()), hi + reach * width)
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def display_points(ax, x, y) -> np.ndarray:
    """The finite points (x, y) in ``ax``'s data coordinates as display pixels, float (M, 2)."""
    xy = np.column_stack([np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()])
    xy = xy[np.isfinite(xy).all(axis=1)]
    return ax.transData.transform(xy) if len(xy) else np.empty((0, 2))


def points_in(box, points: np.ndarray) -> int:
    """How many of ``points`` (display pixels, (M, 2)) lie inside ``box`` (a matplotlib Bbox)."""
    if box is None or not len(points):
        return 0
    x, y = points[:, 0], points[:, 1]
    return int(((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)).sum())


def renderer_of(fig):
    """The renderer that window extents are measured with (the Agg canvas's)."""
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()  # noqa: SLF001 - a canvas without one


def inset_corner(ax, x, y, size: tuple[float, float], pad: Sequence[float] = (0.03, 0.12, 0.03, 0.06)):
    """The ``[x0, y0, width, height]`` (axes fraction) for an inset of ``size`` (width, height in
    axes fraction) in the corner of ``ax`` where it and its labels cover the fewest of the points.

    ``pad`` (left, below, right, above; axes fraction) is the room the inset's tick labels, x label
    and title take around it: it counts as covered and keeps the whole inside the axes. Corners
    tried: lower right (preferred on a tie), upper left, lower left, upper right. Call it once the
    axis limits are set.
    """
    from matplotlib.transforms import Bbox

    w, h = size
    left, below, right, above = pad
    x0s = {"left": left, "right": 1 - right - w}
    y0s = {"lower": below, "upper": 1 - above - h}
    points = display_points(ax, x, y)
    best = None
    for vert, horiz in (("lower", "right"), ("upper", "left"), ("lower", "left"), ("upper", "right")):
        x0, y0 = x0s[horiz], y0s[vert]
        region = Bbox.from_extents(x0 - left, y0 - below, x0 + w + right, y0 + h + above)
        n = points_in(region.transformed(ax.transAxes), points)
        if best is None or n < best[0]:
            best = (n, [x0, y0, w, h])
    assert best is not None  # (four corners were tried)
    return best[1]


def place_legend(ax, x, y, avoid=(), places: Sequence[str] = LEGEND_PLACES, **kwargs):
    """``ax.legend(**kwargs)`` at the place where its box covers the fewest of the points (x, y).

    Parameters
    ----------
    x, y : array-like, shape (N,)
        The data (``ax``'s data coordinates) the legend should leave visible.
    avoid : sequence of matplotlib artists
        Boxes the legend must not overlap (an inset): a place overlapping one is taken only when
        every place does.
    places : sequence of str
        ``loc`` values tried, in order of preference; a tie keeps the earlier.

    Returns
    -------
    matplotlib.legend.Legend
        The legend, drawn at the chosen place (``legend.get_loc()`` or ``_loc`` tells which).
    """
    renderer = renderer_of(ax.figure)
    points = display_points(ax, x, y)
    boxes = [a.get_tightbbox(renderer) for a in avoid]
    best = None
    for loc in places:
        box = ax.legend(loc=loc, **kwargs).get_window_extent(renderer)
        overlaps = sum(b is not None and box.overlaps(b) for b in boxes)
        score = (overlaps, points_in(box, points))
        if best is None or score < best[0]:
            best = (score, loc)
    if best is None:  # no place to try: matplotlib's own choice
        return ax.legend(**kwargs)
    return ax.legend(loc=best[1], **kwargs)
