"""``galmet systematics``: where the predictions are biased: binned residuals against galaxy properties."""

from __future__ import annotations

NAME = "systematics"
ORDER = 65
HELP = "bias and scatter of the residuals against every galaxy property, with bootstrap intervals"
DESCRIPTION = """\
Bin dZ = Z_pred - Z_true of a predictions file against every property the predictions and the
dataset's catalogue have: Z_true, Z_pred, redshift z, stellar mass lgm_tot_p50, inclination
(expAB_r), size (petroR50_r, petroR90_r), fibre magnitude (fiberMag_r), bptclass, the label's
1-sigma (oh_p84 - oh_p16)/2 and, for synthetic data, the latent truths (inclination_deg,
r_disk_arcsec, log_ssfr). MPA-JHU's sfr_tot_p50 / specsfr_tot_p50 are binned with a caveat: they
come from the same spectra as the label, so dZ correlates with them even for a perfect model.
Per equal-count bin: the bias (median dZ), scatter (NMAD) and RMSE with
seeded bootstrap intervals; per property, Spearman's rank correlation with dZ. Writes
OUT/systematics.csv, systematics.json and systematics.png/.pdf (one panel per property).

Example:
  galmet systematics runs/r1/predictions.parquet --dataset synth --out runs/r1/systematics
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out"}


def add_arguments(p) -> None:
    from galmet.cli.options import SEED, integer

    p.add_argument("predictions", metavar="PRED", help="predictions file (.parquet, .csv or .fits)")
    p.add_argument(
        "--dataset", required=True, metavar="DS", help="dataset directory whose catalogue has the properties"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--target", help="label column (default: oh_p50, or the file's only *_pred column)")
    p.add_argument("--split", default="test", help="split to analyse: train, valid, test or all (default: test)")
    p.add_argument("--bins", type=integer(2, 100), default=5, help="equal-count bins per property (default: 5)")
    p.add_argument(
        "--bootstrap", type=integer(10, 100_000), default=1000, help="bootstrap resamples per bin (default: 1000)"
    )
    p.add_argument("--min-count", type=integer(1, 10**9), default=10, help="fewest galaxies in a bin (default: 10)")
    p.add_argument("--seed", type=SEED, default=0, help="bootstrap seed (default: 0)")
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    from galmet.errors import ConfigError
    from galmet.runs.systematics import format_systematics, run_systematics

    if not 1 <= args.bins <= 50:
        raise ConfigError(f"--bins must be between 1 and 50, got {args.bins}")
    if not 10 <= args.bootstrap <= 100_000:
        raise ConfigError(f"--bootstrap must be between 10 and 100000, got {args.bootstrap}")
    if args.min_count < 2:
        raise ConfigError(f"--min-count must be at least 2, got {args.min_count}")
    res = run_systematics(
        args.predictions,
        args.dataset,
        args.out,
        args.target,
        None if args.split == "all" else args.split,
        args.bins,
        args.bootstrap,
        args.seed,
        args.min_count,
        overwrite=args.overwrite,
    )
    print(format_systematics(res))
    print(f"wrote {len(res['files'])} files to {args.out}")
    return 0
