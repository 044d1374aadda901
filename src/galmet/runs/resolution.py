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
    RESOLUTION_TABLE,
    resolution_run,
)
from galmet.nn.bundle import load_model
from galmet.nn.net import build_model
from galmet.predict.dataset import predict_dataset
from galmet.science.metrics import summarize
from galmet.science.plots.resolution import plot_resolution
from galmet.science.plots.style import require_matplotlib, save_figure
from galmet.science.resolution import COLUMNS, MIN_INPUT, baselines, degrade, input_size, parse_sizes
from galmet.training.config import RUNTIME_FIELDS, TrainConfig, as_train_config
from galmet.training.loop import train

log = logging.getLogger(__name__)


def _load_table(path: Path) -> pd.DataFrame:
    """The study's table so far: empty when galmet did not write ``path`` (a file the user let
    ``overwrite`` replace is never read as a study)."""
    if not owned_by_galmet(path):
        return pd.DataFrame(columns=COLUMNS)
    tab = read_table(path)
    missing = [c for c in COLUMNS if c not in tab.columns]
    if missing:
        raise DataError(
            f"{path}: not a resolution-study table (no column {missing[0]!r}); use a new out_dir", param="out_dir"
        )
    return tab[np.isfinite(pd.to_numeric(tab["rmse"], errors="coerce"))].reset_index(drop=True)


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
    """
    if min_input < 1:
        raise ConfigError(f"min_input must be >= 1 pixel, got {min_input}", param="min_input")
    config = (as_train_config(config) or TrainConfig()).resolved()
    files = [
        (RESOLUTION_TABLE, "csv", "resolution-study table"),
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
    return _run_sizes(out, dataset, sizes, config, target, min_input, bands, tta, formats)


def _run_sizes(out: Path, dataset, sizes, config, target: str, min_input: int, bands: str, tta: bool, formats):
    """Train and score each size not yet in the study's table (the folder is locked)."""
    meta = _study_settings(out, dataset, sizes, config, target, min_input, bands)
    table_path = out / RESOLUTION_TABLE
    table = _load_table(table_path)
    done = set(int(s) for s in table["size"])
    images = dataset.images()
    for size in sizes:
        if size in done:
            log.info("resolution study: size %d already done, skipping", size)
            continue
        row = _one_size(out, dataset, images, size, config, target, min_input, tta)
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True) if len(table) else pd.DataFrame([row])
        table = table.sort_values("size", ascending=False).reset_index(drop=True)[COLUMNS]
        write_table(table, table_path)

    save_figure(
        plot_resolution(
            table,
            meta.get("rf_rmse"),
            meta.get("constant_rmse"),
            rf_label=f"random forest ({meta.get('bands', bands)})",
            oracle_rmse=meta.get("oracle_rmse"),
            noise_floor=meta.get("noise_floor"),
        ),
        out / FIGURE_NAMES[4],
        formats,
    )
    return table


def _study_settings(out: Path, dataset, sizes, config, target: str, min_input: int, bands: str) -> dict:
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
    write_json(meta_path, meta)
    return meta


def _one_size(out: Path, dataset, images, size: int, config, target: str, min_input: int, tta: bool) -> dict:
    """Train (or resume, or reuse) the model of one size, predict its test split; its table row."""
    run_dir = out / resolution_run(size)
    s_in = input_size(size, min_input)
    log.info("resolution study: size %dx%d (network input %dx%d)", size, size, s_in, s_in)
    ds = dataset.with_images(degrade(images, size, min_input))
    resume = (run_dir / CHECKPOINT).is_file() and not (run_dir / BUNDLE).is_file()
    t0 = time.perf_counter()
    if (run_dir / BUNDLE).is_file():
        bundle = run_dir / BUNDLE
        hist = pd.read_csv(run_dir / HISTORY) if (run_dir / HISTORY).is_file() else pd.DataFrame()
    else:
        res = train(ds, run_dir, dataclasses.replace(config, size=None), resume=resume)
        bundle, hist = res.bundle_path, res.history
    train_seconds = float(hist["time_s"].sum()) if "time_s" in hist.columns else time.perf_counter() - t0
    model = load_model(bundle, device=config.device)
    pred = predict_dataset(model, ds.subset("test"), tta=tta, device=config.device)
    write_table(pred, run_dir / PREDICTIONS)
    s = summarize(pred, target, "test", n_boot=0)
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
        "input_size": s_in,
        "rmse": s["rmse"],
        "nmad": s["nmad"],
        "bias": s["bias"],
        "outlier_fraction": s["outlier_fraction"],
        "n": s["n"],
        "train_seconds": train_seconds,
        "valid_rmse": float(hist[vcol].iloc[-1]) if vcol in hist.columns and len(hist) else np.nan,
        "run_dir": str(run_dir.relative_to(out)),
    }
