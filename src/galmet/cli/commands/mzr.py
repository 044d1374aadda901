"""``galmet mzr``: stellar mass, Z from the Tremonti MZR, the predicted MZR and its null tests (Figs 5, 6)."""

from __future__ import annotations

NAME = "mzr"
ORDER = 66
HELP = "mass-metallicity analysis with null tests, from metallicity and stellar-mass predictions (Figures 5, 6)"
DESCRIPTION = """\
Join a metallicity predictions file (oh_p50_pred) and a stellar-mass predictions file
(lgm_tot_p50_pred, from a CNN trained with --target lgm_tot_p50) on objID, then:
  - Z_MZR = Tremonti et al. (2004) Z(predicted mass) = -1.492 + 1.847 x - 0.08026 x^2 (the
    paper's Eq. 3), and its scatter against Z_true (paper: 0.12 dex; mass RMSE 0.22, NMAD 0.20
    dex); with --dataset also through the same quadratic re-fitted on the train split;
  - the predicted MZR: median Z_pred and the RMSE / NMAD of Z_pred - MZR(true mass) in 0.2 dex
    bins of true mass, against Tremonti's median +- 1 sigma (0.10 dex, measured on his DR2
    sample, not on this one);
  - null tests: the scatter a calibrated regressor with this RMSE is expected to show at fixed
    mass, sqrt(sigma(Z_true | M)^2 - RMSE^2); the predicted-MZR scatter of a photometry-only
    random forest on the same galaxies (--rf, or fitted on --dataset's gri magnitudes); and the
    partial correlations with the specific star-formation rate at fixed mass (--ssfr, or
    specsfr_tot_p50 / log_ssfr when present). A tight predicted MZR is expected of any
    calibrated regressor; only a scatter below that expectation, or residuals free of the sSFR
    dependence Z_true has, point to a "hidden variable" learned from the images. MPA-JHU's
    sSFR comes from the same spectra as Z_true (H-alpha, dust), so dZ correlates with it even
    for a perfect model: the output says so; compare with the forest's dZ.
Writes mzr_metrics.json, mzr_bins.csv, mzr_joined.parquet, fig5_mass.{png,pdf} and
fig6_mzr.{png,pdf} in --out. Truths missing from the files are joined from --dataset; truths
outside the label ranges (MPA-JHU's -9999) are left out and counted.

Example:
  galmet mzr --metallicity runs/z/predictions.parquet --mass runs/m/predictions.parquet \\
      --dataset data/synth --out mzr
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out"}


def add_arguments(p) -> None:
    from galmet.cli.options import number

    p.add_argument("--metallicity", required=True, metavar="PRED_Z", help="predictions file with oh_p50_pred")
    p.add_argument("--mass", required=True, metavar="PRED_M", help="predictions file with lgm_tot_p50_pred")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--dataset",
        help="dataset directory: missing truths (oh_p50, lgm_tot_p50), the sSFR column, the random forest's gri "
        "magnitudes and the train split of the re-fitted MZR",
    )
    p.add_argument("--split", default="test", help="split to analyse: train, valid, test or all (default: test)")
    p.add_argument(
        "--bin-width",
        type=number(0, 2, open_low=True),
        default=0.2,
        help="stellar-mass bin width, dex (default: 0.2)",
    )
    p.add_argument("--rf", metavar="PRED_RF", help="random-forest predictions of oh_p50 (galmet baseline's)")
    p.add_argument("--no-rf", action="store_true", help="no random-forest null test")
    p.add_argument("--ssfr", metavar="COLUMN", help="log sSFR column (default: specsfr_tot_p50 or log_ssfr if present)")
    p.add_argument(
        "--relation",
        choices=("tremonti", "refit"),
        default="tremonti",
        help="MZR the predicted MZR's scatter is measured about: the paper's Eq. 3 (default) or Eq. 3 re-fitted "
        "on --dataset's train split",
    )
    p.add_argument(
        "--style",
        choices=("paper", "galmet"),
        default="paper",
        help="Figure 6 as the paper drew it (default), or galmet's single panel with error bars",
    )
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    from galmet.errors import ConfigError
    from galmet.runs.mzr import run_mzr
    from galmet.science.mzr import format_mzr

    if args.rf and args.no_rf:
        raise ConfigError("--rf and --no-rf contradict each other")
    if args.relation == "refit" and not args.dataset:
        raise ConfigError("--relation refit needs --dataset (the MZR is re-fitted on its train split)")
    res = run_mzr(
        args.metallicity,
        args.mass,
        args.out,
        args.dataset,
        args.split,
        args.bin_width,
        rf=args.rf,
        ssfr=args.ssfr,
        relation=args.relation,
        use_rf=not args.no_rf,
        style=args.style,
        overwrite=args.overwrite,
    )
    print(format_mzr(res["metrics"]))
    print(f"wrote {len(res['files'])} files to {args.out}")
    return 0
