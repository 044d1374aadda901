"""Paired comparison of two predictions tables on the galaxies they share: the RMSE of each and
the difference with its bootstrap standard error (resampling galaxies, the same resample for both).

    python benchmarks/paired_rmse.py A.parquet B.parquet [--target oh_p50] [--split test] [--label TEXT]

Prints one line: ``label n=N RMSE a (+-se_a) vs b: diff a-b +- se``. Used for the issue-10 acceptance
tables in BENCHMARKS.md (section 7): on 528 test galaxies the RMSE of one model carries ~0.005 dex of
sampling noise, but two models scored on the same galaxies differ with much less.
"""

from __future__ import annotations

import argparse

import numpy as np

from galmet.science.metrics import select_split
from galmet.science.predictions import load_predictions


def residuals(path: str, target: str, split: str):
    df, _ = load_predictions(path, target)
    df = select_split(df, split).dropna(subset=[target, f"{target}_pred"])
    return (df[f"{target}_pred"] - df[target]).set_axis(df["objID"].to_numpy())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--target", default="oh_p50")
    p.add_argument("--split", default="test")
    p.add_argument("--label", default=None)
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    a, b = residuals(args.a, args.target, args.split), residuals(args.b, args.target, args.split)
    ids = a.index.intersection(b.index)
    da, db = a.loc[ids].to_numpy(), b.loc[ids].to_numpy()
    idx = np.random.default_rng(args.seed).integers(0, len(ids), (args.n_boot, len(ids)))

    def rmse(d):
        return np.sqrt(np.mean(d**2, axis=-1))

    diff = rmse(da[idx]) - rmse(db[idx])
    label = args.label or f"{args.a} vs {args.b}"
    print(
        f"{label:<44} n={len(ids)} RMSE {rmse(da):.4f} (+-{rmse(da[idx]).std():.4f}) vs {rmse(db):.4f}: "
        f"diff {rmse(da) - rmse(db):+.4f} +- {diff.std():.4f}"
    )


if __name__ == "__main__":
    main()
