"""Every artefact name galmet reads or writes, in one place.

Stages are joined by files on disk (see docs/architecture.md); each name below is used by the
stage that writes the file and by every stage that reads it.
"""

from __future__ import annotations

# --- dataset directory ---------------------------------------------------------------------
#: The catalogue galmet writes (one row per galaxy).
CATALOG_PARQUET = "catalog.parquet"
#: Catalogue file names a dataset directory may hold, in order of preference (the real SDSS
#: sample ships ``catalog.csv``).
CATALOG_NAMES = (CATALOG_PARQUET, "catalog.csv")
#: The settings a catalogue was made with (``galmet catalog``): cuts, server, SQL, split.
CATALOG_JSON = "catalog.json"
#: Finished chunks of an unfinished catalogue query, removed once the catalogue is written.
CATALOG_CHUNKS = ".catalog_chunks"
#: Folder of the cutouts, ``images/<objID>.jpg``.
IMAGES_DIR = "images"
#: Decode cache: uint8 (N, H, W, 3), row order = catalogue order.
IMAGE_CACHE = "images.npy"
#: Per-objID download status written by ``galmet download``.
MANIFEST = "manifest.parquet"
#: Advisory lock held by a running ``galmet download``.
DOWNLOAD_LOCK = ".download.lock"
#: Settings of a synthetic dataset (``galmet synth``).
SYNTH_CONFIG = "synth_config.yaml"

# --- training run directory ----------------------------------------------------------------
#: The resolved training configuration.
CONFIG = "config.yaml"
#: One row per epoch.
HISTORY = "history.csv"
#: Resumable training state (model, optimizer, scheduler, RNG), rewritten every epoch.
CHECKPOINT = "checkpoint.pt"
#: The model bundle (a single model or an ensemble).
BUNDLE = "model.pt"

# --- cross-validation run directory (``galmet train --folds K``) ---------------------------
#: objID (or file) and fold of every train/valid row.
FOLDS = "folds.csv"
#: Out-of-fold predictions table.
OOF = "oof.parquet"
#: Cross-validation scores.
CV_SCORES = "cv.json"


def fold_dir(k: int) -> str:
    """Sub-directory of fold ``k`` (0-based) of a cross-validation run."""
    return f"fold{k}"


# --- analyses ------------------------------------------------------------------------------
#: A predictions table a run leaves behind (``galmet predict --out``), by preference.
PREDICTION_NAMES = ("predictions.parquet", "predictions.csv", "predictions.fits")
PREDICTIONS = PREDICTION_NAMES[0]
#: Metrics written by the demo (``galmet evaluate --json`` takes any name).
METRICS = "metrics.json"
#: ``galmet baseline`` outputs.
BASELINE_METRICS = "baseline_metrics.json"
CONSTANT_PREDICTIONS = "constant_predictions.parquet"


def rf_predictions(bands: str) -> str:
    """Random-forest predictions file for the magnitudes ``bands`` (e.g. ``gri``)."""
    return f"rf_{bands}_predictions.parquet"


#: ``galmet resolution-study`` outputs.
RESOLUTION_TABLE = "resolution.csv"
RESOLUTION_META = "resolution.json"


def resolution_run(size: int) -> str:
    """Training run folder of one size of the resolution study, relative to the study folder."""
    return f"runs/size_{size:03d}"


#: ``galmet mzr`` outputs.
MZR_METRICS = "mzr_metrics.json"
MZR_BINS = "mzr_bins.csv"
MZR_JOINED = "mzr_joined.parquet"
#: ``galmet lr-find`` outputs.
LR_FIND_TABLE = "lr_find.csv"
LR_FIND_PLOT = "lr_find.png"
#: The demo's mosaic of the synthetic galaxies.
MOSAIC = "mosaic.png"
#: The self-contained HTML report.
REPORT = "report.html"
#: ``galmet systematics`` outputs: binned bias and scatter per property, trends, the figure stem.
SYSTEMATICS_TABLE = "systematics.csv"
SYSTEMATICS_JSON = "systematics.json"
SYSTEMATICS_FIGURE = "systematics"
#: Figure of the calibrated uncertainties (``galmet figures``, when the predictions carry them).
UNCERTAINTY_FIGURE = "uncertainty_calibration"
#: ``galmet explain`` outputs: the control experiments (summary and per galaxy).
CONTROLS_JSON = "controls.json"
CONTROLS_TABLE = "controls.csv"


def attribution_stem(method: str) -> str:
    """File stem of ``galmet explain``'s grid figure and arrays for an attribution method."""
    return f"attribution_{method.replace('-', '_')}"


#: File stems of the paper's figures (``.png`` and ``.pdf`` are written).
FIGURE_NAMES = {
    1: "fig1_image_grid",
    2: "fig2_histograms",
    3: "fig3_pred_vs_true",
    4: "fig4_resolution",
    5: "fig5_mass",
    6: "fig6_mzr",
}

# --- file formats ---------------------------------------------------------------------------
#: The ``format`` entry of a model bundle (``model.pt``).
BUNDLE_FORMAT = "galmet-bundle"
#: The ``format`` entry of a training checkpoint (``checkpoint.pt``).
CHECKPOINT_FORMAT = "galmet-checkpoint"
