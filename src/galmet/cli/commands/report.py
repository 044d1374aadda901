"""``galmet report``: one self-contained HTML file with metrics, figures, config and provenance."""

from __future__ import annotations

NAME = "report"
ORDER = 70
HELP = "write a self-contained HTML report (metrics vs the paper, figures, config, provenance)"
DESCRIPTION = """\
Collect what the other commands wrote under RUN_OR_DIR (searched three levels deep) into one
HTML file with no external references (figures embedded as PNG):
  metrics*.json (galmet evaluate --json), or predictions.parquet|csv scored on the spot
  baseline_metrics.json (galmet baseline), resolution.csv + resolution.json
  (galmet resolution-study), mzr_metrics.json (galmet mzr), *.png figures,
  config.yaml and history.csv (galmet train)
The paper's numbers are shown beside ours.

Example:
  galmet evaluate runs/r1/predictions.parquet --json runs/r1/metrics.json
  galmet figures runs/r1/predictions.parquet --dataset data/synth --out runs/r1/figures
  galmet report runs/r1 --out runs/r1/report.html
"""


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_OR_DIR", help="run directory or any folder holding galmet outputs")
    p.add_argument("--out", help="HTML file to write (default: RUN_OR_DIR/report.html)")
    p.add_argument("--title", help="report title (default: the folder name)")


def run(args) -> int:
    from pathlib import Path

    from galmet.errors import ConfigError
    from galmet.io.safety import Input, check_output_file
    from galmet.layout import REPORT

    out = Path(args.out) if args.out else Path(args.run_dir) / REPORT
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {out}: the report is HTML; give a file name ending in .html")
    read = (".json", ".csv", ".parquet", ".png", ".yaml", ".fits")
    check_output_file(
        out, "--out", "html", "report", [Input(Path(args.run_dir), "a file the report reads", True, read)]
    )
    from galmet.science.runs.report import write_report

    path = write_report(args.run_dir, args.out, args.title)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
