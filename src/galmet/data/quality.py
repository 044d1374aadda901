"""Image checks behind the ``flags`` column: blank or noise-only cutouts, saturation, an off-centre source.

Each check looks at the light within :data:`WINDOW_ARCSEC` of the cutout's centre (where the
SDSS cutout service puts the target galaxy), measured against the sky of the image border:

- sky = median of the border pixels (the outer 1/16 of the image on each side) of the mean of
  the three channels, noise = 1.4826 x their median absolute deviation; a pixel belongs to a
  source when it is brighter than sky + max(3 x noise, :data:`MIN_CONTRAST`);
- ``IMAGE_EMPTY``: fewer than :data:`EMPTY_FRACTION` of the pixels within the window belong to
  a source (a blank cutout, a cutout of pure noise, a galaxy far too faint to see);
- ``IMAGE_SATURATED``: at least :data:`SATURATED_AREA_ARCSEC2` of the window is white (all three
  channels >= :data:`SATURATED_LEVEL`), as in the core of a bright star;
- ``IMAGE_OFF_CENTRE`` (for non-empty images): the significant light peak nearest to the centre
  (a local maximum of the image smoothed over :data:`PEAK_SMOOTH_ARCSEC`, brighter than sky +
  max(5 x noise, 2 x :data:`MIN_CONTRAST`), within :data:`PEAK_SEARCH_ARCSEC`) lies more than
  :data:`PEAK_OFFSET_ARCSEC` from the centre, or there is none. The *nearest* peak, not the
  brightest: a bright star beside a centred galaxy does not raise it.

The thresholds were set on the 500 real cutouts of ``../shared/data/sdss_sample``, none of which
raises any of the three (source fraction within 6 arcsec >= 0.13; nearest peak within 1.7 arcsec
of the centre; no white pixel), while the same cutouts shifted by 7 pixels (2.1 arcsec) raise
``IMAGE_OFF_CENTRE`` in 93% of cases (see docs/model.md). Numpy and scipy.ndimage, run in chunks so
a memory-mapped decode cache is read piece by piece.
"""

from __future__ import annotations

import numpy as np

from galmet.columns import Flag

# FIELD_OF_VIEW_ARCSEC: the paper's 128 pixels of 0.296 arcsec (this module's name for it is kept).
from galmet.paper import FIELD_OF_VIEW_ARCSEC, PIXEL_SCALE_ARCSEC

#: Radius of the window around the centre that the checks look at.
WINDOW_ARCSEC = 6.0
#: Smallest brightness above the sky (0-255 scale) that counts as a source, whatever the noise.
MIN_CONTRAST = 5.0
#: Fraction of the window that must belong to a source for the image not to be "empty".
EMPTY_FRACTION = 0.05
#: A channel value at or above which a pixel counts as saturated (when all three are).
SATURATED_LEVEL = 250
#: White area within the window (arcsec^2) that makes an image "saturated" (10 pixels at 0.296").
SATURATED_AREA_ARCSEC2 = 10 * PIXEL_SCALE_ARCSEC**2
#: Box over which the image is smoothed before its light peaks are found (arcsec).
PEAK_SMOOTH_ARCSEC = 1.5
#: Radius within which the peak nearest to the centre is looked for (arcsec).
PEAK_SEARCH_ARCSEC = 8.0
#: Offset of the nearest significant peak (arcsec) beyond which the source is "off-centre".
PEAK_OFFSET_ARCSEC = 2.0
_CHUNK = 512


def pixel_scale_of(size: int) -> float:
    """Arcsec per pixel of a ``size``-pixel cutout of the SDSS field of view (0.296 at 128)."""
    return FIELD_OF_VIEW_ARCSEC / size


def border_mask(size: int) -> np.ndarray:
    """Bool (size, size): the outer 1/16 of the image on each side (at least one pixel)."""
    border = np.zeros((size, size), dtype=bool)
    b = max(1, size // 16)
    border[:b], border[-b:], border[:, :b], border[:, -b:] = True, True, True, True
    return border


def _sky_noise(gray: np.ndarray, border: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sky level and noise (0-255 scale) of each grayscale image (N, H, W) from its border."""
    edge = gray[:, border]
    sky = np.median(edge, axis=1)
    return sky, 1.4826 * np.median(np.abs(edge - sky[:, None]), axis=1)


def source_mask(images) -> np.ndarray:
    """Pixels brighter than sky + max(3 x noise, :data:`MIN_CONTRAST`): bool (N, H, W)."""
    size = int(images.shape[1])
    border = border_mask(size)
    out = np.zeros((len(images), size, size), dtype=bool)
    for s in range(0, len(images), _CHUNK):
        gray = np.asarray(images[s : s + _CHUNK]).astype(np.float32).mean(-1)
        sky, noise = _sky_noise(gray, border)
        out[s : s + len(gray)] = gray > (sky + np.maximum(3 * noise, MIN_CONTRAST))[:, None, None]
    return out


#: Smallest image side (pixels) the image checks judge.
MIN_CHECK_SIZE = 8


def image_flags(images, pixel_scale: float | None = None) -> np.ndarray:
    """The image-problem bits of :class:`galmet.columns.Flag` for each image.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, H, W, 3), H = W (a memmap is read in chunks).
    pixel_scale : float, optional
        Arcsec per pixel; default: the SDSS field of view over the image size.

    Returns
    -------
    numpy.ndarray
        int64 (N,): ``IMAGE_EMPTY | IMAGE_SATURATED | IMAGE_OFF_CENTRE`` bits; all 0 for images
        too coarse to hold a sky border and a central window (below :data:`MIN_CHECK_SIZE` pixels,
        e.g. the resolution study's 4, 2 and 1 px images): nothing can be judged there.
    """
    from scipy.ndimage import maximum_filter, uniform_filter

    n, size = len(images), int(images.shape[1])
    scale = pixel_scale if pixel_scale is not None else pixel_scale_of(size)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx) * scale
    window = r < WINDOW_ARCSEC
    if size < MIN_CHECK_SIZE or not window.any():
        return np.zeros(n, dtype=np.int64)
    search = r < PEAK_SEARCH_ARCSEC
    box = (1, *(2 * [max(1, round(PEAK_SMOOTH_ARCSEC / scale)) | 1]))  # odd, so a peak has a centre pixel
    border = border_mask(size)
    min_saturated = max(1, int(np.ceil(SATURATED_AREA_ARCSEC2 / scale**2 - 1e-9)))
    out = np.zeros(n, dtype=np.int64)
    for s in range(0, n, _CHUNK):
        chunk = np.asarray(images[s : s + _CHUNK])
        gray = chunk.astype(np.float32).mean(-1)
        sky, noise = _sky_noise(gray, border)
        source = gray > (sky + np.maximum(3 * noise, MIN_CONTRAST))[:, None, None]
        frac_window = source[:, window].mean(1)
        empty = frac_window < EMPTY_FRACTION
        white = np.all(chunk >= SATURATED_LEVEL, axis=-1)
        saturated = white[:, window].sum(1) >= min_saturated
        smooth = uniform_filter(gray, size=box)
        significant = smooth > (sky + np.maximum(5 * noise, 2 * MIN_CONTRAST))[:, None, None]
        peaks = (smooth == maximum_filter(smooth, size=box)) & significant & search
        nearest = np.where(peaks, r, np.inf).reshape(len(chunk), -1).min(1)
        off = ~empty & ~(nearest <= PEAK_OFFSET_ARCSEC)
        flags = np.where(empty, int(Flag.IMAGE_EMPTY), 0)
        flags |= np.where(saturated, int(Flag.IMAGE_SATURATED), 0)
        flags |= np.where(off, int(Flag.IMAGE_OFF_CENTRE), 0)
        out[s : s + len(chunk)] = flags
    return out
