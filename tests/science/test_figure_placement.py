"""Figures leave their data visible and say what they show: legends and insets go where the
galaxies are not, axes follow the data's own range, one error bar for all is not one bar, and
attribution maps have a colour bar."""

from __future__ import annotations

import numpy as np
import pytest

from galmet.paper import tremonti_mzr

pytest.importorskip("matplotlib")

from galmet.science.plots.placement import data_limits, display_points, points_in, renderer_of  # noqa: E402


def _covered(ax, artist, x, y) -> int:
    """Data points (x, y) of ``ax`` inside ``artist``'s drawn box (display pixels)."""
    fig = ax.figure
    box = artist.get_tightbbox(renderer_of(fig))
    return points_in(box, display_points(ax, x, y))


def _old_box_covers(ax, x, y, loc, **kwargs) -> int:
    """How many points a legend at the old fixed ``loc`` would cover (then the legend is put back)."""
    chosen = ax.get_legend()
    old = ax.legend(loc=loc, **kwargs)
    n = points_in(old.get_window_extent(renderer_of(ax.figure)), display_points(ax, x, y))
    old.remove()
    ax.add_artist(chosen)
    return n


def _anti_diagonal(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(8.2, 9.2, n)
    return t, 17.4 - t + rng.normal(0, 0.02, n)  # upper left to lower right: where legend and inset were


@pytest.mark.parametrize("kind", ["anti-diagonal", "one-to-one"])
def test_fig3_legend_and_inset_leave_the_galaxies_visible(kind):
    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay

    t, p = _anti_diagonal()
    if kind == "one-to-one":
        p = t + np.random.default_rng(1).normal(0, 0.03, len(t))
    disp = PredVsTrueDisplay.from_predictions(t, p).plot()
    ax, inset = disp.axes_["main"], disp.axes_["inset"]
    legend = ax.get_legend()
    assert _covered(ax, inset, t, p) == 0
    assert _covered(ax, legend, t, p) <= 0.01 * len(t)
    assert not legend.get_window_extent(renderer_of(ax.figure)).overlaps(inset.get_tightbbox(renderer_of(ax.figure)))
    x0, y0 = inset.get_position().x0, inset.get_position().y0
    main = ax.get_position()
    if kind == "one-to-one":  # the paper's places when they are free
        assert x0 > main.x0 + 0.5 * main.width and y0 < main.y0 + 0.5 * main.height
        assert legend._loc == 2  # upper left
    else:  # the old places would have hidden galaxies: both moved
        assert _old_box_covers(ax, t, p, "upper left", frameon=True) > 0.05 * len(t)
        assert not (x0 > main.x0 + 0.5 * main.width and y0 < main.y0 + 0.5 * main.height)


def _falling_mzr(n=400, seed=2):
    rng = np.random.default_rng(seed)
    m = rng.uniform(9.0, 11.0, n)
    return m, 9.3 - 0.35 * (m - 9.0) + rng.normal(0, 0.04, n)  # high mass, low Z: the lower right


@pytest.mark.parametrize("style", ["paper", "galmet"])
def test_fig6_legend_leaves_the_galaxies_visible(style):
    from galmet.science.plots.mzr import MZRDisplay

    m, z = _falling_mzr()
    disp = MZRDisplay.from_predictions(m, z, style=style).plot()
    ax = disp.ax_
    assert _covered(ax, ax.get_legend(), m, z) <= 0.02 * len(m)
    assert _old_box_covers(ax, m, z, "lower right", frameon=True, fontsize=7.5) > 0.05 * len(m)


def test_fig6_axes_follow_the_data_not_its_outliers_nor_the_relation_beyond_it():
    from galmet.science.plots.mzr import MZRDisplay

    rng = np.random.default_rng(3)
    m = rng.normal(10.0, 0.3, 400)
    z = tremonti_mzr(m) + rng.normal(0, 0.05, 400)
    z[:3] = 10.8  # three wild predictions
    ax = MZRDisplay.from_predictions(m, z).plot().ax_
    lo, hi = ax.get_ylim()
    bulk = z[3:]
    assert lo <= bulk.min() and hi >= np.percentile(bulk, 99.5)
    assert hi < 9.6  # not stretched to the outliers at 10.8
    xlo, xhi = ax.get_xlim()
    assert xlo <= m.min() and xhi >= m.max() and xhi - xlo < 1.15 * np.ptp(m)
    # low-mass galaxies: Tremonti's relation is drawn from 8.5 only and no longer pulls the Z axis down
    m2 = rng.uniform(7.6, 8.6, 300)
    z2 = 8.3 + rng.normal(0, 0.05, 300)
    lo2, _ = MZRDisplay.from_predictions(m2, z2).plot().ax_.get_ylim()
    assert lo2 > z2.min() - 0.1


def test_data_limits():
    v = np.r_[np.linspace(8.0, 9.0, 200), 12.0]
    lo, hi = data_limits(v)
    assert lo < 8.0 and 9.0 < hi < 9.5
    assert data_limits([1.0, 1.0]) == (0.5, 1.5) and data_limits([np.nan]) == (0.0, 1.0)


@pytest.mark.parametrize("spread", [0.0, 0.02])
def test_the_uncertainty_figure_with_one_error_bar_for_all(spread):
    from galmet.science.plots.uncertainty import UncertaintyDisplay

    rng = np.random.default_rng(4)
    y = rng.uniform(8.3, 9.1, 400)
    mu = y + rng.normal(0, 0.1, 400)
    err = 0.1 + spread * rng.uniform(-1, 1, 400)
    intervals = {68: (mu - err, mu + err), 95: (mu - 2 * err, mu + 2 * err)}
    disp = UncertaintyDisplay.from_predictions(y, mu, err, intervals).plot()
    c, d = disp.axes_[2], disp.axes_[3]
    filled = [b for b in c.patches if b.get_height() > 0]
    assert len(filled) >= 5  # never a single bar
    if spread == 0:
        assert disp.one_err
        texts = " ".join(t.get_text() for t in c.texts) + " ".join(
            a.txt.get_text() for a in c.artists if hasattr(a, "txt")
        )
        assert "err = 0.100 dex" in texts
        assert len(d.collections[0].get_offsets()) >= 5  # RMS in bins of the prediction, not one point
        assert "against the one err" in c.get_title()
    else:
        assert not disp.one_err and c.get_title() == "(c) sharpness"


@pytest.mark.parametrize("method", ["gradcam", "integrated-gradients", "occlusion"])
def test_attribution_maps_have_a_colour_bar(method):
    from galmet.science.plots.attribution import AttributionGridDisplay

    rng = np.random.default_rng(5)
    images = rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    maps = rng.uniform(0 if method == "gradcam" else -1, 1, (3, 16, 16)) * np.array([1.0, 50.0, 0.01])[:, None, None]
    disp = AttributionGridDisplay.from_maps(images, maps, [8.7, 8.8, 8.9], method=method).plot()
    bar = disp.colorbar_
    assert bar.ax in disp.figure_.axes and bar.ax.get_ylabel()
    assert bar.vmin == (0.0 if method == "gradcam" else -1.0) and bar.vmax == 1.0
    # every map on the one scale: each galaxy's strongest pixel at the top of the bar
    for im in [a.images[-1] for a in disp.axes_ if len(a.images) == 2]:
        assert np.nanmax(np.abs(im.get_array())) == pytest.approx(1.0)
