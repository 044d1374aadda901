"""Synthetic galaxies with known physics, imaged as SDSS, the Legacy Surveys or PS1 would, written
as a dataset directory.

:func:`synthesize` draws a galaxy population (:mod:`galmet.synthetic.physics`), renders each
galaxy with GalSim in its survey's three bands (bulge + inclined disk + star-forming knots,
Moffat seeing, neighbouring stars and galaxies, sky and source noise at the survey's depth:
:mod:`galmet.synthetic.looks`), and writes either a colour JPEG (the Lupton et al. (2004) asinh
stretch, astropy's ``make_lupton_rgb``, reddest band as R; for SDSS i r g as R G B, like the SDSS
cutout service) or the band fluxes as a FITS cube, then the catalog::

    OUT/
      images/<objID>.jpg   size x size RGB JPEG (SDSS: field of view 37.9 arcsec)
      images/<objID>.fits  (--format fits) float32 (3, size, size) nanomaggies, bands bluest first
      catalog.parquet      SDSS-named columns + latent truths (written last)
      synth_config.yaml    parameters (survey, bands, format, size, pixel scale, rendering),
                           physics constants, galmet version

Galaxy ``i`` depends only on ``(seed, i)``, so the output is byte-identical for any number
of worker processes, and the galaxies (catalogue and labels) are the same for every survey.
GalSim and astropy are imported inside the functions that use them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from galmet._optional import require
from galmet.data.splits import MAX_SEED
from galmet.data.surveys import DEFAULT_SURVEY
from galmet.errors import ConfigError
from galmet.io.inputs import special_kind
from galmet.io.locks import holds_folder_lock
from galmet.io.ownership import holds_only_bookkeeping
from galmet.layout import CATALOG_PARQUET, IMAGE_CACHE, IMAGES_DIR, SYNTH_CONFIG
from galmet.paper import TEST_FRACTION, VALID_FRACTION
from galmet.synthetic.sdss_rendering import (  # noqa: F401 - re-exported: render.<NAME> is how callers and tests read them
    ELECTRONS_PER_NMGY,
    FIELD_OF_VIEW,
    FINE_SCALE_MAX,
    JPEG_QUALITY,
    LUPTON_MINIMUM,
    LUPTON_Q,
    LUPTON_STRETCH,
    NOISE_CORRELATION_ARCSEC,
    NOISE_CORRELATION_RANGE_ARCSEC,
    PIXEL_SCALE_128,
    RGB_SCALES,
    SHARED_NOISE_CORRELATION_ARCSEC,
    SHARED_NOISE_FRACTION,
    SKY_NOISE_DEX,
    SKY_PEDESTAL,
    SKY_PEDESTAL_BAND_DEX,
    SKY_PEDESTAL_DEX,
    SKY_PEDESTAL_NOISE_POWER,
    SKY_SIGMA,
)

if TYPE_CHECKING:
    from galmet.synthetic.looks import Look

log = logging.getLogger(__name__)

#: The ``generator`` entry of synth_config.yaml, by which ``--overwrite`` knows a synthesis.
GENERATOR = "galmet.synthetic.render"

PSF_FWHM_RANGE = (1.2, 1.6)
#: The median of PSF_FWHM_RANGE: a survey's band seeing (``seeing_fwhm``) is scaled by the drawn FWHM over it.
PSF_FWHM_MEDIAN = sum(PSF_FWHM_RANGE) / 2
PSF_BETA = 3.5
#: Mean numbers of neighbouring stars (r < 22.5) and galaxies (r < 22.5) in a cutout, about
#: the high-latitude SDSS counts; magnitudes follow dN/dm ~ 10^(0.2 m) and 10^(0.4 m).
MEAN_STARS, MEAN_NEIGHBOUR_GALAXIES = 0.4, 1.0
N_KNOTS = 30
#: Synthetic objIDs: BASE + (seed mod SEED_SLOTS) * MAX_N + index, all below real SDSS ids (1237...).
OBJID_BASE = 1_230_000_000_000_000_000
MAX_N = 1_000_000_000
#: Widest field (arcsec) an explicit pixel scale may give.
MAX_FIELD_ARCSEC = 600.0
#: Most worker processes a synthesis starts.
MAX_WORKERS = 256
SEED_SLOTS = 7_000_000
#: Catalog columns in SDSS naming, first; latent truths follow.
SDSS_COLUMNS = (
    ["objID", "ra", "dec", "z", "zErr", "rChi2"]
    + [f"modelMag_{b}" for b in "ugriz"]
    + [f"modelMagErr_{b}" for b in "ugriz"]
    + ["petroMag_r", "petroR50_r", "petroR90_r", "oh_p50", "lgm_tot_p50"]
)


def pixel_scale(size: int) -> float:
    """Arcsec per pixel for a ``size``-pixel cutout with the SDSS 128-pixel field of view."""
    return FIELD_OF_VIEW / size


def object_id(seed: int, index: int) -> int:
    """The synthetic objID of galaxy ``index`` in the data set with ``seed``."""
    return OBJID_BASE + (int(seed) % SEED_SLOTS) * MAX_N + int(index)


def require_synthesis_packages() -> None:
    """Raise a one-line ConfigError when GalSim or SciPy (the ``synth`` extra) is missing."""
    require("galsim", "synth", "synthetic galaxies")
    require("scipy.ndimage", "synth", "synthetic galaxies")


def check_options(n, seed, size, workers=None, test=TEST_FRACTION, valid_fraction=VALID_FRACTION) -> None:
    """Raise ConfigError (one line naming the parameter, ``param`` set to it) for a bad synthesis option."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n < MAX_N:
        raise ConfigError(f"n must be an integer from 1 to {MAX_N - 1}, got {n!r}", param="n")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}", param="seed")
    if (
        isinstance(size, bool)
        or not isinstance(size, (int, np.integer))
        or size < 8
        or size > 1024
        or size & (size - 1)
    ):
        raise ConfigError(f"size must be a power of two from 8 to 1024 pixels, got {size!r}", param="size")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or not 1 <= workers <= MAX_WORKERS
    ):
        raise ConfigError(f"workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}", param="workers")
    if (
        isinstance(test, bool)
        or not isinstance(test, (int, float, np.integer, np.floating))
        or not math.isfinite(test)
        or test < 0
        or (isinstance(test, (float, np.floating)) and test >= 1 and test != int(test))
    ):
        raise ConfigError(f"test must be a fraction in [0, 1) or a count of galaxies, got {test!r}", param="test")
    if test >= 1 and int(test) > n:
        raise ConfigError(f"test count {int(test)} is larger than n {n}", param=("test", "n"))
    if (
        isinstance(valid_fraction, bool)
        or not isinstance(valid_fraction, (int, float, np.integer, np.floating))
        or not (math.isfinite(valid_fraction) and 0 <= valid_fraction < 1)
    ):
        raise ConfigError(f"valid_fraction must be in [0, 1), got {valid_fraction!r}", param="valid_fraction")


def render_galaxy(
    params: dict,
    rng: np.random.Generator,
    size: int = 128,
    look: Look | None = None,
    scale: float | None = None,
    fmt: str = "jpeg",
) -> tuple[np.ndarray, dict]:
    """Render one galaxy as a survey's colour cutout or flux cube.

    Parameters
    ----------
    params : dict
        Output of :func:`galmet.synthetic.physics.draw_galaxy`.
    rng : numpy.random.Generator
        The galaxy's generator (continues the one that drew ``params``).
    size : int
        Cutout width = height, pixels.
    look : galmet.synthetic.looks.Look, optional
        The survey's bands, seeing, noise and rendering (default: SDSS's).
    scale : float, optional
        Arcsec per pixel (default: the look's field of view over ``size``).
    fmt : {"jpeg", "fits"}
        What to return: the colour image, or the band fluxes.

    Returns
    -------
    image : ndarray
        ``jpeg``: uint8 (size, size, 3), the Lupton RGB image (reddest band as R), row 0 at the
        top. ``fits``: float32 (3, size, size), nanomaggies per pixel, bands bluest first, row 0
        at the bottom (the FITS convention: the JPEG's rows reversed).
    measured : dict
        ``petroR50_r``, ``petroR90_r`` (arcsec), ``petroMag_r`` (AB) measured on the noiseless
        r-band galaxy image, ``psf_fwhm`` (arcsec, of r), ``n_stars``, ``n_neighbours``.
    """
    # The order of the random draws fixes every pixel of the data set (byte-identical output per
    # seed), and is the same for every survey (the same scene): each step below draws from
    # ``rng`` in turn, in this order: seeing and centring, the knots, the neighbours, then the
    # noise of the three bands, bluest first. Do not reorder the steps or the draws inside them.
    from galmet.synthetic.looks import survey_look

    look = look or survey_look(None)
    field = look.field_of_view if scale is None else float(scale) * size
    galsim = require("galsim", "synth", "synthetic galaxies")
    stamp = _Stamp.draw_seeing_and_offset(galsim, rng, size, field, look)
    images, parts = _galaxy_bands(stamp, params, rng)
    measured = _measure_petrosian(stamp, params, images, parts)
    n_stars, n_gal = _add_neighbours(stamp, rng, images)
    images = stamp.bin_to_cutout(images)
    sky = _draw_sky(rng, look)
    _add_noise(images, rng, size, stamp.scale, sky, look)
    measured.update(psf_fwhm=stamp.fwhm["r"], n_stars=n_stars, n_neighbours=n_gal)
    if fmt == "fits":
        return np.stack([images[b] for b in look.bands]).astype(np.float32), measured
    red, green, blue = (images[b] for b in reversed(look.bands))
    return look_rgb(look, red, green, blue, stamp.scale), measured


class _Stamp:
    """The drawing grid of one cutout: the seeing, the sub-pixel offset of the galaxy and the
    fine pixel grid GalSim draws on.

    GalSim draws coarse pixels slowly (16-pixel cutouts 20x slower than 64): objects are drawn
    on a grid of at most 0.592" (64 px) and blocks of ``fine`` x ``fine`` fine pixels are summed
    afterwards (:meth:`bin_to_cutout`), the same pixel integration.

    Attributes
    ----------
    size, field, scale : int, float, float
        Cutout width in pixels, in arcsec, and its pixel scale (arcsec).
    fine, fine_size, fine_scale : int, int, float
        Fine pixels per cutout pixel (per axis), fine grid width (pixels) and scale (arcsec).
    bands : str
        The bands drawn, bluest first.
    fwhm : dict
        Band -> Moffat seeing FWHM (arcsec).
    psf, offset
        Band -> GalSim PSF, and the galaxy's offset from the stamp centre (GalSim PositionD, fine pixels).
    one_psf : bool
        Every band has the same PSF (an object is drawn once for all bands).
    """

    def __init__(self, galsim, size: int, field: float, fwhm: dict, offset_pixels) -> None:
        self.galsim = galsim
        self.size = size
        self.field = field
        self.scale = field / size
        self.fine = max(1, math.ceil(self.scale / FINE_SCALE_MAX - 1e-6))
        self.fine_scale, self.fine_size = self.scale / self.fine, size * self.fine
        self.bands = "".join(fwhm)
        self.fwhm = fwhm
        self.one_psf = len(set(fwhm.values())) == 1
        psfs = {v: galsim.Moffat(beta=PSF_BETA, fwhm=v) for v in fwhm.values()}
        self.psf = {b: psfs[v] for b, v in fwhm.items()}
        self.offset = galsim.PositionD(*(offset_pixels * self.fine))  # in fine pixels

    @classmethod
    def draw_seeing_and_offset(cls, galsim, rng: np.random.Generator, size: int, field: float, look: Look) -> _Stamp:
        """Draw the seeing FWHM (the look's band FWHMs scaled by it over PSF_FWHM_MEDIAN, or it
        for every band), then the galaxy's sub-pixel offset (uniform in +-0.5 pixel)."""
        drawn = float(rng.uniform(*PSF_FWHM_RANGE))
        if look.seeing is None:
            fwhm = {b: drawn for b in look.bands}
        else:
            fwhm = {b: look.seeing[b] * drawn / PSF_FWHM_MEDIAN for b in look.bands}
        return cls(galsim, size, field, fwhm, rng.uniform(-0.5, 0.5, 2))

    def draw(self, obj, offset=None, band: str = "r") -> np.ndarray:
        """``obj`` convolved with ``band``'s PSF on the fine grid (float64, fine_size x
        fine_size), at ``offset`` (fine pixels; default the galaxy's)."""
        offset = self.offset if offset is None else offset
        image = self.galsim.Convolve(obj, self.psf[band]).drawImage(
            nx=self.fine_size, ny=self.fine_size, scale=self.fine_scale, offset=offset
        )
        return image.array.astype(np.float64)

    def draw_bands(self, obj, fluxes: dict, images: dict, offset=None) -> None:
        """Add ``obj`` times ``fluxes[band]`` to each band's fine-grid image in ``images``, drawn
        once when every band has the same PSF, else once per band."""
        if self.one_psf:
            unit = self.draw(obj, offset)
            for b in self.bands:
                images[b] += fluxes[b] * unit
            return
        for b in self.bands:
            images[b] += fluxes[b] * self.draw(obj, offset, b)

    def bin_to_cutout(self, images: dict) -> dict:
        """Fine-grid band images summed into cutout pixels (size x size)."""
        if self.fine == 1:
            return images
        size, fine = self.size, self.fine
        return {b: im.reshape(size, fine, size, fine).sum(axis=(1, 3)) for b, im in images.items()}


def _galaxy_profiles(galsim, params: dict, rng: np.random.Generator) -> dict:
    """The GalSim bulge, inclined disk and star-forming knots of ``params`` (unit flux each);
    the knots' positions come from one integer drawn from ``rng``."""
    incl = math.acos(params["cos_incl"])
    pa = params["pa_deg"] * galsim.degrees
    bulge = galsim.DeVaucouleurs(half_light_radius=params["r_bulge_arcsec"]).shear(
        q=params["bulge_q"], beta=params["bulge_pa_deg"] * galsim.degrees
    )
    disk = galsim.InclinedExponential(
        incl * galsim.radians, half_light_radius=params["r_disk_arcsec"], scale_h_over_r=0.1
    ).rotate(pa)
    q = max(params["cos_incl"], 0.1)
    knots = galsim.RandomKnots(
        N_KNOTS,
        half_light_radius=params["r_disk_arcsec"],
        flux=1.0,
        rng=galsim.BaseDeviate(int(rng.integers(1, 2**31 - 1))),
    )
    knots = knots.shear(q=q, beta=pa).dilate(math.sqrt(q))
    return {"bulge": bulge, "disk": disk, "knots": knots}


def _galaxy_bands(stamp: _Stamp, params: dict, rng: np.random.Generator) -> tuple[dict, list]:
    """Noiseless g, r, i images of the galaxy on the fine grid (nanomaggies per fine pixel), and
    its drawn components as (GalSim object, u g r i z fluxes) pairs (those bright in r)."""
    from galmet.synthetic.looks import BAND_INDEX

    profiles = _galaxy_profiles(stamp.galsim, params, rng)
    images = {b: np.zeros((stamp.fine_size, stamp.fine_size)) for b in stamp.bands}
    parts = [
        (obj, params[f"flux_{name}"])
        for name, obj in (("bulge", profiles["bulge"]), ("disk", profiles["disk"]), ("knots", profiles["knots"]))
        if params[f"flux_{name}"][2] > 0
    ]
    for obj, flux in parts:
        stamp.draw_bands(obj, {b: flux[BAND_INDEX[b]] for b in stamp.bands}, images)
    return images, parts


def _measure_petrosian(stamp: _Stamp, params: dict, images: dict, parts: list) -> dict:
    """:func:`_petrosian` of the noiseless r-band galaxy: on the fine-grid image, or on a stamp
    three times wider when the disk is large enough for the aperture to run off the cutout."""
    galsim = stamp.galsim
    if params["r_disk_arcsec"] > stamp.field / 8:
        wide = galsim.Convolve(galsim.Add([obj * flux[2] for obj, flux in parts]), stamp.psf["r"])
        wide_image = wide.drawImage(
            nx=3 * stamp.fine_size, ny=3 * stamp.fine_size, scale=stamp.fine_scale, offset=stamp.offset
        ).array
        return _petrosian(wide_image.astype(np.float64), stamp.fine_scale, stamp.offset)
    return _petrosian(images["r"], stamp.fine_scale, stamp.offset)


def _add_neighbours(stamp: _Stamp, rng: np.random.Generator, images: dict) -> tuple[int, int]:
    """Add Poisson numbers of neighbouring stars and galaxies (r < 22.5, at least 4" from the
    target) to the fine-grid ``images`` in place; return (number of stars, of galaxies)."""
    galsim = stamp.galsim
    n_stars, n_gal = int(rng.poisson(MEAN_STARS)), int(rng.poisson(MEAN_NEIGHBOUR_GALAXIES))
    for k in range(n_stars + n_gal):
        pos = _neighbour_position(rng, stamp.field)
        if k < n_stars:
            r_mag, gr = _number_count_mag(rng, 15.0, 22.5, 0.2), rng.uniform(0.3, 1.5)
            ri = 0.05 + 0.4 * gr
            iz = 0.02 + 0.2 * gr  # (the stellar locus; no draw, so every survey has the same scene)
            obj = galsim.DeltaFunction()
        else:
            r_mag, gr = _number_count_mag(rng, 17.5, 22.5, 0.4), rng.uniform(0.4, 1.3)
            ri = 0.25 + 0.2 * gr
            iz = 0.15 + 0.1 * gr
            obj = galsim.Exponential(half_light_radius=rng.uniform(0.4, 2.0)).shear(
                q=rng.uniform(0.3, 1.0), beta=rng.uniform(0, 180) * galsim.degrees
            )
        offset = stamp.offset + galsim.PositionD(pos[0] / stamp.fine_scale, pos[1] / stamp.fine_scale)
        f_r = 10 ** (-0.4 * (r_mag - 22.5))
        fluxes = {"g": f_r * 10 ** (-0.4 * gr), "r": f_r, "i": f_r * 10 ** (0.4 * ri)}
        fluxes["z"] = f_r * 10 ** (0.4 * (ri + iz))
        stamp.draw_bands(obj, fluxes, images, offset)
    return n_stars, n_gal


def _draw_sky(rng: np.random.Generator, look: Look) -> dict:
    """The cutout's sky: ``noise_factor`` (times the look's ``sky_sigma``), ``correlation``
    (arcsec) and ``pedestal`` (residual sky level, nanomaggies per reference pixel, per band)."""
    shared_noise, shared_sky = rng.standard_normal(2)
    band = rng.standard_normal(len(look.bands))
    noise_factor = 10 ** (SKY_NOISE_DEX * shared_noise)
    correlation = float(rng.uniform(*NOISE_CORRELATION_RANGE_ARCSEC))
    level = noise_factor**SKY_PEDESTAL_NOISE_POWER * 10 ** (SKY_PEDESTAL_DEX * shared_sky)
    scatter = 10 ** (SKY_PEDESTAL_BAND_DEX * band)
    pedestal = {b: look.sky_pedestal[b] * level * float(scatter[k]) for k, b in enumerate(look.bands)}
    return {"noise_factor": noise_factor, "correlation": correlation, "pedestal": pedestal}


def _add_noise(images: dict, rng: np.random.Generator, size: int, scale: float, sky: dict, look: Look) -> None:
    """Add the residual sky and sky and source (Poisson) noise to the cutout-pixel ``images`` in
    place, bluest band first, correlated over ``sky["correlation"]`` arcsec like the cutout
    service's resampling (``sky`` from :func:`_draw_sky`)."""
    from scipy.ndimage import gaussian_filter

    pix_ratio = scale / look.reference_scale
    smooth = sky["correlation"] / scale
    shared = _shared_noise(rng, size, scale)
    for b in look.bands:
        sigma = look.sky_sigma[b] * sky["noise_factor"] * pix_ratio
        var = (1 - SHARED_NOISE_FRACTION) * sigma**2 + np.clip(images[b], 0, None) / look.electrons_per_nmgy[b]
        noise = np.sqrt(var) * rng.standard_normal((size, size))
        if smooth > 0.3:
            # Resampling to the cutout's pixels correlates the noise; the kernel keeps the pixel
            # noise of the reference correlation length.
            noise = gaussian_filter(noise, smooth, mode="wrap") * (sky["correlation"] / NOISE_CORRELATION_ARCSEC)
        images[b] += noise + math.sqrt(SHARED_NOISE_FRACTION) * sigma * shared + sky["pedestal"][b] * pix_ratio**2


def _shared_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Noise (size, size) correlated over SHARED_NOISE_CORRELATION_ARCSEC, common to the bands,
    with the pixel standard deviation of unit white noise correlated over NOISE_CORRELATION_ARCSEC."""
    from scipy.ndimage import gaussian_filter

    field = rng.standard_normal((size, size))
    smooth = SHARED_NOISE_CORRELATION_ARCSEC / scale
    if smooth > 0.3:
        field = gaussian_filter(field, smooth, mode="wrap")
        field /= field.std() + 1e-12
    reference = NOISE_CORRELATION_ARCSEC / scale
    return field / (2 * math.sqrt(math.pi) * reference) if reference > 0.3 else field


def to_rgb(g: np.ndarray, r: np.ndarray, i: np.ndarray, size: int = 128) -> np.ndarray:
    """SDSS's Lupton asinh RGB (R, G, B = i, r, g) of band images in nanomaggies per pixel of a
    ``size``-pixel cutout of the SDSS field of view; see :func:`look_rgb`."""
    from galmet.synthetic.looks import survey_look

    return look_rgb(survey_look("sdss"), i, r, g, pixel_scale(size))


def look_rgb(look: Look, red: np.ndarray, green: np.ndarray, blue: np.ndarray, scale: float) -> np.ndarray:
    """Lupton asinh RGB of a look's band images (reddest band first; nanomaggies per pixel of
    ``scale`` arcsec).

    Images are first converted to surface brightness per pixel of the look's reference scale,
    so a cutout looks the same at any pixel scale. Returns uint8 (H, W, 3), image row 0 at the top.
    """
    from astropy.visualization import make_lupton_rgb

    sb = (look.reference_scale / scale) ** 2
    weights = [look.rgb_scales[b] for b in reversed(look.bands)]
    rgb = make_lupton_rgb(
        red * weights[0] * sb,
        green * weights[1] * sb,
        blue * weights[2] * sb,
        minimum=[look.lupton_minimum] * 3,
        stretch=look.lupton_stretch,
        Q=look.lupton_q,
    )
    return np.ascontiguousarray(rgb[::-1])  # GalSim's row 0 is the bottom (y up)


def _number_count_mag(rng: np.random.Generator, m0: float, m1: float, slope: float) -> float:
    """A magnitude in [m0, m1] from number counts dN/dm proportional to 10^(slope m)."""
    span = 10 ** (slope * (m1 - m0)) - 1
    return float(m0 + math.log10(1 + rng.random() * span) / slope)


def _neighbour_position(rng: np.random.Generator, fov: float) -> tuple[float, float]:
    """A position (arcsec from the centre) in the field, at least 4 arcsec from the target."""
    while True:
        x, y = rng.uniform(-fov / 2, fov / 2, 2)
        if x * x + y * y >= 16.0:
            return float(x), float(y)


def _petrosian(image: np.ndarray, scale: float, offset) -> dict:
    """SDSS-style Petrosian radius, flux (within 2 R_P), R50 and R90 of a noiseless image."""
    size = image.shape[0]
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    rad = np.hypot(xx - c - offset.x, yy - c - offset.y).ravel() * scale
    order = np.argsort(rad)
    rs, cum = rad[order], np.cumsum(image.ravel()[order])
    r_max = (size / 2) * scale
    grid = np.linspace(2 * scale, r_max, 200)  # annuli narrower than a pixel are empty
    flux_at = lambda r: np.interp(r, rs, cum)  # noqa: E731
    inner = flux_at(grid) / (math.pi * grid**2)
    annulus = (flux_at(np.minimum(1.25 * grid, r_max)) - flux_at(0.8 * grid)) / (
        math.pi * (np.minimum(1.25 * grid, r_max) ** 2 - (0.8 * grid) ** 2)
    )
    ratio = annulus / np.maximum(inner, 1e-30)
    below = np.flatnonzero(ratio < 0.2)
    r_petro = float(grid[below[0]]) if len(below) else r_max
    f_petro = float(flux_at(min(2 * r_petro, r_max)))
    r50 = float(np.interp(0.5 * f_petro, cum, rs))
    r90 = float(np.interp(0.9 * f_petro, cum, rs))
    return {
        "petroRad_r": r_petro,
        "petroR50_r": r50,
        "petroR90_r": r90,
        "petroMag_r": float(22.5 - 2.5 * math.log10(max(f_petro, 1e-12))),
    }


def make_galaxy(
    seed: int, index: int, size: int, survey: str | None = None, fmt: str = "jpeg", scale: float | None = None
) -> tuple[dict, np.ndarray]:
    """Draw and render galaxy ``index`` as ``survey`` images it (default SDSS) at ``scale``
    arcsec per pixel (default: the survey's field of view over ``size``); return (catalog row,
    image: uint8 RGB for ``jpeg``, float32 (3, size, size) nanomaggies for ``fits``, as
    :func:`render_galaxy`)."""
    from galmet.synthetic.looks import survey_look
    from galmet.synthetic.physics import draw_galaxy

    params, rng = draw_galaxy(seed, index)
    image, measured = render_galaxy(params, rng, size, survey_look(survey), scale, fmt)
    row = {k: v for k, v in params.items() if not k.startswith("flux_")}
    row.update(measured)
    row["objID"] = object_id(seed, index)
    return row, image


def _work(task: tuple[int, int, int, str, str, str, float | None]) -> dict:
    """Worker: make galaxy ``index`` and write images/<objID>.jpg (or .fits) atomically; return its row."""
    from galmet.io.atomic import atomic_write_bytes

    seed, index, size, images_dir, survey, fmt, scale = task
    row, image = make_galaxy(seed, index, size, survey, fmt, scale)
    body = encode_image(image, survey, fmt, size, scale)
    atomic_write_bytes(Path(images_dir) / f"{row['objID']}{IMAGE_SUFFIX[fmt]}", body)
    return row


#: File suffix of each output format.
IMAGE_SUFFIX = {"jpeg": ".jpg", "fits": ".fits"}


def encode_image(image: np.ndarray, survey: str | None, fmt: str, size: int, scale: float | None) -> bytes:
    """The file bytes of a rendered ``image``: a JPEG of the look's quality, or galmet's FITS
    cutout form (float32 (bands, H, W) nanomaggies; BANDS, BUNIT, SURVEY, PIXSCALE)."""
    from galmet.synthetic.looks import survey_look

    look = survey_look(survey)
    if fmt == "fits":
        from galmet.io.fits_images import encode_fits

        pixscale = look.pixel_scale(size) if scale is None else float(scale)
        meta = {"BANDS": look.bands, "BUNIT": "nanomaggy", "SURVEY": look.survey, "PIXSCALE": pixscale}
        return encode_fits(image, meta)
    from galmet.io.images import encode_jpeg

    return encode_jpeg(image, look.jpeg_quality)


def _warm_up() -> None:
    import galsim  # noqa: F401

    from galmet.synthetic.physics import _cosmology_grid

    _cosmology_grid()


def check_output(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse (ConfigError) an output that is a file, sits under a file, is not writable, or is a
    non-empty folder that is not a previous galmet synthesis (with ``overwrite``) or not empty
    (without it). Touches nothing."""
    from galmet.io.safety import check_output_dir

    out = Path(out)
    check_output_dir(out, "out")
    if out.is_dir() and not holds_only_bookkeeping(out):
        if not overwrite:
            raise ConfigError(
                f"{out}: output directory exists and is not empty (use overwrite to replace it)", param="overwrite"
            )
        previous_synthesis(out)
    return out


def previous_synthesis(out: Path) -> dict:
    """The settings (``synth_config.yaml``) of the galmet synthesis in ``out``; ConfigError when
    ``out`` holds none, so that ``--overwrite`` never deletes a folder galmet did not write."""
    import yaml

    path = out / SYNTH_CONFIG
    why = f"{out}: not a galmet synthesis (no readable {SYNTH_CONFIG}); overwrite only replaces one"
    try:
        if special_kind(path) is not None:  # a FIFO is never opened
            raise OSError(path)
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        raise ConfigError(why + "; choose an empty or new folder", param="overwrite") from None
    if (
        not isinstance(config, dict)
        or config.get("generator") != GENERATOR
        or not isinstance(config.get("n"), int)
        or not isinstance(config.get("seed"), int)
    ):
        raise ConfigError(why + "; choose an empty or new folder", param="overwrite")
    return config


def _remove_previous(out: Path) -> None:
    """Delete exactly the files the previous synthesis in ``out`` wrote (their names follow from
    its seed and n), catalogue first: never a catalogue without its images. Any other file stays."""
    from galmet.io.atomic import remove_stale_temp_files
    from galmet.io.safety import remove_files

    config = previous_synthesis(out)
    n, seed = int(config["n"]), int(config["seed"])
    from galmet.data.cache import is_galmet_cache_or_absent

    remove_files([out / CATALOG_PARQUET])
    if is_galmet_cache_or_absent(out / IMAGE_CACHE):
        remove_files([out / IMAGE_CACHE, out / Path(IMAGE_CACHE).with_suffix(".json").name])
    images = out / IMAGES_DIR
    if images.is_dir():
        remove_files(images / f"{object_id(seed, i)}{suffix}" for i in range(n) for suffix in IMAGE_SUFFIX.values())
        remove_stale_temp_files(images)
    remove_files([out / SYNTH_CONFIG])


@holds_folder_lock("out", "'galmet synth'")
def synthesize(
    out: str | os.PathLike,
    n: int,
    seed: int = 0,
    size: int = 128,
    workers: int | None = None,
    progress: bool = True,
    test: float | int = TEST_FRACTION,
    valid_fraction: float = VALID_FRACTION,
    overwrite: bool = False,
    survey: str = DEFAULT_SURVEY,
    format: str = "jpeg",  # noqa: A002 - the name --format and galmet's other APIs use
    pixel_scale: float | None = None,
) -> Path:
    """Write a synthetic dataset directory of ``n`` galaxies as a survey images them.

    Parameters
    ----------
    out : path-like
        Output directory; must be absent or empty unless ``overwrite``.
    n : int
        Number of galaxies.
    seed : int
        0 to 2**32 - 1; the same seed gives byte-identical catalog and images.
    size : int
        Cutout size in pixels (power of two, 8-1024); the field of view stays the survey's
        (SDSS: 37.9 arcsec, 0.296"/px at 128; legacy 33.5", ps1 32.0": their native scale at 128).
    workers : int, optional
        Worker processes (default ``os.cpu_count()``); does not change the output.
    progress : bool
        Report progress (galmet.io.progress: a bar on a terminal, log lines elsewhere).
    test, valid_fraction
        Held-out test fraction (or count) and validation fraction of the rest, for the
        seeded ``split`` column (see :func:`galmet.data.splits.assign_splits`).
    overwrite : bool
        Replace a previous synthesis in a non-empty ``out``: exactly the files it wrote (its
        catalogue, settings, decode cache and images, by name) are deleted, after every option
        is checked; a folder that holds no galmet synthesis is refused.
    survey : {"sdss", "legacy", "ps1"}
        The survey whose bands, seeing, depth and rendering the images have
        (:mod:`galmet.synthetic.looks`). The galaxies and their catalogue (labels included) are
        the same for every survey at the same seed; only the imaging differs.
    format : {"jpeg", "fits"}
        ``images/<objID>.jpg`` colour JPEGs (the survey's rendering), or ``images/<objID>.fits``
        flux cubes (float32 (3, size, size) nanomaggies, bands bluest first;
        :func:`galmet.io.fits_images.encode_fits`). Every survey may be written as either.
    pixel_scale : float, optional
        Arcsec per pixel (0.01-10, field of view at most 600"); default the survey's field of
        view over ``size`` (a transfer experiment may render two surveys at one scale).

    Returns
    -------
    pathlib.Path
        ``out``, now holding ``images/``, ``synth_config.yaml`` and ``catalog.parquet``.

    Raises
    ------
    ConfigError
        A bad option, or ``out`` not empty without ``overwrite``, or not a synthesis with it.
    """
    from galmet.data.dataset import write_catalog
    from galmet.data.splits import assign_splits
    from galmet.io.progress import progress_bar

    workers = (os.cpu_count() or 1) if workers is None else workers
    check_options(n, seed, size, workers, test, valid_fraction)
    survey, fmt, pixel_scale = check_imaging_options(survey, format, pixel_scale, size)
    out = check_output(out, overwrite)  # (under the folder's lock: holds_folder_lock)
    require_synthesis_packages()
    if out.is_dir() and not holds_only_bookkeeping(out):
        _remove_previous(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    config = synthesis_config(n, seed, size, test, valid_fraction, survey, fmt, pixel_scale)
    _write_config(out / SYNTH_CONFIG, config)  # first: a killed synthesis is still recognised as one
    images_dir = str(out / IMAGES_DIR)
    tasks = [(int(seed), i, int(size), images_dir, survey, fmt, pixel_scale) for i in range(n)]
    workers = max(1, min(int(workers), n))
    _warm_up()  # forked workers inherit the imports and the cosmology grid
    bar = progress_bar(total=n, desc="synthesizing galaxies", unit="gal", enabled=bool(progress))
    rows = []
    try:
        if workers == 1:
            for task in tasks:
                rows.append(_work(task))
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for row in pool.map(_work, tasks, chunksize=max(1, min(32, n // (4 * workers)))):
                    rows.append(row)
                    bar.update()
    finally:
        bar.close()

    catalog = _catalog_frame(rows)
    catalog["split"] = assign_splits(catalog, test=test, valid_fraction=valid_fraction, seed=int(seed))
    catalog.attrs["galmet_synthetic"] = json.dumps(config, sort_keys=True)
    write_catalog(out, catalog)
    log.debug("wrote %d synthetic %s galaxies (%dx%d px, %s) to %s", n, survey, size, size, fmt, out)
    return out


def _catalog_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["objID"] = df["objID"].astype(np.int64)
    for col in ("n_stars", "n_neighbours"):
        df[col] = df[col].astype(np.int64)
    rest = [c for c in df.columns if c not in SDSS_COLUMNS]
    return df[SDSS_COLUMNS + rest]


def check_imaging_options(survey, fmt, scale, size: int) -> tuple[str, str, float | None]:
    """(survey name, format, pixel scale or None) of a synthesis, checked; ConfigError (one line
    naming ``survey``, ``format`` or ``pixel_scale``) otherwise. Any survey may be written as
    JPEG or FITS (synthetic fluxes of any survey are useful, whatever its service serves)."""
    from galmet.data.surveys import FORMATS, get_survey

    name = get_survey(survey).name
    fmt_key = str(fmt).strip().lower().replace("jpg", "jpeg") if isinstance(fmt, str) else fmt
    if fmt_key not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", param="format")
    if scale is not None:
        ok = isinstance(scale, (int, float, np.integer, np.floating)) and not isinstance(scale, bool)
        if not (ok and math.isfinite(scale) and 0.01 <= scale <= 10):
            raise ConfigError(f"pixel_scale must be 0.01-10 arcsec per pixel, got {scale!r}", param="pixel_scale")
        if scale * size > MAX_FIELD_ARCSEC:
            raise ConfigError(
                f"pixel_scale {scale:g} x size {size} is a field of {scale * size:g} arcsec; at most "
                f"{MAX_FIELD_ARCSEC:g}",
                param=("pixel_scale", "size"),
            )
        scale = float(scale)
    return name, fmt_key, scale


def synthesis_config(
    n: int,
    seed: int,
    size: int,
    test,
    valid_fraction: float,
    survey: str = DEFAULT_SURVEY,
    fmt: str = "jpeg",
    scale: float | None = None,
) -> dict:
    """The parameters of a synthesis (``survey``, ``bands``, ``format``, ``size``,
    ``pixel_scale_arcsec``, and for JPEGs the ``rendering``), the physics constants and the
    galmet version."""
    from galmet._version import __version__
    from galmet.synthetic.looks import survey_look
    from galmet.synthetic.physics import physics_metadata

    look = survey_look(survey)
    field = look.field_of_view if scale is None else scale * size
    return {
        "generator": GENERATOR,
        "galmet_version": __version__,
        "n": int(n),
        "seed": int(seed),
        "survey": look.survey,
        "bands": look.bands,
        "format": fmt,
        "size": int(size),
        "pixel_scale_arcsec": field / size,
        "field_of_view_arcsec": field,
        "test": test,
        "valid_fraction": valid_fraction,
        **_imaging_config(look, fmt),
        "noise_correlation_arcsec": NOISE_CORRELATION_ARCSEC,
        "noise_correlation_range_arcsec": list(NOISE_CORRELATION_RANGE_ARCSEC),
        "sky": {
            "pedestal_nmgy": dict(look.sky_pedestal),  # per pixel of the sky_sigma key's scale
            "pedestal_dex": SKY_PEDESTAL_DEX,
            "pedestal_band_dex": SKY_PEDESTAL_BAND_DEX,
            "pedestal_noise_power": SKY_PEDESTAL_NOISE_POWER,
            "noise_dex": SKY_NOISE_DEX,
            "shared_noise_fraction": SHARED_NOISE_FRACTION,
            "shared_noise_correlation_arcsec": SHARED_NOISE_CORRELATION_ARCSEC,
        },
        "physics": physics_metadata(),
    }


def _imaging_config(look, fmt: str) -> dict:
    """The seeing, sky noise and rendering (JPEG) or flux unit (FITS) of a synthesis's config."""
    config: dict = {"psf_fwhm_range_arcsec": list(PSF_FWHM_RANGE)}
    if look.seeing is not None:
        config["seeing_fwhm_arcsec_at_median"] = {"median_of_range": PSF_FWHM_MEDIAN, **look.seeing}
    config[f"sky_sigma_nmgy_per_{look.reference_scale}arcsec_pixel"] = dict(look.sky_sigma)
    if fmt == "jpeg":
        config["rendering"] = look.rendering()
    else:
        config["flux_unit"] = "nanomaggy"
    return config


def _write_config(path: Path, config: dict) -> None:
    import yaml

    from galmet.io.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))
