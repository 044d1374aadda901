"""Restyle a paper figure through its Display: compute once, draw it your way, add your own layers.

    python examples/restyle_figure.py --out fig3_restyled.png [--predictions PRED.parquet]

With ``--predictions`` (a ``galmet predict`` table with ``oh_p50`` and ``oh_p50_pred``) the figure
shows your galaxies; without it, 2,000 made-up predictions stand in. The Display separates the
statistics (``display.stats``, ``display.rmse``) from the drawing, so the same numbers can be drawn
in other colours, into your own figure, and annotated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def predictions(path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(Z_true, Z_pred) in dex: from a predictions table, or a made-up set with 0.08 dex scatter."""
    if path is not None:
        from galmet.science.predictions import load_predictions

        table, target = load_predictions(path, "oh_p50")
        return table[target].to_numpy(float), table[f"{target}_pred"].to_numpy(float)
    rng = np.random.default_rng(0)
    z_true = rng.normal(8.9, 0.2, 2000)
    z_pred = 8.9 + 0.7 * (z_true - 8.9) + rng.normal(0, 0.08, z_true.size)  # regression to the mean, as CNNs do
    return z_true, z_pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predictions", type=Path, help="a predictions table (default: made-up predictions)")
    ap.add_argument("--out", type=Path, default=Path("fig3_restyled.png"), help="output image (.png or .pdf)")
    args = ap.parse_args()

    from galmet.science.plots.pred_vs_true import PredVsTrueDisplay
    from galmet.science.plots.style import save_figure

    z_true, z_pred = predictions(args.predictions)
    display = PredVsTrueDisplay.from_predictions(z_true, z_pred)  # computes the binned statistics once
    print(display.stats[["center", "count", "median", "rmse", "nmad"]].round(3).to_string(index=False))

    # Draw with other colours and a thicker median; every artist keeps the rest of its defaults.
    display.plot(
        median_kwargs={"color": "black", "linewidth": 3},
        rmse_kwargs={"color": "tab:purple"},
        nmad_kwargs={"color": "tab:green"},
        diagonal_kwargs={"color": "0.5"},
    )
    # The axes are there to annotate: mark the paper's high-metallicity threshold.
    display.ax_.axvline(9.1, color="tab:red", lw=1, ls=":")
    display.ax_.text(9.11, display.ax_.get_ylim()[1] - 0.05, "Z = 9.1", color="tab:red", fontsize=8, va="top")
    stem = args.out.with_suffix("")
    paths = save_figure(display.figure_, stem, formats=(args.out.suffix.lstrip(".") or "png",))
    print(f"RMSE {display.rmse:.3f} dex, NMAD {display.nmad:.3f} dex; wrote {paths[0]}")


if __name__ == "__main__":
    main()
