"""Controlled tests of what the network looks at: altered images and how the predictions move.

Two experiments the paper could not run (``galmet explain --controls``):

- **Fibre occlusion.** The SDSS spectrum, and so the label, comes from a 3 arcsec fibre on the
  galaxy's centre. :func:`fibre_masks` gives that disc (radius 1.5 arcsec, ~5 pixels at 0.296
  arcsec/pixel) and an annulus of equal area just outside it; :func:`fill_with_sky` paints either
  with the image's own sky colour. If the network reads the metallicity mostly where the fibre
  looked, hiding the disc moves Z_pred more than hiding the annulus does.
- **Colour against morphology.** :func:`shuffle_within` permutes the pixels inside the galaxy's
  footprint (:func:`galaxy_masks`): the colours and their distribution stay, the structure goes
  ("colour only"); :func:`grayscale` keeps the structure and drops the colour ("morphology only").
  Scored against the truth beside the full images (:func:`control_summary`).

Numpy (and scipy.ndimage) only: the model is called by the run module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from galmet.data.quality import border_mask, pixel_scale_of, source_mask
from galmet.errors import DataError
from galmet.science.metrics import regression_metrics

#: Radius of the SDSS spectroscopic fibre (3 arcsec diameter), arcsec.
FIBRE_RADIUS_ARCSEC = 1.5


def fibre_masks(size: int, pixel_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (size, size) masks of the central fibre disc and of an equal-area annulus around it.

    The disc has radius r0 = 1.5 arcsec; the annulus runs from r0 to sqrt(2) r0, so both cover
    pi r0**2 (up to the pixel grid: the pixel counts are close, and reported by the caller).
    """
    scale = pixel_scale if pixel_scale is not None else pixel_scale_of(size)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx) * scale
    r0 = FIBRE_RADIUS_ARCSEC
    disc = r < r0
    annulus = (r >= r0) & (r < math.sqrt(2) * r0)
    if not disc.any() or not annulus.any():
        raise DataError(f"images of {size} pixels at {scale:.3f} arcsec/pixel are too coarse to resolve the fibre")
    return disc, annulus


def sky_colour(images: np.ndarray) -> np.ndarray:
    """Median colour of each image's border (outer 1/16 on each side): float32 (N, 3)."""
    border = border_mask(images.shape[1])
    return np.median(np.asarray(images)[:, border, :], axis=1).astype(np.float32)


def fill_with_sky(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copies of uint8 images (N, H, W, 3) with the pixels of ``mask`` (H, W) set to each image's sky colour."""
    out = np.array(images, copy=True)
    sky = np.rint(sky_colour(images)).astype(np.uint8)
    out[:, mask, :] = sky[:, None, :]
    return out


def galaxy_masks(images: np.ndarray) -> np.ndarray:
    """The footprint of the central galaxy in each image: bool (N, H, W).

    The connected region of source pixels (:func:`galmet.data.quality.source_mask`) that holds
    the pixel nearest the centre; an image whose centre is not in a source gets an empty mask.
    """
    from scipy.ndimage import label

    src = source_mask(images)
    n, size = src.shape[:2]
    c = size // 2
    out = np.zeros_like(src)
    for i in range(n):
        lab, _ = label(src[i])
        if lab[c, c] > 0:
            out[i] = lab == lab[c, c]
    return out


def shuffle_within(images: np.ndarray, masks: np.ndarray, seed: int = 0) -> np.ndarray:
    """Copies of uint8 images with the RGB pixels inside each mask randomly permuted (seeded)."""
    rng = np.random.default_rng(seed)
    out = np.array(images, copy=True)
    for i in range(len(out)):
        idx = np.flatnonzero(masks[i].ravel())
        flat = out[i].reshape(-1, 3)
        flat[idx] = flat[rng.permutation(idx)]
    return out


def grayscale(images: np.ndarray) -> np.ndarray:
    """Copies of uint8 images with each pixel's three channels replaced by their mean (structure, no colour)."""
    mean = np.rint(np.asarray(images, dtype=np.float32).mean(-1, keepdims=True))
    return np.repeat(mean, 3, axis=-1).astype(np.uint8)


def _mean_se(d: np.ndarray) -> tuple[float, float]:
    return float(np.mean(d)), float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")


def control_summary(z_true, z_full, variants: dict[str, np.ndarray]) -> dict[str, Any]:
    """Scores of the predictions on altered images beside those on the full images.

    Parameters
    ----------
    z_true, z_full : array-like, shape (N,)
        The truth and the predictions on the unaltered images (dex).
    variants : dict
        Name -> predictions (N,) on altered images.

    Returns
    -------
    dict
        ``full``: :func:`galmet.science.metrics.regression_metrics`; per variant the same plus
        ``mean_shift`` / ``mean_shift_se`` (mean of Z_variant - Z_full and its standard error),
        ``mean_abs_shift`` and ``corr_with_full`` (Pearson r of the two predictions); and, when
        both occlusions are present, ``fibre_minus_annulus`` (mean and s.e. of the paired
        difference of their |shifts|).
    """
    t = np.asarray(z_true, dtype=float)
    full = np.asarray(z_full, dtype=float)
    out: dict[str, Any] = {"n": int(len(t)), "full": regression_metrics(t, full)}
    for name, pred in variants.items():
        p = np.asarray(pred, dtype=float)
        shift = p - full
        m, se = _mean_se(shift)
        corr = float(np.corrcoef(p, full)[0, 1]) if np.std(p) > 0 and np.std(full) > 0 else float("nan")
        out[name] = {
            **regression_metrics(t, p),
            "mean_shift": m,
            "mean_shift_se": se,
            "mean_abs_shift": float(np.mean(np.abs(shift))),
            "corr_with_full": corr,
        }
    if "fibre_occluded" in variants and "annulus_occluded" in variants:
        d = np.abs(np.asarray(variants["fibre_occluded"]) - full) - np.abs(
            np.asarray(variants["annulus_occluded"]) - full
        )
        m, se = _mean_se(d)
        out["fibre_minus_annulus"] = {"mean_abs_shift_difference": m, "se": se}
    return out
