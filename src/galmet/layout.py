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
#: The former lock of ``galmet download`` (now :data:`RUN_LOCK`, as every command); still bookkeeping.
DOWNLOAD_LOCK = ".download.lock"
#: Settings of a synthetic dataset (``galmet synth``), written before the first image.
SYNTH_CONFIG = "synth_config.yaml"


def cache_key_file(cache: str) -> str:
    """Name of the JSON key beside a decode cache (``images.npy`` -> ``images.json``)."""
    return cache.rsplit(".", 1)[0] + ".json"


# --- prediction at sky positions (``galmet predict --positions``) ---------------------------
#: Default work folder of a positions run: ``<--out>`` plus this suffix, beside the output.
POSITIONS_WORK_SUFFIX = ".galmet-work"
#: In the work folder: the run's settings and fingerprint (a rerun resumes only the same run).
POSITIONS_RUN = "positions-run.json"
#: In the work folder: finished shards of predictions, ``shard-000000.parquet`` ...
POSITIONS_SHARDS = "shards"
#: In the work folder: the cutouts, a dataset directory (unless ``--keep-cutouts DIR``).
POSITIONS_CUTOUTS = "cutouts"
#: The former lock of a positions work folder (now :data:`RUN_LOCK`); still bookkeeping.
POSITIONS_LOCK = ".positions.lock"
#: Marks a cutouts folder written by a positions run (settings and fingerprint of its positions).
POSITIONS_CUTOUTS_MARKER = "galmet-positions.json"


def positions_shard(index: int) -> str:
    """File name of shard ``index`` (0-based) of a positions run."""
    return f"shard-{index:06d}.parquet"


# --- prediction over a partitioned catalogue (``galmet.predict_catalog``) -------------------
#: In a catalogue job's work folder: the settings, fingerprint and partitions of the job.
CATALOG_RUN = "catalog-run.json"
#: In a catalogue job's work folder: each unfinished partition's input rows, ``<key>.parquet``.
CATALOG_INPUTS = "inputs"
#: In a catalogue job's work folder: each partition's positions work folder, ``<key>/``.
CATALOG_PARTITIONS = "partitions"
#: In a catalogue job's work folder: each finished partition's table and sidecar, ``<key>.parquet``/``.json``.
CATALOG_DONE = "done"
#: In a catalogue job's work folder, beside a partition's work folder: its kept cutouts,
#: ``partitions/<key>-cutouts/``, while some of its rows failed to fetch (a rerun fetches only those).
RETRY_CUTOUTS_SUFFIX = "-cutouts"


def catalog_partition(index: int) -> str:
    """Key of partition ``index`` (0-based) of a catalogue split by rows."""
    return f"part-{index:06d}"


# --- training run directory ----------------------------------------------------------------
#: The resolved training configuration.
CONFIG = "config.yaml"
#: One row per epoch.
HISTORY = "history.csv"
#: Resumable training state (model, optimizer, scheduler, RNG), rewritten every epoch.
CHECKPOINT = "checkpoint.pt"
#: The model bundle (a single model or an ensemble).
BUNDLE = "model.pt"
#: Files of a training run, in the order a finished run replaces an old one (the bundle last:
#: a run directory with a model.pt is always a complete run).
RUN_FILES = (CONFIG, HISTORY, CHECKPOINT, BUNDLE)
#: The folder lock every galmet command holds on the folder it writes into (:mod:`galmet.io.locks`).
RUN_LOCK = ".galmet.lock"
#: Hidden folder in a run directory where ``--overwrite`` builds the new run; it replaces the
#: old one only when it has finished.
STAGING = ".galmet-staging"

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
#: The observable oracle of a synthetic set (``galmet baseline``).
ORACLE_PREDICTIONS = "oracle_predictions.parquet"


def rf_predictions(bands: str) -> str:
    """Random-forest predictions file for the magnitudes ``bands`` (e.g. ``gri``)."""
    return f"rf_{bands}_predictions.parquet"


#: ``galmet resolution-study`` outputs.
RESOLUTION_TABLE = "resolution.csv"
RESOLUTION_META = "resolution.json"
#: One row per (size, training seed) of a study run with ``--seeds``.
RESOLUTION_SEEDS = "resolution_seeds.csv"


def resolution_run(size: int, replicate: int = 0) -> str:
    """Training run folder of one size of the resolution study, relative to the study folder:
    ``runs/size_<s>`` for the first training seed (``replicate`` 0), ``runs/size_<s>_rep<k>`` for
    the k-th further one."""
    return f"runs/size_{size:03d}" + (f"_rep{replicate}" if replicate else "")


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
#: Marks a ``galmet demo`` output folder (its settings).
DEMO_MARKER = "galmet-demo.json"
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

# --- what each name holds ------------------------------------------------------------------
#: The kind of file galmet keeps under each artefact name: an output of another kind is never
#: written under one of these names (``galmet evaluate --json RUN/model.pt`` is refused).
ARTEFACT_KINDS = {
    CATALOG_PARQUET: "catalogue",
    "catalog.csv": "catalogue",
    CATALOG_JSON: "catalogue settings",
    IMAGE_CACHE: "decode cache",
    cache_key_file(IMAGE_CACHE): "decode cache key",
    MANIFEST: "download manifest",
    DOWNLOAD_LOCK: "lock file",
    RUN_LOCK: "lock file",
    SYNTH_CONFIG: "synthesis settings",
    CONFIG: "training config",
    HISTORY: "training history",
    CHECKPOINT: "training checkpoint",
    BUNDLE: "model bundle",
    FOLDS: "fold table",
    OOF: "out-of-fold predictions table",
    CV_SCORES: "cross-validation scores",
    METRICS: "metrics",
    BASELINE_METRICS: "baseline metrics",
    RESOLUTION_TABLE: "resolution-study table",
    RESOLUTION_META: "resolution-study settings",
    RESOLUTION_SEEDS: "resolution-study table per seed",
    MZR_METRICS: "MZR metrics",
    MZR_BINS: "MZR bins table",
    MZR_JOINED: "MZR joined table",
    LR_FIND_TABLE: "lr range test table",
    REPORT: "report",
    DEMO_MARKER: "demo settings",
    POSITIONS_RUN: "positions run settings",
    POSITIONS_LOCK: "lock file",
    POSITIONS_CUTOUTS_MARKER: "positions cutouts settings",
    **{name: "predictions table" for name in (*PREDICTION_NAMES, CONSTANT_PREDICTIONS)},
}


def artefact_kind(name: str) -> str | None:
    """The kind of galmet artefact a file name stands for (see :data:`ARTEFACT_KINDS`), or None."""
    if name in ARTEFACT_KINDS:
        return ARTEFACT_KINDS[name]
    if name.startswith("rf_") and name.endswith("_predictions.parquet"):
        return "predictions table"
    return None


# --- file formats ---------------------------------------------------------------------------
#: The ``format`` entry of a model bundle (``model.pt``).
BUNDLE_FORMAT = "galmet-bundle"
#: The ``format`` entry of a training checkpoint (``checkpoint.pt``).
CHECKPOINT_FORMAT = "galmet-checkpoint"
