"""``galmet domain-check``: how distinguishable a target set of images is from a training set."""

from __future__ import annotations

NAME = "domain-check"
ORDER = 57
PARAM_FLAGS = {"n_boot": "--bootstrap"}
HELP = "how distinguishable a target set of images is from the training set (AUC), with importance weights"
DESCRIPTION = """\
Train a classifier to tell TARGET's images from TRAIN's (default: its train and valid rows) by
hand-made image statistics (sky level and noise, noise correlation, colours, concentration,
extent, saturation: galmet.data.image_stats) and report its cross-validated ROC AUC with a 95%
bootstrap interval: 0.5 means the target looks like the training images; near 1 means a model
trained on TRAIN extrapolates on TARGET, and its flags and error bars cannot be trusted there.
--out writes per galaxy: objID (or file), set (train|target), p_target (out-of-fold probability
of being a target galaxy) and importance_weight = p/(1-p) * n_train/n_target (clipped to
0.01-100), the weights of weighted conformal error bars under covariate shift
(Tibshirani et al. 2019).

Example:
  galmet domain-check data/synth ../shared/data/sdss_sample --out weights.parquet
"""


def add_arguments(p) -> None:
    from galmet.cli.options import add_overwrite_option, add_progress_option, integer

    p.add_argument("train", help="the training dataset (a dataset directory or folder of images)")
    p.add_argument("target", help="the dataset to compare with it")
    p.add_argument("--out", metavar="TABLE", help="per-galaxy table: .parquet, .csv or .fits")
    p.add_argument("--train-split", nargs="+", metavar="SPLIT", help="rows of TRAIN to use (default: train valid)")
    p.add_argument("--target-split", nargs="+", metavar="SPLIT", help="rows of TARGET to use (default: all)")
    p.add_argument(
        "--bootstrap", type=integer(0, 100_000), default=1000, help="resamples of the AUC interval (default: 1000)"
    )
    p.add_argument("--seed", type=integer(0, 2**31 - 1), default=0, help="folds, classifier, bootstrap (default: 0)")
    p.add_argument("--skip-bad", action="store_true", help="drop unreadable/wrong-size images instead of failing")
    add_progress_option(p)
    add_overwrite_option(p)


def run(args) -> int:
    from galmet.runs.domain_check import run_domain_check
    from galmet.science.domain import describe

    check, _ = run_domain_check(
        args.train,
        args.target,
        args.out,
        train_split=args.train_split,
        target_split=args.target_split,
        n_boot=args.bootstrap,
        seed=args.seed,
        skip_bad=args.skip_bad,
        overwrite=args.overwrite,
    )
    print(describe(check))
    if args.out:
        n = check.n_train + check.n_target
        print(f"wrote {n} rows (objID or file, set, p_target, importance_weight) to {args.out}")
    return 0
