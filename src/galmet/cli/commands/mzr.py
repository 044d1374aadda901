"""``galmet mzr``: stellar mass, Z from the Tremonti MZR, and the predicted MZR (Figs 5, 6)."""

from __future__ import annotations

NAME = "mzr"
ORDER = 66
HELP = "mass-metallicity analysis from metallicity and stellar-mass predictions (Figures 5 and 6)"
DESCRIPTION = """\
Join a metallicity predictions file (oh_p50_pred) and a stellar-mass predictions file
(lgm_tot_p50_pred, from a CNN trained with --target lgm_tot_p50) on objID, then:
  - Z_MZR = Tremonti et al. (2004) Z(predicted mass) = -1.492 + 1.847 x - 0.08026 x^2, and its
    scatter against Z_true (paper: 0.12 dex; mass RMSE 0.22, NMAD 0.20 dex);
  - the predicted MZR: median Z_pred and its RMS / NMAD in 0.2 dex bins of true mass, against
    Tremonti's median +- 1 sigma (0.10 dex).
Writes mzr_metrics.json, mzr_bins.csv, mzr_joined.parquet, fig5_mass.{png,pdf} and
fig6_mzr.{png,pdf} in --out. Truths missing from the files are joined from --dataset.

Example:
  galmet mzr --metallicity runs/z/predictions.parquet --mass runs/m/predictions.parquet --out mzr
"""


def add_arguments(p) -> None:
    from galmet.cli.options import number

    p.add_argument("--metallicity", required=True, metavar="PRED_Z", help="predictions file with oh_p50_pred")
    p.add_argument("--mass", required=True, metavar="PRED_M", help="predictions file with lgm_tot_p50_pred")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--dataset", help="dataset directory to join missing truths (oh_p50, lgm_tot_p50) from")
    p.add_argument("--split", default="test", help="split to analyse: train, valid, test or all (default: test)")
    p.add_argument(
        "--bin-width",
        type=number(0, 2, open_low=True),
        default=0.2,
        help="stellar-mass bin width, dex (default: 0.2)",
    )


def run(args) -> int:
    from galmet.errors import ConfigError
    from galmet.science.mzr import format_mzr
    from galmet.science.runs.mzr import run_mzr

    if not 0 < args.bin_width <= 2:
        raise ConfigError(f"--bin-width must be in (0, 2] dex, got {args.bin_width}")
    res = run_mzr(args.metallicity, args.mass, args.out, args.dataset, args.split, args.bin_width)
    print(format_mzr(res["metrics"]))
    print(f"wrote {len(res['files'])} files to {args.out}")
    return 0
