#!/usr/bin/env python3
"""Cross-survey transfer: an SDSS-trained model on Legacy-Surveys-like images (issue 20, item 4).

    python benchmarks/cross_survey_transfer.py --out /tmp/transfer [--n 1000] [--size 64] [--seed 1]
        [--epochs 10] [--arch resnet10] [--workers 2] [--threads 2]

Synthesises the same galaxies (same seed: the same catalogue and labels) twice, imaged as SDSS
(gri, SDSS DR14 JPEG rendering) and as the Legacy Surveys (grz, Legacy seeing and depth, the
Legacy viewer's colours) at one pixel scale (SDSS's field of view: what a model fetches at, so
only the survey differs), trains one small CNN on each (the demo's one-cycle recipe, from
scratch, on CPU), and predicts the Legacy test split with

- the SDSS-trained model (the transfer; ``allow_other_survey=True``: galmet refuses another
  survey's images without it, and flags every row ``OTHER_SURVEY``), and
- the Legacy-trained model (the reference),

plus the SDSS test split with the SDSS model (in-domain). For each: the RMSE with its bootstrap
standard error (galaxies resampled), the RMSE change of the transfer against the Legacy model
(paired bootstrap: the same resample for both), and the share of rows galmet flags (any bit
but ``OTHER_SURVEY``, which is reported on its own) and flags out of domain (the
``EMBEDDING_OUT_OF_DOMAIN`` and ``IMAGE_OUT_OF_DOMAIN`` bits of :class:`galmet.columns.Flag`),
with binomial standard errors. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

TARGET = "oh_p50"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="work folder (datasets, runs, results.json)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--test", type=float, default=0.3, help="held-out fraction (default 0.3)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--arch", default="resnet10")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="synthesis processes")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--n-boot", type=int, default=2000)
    return p.parse_args()


def _synth(out: Path, survey: str, args) -> Path:
    from galmet.synthetic.render import pixel_scale, synthesize

    path = out / f"data-{survey}"
    if not (path / "catalog.parquet").is_file():
        synthesize(
            path,
            args.n,
            seed=args.seed,
            size=args.size,
            workers=args.workers,
            progress=False,
            test=args.test,
            survey=survey,
            pixel_scale=pixel_scale(args.size),  # SDSS's field of view for both surveys
        )
    return path


def _train(data: Path, run: Path, args) -> Path:
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    bundle = run / "model.pt"
    if not bundle.is_file():
        config = TrainConfig(
            recipe="onecycle",
            arch=args.arch,
            weights="none",
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            device="cpu",
            lr=[3e-3],
        )
        result = train(data, run, config, overwrite=True, progress=False)
        bundle = Path(result.bundle_path)
    return bundle


def _predict(bundle: Path, data: Path):
    from galmet.data.dataset import load_dataset
    from galmet.nn.bundle import load_model
    from galmet.predict.dataset import predict_dataset

    model = load_model(bundle)
    test = load_dataset(data).subset("test")
    # allow_other_survey: the transfer is the experiment (in domain it changes nothing)
    return predict_dataset(model, test, tta=False, device="cpu", allow_other_survey=True)


def _boot_idx(n: int, args) -> np.ndarray:
    return np.random.default_rng(0).integers(0, n, (args.n_boot, n))


def _score(table, idx: np.ndarray) -> dict:
    from galmet.columns import Flag

    resid = (table[f"{TARGET}_pred"] - table[TARGET]).to_numpy()
    flags = table["flags"].to_numpy().astype(np.int64) if "flags" in table else np.zeros(len(table), np.int64)
    n = len(resid)

    def share(mask) -> tuple[float, float]:
        p = float(np.mean(mask))
        return p, float(np.sqrt(p * (1 - p) / n))

    boot = np.sqrt(np.mean(resid[idx] ** 2, axis=1))
    return {
        "n": n,
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "rmse_se": float(boot.std(ddof=1)),
        "bias": float(resid.mean()),
        "flagged": share(flags & ~int(Flag.OTHER_SURVEY) != 0),
        "other_survey": share(flags & int(Flag.OTHER_SURVEY) != 0),
        "embedding_ood": share(flags & int(Flag.EMBEDDING_OUT_OF_DOMAIN) != 0),
        "image_ood": share(flags & int(Flag.IMAGE_OUT_OF_DOMAIN) != 0),
        "checks": list(table.attrs.get("flag_checks", [])),
        "_resid": resid,
    }


def _paired(a: dict, b: dict, idx: np.ndarray) -> tuple[float, float]:
    """RMSE a - RMSE b and its paired bootstrap standard error (same galaxies, same resample)."""
    ra, rb = a["_resid"], b["_resid"]
    diff = np.sqrt(np.mean(ra[idx] ** 2, axis=1)) - np.sqrt(np.mean(rb[idx] ** 2, axis=1))
    return a["rmse"] - b["rmse"], float(diff.std(ddof=1))


def _table(rows: dict, diff: tuple[float, float]) -> str:
    lines = [
        "| model -> test images | n | RMSE (dex) | bias | other survey | flagged (any other bit) | embedding OOD"
        " | image OOD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in rows.items():
        keys = ("other_survey", "flagged", "embedding_ood", "image_ood")
        pct = {k: f"{100 * s[k][0]:.1f} +- {100 * s[k][1]:.1f} %" for k in keys}
        lines.append(
            f"| {name} | {s['n']} | {s['rmse']:.4f} +- {s['rmse_se']:.4f} | {s['bias']:+.4f} | "
            f"{pct['other_survey']} | {pct['flagged']} | {pct['embedding_ood']} | {pct['image_ood']} |"
        )
    lines.append(f"\nRMSE change, SDSS model vs Legacy model on Legacy images: {diff[0]:+.4f} +- {diff[1]:.4f} dex")
    return "\n".join(lines)


def main() -> None:
    args = _args()
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times, t0 = {}, time.perf_counter()
    data = {s: _synth(out, s, args) for s in ("sdss", "legacy")}
    times["synth_s"] = time.perf_counter() - t0
    bundles = {}
    for survey in ("sdss", "legacy"):
        t = time.perf_counter()
        bundles[survey] = _train(data[survey], out / f"run-{survey}", args)
        times[f"train_{survey}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tables = {
        "SDSS model -> SDSS images (in domain)": _predict(bundles["sdss"], data["sdss"]),
        "SDSS model -> Legacy images (transfer)": _predict(bundles["sdss"], data["legacy"]),
        "Legacy model -> Legacy images": _predict(bundles["legacy"], data["legacy"]),
    }
    times["predict_s"] = time.perf_counter() - t
    for name, table in tables.items():
        table.to_parquet(out / (name.split(" (")[0].replace(" -> ", "_on_").replace(" ", "_") + ".parquet"))
    ids = [t["objID"].to_numpy() for t in tables.values()]
    assert all(np.array_equal(np.sort(ids[1]), np.sort(i)) for i in ids), "the three test splits differ"
    idx = _boot_idx(len(ids[1]), args)
    rows = {name: _score(t.sort_values("objID").reset_index(drop=True), idx) for name, t in tables.items()}
    names = list(rows)
    diff = _paired(rows[names[1]], rows[names[2]], idx)
    times["total_s"] = time.perf_counter() - t0
    print(_table(rows, diff))
    print("times:", {k: round(v, 1) for k, v in times.items()})
    print("machine:", platform.platform(), platform.processor() or platform.machine(), f"{os.cpu_count()} CPUs")
    result = {k: {kk: vv for kk, vv in v.items() if kk != "_resid"} for k, v in rows.items()}
    result["rmse_change"] = {"value": diff[0], "se": diff[1]}
    result["times"] = times
    result["args"] = vars(args)
    (out / "results.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
