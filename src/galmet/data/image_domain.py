"""The training images' domain in image-statistics space, and how far a new image lies from it.

:class:`ImageDomainReference` summarises the :func:`galmet.data.image_stats.image_statistics` of
the training images by their mean and a Ledoit-Wolf shrunk covariance (Ledoit & Wolf 2004), and
scores an image by its Mahalanobis distance over the 99th percentile of the training images'
distances: a score above 1 sets bit ``IMAGE_OUT_OF_DOMAIN`` of the ``flags`` column. Unlike the
embedding check (:mod:`galmet.nn.embedding`), which only sees what the network learnt to look at,
these statistics see the sky, the noise, the pixel scale and the colours directly, which is where a
new survey, a rendering change or a simulation differ (see docs/model.md for the validation).

Stored in a bundle under ``meta["image_stats"]`` as plain data (about 500 numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from galmet.data.image_stats import MIN_SIDE, STAT_NAMES, image_statistics
from galmet.errors import ConfigError

#: Percentile of the training images' distances that sets the out-of-domain threshold.
PERCENTILE = 99.0
IMAGE_STATS_VERSION = 1
#: Smallest scale a statistic is divided by (a statistic constant in training, e.g. no saturated
#: pixel, still measures a new image's departure in its own units).
MIN_SCALE = 1e-3
#: Fewest training images a reference is fitted on (the shrinkage keeps the covariance usable
#: with fewer images than statistics; the threshold of a tiny set is its largest distance).
MIN_IMAGES = 7


def ledoit_wolf(z: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk covariance (D, D) of centred rows ``z`` (N, D) (the closed form that
    :class:`sklearn.covariance.LedoitWolf` uses: shrink towards a multiple of the identity)."""
    n, p = z.shape
    s = z.T @ z / n
    mu = np.trace(s) / p
    delta = ((s - mu * np.eye(p)) ** 2).sum() / p
    beta = ((np.einsum("ij,ij->i", z, z) ** 2).sum() / n - (s**2).sum()) / (n * p)
    shrink = 0.0 if delta <= 0 else float(np.clip(beta / delta, 0.0, 1.0))
    return (1 - shrink) * s + shrink * mu * np.eye(p)


@dataclass(frozen=True)
class ImageDomainReference:
    """The training images' statistics: mean ``centre`` (D,), ``scale`` (D,), the inverse of the
    shrunk covariance of the standardised statistics ``precision`` (D, D), the distance
    ``threshold`` (the :data:`PERCENTILE` percentile over ``n_train`` training images)."""

    centre: np.ndarray
    scale: np.ndarray
    precision: np.ndarray
    threshold: float
    n_train: int

    @classmethod
    def fit(cls, stats: np.ndarray) -> ImageDomainReference:
        """From the statistics (N, D) of the training images."""
        x = np.asarray(stats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(STAT_NAMES) or len(x) < MIN_IMAGES:
            raise ConfigError(
                f"image statistics need at least {MIN_IMAGES} training images of {len(STAT_NAMES)} "
                f"statistics, got shape {x.shape}"
            )
        centre = x.mean(axis=0)
        scale = np.maximum(x.std(axis=0), MIN_SCALE)
        z = (x - centre) / scale
        precision = np.linalg.pinv(ledoit_wolf(z))
        ref = cls(centre, scale, precision, 1.0, len(x))
        threshold = max(float(np.percentile(ref.distance(x), PERCENTILE)), 1e-6)
        return cls(centre, scale, precision, threshold, len(x))

    @classmethod
    def fit_images(cls, images) -> ImageDomainReference:
        """From uint8 training images (N, H, W, 3)."""
        return cls.fit(image_statistics(images))

    @classmethod
    def fit_images_if_possible(cls, images) -> ImageDomainReference | None:
        """:meth:`fit_images`, or None when the images are smaller than
        :data:`~galmet.data.image_stats.MIN_SIDE` pixels or fewer than :data:`MIN_IMAGES` (a
        resolution study's tiny inputs, a tiny training set): the bundle then has no image check."""
        shape = np.shape(images)
        if len(shape) != 4 or min(shape[1:3]) < MIN_SIDE or shape[0] < MIN_IMAGES:
            return None
        return cls.fit_images(images)

    def distance(self, stats: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of statistics (N, D) from the training mean: float64 (N,)."""
        z = (np.asarray(stats, dtype=np.float64) - self.centre) / self.scale
        return np.sqrt(np.clip(np.einsum("ij,jk,ik->i", z, self.precision, z), 0, None))

    def score(self, images) -> np.ndarray:
        """Distance over threshold of uint8 images (N, H, W, 3): float64 (N,), > 1 out of domain."""
        return self.distance(image_statistics(images)) / self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a bundle's meta."""
        return {
            "version": IMAGE_STATS_VERSION,
            "names": list(STAT_NAMES),
            "percentile": PERCENTILE,
            "threshold": self.threshold,
            "n_train": self.n_train,
            "centre": self.centre.tolist(),
            "scale": self.scale.tolist(),
            "precision": self.precision.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "image statistics") -> ImageDomainReference:
        """Read a dict written by :meth:`to_dict`; ConfigError (one line) when malformed or made
        with other statistics than this galmet computes."""
        d = len(STAT_NAMES)
        try:
            if data.get("version") != IMAGE_STATS_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            if list(data["names"]) != list(STAT_NAMES):
                raise ValueError("the statistics differ from this galmet's")
            ref = cls(
                np.asarray(data["centre"], dtype=np.float64),
                np.asarray(data["scale"], dtype=np.float64),
                np.asarray(data["precision"], dtype=np.float64),
                float(data["threshold"]),
                int(data["n_train"]),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
        arrays = (ref.centre, ref.scale, ref.precision)
        if (
            ref.centre.shape != (d,)
            or ref.scale.shape != (d,)
            or ref.precision.shape != (d, d)
            or not all(np.isfinite(a).all() for a in arrays)
            or not (ref.scale > 0).all()
            or not ref.threshold > 0
        ):
            raise ConfigError(f"{where}: malformed (shapes or values out of range)")
        return ref
