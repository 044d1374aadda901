"""``galmet baseline``: random forest on magnitudes and the constant-mean predictor."""

from __future__ import annotations

NAME = "baseline"
ORDER = 62
HELP = "random-forest (magnitudes) and constant-mean baselines, scored on the test split"
DESCRIPTION = """\
Fit a scikit-learn RandomForestRegressor (the authors' settings: 40 trees, min_samples_leaf 8,
every feature at each split) on the catalog's modelMag_<band> magnitudes (the paper: gri,
test RMSE 0.130 dex; Acquaviva 2016: ugriz) using the train + valid rows, and
predict every row; also the constant predictor (train + valid mean). Writes, in --out:
  rf_<bands>_predictions.parquet   predictions table in the 'galmet predict' format
  constant_predictions.parquet     the same for the constant-mean predictor
  baseline_metrics.json            test-set metrics of both, settings, provenance
and prints the test-set metrics. Score either file with 'galmet evaluate'. A dataset without
the magnitude columns (objIDs and labels only, as the real SDSS sample) gets the constant mean
only, with one line naming the missing columns; 'galmet catalog --objids' looks them up.

Example:
  galmet baseline data/synth --bands gri --out runs/baseline
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out"}


def add_arguments(p) -> None:
    from galmet.cli.options import SEED, integer

    p.add_argument("dataset", help="dataset directory (the random forest needs modelMag_<band> columns)")
    p.add_argument("--bands", default="gri", help="magnitudes to use: gri (paper) or ugriz (default: gri)")
    p.add_argument("--target", default="oh_p50", help="label column (default: oh_p50)")
    p.add_argument("--out", default="baseline", help="output directory (default: ./baseline)")
    p.add_argument(
        "--n-estimators", type=integer(1, 100_000), default=40, help="number of trees (default: 40, the authors')"
    )
    p.add_argument(
        "--min-samples-leaf",
        type=integer(1, 10**9),
        default=8,
        help="smallest leaf (default: 8, the authors', after Acquaviva 2016)",
    )
    p.add_argument("--seed", type=SEED, default=0, help="random seed of the forest, 0 to 2**32-1 (default: 0)")
    p.add_argument(
        "--jobs", type=integer(1, 1024, allow=(-1,)), default=-1, help="worker processes, -1 = all cores (default: -1)"
    )
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    from galmet.errors import ConfigError
    from galmet.runs.baseline import format_baselines, run_baselines
    from galmet.science.baseline import ForestConfig

    if args.n_estimators < 1 or args.min_samples_leaf < 1:
        raise ConfigError("--n-estimators and --min-samples-leaf must be at least 1")
    config = ForestConfig(args.n_estimators, args.min_samples_leaf, args.seed, args.jobs)
    result = run_baselines(args.dataset, args.out, args.bands, args.target, config, overwrite=args.overwrite)
    print(format_baselines(result))
    written = [result["files"][k] for k in ("rf", "constant") if k in result["files"]]
    print(f"wrote {', '.join(written)} and {args.out}/baseline_metrics.json")
    return 0
