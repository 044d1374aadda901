#!/usr/bin/env python3
"""What the shipped model's size choices cost in accuracy: architecture and weight precision.

    python benchmarks/shipped_model_tradeoffs.py RUN [RUN ...] [--sample PATH] [--no-tta]

Each RUN is a k-fold cross-validation directory of ``galmet train --folds K`` on the real sample
(``cv.json``, ``folds.csv``, ``fold<k>/model.pt``). For each run it prints one JSON line with:

- ``oof_rmse``, ``oof_rmse_fold_sem``: the out-of-fold RMSE (dex) and its standard error over folds,
  from ``cv.json`` (the numbers the choice is made on);
- ``params_m``: parameters of one member, millions;
- ``mb_fp32``, ``mb_fp16``: bytes of the K members' weights serialised by ``torch.save``, in MB
  (1e6 bytes), stored as float32 and as float16 (what ``galmet models pack --half`` writes);
- ``fp16_rms_change_dex``, ``fp16_max_change_dex``: the RMS and largest change of each fold model's
  predictions of its own held-out galaxies (8x TTA unless ``--no-tta``) when its weights are rounded
  to float16 and read back as float32, as loading a packed half-precision bundle does.

Only the ``train`` rows are read (the folds cover them); the test galaxies are never touched.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from galmet.data.dataset import load_dataset
from galmet.nn.bundle import load_model


def _mb(states: list[dict[str, torch.Tensor]]) -> float:
    buf = io.BytesIO()
    torch.save(states, buf)
    return buf.tell() / 1e6


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def run_tradeoffs(run: Path, ds, tta: bool) -> dict:
    """The JSON record of one cross-validation run (see the module docstring)."""
    cv = json.loads((run / "cv.json").read_text())
    target = next(iter(cv["targets"]))
    folds = pd.read_csv(run / "folds.csv", dtype={"name": str})
    fold_of = dict(zip(folds["name"], folds["fold"], strict=True))
    names = np.asarray(ds.names)
    images = ds.images()
    changes, states32, states16, params = [], [], [], 0
    for k in sorted(folds["fold"].unique()):
        rows = np.flatnonzero([fold_of.get(n) == k for n in names])
        model = load_model(run / f"fold{k}" / "model.pt")
        net = model.nets[0]
        params = sum(p.numel() for p in net.parameters())
        state = {k2: v.detach().clone() for k2, v in net.state_dict().items()}
        states32.append(state)
        states16.append(_half(state))
        p32 = np.asarray(model.predict(images[rows], tta=tta, progress=False)).reshape(-1)
        net.load_state_dict({k2: v.float() if v.is_floating_point() else v for k2, v in _half(state).items()})
        p16 = np.asarray(model.predict(images[rows], tta=tta, progress=False)).reshape(-1)
        changes.append(p16 - p32)
    diff = np.concatenate(changes)
    return {
        "run": str(run),
        "arch": cv["config"]["arch"],
        "crop": cv["config"]["crop"],
        "weights": cv["config"]["weights"],
        "oof_rmse": round(cv["targets"][target]["rmse"], 4),
        "oof_rmse_fold_sem": round(cv["targets"][target]["rmse_fold_sem"], 4),
        "params_m": round(params / 1e6, 2),
        "mb_fp32": round(_mb(states32), 1),
        "mb_fp16": round(_mb(states16), 1),
        "fp16_rms_change_dex": float(f"{np.sqrt(np.mean(diff**2)):.2g}"),
        "fp16_max_change_dex": float(f"{np.abs(diff).max():.2g}"),
        "n_rows": int(diff.size),
    }


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--sample", default=str(here.parent / "shared" / "data" / "sdss_sample"))
    ap.add_argument("--no-tta", action="store_true")
    a = ap.parse_args()
    # the 400 catalogue train rows (galmet draws a valid split from them)
    ds = load_dataset(a.sample).subset(["train", "valid"])
    for run in a.runs:
        print(json.dumps(run_tradeoffs(run, ds, tta=not a.no_tta)), flush=True)


if __name__ == "__main__":
    main()
