"""``galmet resolution-study``: train and score a CNN at each image size (paper, Figure 4), resumably."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.data.dataset import as_dataset
from galmet.errors import ConfigError, DataError, one_line
from galmet.io.jsonfile import write_json
from galmet.io.locks import holds_folder_lock
from galmet.io.ownership import owned_by_galmet
from galmet.io.safety import check_output_dir, inputs_of
from galmet.io.tables import read_table, write_table
from galmet.layout import (
    BUNDLE,
    CHECKPOINT,
    FIGURE_NAMES,
    HISTORY,
    PREDICTIONS,
    RESOLUTION_META,
    RESOLUTION_SEEDS,
    RESOLUTION_TABLE,
    resolution_run,
)
from galmet.nn.bundle import load_model
from galmet.nn.net import build_model
from galmet.predict.dataset import predict_dataset
from galmet.science.metrics import summarize
from galmet.science.plots.resolution import plot_study
from galmet.science.plots.style import require_matplotlib, save_figure
from galmet.science.resolution import (
    COLUMNS,
    MIN_INPUT,
    SEED_COLUMNS,
    baselines,
    degrade,
    input_size,
    parse_sizes,
    summarize_seeds,
)
from galmet.training.config import RUNTIME_FIELDS, TrainConfig, as_train_config
from galmet.training.loop import train

log = logging.getLogger(__name__)


#: Test-set bootstrap resamples behind each run's ``rmse_sample_se`` and ``nmad_sample_se``.
SAMPLE_BOOT = 500


def _load_table(path: Path, columns: list[str] = COLUMNS) -> pd.DataFrame:
    """The study's table so far: empty when galmet did not write ``path`` (a file the user let
    ``overwrite`` replace is never read as a study)."""
    if not owned_by_galmet(path):
        return pd.DataFrame(columns=columns)
    tab = read_table(path)
    missing = [c for c in columns if c not in tab.columns]
    if missing:
        raise DataError(
            f"{path}: not a resolution-study table (no column {missing[0]!r}); use a new out_dir", param="out_dir"
        )
    return tab[np.isfinite(pd.to_numeric(tab["rmse"], errors="coerce"))].reset_index(drop=True)


def _load_runs(out: Path, seed: int) -> pd.DataFrame:
    """The study's finished runs (:data:`SEED_COLUMNS`): ``resolution_seeds.csv``, or for a study
    made before seeds were recorded, its ``resolution.csv`` rows as the runs of seed ``seed``."""
    if owned_by_galmet(out / RESOLUTION_SEEDS):
        return _load_table(out / RESOLUTION_SEEDS, SEED_COLUMNS)
    old = _load_table(out / RESOLUTION_TABLE)
    for col in ("rmse_sample_se", "nmad_sample_se"):
        if col not in old.columns:
            old[col] = np.nan
    return old.assign(seed=seed)[SEED_COLUMNS]


def check_seeds(seeds) -> int:
    """``seeds`` as an int >= 1 (training runs per size); ConfigError otherwise."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1 (training runs per size), got {seeds!r}", param="seeds")
    return int(seeds)


@holds_folder_lock("out_dir", "'galmet resolution-study'")  # one study at a time in a folder
def run_study(
    dataset,
    out_dir: str | os.PathLike,
    sizes: Sequence[int] | str = (128, 64, 32, 16, 8, 4, 2, 1),
    config=None,
    min_input: int = MIN_INPUT,
    bands: str = "gri",
    tta: bool = True,
    formats: Sequence[str] = ("png", "pdf"),
    overwrite: bool = False,
    seeds: int = 1,
) -> pd.DataFrame:
    """Train and test the CNN at each image size; return the results table (largest size first).

    Parameters
    ----------
    dataset : path-like or galmet.data.dataset.Dataset
        With a split column including ``test``; ``modelMag_<band>`` columns enable the
        random-forest line.
    out_dir : path-like
        Study folder (see the module docstring); reused to resume.
    sizes : sequence of int or "128,64,..."
        Re-binned image sides in pixels; each must divide the image size.
    config : galmet.training.config.TrainConfig, optional
        Training recipe shared by every size (default: the paper's).
    min_input : int
        Smallest network input side. 1 (default): the network sees s x s inputs, as in the
        paper; larger: re-binned images are pixel-replicated up to it (galmet's variant, a
        deviation from the paper; see :mod:`galmet.science.resolution`).
    bands : str
        Magnitudes of the random-forest baseline.
    tta : bool
        Test-time augmentation when predicting the test split.
    overwrite : bool
        Replace the study's table, settings and figure where galmet did not write them (they are
        then not read as an earlier study); without it such files are refused.
    seeds : int
        Training runs per size, with seeds ``config.seed``, ``config.seed + 1``, ...: each in
        ``resolution_seeds.csv``, their mean and spread in the returned table
        (:func:`galmet.science.resolution.summarize_seeds`). A rerun with more seeds adds runs.
    """
    seeds = check_seeds(seeds)
    if min_input < 1:
        raise ConfigError(f"min_input must be >= 1 pixel, got {min_input}", param="min_input")
    config = (as_train_config(config) or TrainConfig()).resolved()
    files = [
        (RESOLUTION_TABLE, "csv", "resolution-study table"),
        (RESOLUTION_SEEDS, "csv", "resolution-study table per seed"),
        (RESOLUTION_META, "json", "resolution-study settings"),
        *[(f"{FIGURE_NAMES[4]}.{fmt}", fmt, "figure") for fmt in formats],
    ]
    check_output_dir(out_dir, "out_dir", files, inputs_of(dataset, "the dataset"), overwrite=overwrite)
    require_matplotlib()
    target = config.targets[0]
    dataset = as_dataset(
        dataset, targets=config.targets, valid_fraction=config.valid_fraction, split_seed=config.split_seed
    )
    sizes = parse_sizes(sizes, dataset.image_size)
    if not len(dataset.split_indices("test")):
        raise DataError(f"{dataset.root}: no test rows to score the resolution study on")
    build_model(config.arch, 1, config.weights)  # the weights resolved (cache, download, file) before any write
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _run_sizes(out, dataset, sizes, config, target, min_input, bands, tta, formats, seeds)


def _run_sizes(
    out: Path, dataset, sizes, config, target: str, min_input: int, bands: str, tta: bool, formats, seeds: int = 1
):
    """Train and score each (size, seed) not yet in the study's tables (the folder is locked)."""
    meta = _study_settings(out, dataset, sizes, config, target, min_input, bands, seeds)
    runs = _load_runs(out, config.seed)
    done = {(int(a), int(b)) for a, b in zip(runs["size"], runs["seed"], strict=True)}
    images = dataset.images()
    table = summarize_seeds(runs)
    for size in sizes:
        for rep in range(seeds):
            if (size, config.seed + rep) in done:
                log.info("resolution study: size %d seed %d already done, skipping", size, config.seed + rep)
                continue
            row = _one_size(out, dataset, images, size, config, target, min_input, tta, rep)
            runs = pd.concat([runs, pd.DataFrame([row])], ignore_index=True) if len(runs) else pd.DataFrame([row])
            runs = runs.sort_values(["size", "seed"], ascending=[False, True]).reset_index(drop=True)[SEED_COLUMNS]
            write_table(runs, out / RESOLUTION_SEEDS)
            table = summarize_seeds(runs)
            write_table(table, out / RESOLUTION_TABLE)
    save_figure(plot_study(table, meta), out / FIGURE_NAMES[4], formats)
    return table


def _study_settings(out: Path, dataset, sizes, config, target: str, min_input: int, bands: str, seeds: int = 1) -> dict:
    """The study's ``resolution.json``: written with the baselines on the first run; a later run
    must have the same settings (ConfigError naming what changed) and adds its sizes."""
    meta_path = out / RESOLUTION_META
    settings = {
        "config": config.to_dict(),
        "min_input": min_input,
        "target": target,
        "dataset": str(Path(dataset.root).resolve()),
        "n": len(dataset),
    }
    if owned_by_galmet(meta_path):  # (a user's file that overwrite replaces is no earlier study)
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{meta_path}: unreadable study settings ({one_line(exc)}); use a new out_dir", param="out_dir"
            ) from None
        if not isinstance(old, dict) or not isinstance(old.get("config", {}), dict):
            raise DataError(
                f"{meta_path}: not the settings of a galmet resolution study; use a new out_dir", param="out_dir"
            )
        changed = [k for k in ("min_input", "target", "n") if old.get(k) != settings[k]]
        changed += [
            f"config.{k}"
            for k in config.to_dict()
            if k not in RUNTIME_FIELDS and old.get("config", {}).get(k) != config.to_dict()[k]
        ]
        if changed:
            raise ConfigError(
                f"{out}: holds a study with different settings ({', '.join(changed)}); use a new out_dir",
                param="out_dir",
            )
        meta = old
    else:
        meta = {**settings, **baselines(dataset, target, bands)}
    meta["sizes"] = sorted(set(meta.get("sizes", [])) | set(sizes), reverse=True)
    meta["seeds"] = max(int(meta.get("seeds", 1)), seeds)
    write_json(meta_path, meta)
    return meta


def _one_size(
    out: Path, dataset, images, size: int, config, target: str, min_input: int, tta: bool, rep: int = 0
) -> dict:
    """Train (or resume, or reuse) the model of one size and seed (``config.seed + rep``), predict
    its test split; its row of ``resolution_seeds.csv``."""
    run_dir = out / resolution_run(size, rep)
    s_in = input_size(size, min_input)
    seed = config.seed + rep
    log.info("resolution study: size %dx%d (network input %dx%d), seed %d", size, size, s_in, s_in, seed)
    ds = dataset.with_images(degrade(images, size, min_input))
    resume = (run_dir / CHECKPOINT).is_file() and not (run_dir / BUNDLE).is_file()
    t0 = time.perf_counter()
    if (run_dir / BUNDLE).is_file():
        bundle = run_dir / BUNDLE
        hist = pd.read_csv(run_dir / HISTORY) if (run_dir / HISTORY).is_file() else pd.DataFrame()
    else:
        res = train(ds, run_dir, dataclasses.replace(config, size=None, seed=seed), resume=resume)
        bundle, hist = res.bundle_path, res.history
    train_seconds = float(hist["time_s"].sum()) if "time_s" in hist.columns else time.perf_counter() - t0
    model = load_model(bundle, device=config.device)
    pred = predict_dataset(model, ds.subset("test"), tta=tta, device=config.device)
    write_table(pred, run_dir / PREDICTIONS)
    s = summarize(pred, target, "test", n_boot=SAMPLE_BOOT, seed=seed)
    vcol = f"valid_rmse_{target}"
    log.info(
        "resolution study: size %d: test RMSE %.4f, NMAD %.4f (N=%d), trained in %.0f s",
        size,
        s["rmse"],
        s["nmad"],
        s["n"],
        train_seconds,
    )
    return {
        "size": size,
        "seed": seed,
        "input_size": s_in,
        "rmse": s["rmse"],
        "nmad": s["nmad"],
        "bias": s["bias"],
        "outlier_fraction": s["outlier_fraction"],
        "n": s["n"],
        "rmse_sample_se": s["intervals"]["rmse"]["se"],
        "nmad_sample_se": s["intervals"]["nmad"]["se"],
        "train_seconds": train_seconds,
        "valid_rmse": float(hist[vcol].iloc[-1]) if vcol in hist.columns and len(hist) else np.nan,
        "run_dir": str(run_dir.relative_to(out)),
    }
