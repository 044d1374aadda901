"""The embedding out-of-domain flag in the prediction's own forward pass vs its own second pass.

Both paths in one process, alternated round by round, on the same images:

- **two passes** (galmet before issue 22): ``GalmetModel.predict_uncertainty`` and then
  :func:`galmet.predict.flags.flag_rows`, which embeds the images again (``ood_scores``);
- **one pass** (now): ``predict_uncertainty(ood=True)`` takes the embedding in the prediction's
  forward pass and ``flag_rows`` reuses it (what ``predict_dataset`` / ``galmet predict`` run).

The rest of ``flag_rows`` (image checks, range bits) runs in both. The two scores are compared.
Only the train split of the dataset is read (``--split``).

Usage::

    python benchmarks/ood_one_pass.py sdss400 /work/wt/shared/data/sdss_sample --split train --rounds 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch

from galmet.columns import pred_column
from galmet.data.dataset import load_dataset
from galmet.nn.bundle import load_model
from galmet.predict.flags import flag_rows
from galmet.registry.resolve import resolve_model


def _table(model, res) -> pd.DataFrame:
    return pd.DataFrame({pred_column(t): res.pred[:, j] for j, t in enumerate(model.targets)})


def two_pass(model, images, catalog, opts: dict) -> np.ndarray:
    res = model.predict_uncertainty(images, **opts)
    out = flag_rows(_table(model, res), model, images, catalog, opts["batch_size"], opts["device"])
    return out["ood_score"].to_numpy()


def one_pass(model, images, catalog, opts: dict) -> np.ndarray:
    res = model.predict_uncertainty(images, ood=True, **opts)
    out = flag_rows(
        _table(model, res), model, images, catalog, opts["batch_size"], opts["device"], ood_score=res.ood_score
    )
    return out["ood_score"].to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("dataset")
    ap.add_argument("--split", default="train")
    ap.add_argument("--n", type=int, default=0, help="at most this many images (0: all of the split)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tta", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(resolve_model(args.model).path)
    ds = load_dataset(args.dataset, targets=[])
    keep = np.flatnonzero(ds.catalog["split"].astype(str).to_numpy() == args.split)
    keep = keep[: args.n] if args.n else keep
    images = np.ascontiguousarray(np.asarray(ds.images())[keep])
    catalog = ds.catalog.iloc[keep].reset_index(drop=True)
    opts = {"tta": args.tta, "batch_size": args.batch_size, "device": "cpu", "progress": False}
    one_pass(model, images[: args.batch_size], catalog.iloc[: args.batch_size], opts)  # warm-up
    rates: dict[str, list[float]] = {"two_pass": [], "one_pass": []}
    scores = {}
    for _ in range(args.rounds):
        for name, fn in (("two_pass", two_pass), ("one_pass", one_pass)):
            t0 = time.perf_counter()
            scores[name] = fn(model, images, catalog, opts)
            rates[name].append(len(images) / (time.perf_counter() - t0))
    diff = float(np.max(np.abs(scores["one_pass"] - scores["two_pass"])))
    summary = {
        "model": args.model,
        "members": len(model.nets),
        "images": len(images),
        "split": args.split,
        "tta": args.tta,
        "img_per_s": {k: [round(v, 1) for v in r] for k, r in rates.items()},
        "best_ratio": round(max(rates["one_pass"]) / max(rates["two_pass"]), 3),
        "max_abs_score_diff": diff,
        "same_flags": bool(np.array_equal(scores["one_pass"] > 1, scores["two_pass"] > 1)),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
