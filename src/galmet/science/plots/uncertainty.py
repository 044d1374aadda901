"""How good the calibrated error bars are: coverage against nominal, PIT, sharpness, error vs err.

Four panels, from a predictions table's ``<target>_err`` and 68% / 95% interval columns
(computed with :mod:`galmet.science.calibration`):

(a) observed against nominal coverage: the stored 68% and 95% intervals (large markers, binomial
    error bars) and the Gaussian intervals ``centre +- z err`` at other levels (line);
(b) the PIT histogram of the Gaussian reading N(centre, err) (flat at 1 when err is right);
(c) sharpness: the distribution of err;
(d) the RMS residual in bins of err against err (on the one-to-one line when each error bar is
    right for its own galaxies, i.e. the calibration is locally adaptive where it should be).

When every galaxy has the same err (``absolute`` calibration: one interval width for all), (c)
and (d) would be one bar and one point; they show instead (c) the residuals with that one err
(written on the panel) and the 95% half-width marked, and (d) the RMS residual in bins of the
prediction against that err.
"""

from __future__ import annotations

import numpy as np

from galmet.errors import DataError
from galmet.science.calibration import PIT_BINS, error_vs_err, reliability
from galmet.science.plots.style import COLORS, merge_kwargs, new_figure, short_label, stats_box, style


class UncertaintyDisplay:
    """The calibration figure of a predictions table's error bars (see the module docstring).

    Build it with :meth:`from_predictions`, draw it with :meth:`plot`.

    Parameters
    ----------
    curve : pandas.DataFrame
        :func:`~galmet.science.calibration.reliability` of the Gaussian reading.
    intervals : dict
        Nominal level (0.68, 0.95) -> (observed coverage, binomial s.e.) of the stored intervals.
    pit : ndarray, shape (N,)
        PIT values of the Gaussian reading.
    err : ndarray, shape (N,)
        Calibrated 1-sigma (dex).
    binned : pandas.DataFrame
        :func:`~galmet.science.calibration.error_vs_err`.
    target : str

    Attributes
    ----------
    axes_ : list of 4 matplotlib Axes
    figure_ : matplotlib Figure
    """

    def __init__(self, curve, intervals, pit, err, binned, target: str = "oh_p50", resid=None, centre=None):
        self.curve, self.intervals, self.pit, self.err, self.binned, self.target = (
            curve,
            intervals,
            pit,
            err,
            binned,
            target,
        )
        self.resid = None if resid is None else np.asarray(resid, dtype=float)
        self.centre = None if centre is None else np.asarray(centre, dtype=float)

    @property
    def one_err(self) -> bool:
        """True when every error bar is the same (``absolute`` calibration: one interval width for
        all galaxies), so (c) and (d) show the residuals against that one value instead."""
        err = np.asarray(self.err, dtype=float)
        return bool(err.size) and float(np.ptp(err)) <= 1e-6 * max(float(np.max(np.abs(err))), 1e-12)

    @classmethod
    def from_predictions(cls, z_true, z_pred, err, intervals: dict, target: str = "oh_p50") -> UncertaintyDisplay:
        """Compute what is drawn.

        Parameters
        ----------
        z_true, z_pred, err : array-like, shape (N,)
            Truth, prediction and calibrated 1-sigma (dex).
        intervals : dict
            Level in per cent (68, 95) -> (lower, upper) arrays (N,). The centre of the 68%
            interval is the centre of the Gaussian reading.
        """
        from scipy.stats import norm

        y, err = np.asarray(z_true, float), np.asarray(err, float)
        lo68, hi68 = (np.asarray(a, float) for a in intervals[68])
        mu = (lo68 + hi68) / 2
        ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(err) & (err > 0)
        if ok.sum() < 2:
            raise DataError("uncertainty figure: fewer than 2 rows with a truth and a finite error bar")
        cov = {}
        for tag, (lo, hi) in intervals.items():
            inside = (y[ok] >= np.asarray(lo, float)[ok]) & (y[ok] <= np.asarray(hi, float)[ok])
            c = float(inside.mean())
            cov[tag / 100] = (c, float(np.sqrt(c * (1 - c) / ok.sum())))
        pit = norm.cdf((y[ok] - mu[ok]) / err[ok])
        binned = error_vs_err(y[ok], mu[ok], err[ok])
        return cls(reliability(y[ok], mu[ok], err[ok]), cov, pit, err[ok], binned, target, y[ok] - mu[ok], mu[ok])

    def plot(self, fig=None, point_kwargs: dict | None = None) -> UncertaintyDisplay:
        """Draw the four panels into ``fig`` (default: a new 10 x 7.6 inch figure); returns self."""
        with style():
            fig = fig if fig is not None else new_figure((10, 7.6))
            axes = fig.subplots(2, 2).ravel()
            ax = axes[0]
            ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="ideal")
            ax.plot(self.curve["nominal"], self.curve["observed"], color=COLORS["pred"], lw=1.3, label="mu +- z err")
            for level, (c, se) in self.intervals.items():
                ax.errorbar(
                    [level],
                    [c],
                    yerr=[se],
                    **merge_kwargs(
                        {"fmt": "o", "color": COLORS["rmse"], "ms": 7, "capsize": 3, "label": None}, point_kwargs
                    ),
                )
            box = [
                f"{100 * lv:.0f}% interval: {100 * c:.1f} +- {100 * se:.1f}%" for lv, (c, se) in self.intervals.items()
            ]
            stats_box(ax, "\n".join(box), "upper left")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("nominal coverage")
            ax.set_ylabel("observed coverage")
            ax.set_title("(a) coverage (markers: stored intervals)")
            ax.legend(frameon=False, loc="lower right")

            ax = axes[1]
            ax.hist(self.pit, bins=PIT_BINS, range=(0, 1), density=True, color=COLORS["pred"], alpha=0.6)
            ax.axhline(1, color="0.3", lw=1, ls="--")
            ax.set_xlabel("PIT of N(centre, err)")
            ax.set_ylabel("density")
            ax.set_title("(b) PIT histogram (flat if calibrated)")

            if self.one_err and self.resid is not None and self.centre is not None:
                self._one_err_panels(axes[2], axes[3])
            else:
                self._sharpness(axes[2])
                self._error_vs_err(axes[3])
            fig.tight_layout()
        self.axes_ = list(axes)
        self.figure_ = fig
        return self

    def _sharpness(self, ax) -> None:
        """(c) the distribution of err, its median dashed."""
        # the bulk, not a few galaxies with a huge err, sets the range; those are counted in the legend
        top = float(np.percentile(self.err, 95)) * 1.5
        beyond = int((self.err > top).sum())
        ax.hist(np.clip(self.err, 0, top), bins=30, range=(0, top), color=COLORS["median"], alpha=0.7)
        if beyond:
            ax.plot([], [], " ", label=f"{beyond} beyond {top:.2f} (last bin)")
        ax.axvline(np.median(self.err), color="0.2", lw=1, ls="--", label=f"median {np.median(self.err):.3f}")
        ax.set_xlabel(f"calibrated 1-sigma err of {short_label(self.target, 'pred')} (dex)")
        ax.set_ylabel("galaxies")
        ax.set_title("(c) sharpness")
        ax.legend(frameon=False)

    def _error_vs_err(self, ax) -> None:
        """(d) the RMS residual in bins of err against err."""
        b = self.binned
        if len(b):
            top = float(max(b["err"].max(), b["rms"].max())) * 1.15
            ax.plot([0, top], [0, top], color="0.6", lw=1, ls=":")
            ax.scatter(b["err"], b["rms"], s=20 + 180 * b["n"] / b["n"].max(), color=COLORS["rmse"], zorder=3)
            ax.set_xlim(0, top)
            ax.set_ylim(0, top)
        ax.set_xlabel("err, median in bin (dex)")
        ax.set_ylabel("RMS of Z_true - centre (dex)")
        ax.set_title("(d) error against err (area ~ count)")

    def _one_err_panels(self, ax_c, ax_d) -> None:
        """(c) and (d) when every galaxy has the same err (a histogram of it would be one bar):
        (c) the residuals Z_true - centre with +- err and the 95% half-width marked, the one err
        written on the panel; (d) the RMS residual in bins of the prediction against that err, which
        shows where one width is too wide or too narrow."""
        err = float(self.err[0])
        r, centre = self.resid, self.centre
        assert r is not None and centre is not None  # (drawn only with both: see draw)
        half95 = float(np.percentile(np.abs(r), 95))
        lim = float(np.percentile(np.abs(r), 99.5)) * 1.1 or 1.0
        ax_c.hist(np.clip(r, -lim, lim), bins=40, range=(-lim, lim), color=COLORS["pred"], alpha=0.6)
        for sign in (-1, 1):
            ax_c.axvline(
                sign * err, color=COLORS["rmse"], lw=1.3, label=f"$\\pm$ err = {err:.3f} dex" if sign > 0 else None
            )
            ax_c.axvline(sign * half95, color="0.3", lw=1, ls="--", label="95% of |residuals|" if sign > 0 else None)
        stats_box(ax_c, f"one error bar for every galaxy:\nerr = {err:.3f} dex", "upper left")
        ax_c.set_xlabel(f"Z_true - centre of {short_label(self.target, 'pred')} (dex)")
        ax_c.set_ylabel("galaxies")
        ax_c.set_title("(c) residuals against the one err")
        ax_c.legend(frameon=False, loc="upper right", fontsize=8)
        k = max(1, min(8, len(r) // 10))
        edges = np.unique(np.quantile(centre, np.linspace(0, 1, k + 1)))
        which = np.clip(np.searchsorted(edges[1:-1], centre, side="right"), 0, max(len(edges) - 2, 0))
        groups = [which == b for b in range(max(len(edges) - 1, 1))]
        x = [float(np.median(centre[g])) for g in groups if g.any()]
        rms = [float(np.sqrt(np.mean(r[g] ** 2))) for g in groups if g.any()]
        n = np.array([int(g.sum()) for g in groups if g.any()])
        ax_d.axhline(err, color=COLORS["rmse"], lw=1.3, label=f"err = {err:.3f} dex (every galaxy)")
        ax_d.scatter(x, rms, s=20 + 180 * n / n.max(), color=COLORS["pred"], zorder=3, label="RMS residual in bin")
        ax_d.set_ylim(0, max(max(rms), err) * 1.3)
        ax_d.set_xlabel(f"{short_label(self.target, 'pred')}, median in bin (dex)")
        ax_d.set_ylabel("RMS of Z_true - centre (dex)")
        ax_d.set_title("(d) RMS residual against the prediction (area ~ count)")
        ax_d.legend(frameon=False, loc="lower right", fontsize=8)


def plot_uncertainty(z_true, z_pred, err, intervals: dict, target: str = "oh_p50", fig=None):
    """:meth:`UncertaintyDisplay.from_predictions` then :meth:`UncertaintyDisplay.plot`; returns the Figure."""
    return UncertaintyDisplay.from_predictions(z_true, z_pred, err, intervals, target).plot(fig=fig).figure_
