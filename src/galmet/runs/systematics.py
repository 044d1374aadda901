"""``galmet systematics``: binned bias and scatter of the residuals against every galaxy property.

Reads a predictions table, joins every property the dataset's catalogue has (redshift, mass,
``expAB_r``, sizes, fibre magnitude, BPT class, label percentiles, synthetic latent truths),
computes :func:`galmet.science.systematics.systematics` and writes::

    OUT/systematics.csv          one row per (property, bin): bias, scatter, RMSE and their intervals
    OUT/systematics.json         the settings, per-property trends (Spearman rho, largest bias), provenance
    OUT/systematics.png / .pdf   one panel per property
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from galmet.data.dataset import as_dataset
from galmet.data.labels import describe_exclusions
from galmet.io.atomic import atomic_write_text
from galmet.io.jsonfile import provenance, write_json
from galmet.io.locks import holds_folder_lock
from galmet.io.safety import check_output_dir, inputs_of
from galmet.layout import SYSTEMATICS_FIGURE, SYSTEMATICS_JSON, SYSTEMATICS_TABLE
from galmet.science.metrics import select_split
from galmet.science.plots.style import require_matplotlib, save_figure
from galmet.science.plots.systematics import SystematicsDisplay
from galmet.science.predictions import join_dataset, load_predictions
from galmet.science.systematics import PROPERTIES, systematics

log = logging.getLogger(__name__)


@holds_folder_lock("out_dir", "'galmet systematics'")
def run_systematics(
    predictions,
    dataset,
    out_dir: str | os.PathLike,
    target: str | None = None,
    split: str | None = "test",
    n_bins: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    min_count: int = 10,
    formats=("png", "pdf"),
    overwrite: bool = False,
) -> dict[str, Any]:
    """Compute, draw and write the systematics of a predictions table (see the module docstring).

    Files already at the output names that galmet did not write are replaced only with ``overwrite``.

    Returns
    -------
    dict
        The content of ``systematics.json`` plus ``files`` (the paths written).
    """
    out = Path(out_dir)
    expected = [(SYSTEMATICS_TABLE, "csv", "systematics table"), (SYSTEMATICS_JSON, "json", "systematics summary")]
    expected += [(f"{SYSTEMATICS_FIGURE}.{fmt}", fmt, "figure") for fmt in formats]
    inputs = inputs_of(predictions, "the predictions table") + inputs_of(dataset, "the dataset")
    check_output_dir(out, "out_dir", expected, inputs, overwrite=overwrite)
    require_matplotlib()
    ds = as_dataset(dataset, targets=[], load_images=False) if dataset is not None else None
    df, target = load_predictions(predictions, target, ds)
    if ds is not None:
        wanted = [c for c in ds.catalog.columns if c not in df.columns or df[c].isna().all()]
        df = join_dataset(df, ds, columns=wanted)
    df = select_split(df, split)
    result = systematics(df, target, n_bins=n_bins, n_boot=n_boot, seed=seed, min_count=min_count)
    for line in describe_exclusions(result.settings["excluded"]):
        log.warning("systematics: %s", line)
    display = SystematicsDisplay.from_result(result).plot()  # drawn before anything is written
    found = sorted(result.trends)
    missing = [c for c, _ in PROPERTIES if "{" not in c and c not in found]
    summary: dict[str, Any] = {
        **result.settings,
        "split": split or "all",
        "properties": found,
        "not_available": missing,
        "trends": result.trends,
    }
    if not hasattr(predictions, "columns"):
        summary["predictions"] = provenance(predictions)
    if ds is not None:
        summary["dataset"] = str(Path(ds.root).resolve())
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SYSTEMATICS_TABLE, result.table.to_csv(index=False))
    write_json(out / SYSTEMATICS_JSON, summary)
    files = [out / SYSTEMATICS_TABLE, out / SYSTEMATICS_JSON]
    files += save_figure(display.figure_, out / SYSTEMATICS_FIGURE, formats)
    summary["files"] = files
    return summary


def format_systematics(summary: dict[str, Any]) -> str:
    """Plain-text lines of the trends for the command line."""
    lines = [f"systematics of {summary['target']} on split {summary['split']} (N = {summary['n']}):"]
    for name, t in summary["trends"].items():
        worst = t.get("max_abs_bias", {})
        rho = (
            f"Spearman rho {t['spearman_rho']:+.2f} (p {t['spearman_p']:.2g})" if "spearman_rho" in t else "categorical"
        )
        bias = (
            f"largest bin bias {worst['bias']:+.3f} [{worst['bias_lo']:+.3f}, {worst['bias_hi']:+.3f}] "
            f"dex at {worst['lo']:.3g}-{worst['hi']:.3g} (n={worst['n']})"
            if worst
            else ""
        )
        lines.append(f"  {name:<18} {rho:<34} {bias}")
    if summary.get("not_available"):
        lines.append(f"  not in the data: {', '.join(summary['not_available'])}")
    caveats = {t["caveat"]: name for name, t in summary["trends"].items() if t.get("caveat")}
    lines += [f"  caveat ({name}): {text}" for text, name in caveats.items()]
    return "\n".join(lines)
