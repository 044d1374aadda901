"""Hand-made statistics of a cutout, independent of any network: what the image-domain check reads.

:func:`image_statistics` maps uint8 images (N, H, W, 3) to a fixed float64 (N, :data:`N_STATS`)
vector per image, named by :data:`STAT_NAMES`. The statistics describe the sky (level, noise,
noise correlation), the galaxy (central flux, concentration, extent, sharpness), the colours and
how different the three channels are (a greyscale image has none), and saturation, all in units of
the image's own pixel values (0-255) or as ratios, so they need no calibration. They are cheap
(vectorised numpy; thousands of 128 px images per second) and are what
:class:`galmet.data.image_domain.ImageDomainReference` and ``galmet domain-check`` compare.
"""

from __future__ import annotations

import numpy as np

from galmet.errors import DataError

#: Names of the columns of :func:`image_statistics`, in order.
STAT_NAMES: tuple[str, ...] = (
    "sky_r",
    "sky_g",
    "sky_b",
    "noise_r",
    "noise_g",
    "noise_b",
    "centre_r",
    "centre_g",
    "centre_b",
    "log_colour_rg",
    "log_colour_gb",
    "concentration_inner",
    "concentration_outer",
    "extent",
    "sharpness",
    "noise_correlation_1",
    "noise_correlation_2",
    "noise_correlation_4",
    "channel_independence_rg",
    "channel_independence_gb",
    "channel_difference_rg",
    "channel_difference_gb",
    "saturated_fraction",
    "mean_level",
    "edge_level",
)
N_STATS = len(STAT_NAMES)
#: Smallest image side (pixels) the statistics are defined for (the centre disc is 1/16 of it).
MIN_SIDE = 16
#: Chunk of images processed at a time (bounds the float32 copies in memory).
CHUNK = 512


def image_statistics(images) -> np.ndarray:
    """float64 (N, :data:`N_STATS`): the statistics of :data:`STAT_NAMES` for uint8 images (N, H, W, 3).

    Radii scale with the image size (the centre is the inner 1/16 of the width in radius), so the
    same galaxy at another pixel scale gives other values: that is one of the shifts to catch.
    """
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or min(arr.shape[1:3]) < MIN_SIDE:
        raise DataError(f"image statistics need images of shape (N, H, W, 3) with H, W >= {MIN_SIDE}, got {arr.shape}")
    out = np.empty((len(arr), N_STATS))
    for s in range(0, len(arr), CHUNK):
        out[s : s + CHUNK] = _chunk_statistics(arr[s : s + CHUNK].astype(np.float32))
    return out


def _rings(h: int, w: int) -> dict[str, np.ndarray]:
    """Boolean (H, W) masks: the four corners (sky), discs of radius H/16, H/8, H/4 and the border."""
    y, x = np.mgrid[:h, :w]
    r = np.hypot(y - (h - 1) / 2, x - (w - 1) / 2)
    c = max(2, h // 8)
    corners = np.zeros((h, w), bool)
    corners[:c, :c] = corners[:c, -c:] = corners[-c:, :c] = corners[-c:, -c:] = True
    border = np.zeros((h, w), bool)
    border[:2, :] = border[-2:, :] = border[:, :2] = border[:, -2:] = True
    return {"corners": corners, "r16": r < h / 16, "r8": r < h / 8, "r4": r < h / 4, "border": border}


def _chunk_statistics(x: np.ndarray) -> np.ndarray:
    """The statistics of float32 images (n, H, W, 3) in 0-255."""
    n, h, w, _ = x.shape
    m = _rings(h, w)
    corner = x[:, m["corners"], :]  # (n, P, 3)
    sky = np.median(corner, axis=1)  # (n, 3)
    noise = 1.2533 * np.abs(corner - sky[:, None, :]).mean(axis=1) + 0.5  # mean deviation: finer than a MAD of integers
    above = x - sky[:, None, None, :]
    centre = above[:, m["r16"], :].mean(axis=1)  # (n, 3)
    lum = above.mean(axis=3)  # (n, H, W)
    f16, f8, f4 = (lum[:, m[k]].sum(axis=1) for k in ("r16", "r8", "r4"))
    grey_noise = noise.mean(axis=1)
    extent = (lum > 5 * grey_noise[:, None, None]).mean(axis=(1, 2))
    lap = np.abs(4 * lum[:, 1:-1, 1:-1] - lum[:, :-2, 1:-1] - lum[:, 2:, 1:-1] - lum[:, 1:-1, :-2] - lum[:, 1:-1, 2:])
    sharp = lap[:, m["r16"][1:-1, 1:-1]].mean(axis=1) / (np.abs(centre.mean(axis=1)) + grey_noise)
    strip = x[:, m["corners"].any(axis=1)][:, :, : max(6, w // 8)]
    cols = [
        np.log1p(np.clip(sky, 0, None)),
        np.log(noise),
        np.arcsinh(centre / 10),
        np.log((np.clip(centre[:, 0], 0, None) + 1) / (np.clip(centre[:, 1], 0, None) + 1))[:, None],
        np.log((np.clip(centre[:, 1], 0, None) + 1) / (np.clip(centre[:, 2], 0, None) + 1))[:, None],
        _ratio(f16, f8)[:, None],
        _ratio(f8, f4)[:, None],
        np.log(extent + 1e-3)[:, None],
        np.log(sharp + 1e-3)[:, None],
        *(_noise_correlation(strip, lag)[:, None] for lag in (1, 2, 4)),
        _channel_independence(corner, noise, 0, 1)[:, None],
        _channel_independence(corner, noise, 1, 2)[:, None],
        _channel_difference(above, m["r4"], 0, 1)[:, None],
        _channel_difference(above, m["r4"], 1, 2)[:, None],
        np.log10((x.min(axis=3) >= 250).mean(axis=(1, 2)) + 1e-4)[:, None],
        np.log1p(x.mean(axis=(1, 2, 3)))[:, None],
        np.log1p(x[:, m["border"], :].mean(axis=(1, 2)))[:, None],
    ]
    return np.concatenate(cols, axis=1)


def _ratio(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """inner / outer flux, kept in [-1, 2] (a sky-subtracted disc can hold little or negative flux)."""
    return np.clip(inner / np.where(np.abs(outer) < 1e-3, 1e-3, outer), -1.0, 2.0)


def _noise_correlation(sky_strip: np.ndarray, lag: int) -> np.ndarray:
    """Horizontal autocorrelation at ``lag`` pixels of the left sky strips (n, rows, cols, 3): ~0
    for white noise, near 1 for a smoothed, resampled or blurred image (a 2x zoom doubles the
    correlation length)."""
    d = sky_strip - np.median(sky_strip, axis=(1, 2), keepdims=True)
    num = (d[:, :, lag:] * d[:, :, :-lag]).mean(axis=(1, 2, 3))
    den = (d * d).mean(axis=(1, 2, 3)) + 1e-6
    return num / den


def _channel_independence(corner: np.ndarray, noise: np.ndarray, a: int, b: int) -> np.ndarray:
    """Sky noise of channel ``a`` minus channel ``b`` over what independent noise would give
    (corner pixels (n, P, 3), per-channel noise (n, 3)): ~1 for independent channels, 0 for a
    greyscale image (identical channels)."""
    d = corner[:, :, a] - corner[:, :, b]
    spread = 1.2533 * np.abs(d - np.median(d, axis=1, keepdims=True)).mean(axis=1)
    return spread / np.sqrt(noise[:, a] ** 2 + noise[:, b] ** 2)


def _channel_difference(above: np.ndarray, mask: np.ndarray, a: int, b: int) -> np.ndarray:
    """RMS of channel ``a`` minus channel ``b`` inside ``mask`` over the RMS of their mean: 0 for a
    greyscale image."""
    pa, pb = above[:, mask, a], above[:, mask, b]
    diff = np.sqrt(((pa - pb) ** 2).mean(axis=1))
    mean = np.sqrt((((pa + pb) / 2) ** 2).mean(axis=1)) + 1.0
    return diff / mean
