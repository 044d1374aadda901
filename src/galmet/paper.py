"""Numbers and relations from Wu & Boada (2019, MNRAS 484, 4683) and Tremonti et al. (2004).

Kept in one place so the synthetic generator, analyses and reports quote the same values.
"""

from __future__ import annotations

import numpy as np

#: Arcsec per pixel of the paper's SDSS cutouts (128 x 128 pixels: a 37.9" x 37.9" field).
PIXEL_SCALE_ARCSEC = 0.296
#: Pixels per side of the paper's SDSS cutouts.
IMAGE_SIZE = 128
#: Field of view of the paper's cutouts, arcsec per side (IMAGE_SIZE * PIXEL_SCALE_ARCSEC).
FIELD_OF_VIEW_ARCSEC = IMAGE_SIZE * PIXEL_SCALE_ARCSEC
#: The SDSS data release the paper's cutouts and catalogue come from.
DATA_RELEASE = "DR14"
#: The SDSS bands of the paper's colour cutouts, bluest first (i -> R, r -> G, g -> B).
BANDS = "gri"
#: Arcsec per pixel of the SDSS camera's frames (the authors' scale-by-size mode divides by it).
SDSS_NATIVE_PIXEL_ARCSEC = 0.396
#: Fraction of the catalogue held out as the test set (the paper's 25,000 of 142,182).
TEST_FRACTION = 0.176
#: Fraction of the rest kept for validation (the paper's 19,192 of 95,903 images).
VALID_FRACTION = 0.2
#: Largest random zoom of the paper's training augmentation (fastai 0.7 ``max_zoom``).
MAX_ZOOM = 1.1

#: Test-set results of the paper's CNN on oh_p50 (dex).
PAPER_METRICS = {"rmse": 0.085, "nmad": 0.067, "bias": -0.006}
#: Random forest on gri magnitudes (paper, Fig 4), RMSE in dex.
PAPER_RF_GRI_RMSE = 0.130
#: CNN trained on stellar mass lgm_tot_p50 (paper, Fig 5), dex.
PAPER_MASS_METRICS = {"rmse": 0.22, "nmad": 0.20}
#: Scatter of Z_MZR (from predicted mass through the Tremonti MZR) against Z_true, dex.
PAPER_MZR_SCATTER = 0.12
#: Tremonti et al. (2004) +-1 sigma scatter of the empirical MZR, dex (about), measured on their
#: DR2 sample: the paper quotes it, but it is not a measurement on the paper's data.
TREMONTI_SIGMA = 0.10
#: Paper's data set sizes.
PAPER_SIZES = {
    "catalog": 142_182,
    "test": 25_000,
    "images": 116_429,
    "train": 76_711,
    "valid": 19_192,
    "test_images": 20_466,
}


def tremonti_mzr(log_mass):
    """Tremonti et al. (2004) median mass-metallicity relation.

    Parameters
    ----------
    log_mass : float or array
        log10 stellar mass in solar masses (valid for about 8.5-11.5).

    Returns
    -------
    float or ndarray
        12 + log(O/H), dex: -1.492 + 1.847 x - 0.08026 x^2.
    """
    x = np.asarray(log_mass, dtype=float)
    return -1.492 + 1.847 * x - 0.08026 * x**2


#: Fractions of the test set with 12 + log(O/H) > 9.1: true vs predicted (paper, section 4.2).
PAPER_HIGH_Z_FRACTIONS = {"frac_true_above_9.1": 0.126, "frac_pred_above_9.1": 0.057}
#: Image sizes (pixels) of the paper's resolution study (Fig 4).
PAPER_RESOLUTION_SIZES = (128, 64, 32, 16, 8, 4, 2, 1)
#: Smallest image size (pixels) at which the paper's CNN beats the gri random forest (Fig 4).
PAPER_CNN_BEATS_RF_FROM = 4
#: Width of the stellar-mass bins of the paper's MZR figure (Fig 6), dex.
PAPER_MZR_BIN_DEX = 0.2
#: The paper's best case for an image-based metallicity (Fig 4's horizontal line), dex: about the
#: scatter the label's own measurement leaves.
PAPER_BEST_CASE_DEX = 0.03
#: Bins of Z_true in the paper's Figure 3: 0.1 dex from 8.2 to 9.2 (lower edge, upper edge, width).
PAPER_FIG3_BINS = (8.2, 9.2, 0.1)
