"""Hand-made image statistics (galmet.data.image_stats): shape, names, what each family measures."""

from __future__ import annotations

import time

import numpy as np
import pytest

from galmet.data.image_stats import N_STATS, STAT_NAMES, image_statistics
from galmet.errors import DataError


def galaxies(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size, 3): coloured Gaussian blobs of random brightness and width on a noisy sky."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    width = rng.uniform(size / 10, size / 6, n)[:, None, None]
    bright = rng.uniform(80, 200, n)[:, None, None]
    blob = bright * np.exp(-(xx**2 + yy**2) / (2 * width**2))
    img = 20 + blob[..., None] * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 4, (n, size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def col(stats: np.ndarray, name: str) -> np.ndarray:
    return stats[:, STAT_NAMES.index(name)]


def test_shape_names_and_finite():
    s = image_statistics(galaxies(10))
    assert s.shape == (10, N_STATS) == (10, len(STAT_NAMES)) and np.isfinite(s).all()
    assert len(set(STAT_NAMES)) == N_STATS


def test_greyscale_has_no_channel_difference_and_sky_noise_is_measured():
    x = galaxies(20)
    grey = np.repeat(x.mean(axis=3, keepdims=True), 3, axis=3).astype(np.uint8)
    s, g = image_statistics(x), image_statistics(grey)
    assert col(s, "channel_independence_rg").mean() > 0.5 > 0.1 > col(g, "channel_independence_rg").mean()
    assert col(g, "channel_difference_rg").max() < 0.02 < col(s, "channel_difference_rg").min()
    noisy = np.clip(x + np.random.default_rng(1).normal(0, 12, x.shape), 0, 255).astype(np.uint8)
    assert (col(image_statistics(noisy), "noise_r") > col(s, "noise_r") + 0.5).all()


def test_zoom_correlates_the_sky_noise():
    x = galaxies(20, size=64)
    zoom = x[:, 16:48, 16:48].repeat(2, axis=1).repeat(2, axis=2)
    zoomed, plain = (col(image_statistics(a), "noise_correlation_1").mean() for a in (zoom, x))
    assert zoomed > 0.3 > plain


def test_bad_shape_is_a_data_error():
    with pytest.raises(DataError, match="shape"):
        image_statistics(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="shape"):
        image_statistics(np.zeros((2, 32, 32), np.uint8))


def test_fast_enough():
    x = galaxies(200, size=64)
    t = time.perf_counter()
    image_statistics(x)
    assert 200 / (time.perf_counter() - t) > 100  # images per second on a busy shared CPU
