"""The SDSS rendering of the synthetic galaxies: pixel scale, sky, noise, gains and the JPEG
stretch, calibrated against real SDSS DR14 cutouts (docs/synthetic.md, benchmarks/synth_realism.py).

Constants only: :mod:`galmet.synthetic.render` draws with them and :mod:`galmet.synthetic.looks`
derives the other surveys' looks from them.
"""

from __future__ import annotations

from galmet.paper import PIXEL_SCALE_ARCSEC

#: Pixel scale (arcsec) of a 128-pixel cutout (the paper's); other sizes keep the same field of view.
PIXEL_SCALE_128 = PIXEL_SCALE_ARCSEC
FIELD_OF_VIEW = PIXEL_SCALE_128 * 128
#: Largest pixel GalSim draws on (arcsec): coarser cutout pixels are sums of finer ones (the 64-pixel SDSS scale).
FINE_SCALE_MAX = FIELD_OF_VIEW / 64
#: White sky noise per PIXEL_SCALE_128 pixel before resampling (nanomaggies), g r i, of a cutout of
#: median depth. Calibrated with the stretch so the JPEG sky (level, noise, correlation) matches
#: the distributions of real cutouts (docs/synthetic.md, benchmarks/synth_realism.py).
SKY_SIGMA = {"g": 0.0064, "r": 0.0103, "i": 0.0138}
#: Correlation length (Gaussian sigma, arcsec) of the noise after the cutout service resamples
#: the 0.396" frames: the reference one (at which SKY_SIGMA is the pixel noise) and the range a
#: cutout draws it from (uniform); calibrated so the JPEG sky matches real cutouts (see docs/synthetic.md).
NOISE_CORRELATION_ARCSEC = 0.35
NOISE_CORRELATION_RANGE_ARCSEC = (0.35, 0.65)
#: Per-cutout sky (real cutouts differ from field to field): the median residual sky level left
#: by the sky subtraction (nanomaggies per PIXEL_SCALE_128 pixel, g r i), its log-normal scatter
#: (dex) shared by the bands and per band, and the scatter (dex) of the noise (depth), shared by
#: the bands; the pedestal follows the noise with exponent SKY_PEDESTAL_NOISE_POWER.
SKY_PEDESTAL = {"g": 0.00098, "r": 0.0013, "i": 0.0031}
SKY_PEDESTAL_DEX, SKY_PEDESTAL_BAND_DEX = 0.25, 0.08
SKY_NOISE_DEX = 0.12
SKY_PEDESTAL_NOISE_POWER = 1.0
#: Fraction of the sky noise variance common to g, r and i (faint unresolved sources and sky
#: residuals, near grey), and its correlation length (Gaussian sigma, arcsec).
SHARED_NOISE_FRACTION = 0.5
SHARED_NOISE_CORRELATION_ARCSEC = 0.6
#: Electrons per nanomaggy (gain x counts per nanomaggy), for the source's Poisson noise.
ELECTRONS_PER_NMGY = {"g": 700.0, "r": 950.0, "i": 650.0}
#: Scale of each band before the asinh stretch (the cutout service weights g most).
RGB_SCALES = {"i": 1.0, "r": 1.2, "g": 1.6}
LUPTON_Q = 8.0
LUPTON_STRETCH = 0.2
#: Black level of each of R, G, B (i, r, g; nanomaggies per PIXEL_SCALE_128 pixel after the band
#: scales): zero; the sky's level in the JPEG is the cutout's drawn residual sky (SKY_PEDESTAL).
LUPTON_MINIMUM = (0.0, 0.0, 0.0)
#: Quality of the JPEGs: the quantisation tables of real SDSS DR14 cutouts are those of quality 90.
JPEG_QUALITY = 90
