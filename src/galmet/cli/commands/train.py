"""``galmet train``: train the paper's CNN on a dataset directory (see docs/training.md)."""

from __future__ import annotations

NAME = "train"
ORDER = 40
HELP = "train the CNN (paper recipe by default) and write a run directory with the model bundle"
DESCRIPTION = """\
Train on the dataset's 'train' rows and validate on its 'valid' rows (carved out of 'train'
when the catalog has none; 'test' rows are never read). Writes RUN/config.yaml, history.csv,
checkpoint.pt (every epoch) and the final model bundle RUN/model.pt.

With --folds K (for small sets, a few hundred galaxies): K-fold cross-validation instead. The
train and valid rows are dealt into K folds (seeded by --split-seed); RUN/fold<k>/ trains on
the other folds and validates on fold k; RUN/oof.parquet holds every galaxy's out-of-fold
prediction, RUN/cv.json their RMSE/NMAD/bias, and RUN/model.pt the ensemble of the K models,
which 'galmet predict RUN ...' uses like any bundle.

Recipes:
  paper     (default) 2 epochs body frozen at lr 0.1, then lrs 1e-3/1e-2/1e-2 with SGDR cycles
            of 1, 1, 2, 4 epochs (10 epochs); AdamW, RMSE loss, batch 256, dihedral + zoom 1.1.
  onecycle  from scratch: OneCycleLR over --epochs (default 30) at max lr 3e-3.

Examples:
  galmet train DATASET --out runs/paper                       # the paper (needs ImageNet weights)
  galmet train DATASET --out runs/scratch --recipe onecycle --weights none --epochs 40
  galmet train DATASET --out runs/paper --resume              # continue an interrupted run
  galmet train DATASET --out runs/cv --recipe onecycle --weights none --arch resnet18 \
      --epochs 40 --batch-size 32 --crop 64 --folds 5         # the real-sample recipe (docs/training.md)
  torchrun --nproc_per_node=4 -m galmet train DATASET --out runs/ddp   # DistributedDataParallel
"""

#: CLI option -> TrainConfig field, for options whose value is copied as is.
_FIELDS = {
    "recipe": "recipe", "target": "targets", "arch": "arch", "weights": "weights", "epochs": "epochs",
    "frozen_epochs": "frozen_epochs", "cycles": "cycles", "lr": "lr", "frozen_lr": "frozen_lr",
    "weight_decay": "weight_decay", "batch_size": "batch_size", "size": "size", "crop": "crop", "max_zoom": "max_zoom",
    "seed": "seed", "valid_fraction": "valid_fraction", "split_seed": "split_seed", "device": "device",
    "workers": "workers", "compile": "compile", "skip_bad": "skip_bad",
}


def add_arguments(p) -> None:
    from galmet.columns import ARCHS
    from galmet.training.config import DEVICES, RECIPES

    p.add_argument("dataset", help="dataset directory (catalog + images/)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory to write")
    p.add_argument("--config", metavar="YAML", help="start from a saved config.yaml (options below override it)")
    p.add_argument("--recipe", choices=RECIPES, help="learning-rate recipe (default: paper)")
    p.add_argument("--target", action="append", metavar="COLUMN",
                   help="catalog column to regress; repeat for several (default: oh_p50)")
    p.add_argument("--arch", choices=ARCHS, help="ResNet body (default: resnet34)")
    p.add_argument("--weights", metavar="imagenet|none|PATH", help="initial body weights (default: imagenet)")
    p.add_argument("--epochs", type=int, help="total epochs (paper: fixed by --frozen-epochs/--cycles = 10; onecycle: 30)")
    p.add_argument("--frozen-epochs", type=int, help="paper: epochs with the body frozen (default 2)")
    p.add_argument("--cycles", type=int, nargs="+", metavar="N", help="paper: SGDR cycle lengths in epochs (default 1 1 2 4)")
    p.add_argument("--lr", type=float, nargs="+", metavar="LR",
                   help="max lr: 1 value for every layer group or 3 (paper default 1e-3 1e-2 1e-2; onecycle 3e-3)")
    p.add_argument("--frozen-lr", type=float, help="paper: lr of the frozen epochs (default 0.1)")
    p.add_argument("--weight-decay", type=float, help="AdamW decoupled weight decay (default 0.01)")
    p.add_argument("--batch-size", type=int, help="global batch size (default 256)")
    p.add_argument("--size", type=int, help="required image size in pixels (default: the dataset's)")
    p.add_argument("--crop", type=int, metavar="N",
                   help="train and predict on the central N x N pixels (default: the whole image)")
    p.add_argument("--max-zoom", type=float, help="random zoom up to this factor, then crop (default 1.1; 1 = off)")
    p.add_argument("--no-dihedral", action="store_true", help="no random rotations/flips")
    p.add_argument("--no-standardize", action="store_true", help="train on raw target values (not (y-mean)/std)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--valid-fraction", type=float, help="fraction of train rows made 'valid' when the catalog has none (0.2)")
    p.add_argument("--split-seed", type=int, help="seed of that split (default 0)")
    p.add_argument("--device", choices=DEVICES, help="where to train (default: auto)")
    p.add_argument("--workers", type=int, help="DataLoader workers when images are read from the memory map (default 0)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--skip-bad", action="store_true", default=None, help="drop bad rows instead of failing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--folds", type=int, metavar="K",
                   help="K-fold cross-validation: train K models, each validated on one fold of the train rows, "
                        "score their out-of-fold predictions and save their ensemble as RUN/model.pt")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in RUN")


def config_from_args(args):
    """The TrainConfig the options describe (on top of ``--config`` when given)."""
    import dataclasses

    from galmet.training.config import load_config, TrainConfig

    base = load_config(args.config) if args.config else TrainConfig()
    changes = {field: getattr(args, opt) for opt, field in _FIELDS.items() if getattr(args, opt, None) is not None}
    if args.no_dihedral:
        changes["dihedral"] = False
    if args.no_standardize:
        changes["standardize_targets"] = False
    if args.no_amp:
        changes["amp"] = False
    if args.no_progress:
        changes["progress"] = False
    return dataclasses.replace(base, **changes), changes


def run(args) -> int:
    import os
    from pathlib import Path

    from galmet.layout import CONFIG as CONFIG_NAME
    from galmet.training.loop import train
    from galmet.training.config import load_config, RUNTIME_FIELDS

    config, changes = config_from_args(args)
    if args.resume and not args.config:
        # Resume with the run's own settings; only runtime options may be given again.
        saved = Path(args.out) / ("fold0" if args.folds else "") / CONFIG_NAME
        if saved.is_file():
            import dataclasses

            config = dataclasses.replace(load_config(saved), **{k: v for k, v in changes.items() if k in RUNTIME_FIELDS})
            other = {k: v for k, v in changes.items() if k not in RUNTIME_FIELDS}
            if other:
                config = dataclasses.replace(config, **other)  # train() reports the mismatch
    if args.folds is not None:
        return _run_folds(args, config)
    result = train(args.dataset, args.out, config, resume=args.resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        first = config.targets[0] if config.targets else "target"
        print(f"model bundle: {result.bundle_path}")
        print(f"valid RMSE ({first}): final {result.final_valid_rmse:.4f}, best {result.best_valid_rmse:.4f} "
              f"after {len(result.history)} epochs; history: {result.run_dir / 'history.csv'}")
    return 0


def _run_folds(args, config) -> int:
    from galmet.layout import CV_SCORES as CV_NAME, OOF as OOF_NAME
    from galmet.science.crossval import cross_validate

    result = cross_validate(args.dataset, args.out, config, folds=args.folds, resume=args.resume,
                            overwrite=args.overwrite)
    s = result.scores
    print(f"{s['folds']}-fold cross-validation on {s['n']} galaxies (out-of-fold, TTA x8):")
    for target, m in s["targets"].items():
        folds = ", ".join(f"{v:.4f}" for v in m["rmse_per_fold"])
        print(f"  {target}: RMSE {m['rmse']:.4f} +- {m['rmse_fold_sem']:.4f}, NMAD {m['nmad']:.4f}, "
              f"bias {m['bias']:+.4f} (folds: {folds})")
    print(f"ensemble bundle of the {s['folds']} fold models: {result.bundle_path}")
    print(f"out-of-fold predictions: {result.run_dir / OOF_NAME}; scores: {result.run_dir / CV_NAME}")
    return 0
