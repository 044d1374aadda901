"""``galmet mzr``: the stellar-mass and MZR analysis written to a folder, with Figures 5 and 6."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from galmet.io.jsonfile import provenance, write_json
from galmet.io.locks import holds_folder_lock
from galmet.io.safety import check_output_dir, inputs_of
from galmet.io.tables import write_table
from galmet.layout import FIGURE_NAMES, MZR_BINS, MZR_JOINED, MZR_METRICS, artefact_kind
from galmet.science.mzr import MASS, Z, mzr_analysis
from galmet.science.plots.mass import plot_mass
from galmet.science.plots.mzr import plot_mzr
from galmet.science.plots.style import require_matplotlib, save_figure


def check_mzr_outputs(
    out_dir, formats, metallicity=None, mass=None, dataset=None, rf=None, overwrite: bool = False
) -> None:
    """Refuse (one line) an ``out_dir`` where an output would replace an input, a file of another
    kind or (without ``overwrite``) a file galmet did not write, or that is a file or sits under
    one; touches nothing."""
    require_matplotlib()
    inputs = inputs_of(metallicity, "the --metallicity predictions") + inputs_of(mass, "the --mass predictions")
    inputs += inputs_of(dataset, "the dataset") + inputs_of(rf, "the --rf predictions")
    files = [(MZR_METRICS, "json"), (MZR_BINS, "csv"), (MZR_JOINED, "parquet")]
    files += [(f"{FIGURE_NAMES[k]}.{fmt}", fmt) for k in (5, 6) for fmt in formats]
    named = [(n, f, artefact_kind(n) or "figure") for n, f in files]
    check_output_dir(out_dir, "out_dir", named, inputs, overwrite=overwrite)


@holds_folder_lock("out_dir", "'galmet mzr'")
def run_mzr(
    metallicity,
    mass,
    out_dir: str | os.PathLike,
    dataset=None,
    split: str | None = "test",
    bin_width: float = 0.2,
    formats=("png", "pdf"),
    rf=None,
    ssfr: str | None = None,
    relation: str = "tremonti",
    use_rf: bool = True,
    style: str = "paper",
    overwrite: bool = False,
) -> dict:
    """Compute :func:`mzr_analysis` and write it to ``out_dir``.

    Files: ``mzr_metrics.json`` (with the null tests), ``mzr_bins.csv`` (Z_pred and Z_true
    statistics per mass bin, and the per-bin null test), ``mzr_joined.parquet`` and Figures 5
    and 6 (``fig5_mass``, ``fig6_mzr``, PNG + PDF; Fig 6 in ``style``). Every input is read and
    every number computed before the first file is written. Returns the analysis dict with
    ``files`` added.
    """
    out = Path(out_dir)
    check_mzr_outputs(out, formats, metallicity, mass, dataset, rf, overwrite=overwrite)
    res = mzr_analysis(metallicity, mass, dataset, split, bin_width, rf=rf, ssfr=ssfr, relation=relation, use_rf=use_rf)
    j = res["joined"]
    both = res["bins"].merge(
        res["bins_true"][["center", "count", "median", "rmse", "nmad", "std", "rmse_mzr", "nmad_mzr"]],
        on="center",
        suffixes=("_pred", "_true"),
    )
    both = both.merge(res["null_bins"].drop(columns=["count"]), on="center", how="left")
    files = [write_table(both, out / MZR_BINS), write_table(j, out / MZR_JOINED)]
    meta = dict(res["metrics"])
    for name, src in (("metallicity", metallicity), ("mass", mass), ("rf", rf)):
        if src is not None and not isinstance(src, pd.DataFrame):
            meta[f"{name}_predictions"] = provenance(src)
    if dataset is not None and not isinstance(dataset, pd.DataFrame):
        meta["dataset"] = str(Path(getattr(dataset, "root", dataset)).resolve())
    files.append(write_json(out / MZR_METRICS, meta))
    files += save_figure(plot_mass(j[MASS], j[f"{MASS}_pred"], j[Z], j["z_mzr"]), out / FIGURE_NAMES[5], formats)
    fig6 = plot_mzr(
        j[MASS], j[f"{Z}_pred"], res["bins"], z_true=j[Z], bin_width=bin_width, relation=res["relation"], style=style
    )
    files += save_figure(fig6, out / FIGURE_NAMES[6], formats)
    res["files"] = files
    return res
