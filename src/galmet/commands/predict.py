"""``galmet predict``: run a model bundle over a dataset, an image folder, or one sky position."""

from __future__ import annotations

import argparse
import logging
import time

NAME = "predict"
ORDER = 50
HELP = "predict metallicity (or any trained target) for images with a model bundle, with TTA"
DESCRIPTION = """\
Load a model bundle (model.pt, or a training run directory holding one) and predict every
image of INPUT: a dataset directory (catalog + images/) or a plain folder of JPEG/PNG images.
Test-time augmentation (default) averages the 8 dihedral views (rotations by 90 degrees and
flips); <target>_pred_std is their spread (NaN with --no-tta). The output format follows the
suffix of --out (.parquet, .csv, .fits); it is written atomically.

Columns: objID (or file), split (dataset directories), <target>_pred, <target>_pred_std,
<target> (truth, when the catalog has it), and lgm_tot_p50/oh_p50/z/ra/dec when present.

With --ra/--dec instead of INPUT, the SDSS cutout at that position (the model's image size,
0.296 arcsec/pixel) is fetched from SkyServer and predicted (one output row).

Examples:
  galmet predict runs/r1/model.pt ../shared/data/sdss_sample --out preds.parquet --split test
  galmet predict runs/r1 my_cutouts/ --out preds.csv --no-tta --device cpu
  galmet predict runs/r1/model.pt --ra 185.0 --dec 15.8 --out one.csv
"""

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("model", help="model bundle (model.pt) or a run directory that holds one")
    p.add_argument("input", nargs="?", help="dataset directory or folder of images (omit with --ra/--dec)")
    p.add_argument("--out", required=True, help="predictions file: .parquet, .csv or .fits")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                   help="average the 8 dihedral views (default: on)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto = cuda when available)")
    p.add_argument("--split", nargs="+", metavar="SPLIT",
                   help="only these splits of a dataset directory (train, valid, test)")
    p.add_argument("--skip-bad", action="store_true", help="drop unreadable/wrong-size images instead of failing")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the decode cache images.npy")
    p.add_argument("--ra", type=float, help="right ascension of one galaxy, degrees (fetches its SDSS cutout)")
    p.add_argument("--dec", type=float, help="declination of one galaxy, degrees")
    p.add_argument("--base-url", help="SkyServer root for --ra/--dec (default: SDSS DR14)")
    p.add_argument("--scale", type=float, default=0.296, help="cutout arcsec/pixel for --ra/--dec (default: 0.296)")


def run(args) -> int:
    from galmet.errors import ConfigError
    from galmet.model import load_model, resolve_device
    from galmet.tables import TABLE_SUFFIXES, write_table

    if not any(args.out.lower().endswith(s) for s in TABLE_SUFFIXES):
        raise ConfigError(f"--out {args.out}: unknown table format (use .parquet, .csv or .fits)")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    position = args.ra is not None or args.dec is not None
    if position and (args.ra is None or args.dec is None):
        raise ConfigError("--ra and --dec go together")
    if position == (args.input is not None):
        raise ConfigError("give either INPUT (a dataset directory or image folder) or --ra/--dec, not both" if position
                          else "give INPUT (a dataset directory or image folder) or --ra/--dec")
    device = resolve_device(args.device)
    model = load_model(args.model)
    table, seconds = _predict_position(model, args, device) if position else _predict_input(model, args, device)
    write_table(table, args.out)
    mode = "TTA x8" if args.tta else "no TTA"
    print(f"wrote {len(table)} predictions of {', '.join(model.targets)} to {args.out} "
          f"({mode}, {device.type}, {len(table) / max(seconds, 1e-9):.0f} images/s)")
    _print_scores(table, model.targets)
    return 0


def _predict_input(model, args, device):
    """(predictions table, seconds spent predicting) for a dataset directory or image folder."""
    from galmet.data import load_dataset
    from galmet.errors import DataError
    from galmet.predict import predict_dataset

    ds = load_dataset(args.input, targets=[], on_error="skip" if args.skip_bad else "raise",
                      size=model.image_size, cache=not args.no_cache)
    if args.split:
        rows = ds.split_indices(args.split)
        if len(rows) == 0:
            raise DataError(f"{args.input}: no rows in split {', '.join(args.split)}")
        ds = ds.subset(rows)
    if ds.skipped:
        print(f"skipped {len(ds.skipped)} bad rows (first: {ds.skipped[0]})")
    t0 = time.perf_counter()
    table = predict_dataset(model, ds, tta=args.tta, batch_size=args.batch_size, device=device, progress=None)
    return table, time.perf_counter() - t0


def _predict_position(model, args, device):
    """(one-row predictions table, seconds spent predicting) for the cutout at --ra/--dec."""
    import numpy as np
    import pandas as pd

    from galmet import skyserver

    kwargs = {"base_url": args.base_url} if args.base_url else {}
    image = skyserver.fetch_cutout(args.ra, args.dec, scale=args.scale, size=model.image_size or 128, **kwargs)
    t0 = time.perf_counter()
    pred, std = model.predict(image[None], tta=args.tta, batch_size=1, device=device, return_std=True)
    seconds = time.perf_counter() - t0
    pred, std = np.reshape(pred, (1, -1)), np.reshape(std, (1, -1))
    table = pd.DataFrame({"ra": [args.ra], "dec": [args.dec]})
    for j, t in enumerate(model.targets):
        table[f"{t}_pred"] = pred[:, j]
        table[f"{t}_pred_std"] = std[:, j]
    return table, seconds


def _print_scores(table, targets) -> None:
    """RMSE per split for each target whose truth is in the table (a quick sanity check)."""
    import numpy as np

    from galmet.metrics import rmse

    for t in targets:
        if t not in table.columns:
            continue
        groups = table.groupby("split") if "split" in table.columns else [("all", table)]
        parts = []
        for split, g in groups:
            ok = np.isfinite(g[t].to_numpy(dtype=float))
            if ok.any():
                parts.append(f"{split} {rmse(g[f'{t}_pred'].to_numpy()[ok] - g[t].to_numpy(dtype=float)[ok]):.4f}"
                             f" (n={int(ok.sum())})")
        if parts:
            print(f"RMSE of {t}: " + ", ".join(parts))
