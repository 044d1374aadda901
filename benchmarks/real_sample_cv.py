#!/usr/bin/env python3
"""K-fold cross-validation of a training configuration on the 400 `train` galaxies of the real sample.

    python benchmarks/real_sample_cv.py --out CV_DIR [--folds 5] [--fold-seed 0] [--only 0 1]
        [--arch resnet18] [--epochs 40] [--lr 3e-3] [--batch-size 32] [--weight-decay 0.01]
        [--max-zoom 1.1] [--seed 0] [--crop N] [--rebin N] [--upsample F] [--threads 2]

The same folds as `galmet train --folds` (galmet.crossval.assign_folds); this script adds
image variants that are not training options (--rebin, --upsample) for the experiments in
BENCHMARKS.md, and trains from arrays held in memory.

Why: 80 validation galaxies give a valid RMSE with a standard error of ~0.008 dex, as large as the
differences between configurations. K-fold CV over all 400 `train` galaxies scores a configuration
on 400 out-of-fold predictions instead. The `test` rows are dropped before anything else and never
read. Each fold trains with galmet's own `train()` and predicts its held-out fold with 8x TTA;
the out-of-fold predictions go to CV_DIR/oof.parquet and the score to CV_DIR/cv.json. Fold runs
that already have a model.pt are reused, so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from galmet.crossval import assign_folds
from galmet.data import load_dataset
from galmet.metrics import regression_metrics
from galmet.model import load_model
from galmet.train import train
from galmet.train_config import TrainConfig
from galmet.transforms import rebin


def _set_head_dropout(p1: float, p2: float) -> None:
    """Make galmet.model.build_model (looked up by train() at call time) use other head dropouts."""
    import galmet.model

    build = galmet.model.build_model

    def build_with_dropout(*args, **kwargs):
        net = build(*args, **kwargs)
        drops = [m for m in net.head if isinstance(m, torch.nn.Dropout)]
        drops[0].p, drops[1].p = p1, p2
        return net

    galmet.model.build_model = build_with_dropout


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--sample", default=str(here.parent / "shared" / "data" / "sdss_sample"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fold-seed", type=int, default=0)
    ap.add_argument("--only", type=int, nargs="+", help="run only these folds")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-zoom", type=float, default=1.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crop", type=int, help="train on the central CROP x CROP pixels")
    ap.add_argument("--rebin", type=int, help="then block-average the images to REBIN x REBIN pixels")
    ap.add_argument("--upsample", type=int, help="then repeat each pixel UPSAMPLE x UPSAMPLE times")
    ap.add_argument("--head-dropout", type=float, nargs=2, metavar=("P1", "P2"),
                    help="experiment: the head's two dropout probabilities (paper: 0.25 0.5)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.head_dropout:
        _set_head_dropout(*a.head_dropout)

    ds = load_dataset(a.sample)
    ds = ds.subset(ds.split_indices(["train", "valid"]))  # the test rows are never read
    images = np.asarray(ds.images())
    if a.crop:
        lo = (ds.image_size - a.crop) // 2
        images = np.ascontiguousarray(images[:, lo:lo + a.crop, lo:lo + a.crop])
    if a.rebin:
        images = rebin(images, a.rebin)
    if a.upsample:
        images = np.ascontiguousarray(images.repeat(a.upsample, axis=1).repeat(a.upsample, axis=2))
    fold = assign_folds(len(ds), a.folds, a.fold_seed)
    y = ds.catalog["oh_p50"].to_numpy(dtype=float)
    a.out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(recipe="onecycle", arch=a.arch, weights="none", epochs=a.epochs, lr=[a.lr],
                      batch_size=a.batch_size, weight_decay=a.weight_decay, max_zoom=a.max_zoom, seed=a.seed,
                      progress=False, device="cpu")
    rows = []
    for k in a.only if a.only is not None else range(a.folds):
        run = a.out / f"fold{k}"
        cat = ds.catalog.copy()
        cat["split"] = np.where(fold == k, "valid", "train")
        ds_k = dataclasses.replace(ds, catalog=cat, _images=images, image_size=images.shape[1])
        t0 = time.perf_counter()
        if not (run / "model.pt").is_file():
            train(ds_k, run, cfg, overwrite=True)
        held = np.flatnonzero(fold == k)
        pred = load_model(run / "model.pt").predict(images[held], tta=True, device="cpu").reshape(-1)
        m = regression_metrics(y[held], pred)
        print(json.dumps({"fold": k, "seconds": round(time.perf_counter() - t0, 1), "rmse": round(m["rmse"], 4),
                          "bias": round(m["bias"], 4)}), flush=True)
        rows.append(pd.DataFrame({"objID": ds.catalog["objID"].to_numpy()[held], "fold": k, "oh_p50": y[held],
                                  "oh_p50_pred": pred}))
    oof = pd.concat(rows, ignore_index=True)
    oof.to_parquet(a.out / "oof.parquet")
    m = regression_metrics(oof["oh_p50"].to_numpy(), oof["oh_p50_pred"].to_numpy())
    per_fold = oof.groupby("fold").apply(lambda t: float(np.sqrt(np.mean((t.oh_p50 - t.oh_p50_pred) ** 2))))
    summary = {"config": vars(a) | {"out": str(a.out)}, "n": len(oof),
               "rmse": round(m["rmse"], 4), "nmad": round(m["nmad"], 4), "bias": round(m["bias"], 4),
               "rmse_per_fold": [round(v, 4) for v in per_fold]}
    (a.out / "cv.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
