"""``galmet calibrate``: attach calibrated error bars (and out-of-domain statistics) to a model bundle."""

from __future__ import annotations

NAME = "calibrate"
ORDER = 47
HELP = "calibrate a model's error bars on held-out predictions; write a calibrated bundle"
DESCRIPTION = """\
Fit a split-conformal calibration of MODEL's predictions on PRED, a predictions table of
galaxies MODEL did not train on, with the truth: the out-of-fold predictions RUN/oof.parquet of
'galmet train --folds' (which already calibrates RUN/model.pt itself), or 'galmet predict' of an
ordinary run's valid rows. The new bundle --out predicts <target>_err (calibrated 1-sigma: half
the 68% interval) and the central 68% and 95% intervals <target>_lo68/_hi68/_lo95/_hi95, which
cover a new galaxy like the calibration galaxies with at least the nominal probability.

Methods (how each residual is scaled before its quantiles are taken):
  absolute  the same interval for every galaxy (default for the paper's RMSE head)
  spread    scaled by the spread of the TTA views / ensemble members (locally adaptive)
  sigma     scaled by the gaussian head's own sigma (default for --loss gaussian models)
--bins K|auto (default auto) makes the calibration Mondrian: the calibration galaxies are split
into K equal-count bins of their *predicted* value and each bin gets its own quantiles, so the
intervals cover the nominal fraction in every bin of predicted metallicity, not only on average
(auto: one bin per 100 galaxies, 1 to 5; --bins 1 is the pooled calibration).

--cv-plus auto|on|off: CV+ (Barber et al. 2021) for an ensemble of fold models calibrated on
their out-of-fold predictions: each interval is built from every member's own prediction with
the residuals of the galaxies that member did not see (auto: when MODEL is an ensemble and PRED's
fold column names exactly its members, as RUN/oof.parquet of 'galmet train --folds' does).

--weights W (the table 'galmet domain-check TRAIN TARGET --out W' writes) makes the calibration
weighted for a covariate shift (Tibshirani et al. 2019): each calibration galaxy counts with its
importance weight (joined by objID, else file; every calibration row needs one), and a new galaxy
with one test weight, --test-weight X (default: the mean weight of W's target rows): intervals
for galaxies like TARGET rather than like the calibration set. Not combined with CV+ (--cv-plus
auto turns it off; on is refused).

Intervals come from the two tails of the signed residuals (absorbing a bias of the predictions),
or, with --symmetric, from their absolute values.

Whatever PRED's split column says, the galaxies that trained MODEL (its bundle records them)
are left out, and a line says how many; a table of only such galaxies is refused. Test rows are
refused unless --allow-test-rows ('galmet evaluate' scores coverage on the test rows, which are
then not held-out). The new bundle records which galaxies calibrated it: 'galmet predict' marks
them (column seen) and 'galmet evaluate' leaves them out.

--reference DATASET also (re)computes the training-domain statistics of the bundle from
DATASET's train and valid rows (the penultimate-layer embeddings behind the out-of-domain flag,
and the label range), for bundles trained before galmet stored them.

Examples:
  galmet calibrate runs/r1 runs/r1/valid_pred.parquet --out runs/r1/model_cal.pt
  galmet calibrate cv/model.pt cv/oof.parquet --out cv/model_spread.pt --method spread
"""

#: library parameter -> flag: the bundle's training loss is the ``train --loss`` option.
PARAM_FLAGS = {"loss": "--loss", "allow_test": "--allow-test-rows"}


def add_arguments(p) -> None:
    from galmet.cli.options import add_device_option, number
    from galmet.nn.uncertainty import METHODS

    p.add_argument(
        "model", help="model bundle (model.pt), a run directory holding one, or a model name (galmet models)"
    )
    p.add_argument(
        "predictions", metavar="PRED", help="held-out predictions of MODEL with the truth (.parquet/.csv/.fits)"
    )
    p.add_argument("--out", required=True, metavar="MODEL2", help="the calibrated bundle to write (.pt, not MODEL)")
    p.add_argument("--method", default="auto", choices=("auto", *METHODS), help="residual scaling (default: auto)")
    p.add_argument(
        "--bins", default="auto", metavar="K|auto", help="Mondrian bins of the predicted value (default: auto)"
    )
    p.add_argument(
        "--cv-plus", default="auto", choices=("auto", "on", "off"), help="CV+ for a fold ensemble (default: auto)"
    )
    p.add_argument("--weights", metavar="W", help="importance weights from 'galmet domain-check --out' (weighted)")
    p.add_argument(
        "--test-weight",
        type=number(0, None, open_low=True),
        metavar="X",
        help="weight of a new galaxy with --weights (default: mean weight of W's target rows)",
    )
    p.add_argument("--symmetric", action="store_true", help="symmetric intervals from absolute residuals")
    p.add_argument(
        "--split",
        default="valid",
        help="rows of this split (default: valid; 'all': every row; train is refused, test needs --allow-test-rows)",
    )
    p.add_argument(
        "--allow-test-rows",
        action="store_true",
        help="calibrate on test rows too (refused by default): evaluate's numbers on them are then not held-out",
    )
    p.add_argument("--dataset", help="dataset directory to join the truth from, by objID")
    p.add_argument(
        "--offset", type=number(0, 10), help="added to the scale of spread/sigma (default: median spread / 0)"
    )
    p.add_argument("--reference", metavar="DATASET", help="recompute the out-of-domain statistics from this dataset")
    add_device_option(p, "auto", "where to embed --reference")
    from galmet.cli.options import add_progress_option

    add_progress_option(p)
    from galmet.cli.options import add_other_survey_option, add_overwrite_option

    add_overwrite_option(p)
    add_other_survey_option(p)


def run(args) -> int:
    from galmet.runs.calibrate import calibrate_bundle

    res = calibrate_bundle(
        args.model,
        args.predictions,
        args.out,
        method=args.method,
        symmetric=args.symmetric,
        split=None if args.split == "all" else args.split,
        dataset=args.dataset,
        reference=args.reference,
        offset=args.offset,
        device=args.device,
        overwrite=args.overwrite,
        allow_test=args.allow_test_rows,
        bins=args.bins,
        cv_plus=args.cv_plus,
        weights=args.weights,
        test_weight=args.test_weight,
        allow_other_survey=args.allow_other_survey,
    )
    for line in res["calibrations"].values():
        print(line)
    print(f"wrote {res['out']}")
    return 0
