"""The resolution study (paper, Figure 4): how the CNN's scatter depends on image resolution.

For each size s (pixels per side, dividing the dataset's image size), every image is
block-averaged to s x s (:func:`galmet.data.transforms.rebin`, as the paper re-binned its images),
a CNN is trained on the train split with the same recipe and seed, and scored on the test
split with test-time augmentation.

The network sees s x s inputs (the paper's experiment)
-----------------------------------------------------
The authors' notebook hands fastai the image size directly (64, 32, 16, 8, 4, 2, 1), so the
128-pixel cutouts are resampled to s x s and the ResNet runs on s x s inputs. galmet does the
same by default: the torchvision ResNet's strided convolutions and pooling shrink a small input
to 1 x 1 and stay there (a 3x3 or 7x7 kernel with its padding maps 1 x 1 to 1 x 1), and the
head's pooling is adaptive, so the network runs forward and backward on inputs down to 1 x 1.
What changes with s is how much of the kernels sees real pixels rather than zero padding:
that is part of the experiment.

``min_input`` > 1 is galmet's earlier variant, a deviation from the paper: each re-binned image
is pixel-replicated (nearest neighbour, an integer factor) back up to at least ``min_input``
pixels, so a 4x4 image reaches the network as 32x32 made of 8x8 constant blocks. Replication
adds no information, but it changes the geometry the network works with (every kernel sees
constant blocks, the strides act on replicated pixels), so its numbers answer a different
question: what the re-binned pixels contain for a network of full-size geometry.

Seeds. One training run per size mixes the effect of the resolution with the spread between
training seeds (at 4 pixels, seeds alone were seen to span 0.0075 dex). ``--seeds K`` trains K
runs per size (training seeds ``seed``, ``seed + 1``, ...), writes each to
``resolution_seeds.csv`` and summarises them per size (:func:`summarize_seeds`): the mean RMSE,
NMAD, bias, the standard deviation over the seeds (``rmse_std``, ``nmad_std``) and the standard
error of the mean (``rmse_se``, ``nmad_se``); ``rmse_sample_se`` is the test sample's own
(bootstrap) standard error, averaged over the seeds. Figure 4's error bars are the seeds'
standard deviation (the sample's standard error for one seed).

Outputs in the study folder::

    resolution.csv      one row per finished size: size, input_size, rmse, nmad, bias,
                        outlier_fraction, n (test galaxies), train_seconds, valid_rmse, run_dir,
                        seeds, rmse_std, rmse_se, nmad_std, nmad_se, rmse_sample_se,
                        nmad_sample_se (means over the seeds; std and se NaN for one seed)
    resolution_seeds.csv  one row per (size, seed): size, seed, the metrics of that run
    resolution.json     baselines (random forest, constant; for a synthetic set also its noise
                        floor and observable oracle), config, min_input, dataset, sizes asked
    runs/size_<s>/      each size's training run (config.yaml, history.csv, model.pt)
                        and its test predictions (predictions.parquet); further seeds in
                        runs/size_<s>_rep<k>/
    fig4_resolution.png / .pdf

The table is rewritten atomically after every size, so an interrupted study restarts with
the next unfinished size; an interrupted size resumes from its training checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet.data.transforms import rebin
from galmet.errors import ConfigError, DataError
from galmet.io.tables import read_table
from galmet.layout import RESOLUTION_META, RESOLUTION_TABLE
from galmet.science.baseline import (
    ForestConfig,
    constant_baseline,
    has_image_observables,
    noise_floor,
    observable_oracle,
    random_forest_baseline,
)
from galmet.science.metrics import summarize

log = logging.getLogger(__name__)

COLUMNS = [
    "size",
    "input_size",
    "rmse",
    "nmad",
    "bias",
    "outlier_fraction",
    "n",
    "train_seconds",
    "valid_rmse",
    "run_dir",
]
#: Columns of ``resolution_seeds.csv``: one training run (size, seed) each.
SEED_COLUMNS = [
    "size",
    "seed",
    "input_size",
    "rmse",
    "nmad",
    "bias",
    "outlier_fraction",
    "n",
    "rmse_sample_se",
    "nmad_sample_se",
    "train_seconds",
    "valid_rmse",
    "run_dir",
]
#: Columns ``resolution.csv`` adds to :data:`COLUMNS` when summarising seeds (:func:`summarize_seeds`).
SPREAD_COLUMNS = ["seeds", "rmse_std", "rmse_se", "nmad_std", "nmad_se", "rmse_sample_se", "nmad_sample_se"]
#: Default smallest image side fed to the network: 1, i.e. native s x s inputs as the paper
#: (see the module docstring); larger values pixel-replicate small images (a deviation).
MIN_INPUT = 1


def parse_sizes(text: str | Sequence[int], image_size: int | None = None) -> list[int]:
    """Sizes from ``"128,64,32"`` (or a list), largest first; each must divide ``image_size``."""
    if isinstance(text, str):
        try:
            sizes = [int(s) for s in text.replace(" ", "").split(",") if s]
        except ValueError:
            raise ConfigError(
                f"sizes must be comma-separated integers like 128,64,32, got {text!r}", param="sizes"
            ) from None
    else:
        sizes = [int(s) for s in text]
    if not sizes or any(s < 1 for s in sizes):
        raise ConfigError(f"sizes must be positive integers, got {text!r}", param="sizes")
    if image_size is not None:
        bad = [s for s in sizes if s > image_size or image_size % s]
        if bad:
            raise ConfigError(
                f"size {bad[0]} does not divide the {image_size}-pixel images (block averaging needs whole blocks)"
            )
    return sorted(set(sizes), reverse=True)


def input_size(size: int, min_input: int = MIN_INPUT) -> int:
    """Side of the network input for re-binned size ``size``: ``size * ceil(min_input / size)``, at least ``size``."""
    if min_input <= size:
        return size
    return size * -(-min_input // size)


def degrade(images: np.ndarray, size: int, min_input: int = MIN_INPUT) -> np.ndarray:
    """Block-average uint8 images (N, H, W, 3) to ``size`` pixels (the paper's degradation); with
    ``min_input`` > ``size``, then replicate pixels up to :func:`input_size` (galmet's variant).

    Returns uint8 (N, S, S, 3) with S = ``input_size(size, min_input)`` (= ``size`` by default).
    """
    small = images if size == images.shape[1] else rebin(np.asarray(images), size)
    f = input_size(size, min_input) // size
    if f == 1:
        return np.ascontiguousarray(small)
    return np.ascontiguousarray(small.repeat(f, axis=1).repeat(f, axis=2))


def read_resolution(path: str | os.PathLike | pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Read a study's table and metadata from its folder, its ``resolution.csv``, or a DataFrame.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table and the contents of ``resolution.json`` (baselines ``rf_rmse``,
        ``constant_rmse``, ``bands``, ...); an empty dict when there is none.
    """
    if isinstance(path, pd.DataFrame):
        return path, {}
    p = Path(path)
    table = p / RESOLUTION_TABLE if p.is_dir() else p
    if not table.is_file():
        raise DataError(f"{p}: no resolution table ({RESOLUTION_TABLE}); run 'galmet resolution-study' first")
    tab = read_table(table)
    missing = [c for c in ("size", "rmse", "nmad") if c not in tab.columns]
    if missing:
        raise DataError(f"{table}: not a resolution table (no column {missing[0]!r})")
    meta_path = table.with_name(RESOLUTION_META)
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise DataError(f"{meta_path}: not valid JSON ({exc})") from None
    return tab, meta


def baselines(dataset, target: str, bands: str) -> dict:
    """Test RMSE of the constant-mean and random-forest (``bands`` magnitudes) baselines of a
    dataset: ``bands``, ``constant_rmse``, ``rf_rmse`` (None without magnitudes), ``rf_nmad``; for
    a synthetic set also ``oracle_rmse`` (the observable oracle) and ``noise_floor``."""
    cat, where = dataset.catalog, str(dataset.root)
    out: dict[str, Any] = {"bands": bands}
    out["constant_rmse"] = summarize(constant_baseline(cat, target, where), target, "test", n_boot=0)["rmse"]
    try:
        rf = random_forest_baseline(cat, bands, target, ForestConfig(), where)
    except DataError as exc:
        log.warning("resolution study: no random-forest baseline (%s)", exc)
        out["rf_rmse"] = None
    else:
        s = summarize(rf, target, "test", n_boot=0)
        out["rf_rmse"], out["rf_nmad"] = s["rmse"], s["nmad"]
    if has_image_observables(cat):  # a synthetic set: what its images allow, and the floor
        out["oracle_rmse"] = summarize(observable_oracle(cat, target, 0, where), target, "test", n_boot=0)["rmse"]
        out["noise_floor"] = noise_floor(cat) if target == "oh_p50" else None
    return out


def summarize_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """The study's summary table (``resolution.csv``) from its runs (``resolution_seeds.csv``).

    Parameters
    ----------
    runs : pandas.DataFrame
        :data:`SEED_COLUMNS`, one row per finished (size, seed).

    Returns
    -------
    pandas.DataFrame
        One row per size, largest first, :data:`COLUMNS` + :data:`SPREAD_COLUMNS`: the mean of
        each metric over the seeds (``train_seconds`` their sum, ``run_dir`` the first seed's),
        ``seeds`` (how many), ``rmse_std`` / ``nmad_std`` (standard deviation over the seeds,
        ddof 1; NaN for one seed), ``rmse_se`` / ``nmad_se`` (std / sqrt(seeds)) and the mean
        test-sample standard errors, all in dex.
    """
    rows = []
    for size, g in runs.sort_values("seed").groupby("size", sort=False):
        k = len(g)
        row: dict[str, Any] = {"size": int(size), "input_size": int(g["input_size"].iloc[0]), "n": int(g["n"].iloc[0])}
        for col in ("rmse", "nmad", "bias", "outlier_fraction", "valid_rmse", "rmse_sample_se", "nmad_sample_se"):
            row[col] = float(pd.to_numeric(g[col], errors="coerce").mean())
        for col in ("rmse", "nmad"):
            std = float(g[col].std(ddof=1)) if k > 1 else np.nan
            row[f"{col}_std"], row[f"{col}_se"] = std, std / np.sqrt(k)
        row.update(seeds=k, train_seconds=float(g["train_seconds"].sum()), run_dir=str(g["run_dir"].iloc[0]))
        rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS + SPREAD_COLUMNS)
    return out.sort_values("size", ascending=False).reset_index(drop=True)


def format_resolution(table: pd.DataFrame, meta: dict) -> str:
    """Plain-text table of a study with its baselines (with seeds: mean +- standard deviation)."""
    seeds = "seeds" in table.columns and bool((pd.to_numeric(table["seeds"], errors="coerce") > 1).any())
    head = f"{'size':>6}{'input':>7}{'RMSE':>9}" + (f"{'+-std':>8}{'seeds':>6}" if seeds else "")
    lines = [head + f"{'NMAD':>9}{'N':>7}{'train s':>9}"]
    for _, r in table.iterrows():
        spread = f"{r['rmse_std']:>8.4f}{int(r['seeds']):>6}" if seeds else ""
        lines.append(
            f"{int(r['size']):>6}{int(r['input_size']):>7}{r['rmse']:>9.4f}{spread}{r['nmad']:>9.4f}"
            f"{int(r['n']):>7}{r['train_seconds']:>9.0f}"
        )
    lines += baseline_lines(meta)
    return "\n".join(lines)


def baseline_lines(meta: dict, notes: bool = True) -> list[str]:
    """One line per baseline a study recorded (random forest, constant mean, observable oracle,
    noise floor; RMSE in dex), each with a short note on what it means when ``notes``."""
    specs = [
        ("rf_rmse", f"random forest ({meta.get('bands', 'gri')}) RMSE", "paper 0.130"),
        ("rf_nmad", f"random forest ({meta.get('bands', 'gri')}) NMAD", ""),
        ("constant_rmse", "constant mean RMSE", ""),
        ("oracle_rmse", "observable oracle RMSE", "latent image quantities, no redshift"),
        ("noise_floor", "noise floor", "a perfect image model; a lower bound"),
    ]
    return [
        f"{label} {meta[key]:.4f} dex" + (f" ({note})" if notes and note else "")
        for key, label, note in specs
        if meta.get(key) is not None
    ]
