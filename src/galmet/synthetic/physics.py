"""The synthetic galaxy population: masses, redshifts, structure, colours and metallicity.

Each galaxy is drawn from its own random generator, seeded by ``(seed, index)``, so a galaxy
does not depend on any other and the population is the same however it is split over
processes. No image is made here (see :mod:`galmet.synthetic.render`); this module turns random
numbers into the latent truths and the SDSS-like catalog values of one galaxy.

The physics (all numbers are the module constants below; see docs/synthetic.md), calibrated to
the authors' training table (95,986 MPA-JHU galaxies, PAPER.md "The real catalogue"):

- log M* from a skew-normal truncated to 8.0-11.8 with the real median 10.06 and quartiles
  9.65 / 10.42 (mean 10.01) after the flux limit; redshift volume-weighted up to r < 17.77.
- Star formation on the main sequence, log sSFR = -9.7 - 0.3 (log M* - 10) with scatter.
- Bulge (de Vaucouleurs) + inclined exponential disk; B/T (r-band light) rising with mass and
  falling with sSFR; sizes from a size-mass relation; bulge red, disk colour set by sSFR, plus
  inclination-dependent dust reddening; star-forming knots in the disk.
- Z = MZR(M*) + alpha_sSFR(M*) dsSFR - 0.10 ((1 - cos i) - 0.5) - 0.15 dlog r_d  (``oh_observable``)
  + N(0, sigma_unobs(M*)) unobservable scatter + N(0, 0.03) measurement noise  (``oh_p50``).
  MZR = Tremonti et al. (2004) Eq. 3 at log M* - 0.063, 0.13 dex per dex steeper below
  log M* = 9.8 (calibrated on the catalogue's Z percentiles); alpha_sSFR = -0.15 below log M* = 10,
  fading linearly to 0 at 11.25, the slope at fixed mass of Mannucci et al. (2010)'s fundamental
  metallicity relation; sigma_unobs grows from 0.025 dex at high mass to 0.12 dex at low mass, as
  the observed scatter of the MZR does. Together they give the real catalogue's Z distribution
  (about 12% above 9.1 and 5% below 8.5, against 12.6% and 5.3%).
- A flux-limited sample: a galaxy too faint for r < 17.77 even at z = 0.02 is redrawn.
- Cosmology FlatLambdaCDM(H0=70, Om0=0.3) for distances, angular sizes and fluxes.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from galmet.paper import tremonti_mzr

#: Bands of the catalog magnitudes, and those rendered into the image (R, G, B = i, r, g).
BANDS = "ugriz"
#: Flux limit of the SDSS main spectroscopic sample (Petrosian r, AB mag).
R_LIMIT = 17.77
#: Most draws of a galaxy too faint for the flux limit before one is kept as it is.
MAX_REDRAWS = 1000
Z_MIN, Z_MAX = 0.02, 0.30
LOGM_MIN, LOGM_MAX = 8.0, 11.8
#: Skew-normal stellar-mass distribution: location, scale, shape (log Msun), truncated to
#: LOGM_MIN-LOGM_MAX, of the galaxies drawn before the flux limit: fitted so the galaxies that
#: pass it have the real catalogue's quartiles 9.646 / 10.059 / 10.423 and mean 10.013.
LOGM_SKEWNORM = (10.615, 0.80, -2.0813)

#: The population's median MZR: Tremonti's Eq. 3 at log M* - MZR_MASS_OFFSET, steepened by
#: MZR_LOW_MASS_SLOPE dex per dex below log M* = MZR_LOW_MASS_PIVOT. Eq. 3 was fitted to
#: Tremonti's (DR2) masses, not to DR7 ``lgm_tot_p50``; the offset and the low-mass slope were
#: calibrated so the population has the real catalogue's Z percentiles (its long low-Z tail
#: comes from low-mass galaxies below Eq. 3's extrapolation).
MZR_MASS_OFFSET = 0.063
MZR_LOW_MASS_SLOPE = 0.13
MZR_LOW_MASS_PIVOT = 9.8

#: Metallicity coefficients (dex). The first three terms are visible in the image.
ALPHA_SSFR = -0.15  # per dex of sSFR above the main sequence at log M* <= 10 (FMR at fixed mass)
ALPHA_SSFR_FADE = 0.12  # ... weakening by this per dex of mass above 10 (0 from log M* = 11.25)
ALPHA_INCL = -0.10  # times (1 - cos i) - 0.5: edge-on disks show lower measured Z than face-on ones
INCL_PIVOT = 0.5  # the population mean of 1 - cos i (cos i uniform): the term averages to ~0
ALPHA_SIZE = -0.15  # per dex of disk size above the size-mass relation (compact -> metal-rich)
#: Unobservable scatter (no image can explain it), dex: SIGMA_UNOBS_HIGH at high mass rising to
#: SIGMA_UNOBS_LOW at low mass, a logistic step of SIGMA_UNOBS_WIDTH dex about SIGMA_UNOBS_PIVOT.
SIGMA_UNOBS_HIGH, SIGMA_UNOBS_LOW, SIGMA_UNOBS_PIVOT, SIGMA_UNOBS_WIDTH = 0.025, 0.12, 9.85, 0.3
SIGMA_MEAS = 0.03  # measurement noise of oh_p50
#: Latent quantities an image shows without its redshift (apparent magnitudes in the image's
#: bands, apparent sizes, inclination, bulge fraction, clumpiness): the features of the
#: "observable oracle" regressor (galmet.science.baseline.observable_oracle).
IMAGE_OBSERVABLES = (
    "modelMag_g",
    "modelMag_r",
    "modelMag_i",
    "r_disk_arcsec",
    "r_bulge_arcsec",
    "cos_incl",
    "bt_r",
    "knot_frac",
)

#: Main sequence: log sSFR/yr^-1 = MS0 + MS_SLOPE (log M* - 10), scatter MS_SCATTER.
MS0, MS_SLOPE, MS_SCATTER = -9.7, -0.3, 0.3
#: Size-mass relations (half-light radii, kpc): log r = log r0 + slope (log M* - 10.3) + N(0, scatter).
#: The disk's r0 is calibrated on the light profiles of real cutouts (benchmarks/synth_realism.py).
DISK_SIZE = (5.85, 0.25, 0.15)
BULGE_SIZE = (1.2, 0.45, 0.12)

#: Rest-frame bulge colours (old stellar population): u-g, g-r, r-i, i-z.
BULGE_COLOURS = (1.75, 0.78, 0.42, 0.33)
#: Extinction in each band per unit A_V (Cardelli-like), u g r i z.
DUST_PER_AV = (1.58, 1.20, 0.87, 0.65, 0.48)
#: Observed-frame colour change per unit redshift (a crude K-correction): u-g, g-r, r-i, i-z; and K_r.
KCORR_COLOURS = (1.0, 1.2, 0.3, 0.2)
KCORR_R = 0.8
#: Sun's absolute r magnitude (AB) for the Bell et al. (2003) mass-to-light ratio.
MSUN_R = 4.65
#: Zero-point of log M/L (dex) added to Bell et al. (2003)'s: calibrated so the flux-limited
#: population has the redshifts of the MPA-JHU star-forming main sample (median z about 0.07,
#: not 0.053 as with Bell's zero-point).
LOG_ML_OFFSET = -0.28
#: Flux errors of the catalog photometry (nanomaggies), u g r i z, plus a 0.01 mag floor.
FLUX_ERR_NMGY = (0.25, 0.05, 0.07, 0.10, 0.40)


def population_mzr(log_mass):
    """The population's median metallicity at stellar mass ``log_mass`` (dex): Tremonti's Eq. 3
    at ``log_mass - MZR_MASS_OFFSET``."""
    m = np.asarray(log_mass, dtype=float)
    return tremonti_mzr(m - MZR_MASS_OFFSET) - MZR_LOW_MASS_SLOPE * np.maximum(MZR_LOW_MASS_PIVOT - m, 0.0)


def alpha_ssfr(log_mass):
    """dZ / d(log sSFR) at fixed mass (dex per dex): ALPHA_SSFR at log M* <= 10, fading linearly
    above (0 from 11.25), after the fundamental metallicity relation of Mannucci et al. (2010)."""
    m = np.asarray(log_mass, dtype=float)
    return np.minimum(0.0, ALPHA_SSFR + ALPHA_SSFR_FADE * np.maximum(m - 10.0, 0.0))


def sigma_unobs(log_mass):
    """Standard deviation (dex) of the unobservable metallicity scatter at ``log_mass``."""
    m = np.asarray(log_mass, dtype=float)
    step = 1.0 / (1.0 + np.exp(-(SIGMA_UNOBS_PIVOT - m) / SIGMA_UNOBS_WIDTH))
    return SIGMA_UNOBS_HIGH + (SIGMA_UNOBS_LOW - SIGMA_UNOBS_HIGH) * step


def _mass_pdf(x: np.ndarray) -> np.ndarray:
    """The truncated skew-normal density of log M* (unnormalised) on a grid ``x``."""
    loc, scale, shape = LOGM_SKEWNORM
    t = (x - loc) / scale
    phi = np.exp(-0.5 * t**2)
    cdf = 0.5 * (1.0 + np.array([math.erf(v) for v in shape * t / math.sqrt(2.0)]))
    return np.where((x >= LOGM_MIN) & (x <= LOGM_MAX), phi * cdf, 0.0)


def _noise_floor() -> float:
    """sqrt(E[sigma_unobs(M*)^2] + SIGMA_MEAS^2) over the mass distribution (trapezoid rule)."""
    x = np.linspace(LOGM_MIN, LOGM_MAX, 3801)
    w = _mass_pdf(x)

    def integral(y):
        return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))

    return math.sqrt(integral(w * sigma_unobs(x) ** 2) / integral(w) + SIGMA_MEAS**2)


#: Expected RMSE of a perfect image-based predictor (the noise floor; it knows ``oh_observable``
#: exactly, mass included), dex, over the population's mass distribution. A lower bound: an image
#: reveals the mass only through apparent brightness, size and colour, without the redshift.
NOISE_FLOOR_RMSE = _noise_floor()


def galaxy_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of galaxy ``index`` in the data set with ``seed``."""
    return np.random.default_rng([int(seed), int(index), 0x6A1E7])


@functools.lru_cache(maxsize=1)
def _cosmology_grid():
    """Redshift grid with D_L, D_A (Mpc) and dV/dz for FlatLambdaCDM(70, 0.3)."""
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70, Om0=0.3)
    z = np.linspace(0.0, 0.5, 2001)
    z[0] = 1e-5
    dl = cosmo.luminosity_distance(z).value
    da = cosmo.angular_diameter_distance(z).value
    dvdz = cosmo.differential_comoving_volume(z).value
    return z, dl, da, dvdz


def _distance_modulus(z: float) -> float:
    """5 log10(D_L / 10 pc) at redshift ``z`` (mag)."""
    return 5 * math.log10(float(luminosity_distance(z)) * 1e5)


def luminosity_distance(z):
    """Luminosity distance in Mpc for FlatLambdaCDM(70, 0.3) (interpolated, 0 < z < 0.5)."""
    zg, dl, _, _ = _cosmology_grid()
    return np.interp(z, zg, dl)


def angular_scale_kpc_per_arcsec(z):
    """Proper kpc per arcsec at redshift ``z``."""
    zg, _, da, _ = _cosmology_grid()
    return np.interp(z, zg, da) * 1e3 * math.pi / (180 * 3600)


def _skewnorm(rng: np.random.Generator, loc: float, scale: float, shape: float) -> float:
    delta = shape / math.sqrt(1 + shape**2)
    u0, u1 = rng.standard_normal(2)
    return loc + scale * (delta * abs(u0) + math.sqrt(1 - delta**2) * u1)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _mags_from_colours(r: float, colours) -> np.ndarray:
    """u g r i z magnitudes from r and (u-g, g-r, r-i, i-z)."""
    ug, gr, ri, iz = colours
    g = r + gr
    return np.array([g + ug, g, r, r - ri, r - ri - iz])


def _flux_nmgy(mag):
    return 10 ** (-0.4 * (np.asarray(mag, dtype=float) - 22.5))


def _mag(flux_nmgy):
    return 22.5 - 2.5 * np.log10(flux_nmgy)


def draw_galaxy(seed: int, index: int) -> tuple[dict, np.random.Generator]:
    """Draw the latent truths and catalog values of one galaxy.

    Parameters
    ----------
    seed : int
        Data-set seed.
    index : int
        Galaxy number within the data set (0-based).

    Returns
    -------
    params : dict
        Catalog values (``z``, ``lgm_tot_p50``, ``oh_p50``, ``modelMag_*``, ...) and latent
        truths. Fluxes of the rendered components are ``flux_bulge``, ``flux_disk``,
        ``flux_knots``: arrays of 5 (u g r i z), nanomaggies.
    rng : numpy.random.Generator
        The galaxy's generator, advanced past the draws made here; the renderer keeps
        using it so the whole galaxy (image included) depends only on ``(seed, index)``.
    """
    # The order of the random draws *is* the data set: a seed must give byte-identical galaxies
    # on every run and machine, and a change of order or constants is a new data set, to be
    # announced in the CHANGELOG. Each step below draws from ``rng`` in turn, in this order (the
    # keys of ``params`` keep their order too: it is the catalogue's column order). Do not reorder.
    rng = galaxy_rng(seed, index)
    galaxy = _draw_flux_limited_galaxy(rng)
    z = _draw_redshift(rng, galaxy["abs_mag_r"])
    params: dict = {"z": z}
    params.update(_draw_photometry(rng, z, galaxy))
    params.update(_draw_metallicity_and_truths(rng, seed, index, z, galaxy))
    return params, rng


def _draw_log_mass(rng: np.random.Generator) -> float:
    """log M* from the skew-normal LOGM_SKEWNORM, redrawn until inside LOGM_MIN-LOGM_MAX."""
    logm = _skewnorm(rng, *LOGM_SKEWNORM)
    while not LOGM_MIN <= logm <= LOGM_MAX:
        logm = _skewnorm(rng, *LOGM_SKEWNORM)
    return logm


def _draw_star_formation(rng: np.random.Generator, logm: float) -> tuple[float, float]:
    """(offset from the main sequence, log sSFR), dex: the main sequence plus a tail of
    low-sSFR (composite) galaxies at high mass."""
    ms = MS0 + MS_SLOPE * (logm - 10.0)
    d_ssfr = MS_SCATTER * rng.standard_normal()
    if rng.random() < 0.15 * _sigmoid((logm - 10.5) / 0.3):
        d_ssfr -= 0.6
    return d_ssfr, ms + d_ssfr


def _draw_structure(rng: np.random.Generator, logm: float, d_ssfr: float) -> dict:
    """B/T (r light), disk and bulge sizes (kpc; ``d_logr`` the disk's offset from the
    size-mass relation, dex), cos(inclination), position angles (deg) and the bulge's axis ratio."""
    bt = 0.08 + 0.45 * _sigmoid((logm - 10.4) / 0.35) - 0.15 * d_ssfr + 0.08 * rng.standard_normal()
    bt = float(np.clip(bt, 0.0, 0.85))
    d_logr = DISK_SIZE[2] * rng.standard_normal()
    r_disk_kpc = DISK_SIZE[0] * 10 ** (DISK_SIZE[1] * (logm - 10.3) + d_logr)
    r_bulge_kpc = BULGE_SIZE[0] * 10 ** (BULGE_SIZE[1] * (logm - 10.3) + BULGE_SIZE[2] * rng.standard_normal())
    r_bulge_kpc = min(r_bulge_kpc, 0.6 * r_disk_kpc)
    cos_i = rng.uniform(0.02, 1.0)
    pa = rng.uniform(0.0, 180.0)
    bulge_q = rng.uniform(0.65, 1.0)
    bulge_pa = pa + np.degrees(0.2 * rng.standard_normal())
    return {
        "bt": bt,
        "d_logr": d_logr,
        "r_disk_kpc": r_disk_kpc,
        "r_bulge_kpc": r_bulge_kpc,
        "cos_i": cos_i,
        "pa": pa,
        "bulge_q": bulge_q,
        "bulge_pa": bulge_pa,
    }


def _draw_colours(rng: np.random.Generator, logm: float, log_ssfr: float, cos_i: float) -> dict:
    """Rest-frame colours (u-g, g-r, r-i, i-z) of disk, knots and bulge, and the dust: the disk
    colour follows sSFR, knots are bluer still, dust (``av``, mag; ``dust`` per band u g r i z,
    ``dust_col`` the colour excesses) reddens inclined disks, more so in massive galaxies."""
    gr_d = float(np.clip(0.62 - 0.28 * (log_ssfr + 10.5), 0.15, 0.85)) + 0.03 * rng.standard_normal()
    disk_col = np.array([1.0 + 1.3 * (gr_d - 0.3), gr_d, 0.05 + 0.45 * gr_d, 0.05 + 0.3 * gr_d])
    knot_col = disk_col - np.array([0.3, 0.22, 0.1, 0.05])
    bulge_col = np.array(BULGE_COLOURS) + 0.03 * rng.standard_normal(4)
    av_scale = float(np.clip(0.15 + 0.15 * (logm - 9.5), 0.1, 0.45))
    av = av_scale * math.log(1.0 / max(cos_i, 0.1))
    dust = av * np.array(DUST_PER_AV)
    dust_col = -np.diff(dust)  # reddening of u-g, g-r, r-i, i-z
    knot_frac = float(np.clip(0.08 + 0.15 * (log_ssfr + 10.5), 0.0, 0.35))
    return {
        "disk_col": disk_col,
        "knot_col": knot_col,
        "bulge_col": bulge_col,
        "av": av,
        "dust": dust,
        "dust_col": dust_col,
        "knot_frac": knot_frac,
    }


def _draw_flux_limited_galaxy(rng: np.random.Generator) -> dict:
    """Mass, star formation, structure, colours and absolute r magnitude of a galaxy of a
    flux-limited sample, like the SDSS spectroscopic one: a galaxy too faint to pass r < R_LIMIT
    even at the nearest redshift Z_MIN is redrawn (from its mass on, at most MAX_REDRAWS times),
    so the mass distribution is that of the galaxies in the catalogue."""
    for _ in range(MAX_REDRAWS):
        logm = _draw_log_mass(rng)
        d_ssfr, log_ssfr = _draw_star_formation(rng, logm)
        galaxy: dict = {"logm": logm, "d_ssfr": d_ssfr, "log_ssfr": log_ssfr}
        galaxy.update(_draw_structure(rng, logm, d_ssfr))
        galaxy.update(_draw_colours(rng, logm, log_ssfr, galaxy["cos_i"]))
        galaxy["abs_mag_r"] = _absolute_r(
            logm, galaxy["bt"], galaxy["bulge_col"], galaxy["disk_col"], galaxy["dust_col"], galaxy["dust"][2]
        )
        if galaxy["abs_mag_r"] + _distance_modulus(Z_MIN) + KCORR_R * Z_MIN <= R_LIMIT:
            break
    return galaxy


def _draw_redshift(rng: np.random.Generator, abs_mag_r: float) -> float:
    """Redshift, volume-weighted (dV/dz) between Z_MIN and where the galaxy's r magnitude
    reaches the flux limit (at least Z_MIN + 0.005)."""
    zg, dl, da, dvdz = _cosmology_grid()
    sel = (zg >= Z_MIN) & (zg <= Z_MAX)
    zs = zg[sel]
    app_r = abs_mag_r + 5 * np.log10(dl[sel] * 1e5) + KCORR_R * zs
    ok = app_r <= R_LIMIT
    z_hi = zs[ok][-1] if ok.any() else Z_MIN + 0.005
    z_hi = max(z_hi, Z_MIN + 0.005)
    grid = (zs >= Z_MIN) & (zs <= z_hi)
    dens = dvdz[sel][grid]
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]))])  # starts at 0: no pile-up at Z_MIN
    return float(np.interp(rng.uniform(0, cdf[-1]), cdf, zs[grid]))


def _draw_photometry(rng: np.random.Generator, z: float, galaxy: dict) -> dict:
    """Observed-frame fluxes of bulge, disk and knots (``flux_*``: u g r i z, nanomaggies) and the
    noisy catalog magnitudes of their total (``modelMag_*``, ``modelMagErr_*``, AB)."""
    bt, knot_frac, dust_col = galaxy["bt"], galaxy["knot_frac"], galaxy["dust_col"]
    kcol = z * np.array(KCORR_COLOURS)
    r_tot = galaxy["abs_mag_r"] + 5 * math.log10(float(luminosity_distance(z)) * 1e5) + KCORR_R * z
    f_r = _flux_nmgy(r_tot)
    comp = {
        "bulge": (bt * f_r, galaxy["bulge_col"] + kcol),
        "disk": ((1 - bt) * (1 - knot_frac) * f_r, galaxy["disk_col"] + dust_col + kcol),
        "knots": ((1 - bt) * knot_frac * f_r, galaxy["knot_col"] + dust_col + kcol),
    }
    p: dict = {}
    total = np.zeros(5)
    for name, (fr, col) in comp.items():
        flux = _flux_nmgy(_mags_from_colours(_mag(max(fr, 1e-12)), col)) if fr > 0 else np.zeros(5)
        p[f"flux_{name}"] = flux
        total += flux
    err = np.array(FLUX_ERR_NMGY)
    mag_err = np.sqrt(0.01**2 + (1.0857 * err / total) ** 2)
    for b, m, e in zip(BANDS, _mag(total), mag_err, strict=True):
        p[f"modelMag_{b}"] = float(m + e * rng.standard_normal())
        p[f"modelMagErr_{b}"] = float(e)
    return p


def _draw_metallicity_and_truths(rng: np.random.Generator, seed: int, index: int, z: float, galaxy: dict) -> dict:
    """The metallicity (``oh_p50`` and its parts), the sky position, the spectroscopic quality
    columns and every latent truth of the galaxy, as catalog values."""
    logm, d_ssfr, cos_i, d_logr = galaxy["logm"], galaxy["d_ssfr"], galaxy["cos_i"], galaxy["d_logr"]
    oh_mzr = float(population_mzr(logm))
    oh_obs = float(observable_metallicity(logm, d_ssfr, cos_i, d_logr))
    unobs = float(sigma_unobs(logm)) * rng.standard_normal()
    noise = SIGMA_MEAS * rng.standard_normal()
    kpc_per_arcsec = float(angular_scale_kpc_per_arcsec(z))
    # Spectroscopic quality columns the SDSS catalog cuts use (galmet.sdss.catalog), drawn from a
    # separate stream so they do not change anything else.
    aux = np.random.default_rng([int(seed), int(index), 0x5D55])
    return dict(
        zErr=float(10 ** aux.uniform(-5.3, -4.3)),
        rChi2=float(1.0 + abs(0.15 * aux.standard_normal())),
        ra=float(rng.uniform(120.0, 250.0)),
        dec=float(np.degrees(np.arcsin(rng.uniform(0.0, math.sin(math.radians(60.0)))))),
        lgm_tot_p50=float(logm),
        oh_p50=float(oh_obs + unobs + noise),
        oh_mzr=oh_mzr,
        oh_observable=float(oh_obs),
        oh_unobservable=float(unobs),
        oh_meas_noise=float(noise),
        oh_unexplained=float(unobs + noise),
        log_ssfr=float(galaxy["log_ssfr"]),
        delta_ssfr=float(d_ssfr),
        bt_r=galaxy["bt"],
        inclination_deg=float(np.degrees(np.arccos(cos_i))),
        cos_incl=float(cos_i),
        pa_deg=float(galaxy["pa"]),
        bulge_q=float(galaxy["bulge_q"]),
        bulge_pa_deg=float(galaxy["bulge_pa"] % 180.0),
        r_disk_kpc=float(galaxy["r_disk_kpc"]),
        r_bulge_kpc=float(galaxy["r_bulge_kpc"]),
        delta_log_rdisk=float(d_logr),
        r_disk_arcsec=float(galaxy["r_disk_kpc"] / kpc_per_arcsec),
        r_bulge_arcsec=float(galaxy["r_bulge_kpc"] / kpc_per_arcsec),
        knot_frac=galaxy["knot_frac"],
        dust_av=float(galaxy["av"]),
        disk_gr_rest=float(galaxy["disk_col"][1]),
        abs_mag_r=float(galaxy["abs_mag_r"]),
    )


def _absolute_r(logm, bt, bulge_col, disk_col, dust_col, dust_r) -> float:
    """Absolute r magnitude (AB) from the mass and the Bell et al. (2003) M/L of the g-r colour."""
    gr_b, gr_d = bulge_col[1], disk_col[1] + dust_col[1]
    gr = -2.5 * math.log10(bt * 10 ** (-0.4 * gr_b) + (1 - bt) * 10 ** (-0.4 * gr_d))
    log_ml = -0.306 + 1.097 * gr - 0.093 + LOG_ML_OFFSET  # Bell et al. (2003) diet Salpeter -> Kroupa IMF, like MPA-JHU
    return MSUN_R - 2.5 * (logm - log_ml) + (1 - bt) * dust_r


def observable_metallicity(logm, delta_ssfr, cos_incl, delta_log_rdisk):
    """The image-predictable part of Z (dex) from the latent truths; arrays broadcast."""
    return (
        population_mzr(logm)
        + alpha_ssfr(logm) * np.asarray(delta_ssfr)
        + ALPHA_INCL * ((1 - np.asarray(cos_incl)) - INCL_PIVOT)
        + ALPHA_SIZE * np.asarray(delta_log_rdisk)
    )


def physics_metadata() -> dict:
    """The constants of the population, for the data set's config and catalog metadata."""
    return {
        "cosmology": "FlatLambdaCDM(H0=70, Om0=0.3)",
        "mzr": "Tremonti et al. (2004): -1.492 + 1.847 x - 0.08026 x^2, x = log M* - mzr_mass_offset",
        "mzr_mass_offset": MZR_MASS_OFFSET,
        "logm_skewnorm": list(LOGM_SKEWNORM),
        "alpha_ssfr": ALPHA_SSFR,
        "alpha_ssfr_fade_per_dex_above_10": ALPHA_SSFR_FADE,
        "alpha_incl": ALPHA_INCL,
        "incl_pivot": INCL_PIVOT,
        "alpha_size": ALPHA_SIZE,
        "sigma_unobs": {
            "high_mass": SIGMA_UNOBS_HIGH,
            "low_mass": SIGMA_UNOBS_LOW,
            "pivot": SIGMA_UNOBS_PIVOT,
            "width": SIGMA_UNOBS_WIDTH,
        },
        "sigma_meas": SIGMA_MEAS,
        "noise_floor_rmse": round(NOISE_FLOOR_RMSE, 6),
        "log_ml_offset": LOG_ML_OFFSET,
        "disk_size_kpc_slope_scatter": list(DISK_SIZE),
        "r_limit": R_LIMIT,
        "logm_range": [LOGM_MIN, LOGM_MAX],
        "z_range": [Z_MIN, Z_MAX],
    }
