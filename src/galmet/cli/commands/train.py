"""``galmet train``: train the paper's CNN on a dataset directory (see docs/training.md)."""

from __future__ import annotations

NAME = "train"
ORDER = 40
HELP = "train the CNN (paper recipe by default) and write a run directory with the model bundle"
DESCRIPTION = """\
Train on the dataset's 'train' rows and validate on its 'valid' rows (carved out of 'train'
when the catalog has none; 'test' rows are never read). Writes RUN/config.yaml, history.csv,
checkpoint.pt (every epoch; deleted once the run has finished unless --keep-checkpoint) and the
final model bundle RUN/model.pt.

With --folds K (for small sets, a few hundred galaxies): K-fold cross-validation instead. The
train and valid rows are dealt into K folds (seeded by --split-seed); RUN/fold<k>/ trains on
the other folds and validates on fold k; RUN/oof.parquet holds every galaxy's out-of-fold
prediction, RUN/cv.json their RMSE/NMAD/bias, and RUN/model.pt the ensemble of the K models,
which 'galmet predict RUN ...' uses like any bundle. The ensemble is calibrated on the out-of-fold
residuals (split-conformal), so its predictions carry <target>_err and 68% / 95% intervals.

--loss gaussian trains a heteroscedastic head (a mean and a log-variance per target, beta-NLL
with --beta, default 0.5); its predictions add <target>_sigma, which calibration rescales.

Recipes:
  paper     (default; the paper's text) 2 epochs body frozen at lr 0.1, then lrs 1e-3/1e-2/1e-2
            with SGDR cycles of 1, 1, 2, 4 epochs (10 epochs); AdamW wd 0.01, RMSE loss, batch
            256; fastai 0.7's augmentation: dihedral, rotation up to 10 deg (p 0.75), lighting
            +-0.05, zoom 1.1.
  notebook  the authors' released code: batch 128, SGD momentum 0.9, lr 0.1 for every group, no
            weight decay; 2 frozen epochs and 1 unfrozen epoch at constant lr, then SGDR cycles
            of 1, 2, 4 epochs with fastai's warm-up (lr/100 for the first 1/20 of the first cycle).
  onecycle  from scratch: OneCycleLR over --epochs (default 30) at max lr 3e-3; dihedral + zoom.

Examples:
  galmet train DATASET --out runs/paper                       # the paper (needs ImageNet weights)
  galmet train DATASET --out runs/nb --recipe notebook        # the authors' released notebook
  galmet train DATASET --out runs/scratch --recipe onecycle --weights none --epochs 40
  galmet train DATASET --out runs/paper --resume              # continue an interrupted run
  # the real-sample recipe (docs/training.md):
  galmet train DATASET --out runs/cv --recipe onecycle --weights none --arch resnet18 \\
      --epochs 40 --batch-size 32 --crop 64 --folds 5
  torchrun --nproc_per_node=4 -m galmet train DATASET --out runs/ddp   # DistributedDataParallel
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out", "fold_seed": "--split-seed"}


def add_arguments(p) -> None:
    from galmet.cli.options import add_training_options, integer

    p.add_argument("dataset", help="dataset directory (catalog + images/)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory to write")
    add_training_options(p, schedule=True)
    g = p.add_argument_group("run")
    g.add_argument(
        "--folds",
        type=integer(),  # the library says "at least 2" or "too few rows for K folds"
        metavar="K",
        help="K-fold cross-validation: train K models, each validated on one fold of the train rows, "
        "score their out-of-fold predictions and save their ensemble as RUN/model.pt",
    )
    g.add_argument("--resume", action="store_true", help="continue the run in RUN from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace a run already in RUN")
    g.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep checkpoint.pt (optimizer and scheduler state, about twice the model) once the run has "
        "finished; by default it is deleted then (an interrupted run keeps it, so --resume works either way)",
    )


def run(args) -> int:
    from pathlib import Path

    from galmet._env import env_int
    from galmet.cli.options import config_from_args
    from galmet.layout import CONFIG, HISTORY, fold_dir
    from galmet.training.config import RUNTIME_FIELDS, load_config
    from galmet.training.loop import train

    config, changes = config_from_args(args)
    _check_inputs(args)
    if args.resume and not args.config:
        # Resume with the run's own settings; only runtime options may be given again.
        saved = Path(args.out) / (fold_dir(0) if args.folds else "") / CONFIG
        if saved.is_file():
            import dataclasses

            config = dataclasses.replace(
                load_config(saved, saved_run=True), **{k: v for k, v in changes.items() if k in RUNTIME_FIELDS}
            )
            other = {k: v for k, v in changes.items() if k not in RUNTIME_FIELDS}
            if other:
                config = dataclasses.replace(config, **other)  # train() reports the mismatch
    if args.folds is not None:
        return _run_folds(args, config)
    result = train(
        args.dataset,
        args.out,
        config,
        resume=args.resume,
        overwrite=args.overwrite,
        keep_checkpoint=args.keep_checkpoint,
    )
    if env_int("RANK", 0) == 0:
        first = config.targets[0] if config.targets else "target"
        print(f"model bundle: {result.bundle_path}")
        print(
            f"valid RMSE ({first}): final {result.final_valid_rmse:.4f}, best {result.best_valid_rmse:.4f} "
            f"after {len(result.history)} epochs; history: {result.run_dir / HISTORY}"
        )
    return 0


def _check_inputs(args) -> None:
    """Refuse an --out whose run files would replace the dataset's files or the --config file
    (a resumed run may read its own config.yaml)."""
    from pathlib import Path

    from galmet.io.safety import Input, check_not_inputs, dataset_inputs
    from galmet.layout import RUN_FILES

    inputs = dataset_inputs(args.dataset)
    if args.config and not args.resume:
        inputs.append(Input(Path(args.config), "the --config file (copy it elsewhere first)"))
    check_not_inputs([Path(args.out) / name for name in RUN_FILES], "--out", inputs)


def _run_folds(args, config) -> int:
    from galmet.layout import CV_SCORES, OOF
    from galmet.runs.crossval import cross_validate

    result = cross_validate(
        args.dataset,
        args.out,
        config,
        folds=args.folds,
        resume=args.resume,
        overwrite=args.overwrite,
        keep_checkpoint=args.keep_checkpoint,
    )
    _print_scores(result.scores)
    print(f"ensemble bundle of the {result.scores['folds']} fold models: {result.bundle_path}")
    print(f"out-of-fold predictions: {result.run_dir / OOF}; scores: {result.run_dir / CV_SCORES}")
    return 0


def _print_scores(s: dict) -> None:
    """Print the out-of-fold RMSE, NMAD and bias of each target (``cv.json``) with their 95% intervals."""
    from galmet.science.metrics import format_interval

    print(f"{s['folds']}-fold cross-validation on {s['n']} galaxies (out-of-fold, TTA x8):")
    for target, m in s["targets"].items():
        folds = ", ".join(f"{v:.4f}" for v in m["rmse_per_fold"])
        boot = m.get("intervals") or {}
        print(
            f"  {target}: RMSE {m['rmse']:.4f} {format_interval(boot.get('rmse'))} "
            f"(fold SEM {m['rmse_fold_sem']:.4f}), "
            f"NMAD {m['nmad']:.4f} {format_interval(boot.get('nmad'))}, "
            f"bias {m['bias']:+.4f} {format_interval(boot.get('bias'), signed=True)} (folds: {folds})"
        )
        if boot:
            print(f"  [95% percentile bootstrap intervals over the {s['n']} galaxies, {boot['n_boot']} resamples]")
        if "calibration" in m:
            print(f"  calibrated on the out-of-fold residuals: {m['calibration']}")
