#!/usr/bin/env python3
"""K-fold cross-validation of a training configuration on the 400 `train` galaxies of the real sample.

    python benchmarks/real_sample_cv.py --out CV_DIR [--folds 5] [--fold-seed 0] [--resume]
        [--arch resnet18] [--epochs 40] [--lr 3e-3] [--batch-size 32] [--weight-decay 0.01]
        [--max-zoom 1.1] [--seed 0] [--crop N] [--rebin N] [--upsample F]
        [--head-dropout P1 P2] [--threads 2]

It runs `galmet.runs.crossval.cross_validate` (what `galmet train --folds` runs) on the training
images after image variants that are not training options: a crop stored as the image
(--crop; the same numbers as `train --crop`), block-averaging (--rebin), pixel repetition
(--upsample), and other head dropouts (--head-dropout), for the experiments in BENCHMARKS.md.

Why: 80 validation galaxies give a valid RMSE with a standard error of ~0.008 dex, as large as the
differences between configurations. K-fold CV over all 400 `train` galaxies scores a configuration
on 400 out-of-fold predictions instead. The `test` rows are dropped before anything else and never
read. CV_DIR gets the cross-validation run directory (fold runs, oof.parquet, cv.json, the
ensemble model.pt); `--resume` continues an interrupted study.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from galmet.data.dataset import load_dataset
from galmet.data.transforms import rebin
from galmet.nn.augment import center_crop
from galmet.runs.crossval import cross_validate
from galmet.training.config import TrainConfig


def _set_head_dropout(p1: float, p2: float) -> None:
    """Make the build_model that galmet.training.loop calls use other head dropouts."""
    import galmet.training.loop

    build = galmet.training.loop.build_model

    def build_with_dropout(*args, **kwargs):
        net = build(*args, **kwargs)
        drops = [m for m in net.head if isinstance(m, torch.nn.Dropout)]
        drops[0].p, drops[1].p = p1, p2
        return net

    galmet.training.loop.build_model = build_with_dropout


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--sample", default=str(here.parent / "shared" / "data" / "sdss_sample"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fold-seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue an interrupted study in OUT")
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
    ap.add_argument(
        "--head-dropout",
        type=float,
        nargs=2,
        metavar=("P1", "P2"),
        help="experiment: the head's two dropout probabilities (paper: 0.25 0.5)",
    )
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.head_dropout:
        _set_head_dropout(*a.head_dropout)

    ds = load_dataset(a.sample)
    ds = ds.subset(ds.split_indices(["train", "valid"]))  # the test rows are never read
    images = np.ascontiguousarray(center_crop(np.asarray(ds.images()), a.crop))
    if a.rebin:
        images = rebin(images, a.rebin)
    if a.upsample:
        images = np.ascontiguousarray(images.repeat(a.upsample, axis=1).repeat(a.upsample, axis=2))
    ds = dataclasses.replace(ds, _images=images, image_size=images.shape[1])
    cfg = TrainConfig(
        recipe="onecycle",
        arch=a.arch,
        weights="none",
        epochs=a.epochs,
        lr=[a.lr],
        batch_size=a.batch_size,
        weight_decay=a.weight_decay,
        max_zoom=a.max_zoom,
        seed=a.seed,
        progress=False,
        device="cpu",
    )
    result = cross_validate(ds, a.out, cfg, folds=a.folds, fold_seed=a.fold_seed, resume=a.resume)
    m = result.scores["targets"]["oh_p50"]
    print(
        json.dumps(
            {
                "options": vars(a) | {"out": str(a.out)},
                "n": result.scores["n"],
                **{k: round(m[k], 4) for k in ("rmse", "nmad", "bias")},
                "rmse_per_fold": [round(v, 4) for v in m["rmse_per_fold"]],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
