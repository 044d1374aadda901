"""``galmet figures``: the paper's figures from a predictions file."""

from __future__ import annotations

NAME = "figures"
ORDER = 64
HELP = "draw the paper's Figures 1-3 (and 4-6 when their inputs are given), PNG and PDF"
DESCRIPTION = """\
Draw from a predictions file (the 'galmet predict' format):
  fig1_image_grid     thumbnails: lowest/highest predicted, lowest/highest true, most under- and
                      over-predicted, random (needs --dataset for the images)
  fig2_histograms     Z_true and Z_pred, each in its own Freedman-Diaconis bins (the paper;
                      --hist-binning common: shared bins, at least 0.01 dex)
  fig3_pred_vs_true   2D histogram, running median, RMSE/NMAD bands in 0.1 dex bins of Z_true
                      from 8.2 to 9.2 (the paper's, for oh_p50; --fig3-binning adaptive),
                      one-to-one line, residual inset, binned RMSE/NMAD (marker area ~ counts)
                      and the global RMSE/NMAD as lines
  fig4_resolution     with --resolution DIR (a 'galmet resolution-study' output)
  fig5_mass, fig6_mzr with --mass PRED_M (stellar-mass predictions, lgm_tot_p50_pred); Fig 6 as
                      the paper drew it (--mzr-style galmet: the earlier single panel)
each as .png and .pdf in --out.

Example:
  galmet figures runs/r1/predictions.parquet --dataset ../shared/data/sdss_sample --out figs
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out"}


def add_arguments(p) -> None:
    from galmet.cli.options import SEED, integer

    p.add_argument("predictions", help="predictions file (.parquet, .csv or .fits)")
    p.add_argument("--dataset", help="dataset directory: images for Figure 1, truth when the file lacks it")
    p.add_argument("--out", default="figures", metavar="FIGDIR", help="output folder (default: ./figures)")
    p.add_argument("--target", help="label column (default: oh_p50, or the file's only *_pred column)")
    p.add_argument("--split", default="test", help="split to show: train, valid, test or all (default: test)")
    p.add_argument("--resolution", metavar="TABLE", help="resolution-study folder or table: adds Figure 4")
    p.add_argument("--mass", metavar="PRED_M", help="stellar-mass predictions file: adds Figures 5 and 6")
    p.add_argument("--thumbnails", type=integer(1, 20), default=6, help="thumbnails per row in Figure 1 (default: 6)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of Figure 1's random row (default: 0)")
    p.add_argument(
        "--format", action="append", choices=["png", "pdf", "svg"], help="file format(s) (default: png and pdf)"
    )
    p.add_argument(
        "--hist-binning",
        choices=("paper", "common"),
        default="paper",
        help="Figure 2: own Freedman-Diaconis bins per histogram (default, the paper) or common bins",
    )
    p.add_argument(
        "--fig3-binning",
        choices=("auto", "paper", "adaptive"),
        default="auto",
        help="Figure 3: the paper's 0.1 dex bins (auto: for oh_p50) or adaptive bins",
    )
    p.add_argument(
        "--mzr-style", choices=("paper", "galmet"), default="paper", help="Figure 6 style (default: the paper's)"
    )
    p.add_argument(
        "--relation",
        choices=("tremonti", "refit"),
        default="tremonti",
        help="Figure 6: MZR the scatter is measured about (Eq. 3, or re-fitted on --dataset's train split)",
    )
    from galmet.cli.options import add_progress_option

    add_progress_option(p)
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    from galmet.errors import ConfigError
    from galmet.runs.figures import make_figures

    if not 1 <= args.thumbnails <= 20:
        raise ConfigError(f"--thumbnails must be between 1 and 20, got {args.thumbnails}")
    if args.relation == "refit" and not (args.dataset and args.mass):
        raise ConfigError("--relation refit needs --mass (Figure 6) and --dataset (its train split is re-fitted)")
    formats = tuple(args.format or ("png", "pdf"))
    paths = make_figures(
        args.predictions,
        args.dataset,
        args.out,
        args.target,
        args.split,
        args.resolution,
        args.mass,
        formats,
        args.thumbnails,
        args.seed,
        hist_binning=args.hist_binning,
        fig3_binning=args.fig3_binning,
        mzr_style=args.mzr_style,
        relation=args.relation,
        overwrite=args.overwrite,
    )
    for p in paths:
        print(p)
    return 0
