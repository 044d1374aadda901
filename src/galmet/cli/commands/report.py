"""``galmet report``: one self-contained HTML file, one section per run."""

from __future__ import annotations

NAME = "report"
ORDER = 70
HELP = "write a self-contained HTML report: one section per run, headline with intervals, dataset, outliers"
DESCRIPTION = """\
Collect what the other commands wrote under each RUN_OR_DIR (searched three levels deep) into
one HTML file that needs nothing else (figures embedded as PNG, style inline), readable on a
phone. Each run gets its own section; a folder holding several run folders (e.g. a real-sample
run and a synthetic study) gives one section per run, never a merge. Per run:
  headline: the CNN's test RMSE against the baselines (galmet baseline) and, on synthetic data,
    the noise floor, with paired bootstrap intervals; on SDSS data the paper's numbers
  dataset: size, splits, label range and a mosaic (mosaic.png, or drawn from the dataset)
  metrics (galmet evaluate --json, or predictions scored on the spot), beside the paper's
    numbers on SDSS data only
  the 10 largest residuals, each SDSS objID linked to its SkyServer Explore page
  resolution study, MZR, systematics, controls, figures, training settings, provenance
Paths in the report are relative to it, so it can move with its folder.

Examples:
  galmet report runs/r1
  galmet report runs/real runs/synthetic --out reports/both.html
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_html": "--out"}


def add_arguments(p) -> None:
    p.add_argument(
        "run_dirs", nargs="+", metavar="RUN_OR_DIR", help="run directories or folders holding galmet outputs"
    )
    p.add_argument("--out", help="HTML file to write (default: RUN_OR_DIR/report.html; required for several)")
    p.add_argument("--title", help="report title (default: the run folders' names)")
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    from galmet.report.build import check_report_output, write_report

    check_report_output(args.run_dirs, args.out, args.overwrite)  # every option checked before anything is read
    path = write_report(args.run_dirs, args.out, args.title, overwrite=args.overwrite)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
