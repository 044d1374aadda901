"""How distinguishable a target set of images is from a training set: a domain classifier.

:func:`domain_check` trains a classifier (scikit-learn's histogram gradient boosting) to tell the
target's image statistics (:mod:`galmet.data.image_stats`) from the training set's, scores it by
its cross-validated ROC AUC (0.5: indistinguishable, 1: fully separable) with a bootstrap
interval, and turns the out-of-fold probabilities into the importance weights of weighted
conformal prediction under covariate shift (Tibshirani et al. 2019): w(x) = p / (1 - p) *
n_train / n_target, the density ratio target/train up to the classifier's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galmet._optional import require
from galmet.errors import DataError

#: Importance weights are clipped to this range (a classifier's p near 0 or 1 would otherwise
#: give one galaxy all the weight).
WEIGHT_RANGE = (0.01, 100.0)
#: Fewest images per set.
MIN_PER_SET = 10


@dataclass(frozen=True)
class DomainCheck:
    """The result of :func:`domain_check`.

    Attributes
    ----------
    auc : float
        Cross-validated ROC AUC of the classifier (target = positive class).
    auc_interval : tuple of float
        Its 95% bootstrap interval (resampling galaxies of both sets).
    p_target : numpy.ndarray
        float (n_train + n_target,): each galaxy's out-of-fold probability of belonging to the
        target set, training rows first.
    importance_weight : numpy.ndarray
        float (n_train + n_target,): p / (1 - p) * n_train / n_target, clipped to :data:`WEIGHT_RANGE`.
    n_train, n_target : int
        Galaxies per set.
    """

    auc: float
    auc_interval: tuple[float, float]
    p_target: np.ndarray
    importance_weight: np.ndarray
    n_train: int
    n_target: int


def roc_auc(label: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for boolean ``label`` (the Mann-Whitney statistic, ties counted half)."""
    from scipy.stats import rankdata

    pos = label.astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def domain_check(train_stats, target_stats, folds: int = 5, n_boot: int = 1000, seed: int = 0) -> DomainCheck:
    """Classify target vs training statistics (N, D) and report the separability.

    Parameters
    ----------
    train_stats, target_stats : array-like
        float (n_train, D) and (n_target, D), e.g. :func:`galmet.data.image_stats.image_statistics`.
    folds : int
        Stratified cross-validation folds for the out-of-fold probabilities.
    n_boot : int
        Bootstrap resamples of the AUC interval.
    seed : int
        Of the folds, the classifier and the bootstrap.
    """
    a, b = np.asarray(train_stats, dtype=float), np.asarray(target_stats, dtype=float)
    if len(a) < MIN_PER_SET or len(b) < MIN_PER_SET:
        raise DataError(f"domain check needs at least {MIN_PER_SET} images per set, got {len(a)} and {len(b)}")
    x = np.concatenate([a, b])
    y = np.r_[np.zeros(len(a), int), np.ones(len(b), int)]
    ensemble = require("sklearn.ensemble", "analysis", "galmet domain-check")
    selection = require("sklearn.model_selection", "analysis", "galmet domain-check")
    clf = ensemble.HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
    cv = selection.StratifiedKFold(n_splits=min(folds, len(b), len(a)), shuffle=True, random_state=seed)
    p = selection.cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    auc = roc_auc(y, p)
    rng = np.random.default_rng(seed)
    ia, ib = np.arange(len(a)), np.arange(len(a), len(x))
    boots = []
    for _ in range(n_boot):
        pick = np.concatenate([rng.choice(ia, len(ia)), rng.choice(ib, len(ib))])
        boots.append(roc_auc(y[pick], p[pick]))
    lo, hi = (float(v) for v in np.percentile(boots, [2.5, 97.5])) if boots else (auc, auc)
    q = np.clip(p, 1e-6, 1 - 1e-6)
    weight = np.clip(q / (1 - q) * len(a) / len(b), *WEIGHT_RANGE)
    return DomainCheck(auc, (lo, hi), p, weight, len(a), len(b))


def describe(check: DomainCheck) -> str:
    """One paragraph for people: the AUC, its interval and what it means."""
    lo, hi = check.auc_interval
    if lo <= 0.5 <= hi or hi < 0.6:
        verdict = "indistinguishable from the training images by these statistics"
    elif check.auc < 0.75:
        verdict = "mildly shifted: error bars may need the importance weights (--out)"
    else:
        verdict = "strongly shifted: predictions are extrapolations; expect the flags and the error bars to fail"
    return (
        f"domain classifier AUC {check.auc:.4f} (95% interval {lo:.4f}-{hi:.4f}) on {check.n_train} training and "
        f"{check.n_target} target images: {verdict}"
    )
