"""``galmet evaluate``: metrics of a predictions file, with the paper's values beside ours."""

from __future__ import annotations

NAME = "evaluate"
ORDER = 60
HELP = "RMSE, NMAD, bias and outliers of a predictions file (paper's values beside ours)"
DESCRIPTION = """\
Read a predictions file (parquet/CSV/FITS as written by 'galmet predict' or 'galmet baseline')
and print RMSE, NMAD = 1.4826 median(|dZ - median dZ|), median bias, outlier fraction
(galmet's definition: |dZ| > 3 NMAD and |dZ| > 0.3 dex) and N, for one split. For oh_p50 the
paper's test-set values (RMSE 0.085, NMAD 0.067, bias -0.006 dex) are shown beside ours.
RMSE, NMAD and bias carry 68% and 95% percentile bootstrap intervals over the galaxies
(--bootstrap N resamples, default 2000, seed 0; --bootstrap 0 turns them off).
When the file lacks the truth column, --dataset joins it from a dataset's catalog by objID.
Files not written by galmet name their columns with --pred-col and --true-col (the authors'
files: --pred-col prediction --true-col oh_p50).
Rows the model saw (column seen of 'galmet predict': galaxies that trained or calibrated it) are
left out, and a line says how many; --include-seen scores them too.
Rows whose truth is missing or outside the label ranges (MPA-JHU's -9999) are left out and
counted.

When the predictions carry calibrated error bars (<target>_err, _lo68/_hi68/_lo95/_hi95: a
calibrated bundle), it also prints their coverage against the nominal 68% and 95% (with the
binomial standard error), the coverage per tercile of the truth, the mean interval width and
interval score, and the PIT histogram, CRPS and NLL of reading each as N(centre, err). With the
label's own percentiles (oh_p16, oh_p84) it prints how much of the squared error they explain.

Examples:
  galmet evaluate runs/r1/predictions.parquet
  galmet evaluate preds.csv --dataset ../shared/data/sdss_sample --json out/metrics.json
  galmet evaluate authors.csv --pred-col prediction --true-col oh_p50
"""


def add_arguments(p) -> None:
    p.add_argument("predictions", help="predictions file (.parquet, .csv or .fits)")
    p.add_argument("--target", help="label column (default: oh_p50, or the file's only *_pred column)")
    p.add_argument("--split", default="test", help="split to score: train, valid, test or all (default: test)")
    p.add_argument("--dataset", help="dataset directory to join the truth from, by objID")
    p.add_argument(
        "--pred-col",
        metavar="COLUMN",
        help="the file's prediction column, dex (default: <target>_pred, galmet's name)",
    )
    p.add_argument(
        "--true-col",
        metavar="COLUMN",
        help="the file's truth column, dex (default: <target>); it also names the target unless --target is given",
    )
    from galmet.cli.options import integer
    from galmet.science.metrics import MIN_BOOT

    p.add_argument(
        "--bootstrap",
        dest="n_boot",
        metavar="N",
        type=integer(MIN_BOOT, 1_000_000, allow=(0,)),
        default=2000,
        help=f"bootstrap resamples for the RMSE, NMAD and bias intervals (default 2000; 0: none; else >= {MIN_BOOT})",
    )
    p.add_argument(
        "--include-seen",
        action="store_true",
        help="also score rows the model trained on or was calibrated on (column seen; left out by default)",
    )
    p.add_argument("--json", dest="json_out", metavar="OUT", help="also write the metrics as JSON here (atomically)")
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    from galmet.runs.evaluate import evaluate_predictions
    from galmet.science.calibration import format_label_noise, format_uncertainty
    from galmet.science.metrics import format_metrics_table

    summary = evaluate_predictions(
        args.predictions,
        args.target,
        args.split,
        args.dataset,
        args.json_out,
        pred_col=args.pred_col,
        true_col=args.true_col,
        overwrite=args.overwrite,
        n_boot=args.n_boot,
        include_seen=args.include_seen,
    )
    print(format_metrics_table(summary))
    if "uncertainty" in summary:
        print(format_uncertainty(summary["uncertainty"], summary["target"]))
    if "label_noise" in summary:
        print(format_label_noise(summary["label_noise"], summary["target"]))
    if args.json_out:
        print(f"wrote {args.json_out}")
    return 0
