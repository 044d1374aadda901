"""The resolution study (paper, Figure 4): how the CNN's scatter depends on image resolution.

For each size s (pixels per side, dividing the dataset's image size), every image is
block-averaged to s x s (:func:`galmet.data.transforms.rebin`, as the paper re-binned its images),
a CNN is trained on the train split with the same recipe and seed, and scored on the test
split with test-time augmentation.

Feeding tiny images to a ResNet
-------------------------------
A ResNet halves the resolution five times (stem stride 2, max-pool, three strided stages),
so a 4x4 or 1x1 input reaches the head as a single pixel after the stem, and zero-padding
dominates every convolution. We therefore up-sample each re-binned image back, by
nearest-neighbour pixel replication with an integer factor, to at least ``min_input``
pixels (default 32): a 4x4 image becomes 32x32 made of 8x8 constant blocks, 1x1 becomes a
uniform 32x32 image. Replication adds no information (the block values are exactly the
re-binned pixels), so the test measures what the re-binned pixels contain, while the
network's strides and receptive fields stay those of a normal input. Sizes >= ``min_input``
are used as they are. The paper (fastai 0.7) most likely did the equivalent: fastai resizes
every input to the model's training size, i.e. it interpolated the re-binned images back up
(bilinear rather than nearest), so its network also saw full-size inputs.

Outputs in the study folder::

    resolution.csv      one row per finished size: size, input_size, rmse, nmad, bias,
                        outlier_fraction, n (test galaxies), train_seconds, valid_rmse, run_dir
    resolution.json     baselines (random forest, constant), config, dataset, sizes asked
    runs/size_<s>/      each size's training run (config.yaml, history.csv, model.pt)
                        and its test predictions (predictions.parquet)
    fig4_resolution.png / .pdf

The table is rewritten atomically after every size, so an interrupted study restarts with
the next unfinished size; an interrupted size resumes from its training checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from galmet.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TABLE_NAME = "resolution.csv"
META_NAME = "resolution.json"
COLUMNS = ["size", "input_size", "rmse", "nmad", "bias", "outlier_fraction", "n", "train_seconds", "valid_rmse", "run_dir"]
#: Default smallest image side fed to the network (see the module docstring).
MIN_INPUT = 32


def parse_sizes(text: str | Sequence[int], image_size: int | None = None) -> list[int]:
    """Sizes from ``"128,64,32"`` (or a list), largest first; each must divide ``image_size``."""
    if isinstance(text, str):
        try:
            sizes = [int(s) for s in text.replace(" ", "").split(",") if s]
        except ValueError:
            raise ConfigError(f"--sizes must be comma-separated integers like 128,64,32, got {text!r}") from None
    else:
        sizes = [int(s) for s in text]
    if not sizes or any(s < 1 for s in sizes):
        raise ConfigError(f"--sizes must be positive integers, got {text!r}")
    if image_size is not None:
        bad = [s for s in sizes if s > image_size or image_size % s]
        if bad:
            raise ConfigError(f"size {bad[0]} does not divide the {image_size}-pixel images (block averaging needs whole blocks)")
    return sorted(set(sizes), reverse=True)


def input_size(size: int, min_input: int = MIN_INPUT) -> int:
    """Side of the network input for re-binned size ``size``: ``size * ceil(min_input / size)``, at least ``size``."""
    if min_input <= size:
        return size
    return size * -(-min_input // size)


def degrade(images: np.ndarray, size: int, min_input: int = MIN_INPUT) -> np.ndarray:
    """Block-average uint8 images (N, H, W, 3) to ``size`` pixels, then replicate pixels up to :func:`input_size`.

    Returns uint8 (N, S, S, 3) with S = ``input_size(size, min_input)``.
    """
    from galmet.data.transforms import rebin

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
    table = p / TABLE_NAME if p.is_dir() else p
    if not table.is_file():
        raise DataError(f"{p}: no resolution table ({TABLE_NAME}); run 'galmet resolution-study' first")
    from galmet.io.tables import read_table

    tab = read_table(table)
    missing = [c for c in ("size", "rmse", "nmad") if c not in tab.columns]
    if missing:
        raise DataError(f"{table}: not a resolution table (no column {missing[0]!r})")
    meta_path = table.with_name(META_NAME)
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise DataError(f"{meta_path}: not valid JSON ({exc})") from None
    return tab, meta


def _baselines(dataset, target: str, bands: str) -> dict:
    from galmet.science.baseline import ForestConfig, constant_baseline, random_forest_baseline
    from galmet.science.metrics import summarize

    cat, where = dataset.catalog, str(dataset.root)
    out = {"bands": bands}
    out["constant_rmse"] = summarize(constant_baseline(cat, target, where), target, "test")["rmse"]
    try:
        rf = random_forest_baseline(cat, bands, target, ForestConfig(), where)
    except DataError as exc:
        log.warning("resolution study: no random-forest baseline (%s)", exc)
        out["rf_rmse"] = None
    else:
        s = summarize(rf, target, "test")
        out["rf_rmse"], out["rf_nmad"] = s["rmse"], s["nmad"]
    return out


def _load_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    tab = pd.read_csv(path)
    return tab[np.isfinite(pd.to_numeric(tab["rmse"], errors="coerce"))].reset_index(drop=True)


def run_study(
    dataset,
    out_dir: str | os.PathLike,
    sizes: Sequence[int] | str = (128, 64, 32, 16, 8, 4, 2, 1),
    config=None,
    min_input: int = MIN_INPUT,
    bands: str = "gri",
    tta: bool = True,
    formats: Sequence[str] = ("png", "pdf"),
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
        Smallest network input side; re-binned images are pixel-replicated up to it.
    bands : str
        Magnitudes of the random-forest baseline.
    tta : bool
        Test-time augmentation when predicting the test split.
    """
    import time

    from galmet.science.predictions import write_json
    from galmet.science.metrics import summarize
    from galmet.io.tables import write_table
    from galmet.training.config import TrainConfig

    if min_input < 1:
        raise ConfigError(f"--min-input must be >= 1 pixel, got {min_input}")
    config = (config or TrainConfig()).resolved()
    target = config.targets[0]
    if not hasattr(dataset, "catalog"):
        from galmet.data.dataset import load_dataset

        dataset = load_dataset(dataset, targets=config.targets, valid_fraction=config.valid_fraction,
                               split_seed=config.split_seed)
    sizes = parse_sizes(sizes, dataset.image_size)
    if not len(dataset.split_indices("test")):
        raise DataError(f"{dataset.root}: no test rows to score the resolution study on")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / META_NAME
    settings = {"config": config.to_dict(), "min_input": min_input, "target": target,
                "dataset": str(Path(dataset.root).resolve()), "n": len(dataset)}
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        changed = [k for k in ("min_input", "target", "n") if old.get(k) != settings[k]]
        changed += [f"config.{k}" for k in config.to_dict() if k not in ("device", "workers", "compile", "progress")
                    and old.get("config", {}).get(k) != config.to_dict()[k]]
        if changed:
            raise ConfigError(f"{out}: holds a study with different settings ({', '.join(changed)}); use a new --out")
        meta = old
    else:
        meta = {**settings, **_baselines(dataset, target, bands)}
    meta["sizes"] = sorted(set(meta.get("sizes", [])) | set(sizes), reverse=True)
    write_json(meta_path, meta)

    table_path = out / TABLE_NAME
    table = _load_table(table_path)
    done = set(int(s) for s in table["size"])
    images = dataset.images()
    for size in sizes:
        if size in done:
            log.info("resolution study: size %d already done, skipping", size)
            continue
        run_dir = out / "runs" / f"size_{size:03d}"
        s_in = input_size(size, min_input)
        log.info("resolution study: size %dx%d (network input %dx%d)", size, size, s_in, s_in)
        ds = dataclasses.replace(dataset, _images=degrade(images, size, min_input), image_size=s_in, cache_path=None)
        from galmet.training.loop import train

        resume = (run_dir / "checkpoint.pt").is_file() and not (run_dir / "model.pt").is_file()
        t0 = time.perf_counter()
        if (run_dir / "model.pt").is_file():
            bundle = run_dir / "model.pt"
            hist = pd.read_csv(run_dir / "history.csv") if (run_dir / "history.csv").is_file() else pd.DataFrame()
        else:
            res = train(ds, run_dir, dataclasses.replace(config, size=None), resume=resume)
            bundle, hist = res.bundle_path, res.history
        train_seconds = float(hist["time_s"].sum()) if "time_s" in hist.columns else time.perf_counter() - t0
        from galmet.nn.bundle import load_model
        from galmet.predict import predict_dataset

        model = load_model(bundle, device=config.device)
        pred = predict_dataset(model, ds.subset("test"), tta=tta, device=config.device)
        write_table(pred, run_dir / "predictions.parquet")
        s = summarize(pred, target, "test")
        vcol = f"valid_rmse_{target}"
        row = {"size": size, "input_size": s_in, "rmse": s["rmse"], "nmad": s["nmad"], "bias": s["bias"],
               "outlier_fraction": s["outlier_fraction"], "n": s["n"], "train_seconds": train_seconds,
               "valid_rmse": float(hist[vcol].iloc[-1]) if vcol in hist.columns and len(hist) else np.nan,
               "run_dir": str(run_dir.relative_to(out))}
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True) if len(table) else pd.DataFrame([row])
        table = table.sort_values("size", ascending=False).reset_index(drop=True)[COLUMNS]
        write_table(table, table_path)
        log.info("resolution study: size %d: test RMSE %.4f, NMAD %.4f (N=%d), trained in %.0f s",
                 size, s["rmse"], s["nmad"], s["n"], train_seconds)

    from galmet.science.plots.figures import FIGURE_NAMES, plot_resolution, save_figure

    save_figure(plot_resolution(table, meta.get("rf_rmse"), meta.get("constant_rmse"),
                                rf_label=f"random forest ({meta.get('bands', bands)})"),
                out / FIGURE_NAMES[4], formats)
    return table


def format_resolution(table: pd.DataFrame, meta: dict) -> str:
    """Plain-text table of a study with its baselines."""
    lines = [f"{'size':>6}{'input':>7}{'RMSE':>9}{'NMAD':>9}{'N':>7}{'train s':>9}"]
    for _, r in table.iterrows():
        lines.append(f"{int(r['size']):>6}{int(r['input_size']):>7}{r['rmse']:>9.4f}{r['nmad']:>9.4f}"
                     f"{int(r['n']):>7}{r['train_seconds']:>9.0f}")
    if meta.get("rf_rmse") is not None:
        lines.append(f"random forest ({meta.get('bands', 'gri')}) RMSE {meta['rf_rmse']:.4f} dex (paper 0.130)")
    if meta.get("constant_rmse") is not None:
        lines.append(f"constant mean RMSE {meta['constant_rmse']:.4f} dex")
    return "\n".join(lines)
