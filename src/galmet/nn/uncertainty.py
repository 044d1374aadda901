"""Calibrated uncertainties of a model's predictions: the calibration a bundle stores and applies.

A :class:`Calibration` turns a raw prediction (and, for the locally adaptive methods, its scale)
into a calibrated 1-sigma error bar and central 68% and 95% intervals. It is split-conformal
prediction (Vovk et al. 2005; Lei et al. 2018): the *scores* are the normalised residuals
``(y - pred) / u`` of galaxies the model did not train on (the out-of-fold predictions of
``galmet train --folds``, or the ``valid`` rows of an ordinary run), sorted; an interval at level
``1 - alpha`` reaches from the ``floor((n + 1) alpha / 2)``-th to the ``ceil((n + 1)(1 - alpha / 2))``-th
of the ``n`` scores, which covers a new exchangeable galaxy with probability at least ``1 - alpha``
(and at most ``1 - alpha + 2 / (n + 1)`` for continuous scores). With ``symmetric=True`` the scores are
``|y - pred| / u`` and the interval ``pred +- u * s_(k)``, ``k = ceil((n + 1)(1 - alpha))``.

Scale ``u`` of a row, by ``method``:

==============  ===========================================================================
``absolute``    1: the same interval width for every galaxy (plain split-conformal)
``spread``      ``spread + offset``: wider where the TTA views / ensemble members disagree
``sigma``       ``sqrt(sigma**2 + spread**2) + offset``: the heteroscedastic head's own sigma
                (``--loss gaussian``) combined with the spread
==============  ===========================================================================

The offset (default: the median scale of the calibration set for ``spread``, 0 for ``sigma``)
keeps a score finite when a scale is near zero.

*Mondrian* calibration (Vovk et al. 2005, ch. 4): with ``edges`` (K - 1 increasing edges on the
*prediction*, quantiles of the calibration galaxies' predictions), the calibration galaxies are
split into K bins by their prediction and each bin keeps its own scores (``bins``); a new galaxy
takes the interval of the bin its prediction falls in, with the finite-sample correction of that
bin's size. Coverage then holds in every bin of predicted metallicity, not only on average (a
CNN's errors shrink towards the mean, so one marginal quantile under-covers the tails). Stored
format v2 adds ``edges`` and ``bins``; v1 (one pooled score set) still reads.

*CV+* (Barber et al. 2021) for an ensemble of K fold models: with ``folds`` (the member that
did not see each calibration galaxy), a new galaxy's interval is built from each member's own
prediction ``mu_k(x)``: the ``k_lo``-th and ``k_hi``-th smallest of ``mu_k(i)(x) + u z_i`` over
the calibration galaxies i (symmetric: ``mu_k(i)(x) -+ u |z_i|``), instead of shifting the
averaged prediction by quantiles of residuals that are not the ensemble's. Its worst-case
guarantee is ``1 - 2 alpha``; in practice it is near nominal.

*Weighted* conformal prediction under covariate shift (Tibshirani et al. 2019): with ``weights``
(the importance weight ``p_target(x) / p_train(x)`` of each calibration galaxy, e.g. from
``galmet domain-check --out``) and ``test_weight`` (the weight of a new galaxy), the quantile at
level q is the smallest score s with ``sum_{s_i <= s} w_i / (sum_i w_i + w_test) >= q`` (+inf when
never reached); equal weights give the unweighted order statistics. One ``test_weight`` serves
every new galaxy (an approximation: the weight of a typical target galaxy, by default the mean
importance weight of the target set). Not combined with CV+.

Pure numpy: the science layer fits calibrations with :mod:`galmet.science.calibration`;
:mod:`galmet.nn.bundle` stores them as plain data under ``meta["calibration"][target]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from galmet.columns import INTERVAL_LEVELS, err_column, interval_columns, sigma_column, spread_column
from galmet.errors import ConfigError
from galmet.nn.bundle_meta import MetaKey

#: Ways to scale the residuals (see the module docstring).
METHODS = ("absolute", "spread", "sigma")
#: Scores kept in a bundle: all of them up to this many, else this many evenly spaced order statistics.
MAX_STORED_SCORES = 20_000
#: Version of the stored calibration dict (2: Mondrian ``edges`` and ``bins``).
CALIBRATION_VERSION = 2
#: Versions this galmet reads.
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Calibration:
    """A split-conformal calibration of one target (see the module docstring).

    Attributes
    ----------
    target : str
        The label it calibrates (e.g. ``oh_p50``).
    method : {"absolute", "spread", "sigma"}
        How a row's scale is made.
    scores : numpy.ndarray
        Sorted scores, float64 (M,): normalised signed residuals ``(y - pred) / u``, or their
        absolute values when ``symmetric``.
    n : int
        Calibration galaxies the scores came from (M = n unless more than
        :data:`MAX_STORED_SCORES`, in which case ``ranks`` says which order statistics were kept).
    symmetric : bool
        Intervals symmetric about the prediction (absolute scores) rather than from the two
        tails of the signed scores (which also absorbs a bias of the predictions).
    offset : float
        Added to the scale of ``spread`` and ``sigma`` (target units).
    ranks : numpy.ndarray or None
        1-based ranks of the stored scores among the n when they were thinned.
    source : dict
        Provenance: where the residuals came from (file, split, n, galmet version, date).
    edges : numpy.ndarray or None
        Mondrian: K - 1 increasing bin edges on the prediction (target units); None: one bin.
    bins : tuple of Calibration
        Mondrian: the K per-bin calibrations (same target, method, symmetric, offset); empty for one bin.
    folds : numpy.ndarray or None
        CV+: int (M,), the ensemble member (0 .. members-1) that did not train on the galaxy of
        each stored score (scores are then never thinned); None: plain split conformal.
    members : int
        CV+: members of the ensemble the fold ids refer to (0 without CV+).
    weights : numpy.ndarray or None
        Weighted conformal: float64 (M,) > 0, the importance weight of each stored score's galaxy
        (scores are then never thinned); None: unweighted.
    test_weight : float
        Weighted conformal: the weight given to a new galaxy (> 0; 0 when unweighted).
    """

    target: str
    method: str
    scores: np.ndarray
    n: int
    symmetric: bool = False
    offset: float = 0.0
    ranks: np.ndarray | None = None
    source: dict = field(default_factory=dict)
    edges: np.ndarray | None = None
    bins: tuple[Calibration, ...] = ()
    folds: np.ndarray | None = None
    members: int = 0
    weights: np.ndarray | None = None
    test_weight: float = 0.0

    # --- construction and storage ---------------------------------------------------------

    @classmethod
    def from_scores(
        cls,
        target: str,
        method: str,
        scores,
        symmetric: bool = False,
        offset: float = 0.0,
        source: dict | None = None,
        folds=None,
        members: int = 0,
        weights=None,
        test_weight: float | None = None,
    ) -> Calibration:
        """A calibration from the (unsorted) scores of ``n`` calibration galaxies; with ``folds``
        (int (n,), member ids 0 .. ``members`` - 1) a CV+ calibration (never thinned); with
        ``weights`` (float (n,) > 0) and ``test_weight`` (> 0) a weighted one (never thinned)."""
        raw = np.asarray(scores, dtype=np.float64).ravel()
        order = np.argsort(raw, kind="stable")
        s = raw[order]
        if s.size == 0 or not np.isfinite(s).all():
            raise ConfigError(f"calibration of {target}: scores must be finite and at least one")
        if weights is not None:
            if folds is not None:
                raise ConfigError(f"calibration of {target}: weighted conformal is not combined with CV+")
            w = _check_weights(weights, test_weight, raw.size, f"calibration of {target}")[order]
            cal = cls(target, method, s, int(s.size), bool(symmetric), float(offset), None, dict(source or {}))
            return replace(cal, weights=w, test_weight=float(test_weight))  # type: ignore[arg-type]
        if folds is not None:
            f = np.asarray(folds, dtype=np.int64).ravel()[order]
            cal = cls(target, method, s, int(s.size), bool(symmetric), float(offset), None, dict(source or {}))
            return replace(cal, folds=f, members=int(members))
        n, ranks = int(s.size), None
        if n > MAX_STORED_SCORES:
            ranks = np.unique(np.round(np.linspace(1, n, MAX_STORED_SCORES)).astype(np.int64))
            s = s[ranks - 1]
        return cls(target, method, s, n, bool(symmetric), float(offset), ranks, dict(source or {}))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a bundle's meta (lists and floats only)."""
        return {
            "version": CALIBRATION_VERSION,
            "target": self.target,
            "method": self.method,
            "symmetric": self.symmetric,
            "offset": self.offset,
            "n": self.n,
            "scores": [float(v) for v in self.scores],
            "ranks": None if self.ranks is None else [int(r) for r in self.ranks],
            "source": dict(self.source),
            "edges": None if self.edges is None else [float(e) for e in self.edges],
            "bins": [_bin_dict(b) for b in self.bins],
            "folds": None if self.folds is None else [int(f) for f in self.folds],
            "members": self.members,
            "weights": None if self.weights is None else [float(w) for w in self.weights],
            "test_weight": None if self.weights is None else self.test_weight,
        }

    def with_bins(self, edges, bins) -> Calibration:
        """This (pooled) calibration made Mondrian: ``edges`` (K - 1,) increasing, ``bins`` K calibrations."""
        e = np.asarray(edges, dtype=np.float64).ravel()
        return replace(self, edges=e, bins=tuple(bins))

    @classmethod
    def from_dict(cls, data: Any, where: str = "calibration") -> Calibration:
        """Read and check a dict written by :meth:`to_dict`; ConfigError (one line) when malformed."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a calibration must be a mapping, got {type(data).__name__}")
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise ConfigError(f"{where}: calibration version {version!r} is not one this galmet reads")
        method = data.get("method")
        if method not in METHODS:
            raise ConfigError(f"{where}: unknown calibration method {method!r} (known: {', '.join(METHODS)})")
        try:
            scores = np.asarray(data["scores"], dtype=np.float64)
            n = int(data["n"])
            offset = float(data.get("offset", 0.0))
            ranks = None if data.get("ranks") is None else np.asarray(data["ranks"], dtype=np.int64)
            target = str(data["target"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed calibration ({type(exc).__name__}: {exc})") from None
        ok = bool(scores.ndim == 1 and scores.size > 0 and np.isfinite(scores).all() and np.all(np.diff(scores) >= 0))
        ok = ok and n >= scores.size and math.isfinite(offset) and offset >= 0
        if ranks is not None:
            ok = ok and ranks.shape == scores.shape and bool(ranks.min() >= 1) and bool(ranks.max() <= n)
        if not ok:
            raise ConfigError(f"{where}: malformed calibration (scores, n, ranks or offset out of order)")
        source = data.get("source", {})
        if not isinstance(source, dict):
            raise ConfigError(f"{where}: calibration source must be a mapping")
        cal = cls(target, method, scores, n, bool(data.get("symmetric", False)), offset, ranks, source)
        if version < 2:
            return cal
        return _read_bins(_read_weights(_read_folds(cal, data, where), data, where), data, where)

    # --- applying it -----------------------------------------------------------------------

    def _order_stat(self, k: int) -> float:
        """The k-th smallest (1-based) of the n scores; -inf below 1, +inf above n."""
        if k < 1:
            return -math.inf
        if k > self.n:
            return math.inf
        if self.ranks is None:
            return float(self.scores[k - 1])
        return float(np.interp(k, self.ranks, self.scores))

    def quantiles(self, level: float) -> tuple[float, float]:
        """(low, high) score multipliers of the central ``level`` interval: ``pred + u * low`` to
        ``pred + u * high``, with the finite-sample correction of split-conformal prediction."""
        if not 0 < level < 1:
            raise ConfigError(f"interval level must be between 0 and 1, got {level}")
        alpha, n1 = 1.0 - level, self.n + 1
        if self.weights is not None:
            return self._weighted_quantiles(level)
        if self.symmetric:
            q = self._order_stat(math.ceil(n1 * level - 1e-9))
            return -q, q
        return self._order_stat(math.floor(n1 * alpha / 2 + 1e-9)), self._order_stat(
            math.ceil(n1 * (1 - alpha / 2) - 1e-9)
        )

    def _weighted_quantiles(self, level: float) -> tuple[float, float]:
        """:meth:`quantiles` of a weighted calibration (Tibshirani et al. 2019); the lower tail is
        the mirror image of the upper one (the quantile at ``1 - alpha / 2`` of the negated scores)."""
        assert self.weights is not None
        if self.symmetric:
            q = _weighted_quantile(self.scores, self.weights, self.test_weight, level)
            return -q, q
        upper = 1 - (1 - level) / 2
        hi = _weighted_quantile(self.scores, self.weights, self.test_weight, upper)
        lo = -_weighted_quantile(-self.scores[::-1], self.weights[::-1], self.test_weight, upper)
        return lo, hi

    def scale(self, spread=None, sigma=None, n: int | None = None) -> np.ndarray:
        """The scale u of each row (target units), float64 (N,); see the module docstring."""
        if self.method == "absolute":
            size = n if n is not None else len(np.atleast_1d(spread if spread is not None else sigma))
            return np.ones(size)
        sp = None if spread is None else np.nan_to_num(np.asarray(spread, dtype=np.float64), nan=0.0)
        if self.method == "spread":
            if sp is None:
                raise ConfigError(f"calibration of {self.target} (method spread) needs the spread of the predictions")
            return sp + self.offset
        if sigma is None:
            raise ConfigError(
                f"calibration of {self.target} (method sigma) needs the model's own sigma (a model trained with "
                "loss gaussian)",
                param="loss",
            )
        sg = np.asarray(sigma, dtype=np.float64)
        return np.sqrt(sg**2 + (0.0 if sp is None else sp**2)) + self.offset

    def apply(self, pred, spread=None, sigma=None, members=None) -> dict[str, np.ndarray]:
        """Calibrated error bar and intervals of predictions ``pred`` (N,), as table columns.

        ``members`` (M, N): each ensemble member's prediction, needed by a CV+ calibration
        (ConfigError without it, or with another number of members).

        Returns
        -------
        dict
            ``<target>_err`` (half the width of the 68% interval) and ``<target>_lo68``,
            ``_hi68``, ``_lo95``, ``_hi95``, each float64 (N,), target units. An interval the
            calibration set is too small to bound (fewer than ~40 galaxies at 95%) is infinite.
        """
        p = np.asarray(pred, dtype=np.float64)
        mu = self._check_members(members, len(p))
        if self.bins:
            return self._apply_mondrian(p, spread, sigma, mu)
        u = self.scale(spread, sigma, n=len(p))
        out: dict[str, np.ndarray] = {}
        bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for tag, level in INTERVAL_LEVELS.items():
            if mu is not None:
                bounds[tag] = self._cv_plus_bounds(level, mu, u)
                continue
            q_lo, q_hi = self.quantiles(level)
            with np.errstate(invalid="ignore"):
                bounds[tag] = (p + u * q_lo, p + u * q_hi)
        lo68, hi68 = bounds[68]
        out[err_column(self.target)] = (hi68 - lo68) / 2
        for tag, (lo, hi) in bounds.items():
            lo_col, hi_col = interval_columns(self.target, tag)
            out[lo_col], out[hi_col] = lo, hi
        return out

    def bin_of(self, pred) -> np.ndarray:
        """Mondrian bin (0 .. K-1) of each prediction, int (N,); all 0 without bins. A NaN
        prediction goes to the last bin (its interval is NaN anyway)."""
        p = np.asarray(pred, dtype=np.float64)
        if self.edges is None or not self.bins:
            return np.zeros(p.shape, dtype=np.int64)
        return np.searchsorted(self.edges, p, side="right").astype(np.int64)

    @property
    def cv_plus(self) -> bool:
        """Whether this is a CV+ calibration (needs each member's prediction)."""
        return self.folds is not None or any(b.folds is not None for b in self.bins)

    def _check_members(self, members, n: int) -> np.ndarray | None:
        """The members' predictions as float64 (M, n) for a CV+ calibration, None otherwise."""
        if not self.cv_plus:
            return None
        if members is None:
            raise ConfigError(f"calibration of {self.target} is CV+: it needs each ensemble member's prediction")
        mu = np.asarray(members, dtype=np.float64)
        if mu.ndim != 2:  # (M * n,) flattened; with no rows, (M, 0)
            mu = mu.reshape(-1, n) if n else np.empty((self.members or 0, 0))
        if mu.shape[0] != self.members:
            raise ConfigError(
                f"calibration of {self.target} is CV+ for {self.members} members, the model gives {mu.shape[0]}"
            )
        return mu

    def _cv_plus_bounds(self, level: float, mu: np.ndarray, u: np.ndarray, chunk: int = 256):
        """(lower, upper) CV+ bounds at ``level`` from the members' predictions ``mu`` (M, N) and scales u (N,)."""
        alpha, n1, n = 1.0 - level, self.n + 1, self.n
        k_hi = math.ceil(n1 * (level if self.symmetric else 1 - alpha / 2) - 1e-9)
        k_lo = k_hi if self.symmetric else math.floor(n1 * alpha / 2 + 1e-9)
        lo, hi = np.full(mu.shape[1], -np.inf), np.full(mu.shape[1], np.inf)
        assert self.folds is not None
        for a in range(0, mu.shape[1], chunk):
            m = mu[self.folds, a : a + chunk].T  # (B, n): the member that did not see galaxy i
            shift = u[a : a + chunk, None] * self.scores[None, :]
            with np.errstate(invalid="ignore"):
                if 1 <= k_hi <= n:
                    hi[a : a + chunk] = np.partition(m + shift, k_hi - 1, axis=1)[:, k_hi - 1]
                if 1 <= k_lo <= n:  # symmetric: mu - u|z|, as minus the k-th smallest of u|z| - mu
                    sign = -1.0 if self.symmetric else 1.0
                    lo[a : a + chunk] = sign * np.partition(shift + sign * m, k_lo - 1, axis=1)[:, k_lo - 1]
        return lo, hi

    def _apply_mondrian(self, p: np.ndarray, spread, sigma, mu: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:meth:`apply` with each row calibrated by the bin its prediction falls in."""
        which = self.bin_of(p)
        sp = None if spread is None else np.asarray(spread, dtype=np.float64)
        sg = None if sigma is None else np.asarray(sigma, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        for k, cal in enumerate(self.bins):
            m = which == k
            if not m.any():  # no row in this bin (a small batch, a shard of a few positions)
                continue
            sub = None if mu is None else mu[:, m]
            part = cal.apply(p[m], None if sp is None else sp[m], None if sg is None else sg[m], sub)
            for col, values in part.items():
                out.setdefault(col, np.full(p.shape, np.nan))[m] = values
        if not out:  # no rows
            out = replace(self, edges=None, bins=()).apply(p, spread, sigma, mu)
        return out

    def describe(self) -> str:
        """One line: method, calibration size, Mondrian bins, and the 68% / 95% score quantiles."""
        q68, q95 = self.quantiles(0.68), self.quantiles(0.95)
        unit = "dex" if self.method == "absolute" else "x scale"
        kind = "symmetric" if self.symmetric else "two-tailed"
        mondrian = ""
        if self.bins:
            edges = ", ".join(f"{e:.3f}" for e in (self.edges if self.edges is not None else []))
            mondrian = f"; Mondrian with {len(self.bins)} bins of predicted {self.target} (edges {edges})"
        if self.cv_plus:
            mondrian += f"; CV+ over {self.members} fold members"
        if self.weights is not None:
            mondrian += f"; weighted (test weight {self.test_weight:.4g})"
        return (
            f"{self.target}: {self.method} split-conformal ({kind}) from {self.n} galaxies{mondrian}; pooled "
            f"68% [{q68[0]:+.4f}, {q68[1]:+.4f}] {unit}, 95% [{q95[0]:+.4f}, {q95[1]:+.4f}] {unit}"
        )


def _bin_dict(cal: Calibration) -> dict[str, Any]:
    """A per-bin calibration as plain data (no provenance: the parent's holds it)."""
    d = cal.to_dict()
    d.pop("source")
    d.pop("edges")
    d.pop("bins")
    return d


def _weighted_quantile(scores: np.ndarray, weights: np.ndarray, test_weight: float, q: float) -> float:
    """The smallest of the sorted ``scores`` s with ``sum_{s_i <= s} w_i / (sum w + test_weight) >= q``;
    +inf when no score reaches it (the test galaxy's own mass sits at +inf)."""
    cum = np.cumsum(weights) / (float(np.sum(weights)) + test_weight)
    k = int(np.searchsorted(cum, q - 1e-12, side="left"))
    return math.inf if k >= scores.size else float(scores[k])


def _check_weights(weights, test_weight, n: int, where: str) -> np.ndarray:
    """``weights`` as float64 (n,); ConfigError (one line) unless n finite positive weights and a
    finite positive ``test_weight``."""
    try:
        w = np.asarray(weights, dtype=np.float64).ravel()
        t = float(test_weight)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: weights and test weight must be numbers") from None
    if w.size != n:
        raise ConfigError(f"{where}: {w.size} weights for {n} scores")
    bad = int((~(np.isfinite(w) & (w > 0))).sum())
    if bad:
        raise ConfigError(f"{where}: weights must be finite and > 0 ({bad} are not)")
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"{where}: test weight must be finite and > 0, got {test_weight!r}")
    return w


def _read_weights(cal: Calibration, data: dict, where: str) -> Calibration:
    """``cal`` with the ``weights`` / ``test_weight`` of a v2 dict; ConfigError (one line) when malformed."""
    raw = data.get("weights")
    if raw is None:
        return cal
    if cal.ranks is not None or data.get("folds") is not None:
        raise ConfigError(f"{where}: weighted calibration with thinned scores or CV+ folds")
    w = _check_weights(raw, data.get("test_weight"), cal.scores.size, where)
    return replace(cal, weights=w, test_weight=float(data["test_weight"]))


def _read_folds(cal: Calibration, data: dict, where: str) -> Calibration:
    """``cal`` with the CV+ ``folds`` / ``members`` of a v2 dict; ConfigError (one line) when malformed."""
    raw, members = data.get("folds"), data.get("members", 0)
    if raw is None:
        return cal
    try:
        folds = np.asarray(raw, dtype=np.int64)
        k = int(members)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: CV+ folds and members must be whole numbers") from None
    ok = folds.shape == cal.scores.shape and cal.ranks is None and k >= 2
    if not ok or folds.min() < 0 or folds.max() >= k:
        raise ConfigError(f"{where}: CV+ folds must give one member (0 .. members-1, members >= 2) per score")
    return replace(cal, folds=folds, members=k)


def _read_bins(cal: Calibration, data: dict, where: str) -> Calibration:
    """``cal`` with the Mondrian ``edges`` / ``bins`` of a v2 dict; ConfigError (one line) when they disagree."""
    raw_edges, raw_bins = data.get("edges"), data.get("bins") or []
    if raw_edges is None and not raw_bins:
        return cal
    if not isinstance(raw_bins, list) or not isinstance(raw_edges, list):
        raise ConfigError(f"{where}: Mondrian edges and bins must be lists")
    try:
        edges = np.asarray(raw_edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: Mondrian edges must be numbers") from None
    if edges.ndim != 1 or not np.isfinite(edges).all() or np.any(np.diff(edges) <= 0):
        raise ConfigError(f"{where}: Mondrian edges must be finite and increasing")
    if len(raw_bins) != len(edges) + 1:
        raise ConfigError(f"{where}: {len(edges)} Mondrian edges need {len(edges) + 1} bins, got {len(raw_bins)}")
    bins = []
    for k, b in enumerate(raw_bins):
        if isinstance(b, dict) and b.get("bins"):
            raise ConfigError(f"{where}: Mondrian bin {k} holds bins of its own")
        sub = Calibration.from_dict(b, f"{where}: Mondrian bin {k}")
        same = (sub.target, sub.method, sub.symmetric, sub.offset) == (
            cal.target,
            cal.method,
            cal.symmetric,
            cal.offset,
        )
        if not same or (sub.weights is None) != (cal.weights is None):
            raise ConfigError(f"{where}: Mondrian bin {k} has another target, method, symmetry, offset or weighting")
        bins.append(sub)
    if sum(b.n for b in bins) != cal.n:
        raise ConfigError(f"{where}: Mondrian bins hold {sum(b.n for b in bins)} galaxies, the calibration {cal.n}")
    return cal.with_bins(edges, bins)


def read_calibrations(meta: dict, targets: list[str], where: str = "bundle") -> dict[str, Calibration]:
    """The calibrations stored in a bundle's ``meta["calibration"]`` (target -> Calibration).

    Raises ConfigError (one line naming ``where``) for a malformed entry or one whose target is
    not a target of the model (a calibration from another model).
    """
    raw = meta.get(MetaKey.CALIBRATION)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: meta 'calibration' must map targets to calibrations")
    out = {}
    for key, value in raw.items():
        cal = Calibration.from_dict(value, f"{where}: calibration of {key!r}")
        if key not in targets or cal.target != key:
            raise ConfigError(
                f"{where}: holds a calibration of {cal.target!r}, but the model predicts {', '.join(targets)}; "
                "it comes from another model"
            )
        out[key] = cal
    return out


@dataclass
class UncertainPrediction:
    """Predictions with their spread, the head's own sigma and the calibrated error bars.

    Every array is float64 (N, T), target units, columns in the order of ``targets``.

    Attributes
    ----------
    targets : list of str
    pred : numpy.ndarray
        The prediction (mean over TTA views and ensemble members).
    spread : numpy.ndarray
        Population standard deviation over the views and members (NaN for one model without TTA).
    sigma : numpy.ndarray or None
        The heteroscedastic head's 1-sigma (``--loss gaussian`` models), before calibration.
    calibrated : dict
        Per target, the :meth:`Calibration.apply` columns (``_err``, ``_lo68`` ... ``_hi95``);
        a target without a calibration is absent.
    ood_score : numpy.ndarray or None
        float64 (N,): the embedding out-of-domain ratio (> 1: farther from the training
        embeddings than 99% of the training galaxies), when taken in the prediction pass
        (:meth:`galmet.nn.inference.GalmetModel.predict_uncertainty` with ``ood``), else None.
    """

    targets: list[str]
    pred: np.ndarray
    spread: np.ndarray
    sigma: np.ndarray | None = None
    calibrated: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    ood_score: np.ndarray | None = None

    @property
    def err(self) -> np.ndarray:
        """Calibrated 1-sigma, (N, T); NaN for targets without a calibration."""
        out = np.full(self.pred.shape, np.nan)
        for j, t in enumerate(self.targets):
            if t in self.calibrated:
                out[:, j] = self.calibrated[t][err_column(t)]
        return out

    def interval(self, level: int = 68) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the calibrated central ``level`` per cent interval, each (N, T)."""
        lo, hi = np.full(self.pred.shape, np.nan), np.full(self.pred.shape, np.nan)
        for j, t in enumerate(self.targets):
            if t in self.calibrated:
                lo_col, hi_col = interval_columns(t, level)
                lo[:, j], hi[:, j] = self.calibrated[t][lo_col], self.calibrated[t][hi_col]
        return lo, hi

    def columns(self, target: str) -> dict[str, np.ndarray]:
        """The table columns of one target after ``<target>_pred``: spread, sigma (gaussian head),
        and the calibrated error bar and intervals (when calibrated)."""
        j = self.targets.index(target)
        out = {spread_column(target): self.spread[:, j]}
        if self.sigma is not None:
            out[sigma_column(target)] = self.sigma[:, j]
        out.update(self.calibrated.get(target, {}))
        return out
