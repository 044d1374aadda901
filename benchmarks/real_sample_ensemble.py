#!/usr/bin/env python3
"""Real-data acceptance run: an ensemble of from-scratch ResNet-18s on the 500-galaxy SDSS sample.

    python benchmarks/real_sample_ensemble.py --runs RUNS_DIR [--seeds 0 1 2 3 4] [--sample PATH]

Trains (or reuses, when RUNS_DIR/seed<S>/model.pt exists) one `onecycle` ResNet-18 per seed with
the configuration chosen on the validation split (40 epochs, max lr 3e-3, batch 32, 128 px,
dihedral + zoom augmentation), predicts the valid and test galaxies of each with 8-fold TTA,
averages the seeds, and prints valid and test metrics of every member and of the ensemble as
JSON lines. ImageNet weights cannot be fetched in the sandbox, hence from scratch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from galmet.data.dataset import load_dataset
from galmet.nn.bundle import load_model
from galmet.predict.dataset import predict_dataset
from galmet.runs.evaluate import evaluate_predictions
from galmet.training.config import TrainConfig
from galmet.training.loop import train


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True, type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--sample", default=str(here.parent / "shared" / "data" / "sdss_sample"))
    ap.add_argument("--epochs", type=int, default=40)
    a = ap.parse_args()

    ds = load_dataset(a.sample)
    evals = ds.subset(["valid", "test"])
    preds = []
    for seed in a.seeds:
        run = a.runs / f"seed{seed}"
        t0 = time.perf_counter()
        if not (run / "model.pt").is_file():
            cfg = TrainConfig(
                recipe="onecycle",
                arch="resnet18",
                weights="none",
                epochs=a.epochs,
                lr=[3e-3],
                batch_size=32,
                seed=seed,
                progress=False,
            )
            train(ds, run, cfg, overwrite=True)
        p = predict_dataset(load_model(run / "model.pt"), evals, tta=True)
        preds.append(p)
        row = {"seed": seed, "train_s": round(time.perf_counter() - t0, 1)}
        for split in ("valid", "test"):
            m = evaluate_predictions(p, "oh_p50", split)
            row[split] = {k: round(m[k], 4) for k in ("rmse", "nmad", "bias")}
        print(json.dumps(row), flush=True)
    ens = preds[0].copy()
    ens["oh_p50_pred"] = np.mean([p["oh_p50_pred"].to_numpy() for p in preds], axis=0)
    out = {"ensemble_of_seeds": a.seeds}
    for split in ("valid", "test"):
        m = evaluate_predictions(ens, "oh_p50", split)
        out[split] = {k: round(m[k], 4) for k in ("rmse", "nmad", "bias", "n")}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
