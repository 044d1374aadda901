"""How a survey's synthetic images look: bands, pixel scale, seeing, sky noise and rendering.

One :class:`Look` per ``galmet synth --survey`` (:func:`survey_look`), built from the survey's
description in :mod:`galmet.data.surveys`. The galaxies (:mod:`galmet.synthetic.physics`) are
the same for every survey; only what a look sets differs:

- ``sdss``: the calibrated SDSS DR14 cutouts of :mod:`galmet.synthetic.render` (its constants,
  unchanged: one seeing FWHM for g, r and i; the sky noise and residual sky calibrated on real
  cutouts; Lupton RGB, i r g as R G B).
- ``legacy`` (grz) and ``ps1`` (gri): the seeing of each band is the survey's
  ``seeing_fwhm`` times the galaxy's drawn seeing over its median (good nights are good in
  every band); the sky noise follows the survey's 5-sigma point-source depth ``depth_mag`` and
  seeing (:func:`depth_sky_sigma`: deeper -> less noise), with the one constant that gives the
  SDSS calibration from SDSS's own depth; the residual sky and the source's Poisson noise keep
  SDSS's ratios to the sky noise. The JPEG is a Lupton asinh stretch with the reddest band as R:
  for ``legacy`` the Legacy Survey viewer's colour images (its ``dr2_rgb``: weights g 6.0,
  r 3.4, z 2.2 per nanomaggy per 0.262" pixel, an offset m = 0.03 and arcsinh(20 I) / sqrt(20),
  which is astropy's ``make_lupton_rgb`` with Q = 4.623, stretch = Q / 20 and minimum -0.03;
  the viewer clips a saturated channel where astropy scales the pixel's three down); for
  ``ps1`` SDSS's band weights and Q with a stretch that shows its sky noise as faintly as SDSS's.

Sky levels and RGB band scales are per pixel of the look's ``reference_scale`` (arcsec); an
image at another pixel scale is converted, so a galaxy looks the same at any ``size``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from galmet.data.surveys import SDSS, Survey, get_survey
from galmet.paper import PIXEL_SCALE_ARCSEC
from galmet.synthetic import sdss_rendering as r

#: Index of each band in the u g r i z flux arrays of :func:`galmet.synthetic.physics.draw_galaxy`.
#: (PS1's g r i are taken as SDSS's: the small filter differences are not modelled.)
BAND_INDEX = {"u": 0, "g": 1, "r": 2, "i": 3, "z": 4}


@dataclass(frozen=True)
class Look:
    """What a survey's synthetic images are made with.

    Attributes
    ----------
    survey : str
        The survey's name (``sdss``, ``legacy``, ``ps1``).
    bands : str
        The three bands rendered, bluest first; a JPEG shows them reddest first as R, G, B.
    reference_scale : float
        Arcsec per pixel that ``sky_sigma``, ``sky_pedestal`` and ``rgb_scales`` are per.
    field_of_view : float
        Arcsec across a cutout at the default pixel scale (the survey's default pixel scale
        times its default size); other sizes keep it.
    seeing : dict or None
        Band -> Moffat FWHM (arcsec) at the median seeing, scaled per galaxy by its drawn
        seeing over :data:`galmet.synthetic.render.PSF_FWHM_MEDIAN`; None: the drawn FWHM for
        every band (SDSS).
    sky_sigma, sky_pedestal : dict
        Band -> white sky noise and residual sky level, nanomaggies per reference pixel.
    electrons_per_nmgy : dict
        Band -> electrons per nanomaggy (the source's Poisson noise).
    rgb_scales : dict
        Band -> weight before the asinh stretch (per nanomaggy per reference pixel).
    lupton_q, lupton_stretch, lupton_minimum : float
        ``Q``, ``stretch`` and ``minimum`` (of each weighted band) of astropy's ``make_lupton_rgb``.
    jpeg_quality : int
        Quality the JPEGs are written with.
    """

    survey: str
    bands: str
    reference_scale: float
    field_of_view: float
    seeing: dict | None
    sky_sigma: dict
    sky_pedestal: dict
    electrons_per_nmgy: dict
    rgb_scales: dict
    lupton_q: float
    lupton_stretch: float
    lupton_minimum: float
    jpeg_quality: int

    def pixel_scale(self, size: int) -> float:
        """Arcsec per pixel of a ``size``-pixel cutout with this look's field of view."""
        return self.field_of_view / size

    def rendering(self) -> dict:
        """The JPEG rendering's parameters (synth_config.yaml's ``rendering``)."""
        return {
            "method": "Lupton et al. (2004) asinh RGB (astropy make_lupton_rgb)",
            "bands_as_RGB": ", ".join(reversed(self.bands)),
            "scales": {b: self.rgb_scales[b] for b in reversed(self.bands)},
            "scales_per_nmgy_per_pixel_of_arcsec": self.reference_scale,
            "Q": self.lupton_q,
            "stretch": self.lupton_stretch,
            "minimum": [self.lupton_minimum] * 3,
            "jpeg_quality": self.jpeg_quality,
        }


def _flux_nmgy(mag: float) -> float:
    return 10 ** (-0.4 * (mag - 22.5))


def depth_sky_sigma(survey: Survey, band: str, reference_scale: float) -> float:
    """Sky noise (nanomaggies per ``reference_scale`` pixel) of ``band`` in ``survey``: a point
    source at the survey's 5-sigma depth is detected at 5 sigma through its seeing, so the noise
    per pixel is proportional to 10^(-0.4 depth) / FWHM and to the pixel's side;
    :data:`NOISE_PER_DEPTH` sets the constant from SDSS's calibrated noise and SDSS's depth."""
    per_sdss_pixel = NOISE_PER_DEPTH * _flux_nmgy(survey.depth_mag[band]) / survey.seeing_fwhm[band]
    return per_sdss_pixel * reference_scale / PIXEL_SCALE_ARCSEC


def _geometric_mean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _sdss_look() -> Look:
    return Look(
        survey="sdss",
        bands="gri",
        reference_scale=r.PIXEL_SCALE_128,
        field_of_view=r.FIELD_OF_VIEW,
        seeing=None,
        sky_sigma=dict(r.SKY_SIGMA),
        sky_pedestal=dict(r.SKY_PEDESTAL),
        electrons_per_nmgy=dict(r.ELECTRONS_PER_NMGY),
        rgb_scales=dict(r.RGB_SCALES),
        lupton_q=r.LUPTON_Q,
        lupton_stretch=r.LUPTON_STRETCH,
        lupton_minimum=r.LUPTON_MINIMUM[0],
        jpeg_quality=r.JPEG_QUALITY,
    )


def _sdss_constants() -> tuple[float, float, float]:
    """(noise per depth, pedestal per sky sigma, electrons x sigma^2): geometric means over SDSS
    g r i of the calibrated constants of :mod:`galmet.synthetic.render`."""
    noise = _geometric_mean(r.SKY_SIGMA[b] * SDSS.seeing_fwhm[b] / _flux_nmgy(SDSS.depth_mag[b]) for b in SDSS.bands)
    pedestal = _geometric_mean(r.SKY_PEDESTAL[b] / r.SKY_SIGMA[b] for b in SDSS.bands)
    electrons = _geometric_mean(r.ELECTRONS_PER_NMGY[b] * r.SKY_SIGMA[b] ** 2 for b in SDSS.bands)
    return noise, pedestal, electrons


#: Sky noise per 0.296" pixel times seeing FWHM per 5-sigma depth flux (SDSS's calibration).
#: Pedestal per sky noise; electrons per nanomaggy times the sky noise squared (0.296" pixels).
NOISE_PER_DEPTH, PEDESTAL_PER_SIGMA, ELECTRONS_SIGMA2 = _sdss_constants()

#: The Legacy Survey viewer's colour images (its dr2_rgb): band weights per nanomaggy per 0.262"
#: pixel, offset, and its Q (arcsinh(Q I) / sqrt(Q)); :func:`legacy_lupton` turns them into
#: astropy's make_lupton_rgb parameters.
LEGACY_RGB_SCALES = {"z": 2.2, "r": 3.4, "g": 6.0}
LEGACY_RGB_OFFSET, LEGACY_RGB_Q = 0.03, 20.0
#: PS1 is shown with SDSS's band weights.
PS1_RGB_SCALES = {"i": 1.0, "r": 1.2, "g": 1.6}


def legacy_lupton() -> tuple[float, float, float]:
    """(Q, stretch, minimum) of astropy's make_lupton_rgb giving the viewer's arcsinh(Q' I) /
    sqrt(Q') of the offset intensity: astropy maps I to arcsinh(Q I / stretch) times
    0.1 / arcsinh(0.1 Q), so Q = 10 sinh(0.1 sqrt(Q')) and stretch = Q / Q'."""
    q = 10 * math.sinh(0.1 * math.sqrt(LEGACY_RGB_Q))
    return q, q / LEGACY_RGB_Q, -LEGACY_RGB_OFFSET


def _depth_look(survey: Survey, rgb_scales: dict) -> Look:
    """The look of a survey whose noise follows its depth (see the module doc), with the
    Legacy viewer's stretch, or (PS1) SDSS's with the r-band sky noise at the fraction of the
    stretch SDSS's r noise is at."""
    ref = survey.default_pixel_scale
    sigma = {b: depth_sky_sigma(survey, b, ref) for b in survey.bands}
    sigma_sdss_pixel = {b: s * PIXEL_SCALE_ARCSEC / ref for b, s in sigma.items()}
    if survey.name == "legacy":
        q, stretch, minimum = legacy_lupton()
    else:
        noise_in_stretch = r.SKY_SIGMA["r"] * r.RGB_SCALES["r"] / r.LUPTON_STRETCH
        q, stretch, minimum = r.LUPTON_Q, round(sigma["r"] * rgb_scales["r"] / noise_in_stretch, 4), 0.0
    return Look(
        survey=survey.name,
        bands=survey.bands,
        reference_scale=ref,
        field_of_view=ref * survey.default_size,
        seeing={b: survey.seeing_fwhm[b] for b in survey.bands},
        sky_sigma=sigma,
        sky_pedestal={b: PEDESTAL_PER_SIGMA * s for b, s in sigma.items()},
        electrons_per_nmgy={b: ELECTRONS_SIGMA2 / s**2 for b, s in sigma_sdss_pixel.items()},
        rgb_scales=dict(rgb_scales),
        lupton_q=q,
        lupton_stretch=stretch,
        lupton_minimum=minimum,
        jpeg_quality=r.JPEG_QUALITY,
    )


def survey_look(survey: str | Survey | None) -> Look:
    """The :class:`Look` of ``survey`` (a name in :data:`galmet.data.surveys.SURVEYS`; None: SDSS).

    Raises
    ------
    ConfigError
        An unknown survey (one line naming ``survey``).
    """
    return _look(get_survey(survey).name)


@functools.cache
def _look(name: str) -> Look:
    if name == "sdss":
        return _sdss_look()
    return _depth_look(get_survey(name), LEGACY_RGB_SCALES if name == "legacy" else PS1_RGB_SCALES)
