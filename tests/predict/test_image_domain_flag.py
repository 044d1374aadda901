"""The image-statistics domain check (galmet.data.image_domain): shifted images are flagged,
unshifted ones mostly not, and the reference survives a bundle's meta."""

from __future__ import annotations

import json

import numpy as np
import pytest

from galmet.data.image_domain import ImageDomainReference, ledoit_wolf
from galmet.data.image_stats import N_STATS
from galmet.errors import ConfigError

SIZE = 32


def galaxies(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 32, 32, 3): coloured Gaussian blobs of random brightness and width on a noisy sky."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    width = rng.uniform(SIZE / 10, SIZE / 6, n)[:, None, None]
    bright = rng.uniform(80, 200, n)[:, None, None]
    blob = bright * np.exp(-(xx**2 + yy**2) / (2 * width**2))
    img = 20 + blob[..., None] * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 4, (n, SIZE, SIZE, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ref():
    return ImageDomainReference.fit_images(galaxies(400, seed=0))


def flagged(ref, x) -> float:
    return float((ref.score(x) > 1).mean())


def test_unshifted_images_are_mostly_in_domain(ref):
    assert flagged(ref, galaxies(200, seed=1)) < 0.1
    assert flagged(ref, np.ascontiguousarray(np.rot90(galaxies(200, seed=1), 1, axes=(1, 2)))) < 0.1


def test_greyscale_zoom_and_noise_are_flagged(ref):
    x = galaxies(100, seed=2)
    grey = np.repeat(x.mean(axis=3, keepdims=True), 3, axis=3).astype(np.uint8)
    zoom = x[:, 8:24, 8:24].repeat(2, axis=1).repeat(2, axis=2)
    noisy = np.clip(x + np.random.default_rng(3).normal(0, 10, x.shape), 0, 255).astype(np.uint8)
    for shifted in (grey, zoom, noisy):
        assert flagged(ref, shifted) >= 0.8


def test_round_trip_through_json(ref):
    back = ImageDomainReference.from_dict(json.loads(json.dumps(ref.to_dict())))
    x = galaxies(20, seed=4)
    np.testing.assert_allclose(back.score(x), ref.score(x))
    assert back.n_train == 400 and ref.threshold > 0


@pytest.mark.parametrize(
    "change",
    [
        {"version": 99},
        {"names": ["x"] * N_STATS},
        {"centre": [0.0]},
        {"scale": [0.0] * N_STATS},
        {"threshold": -1.0},
        {"precision": "nope"},
    ],
)
def test_malformed_reference_is_a_one_line_config_error(ref, change):
    with pytest.raises(ConfigError, match="bundle meta image_stats: malformed") as e:
        ImageDomainReference.from_dict({**ref.to_dict(), **change}, "bundle meta image_stats")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="malformed"):
        ImageDomainReference.from_dict(None)


def test_too_few_images_is_refused():
    with pytest.raises(ConfigError, match="at least"):
        ImageDomainReference.fit_images(galaxies(3, seed=0))


def test_ledoit_wolf_matches_sklearn():
    sk = pytest.importorskip("sklearn.covariance")
    z = np.random.default_rng(0).normal(size=(50, 8)) @ np.diag(np.arange(1, 9))
    z = z - z.mean(axis=0)
    np.testing.assert_allclose(ledoit_wolf(z), sk.LedoitWolf(assume_centered=True).fit(z).covariance_, rtol=1e-6)


def test_images_too_small_or_too_few_give_no_reference():
    x = galaxies(20, seed=5)
    assert ImageDomainReference.fit_images_if_possible(x[:, :8, :8]) is None  # a resolution study's 8 px inputs
    assert ImageDomainReference.fit_images_if_possible(x[:3]) is None
    assert ImageDomainReference.fit_images_if_possible(x) is not None
