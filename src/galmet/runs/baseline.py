"""``galmet baseline``: fit the photometric baselines on a dataset and write their predictions and metrics."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from galmet.data.dataset import as_dataset
from galmet.io.jsonfile import write_json
from galmet.io.locks import holds_folder_lock
from galmet.io.safety import check_output_dir, inputs_of
from galmet.io.tables import write_table
from galmet.layout import BASELINE_METRICS, CONSTANT_PREDICTIONS, ORACLE_PREDICTIONS, rf_predictions
from galmet.paper import PAPER_RF_GRI_RMSE
from galmet.science.baseline import (
    ForestConfig,
    constant_baseline,
    has_image_observables,
    noise_floor,
    observable_oracle,
    parse_bands,
    random_forest_baseline,
    require_sklearn,
)
from galmet.science.metrics import summarize
from galmet.synthetic.physics import IMAGE_OBSERVABLES

log = logging.getLogger(__name__)


@holds_folder_lock("out_dir", "'galmet baseline'")
def run_baselines(
    dataset,
    out_dir: str | os.PathLike,
    bands: str = "gri",
    target: str = "oh_p50",
    config: ForestConfig | None = None,
    overwrite: bool = False,
) -> dict:
    """Fit both baselines on a dataset, write their predictions and metrics; return the metrics.

    Parameters
    ----------
    dataset : path-like or galmet.data.dataset.Dataset
        Needs ``target`` and a split (made if absent); the random forest also ``modelMag_<band>``
        columns: without them (the real sample's catalogue has none) only the constant mean is
        fitted and the forest is skipped with one log line naming the missing columns.
    out_dir : path-like
        Receives ``rf_<bands>_predictions.parquet``, ``constant_predictions.parquet`` and
        ``baseline_metrics.json`` (test-set metrics of both, config, provenance). For a synthetic
        set also ``oracle_predictions.parquet`` (:func:`~galmet.science.baseline.observable_oracle`)
        and, in the metrics, its noise floor on the test split.
    overwrite : bool
        Replace files at those names that galmet did not write.

    Returns
    -------
    dict
        ``{"rf": summary, "constant": summary, "bands": ..., "config": ..., "files": ...}``,
        each summary as :func:`galmet.science.metrics.summarize` on the test split; without
        magnitudes ``"rf"`` is None and ``"rf_skipped"`` says why.
    """
    bands = parse_bands(bands)
    files = [
        (rf_predictions(bands), "parquet", "predictions table"),
        (CONSTANT_PREDICTIONS, "parquet", "predictions table"),
        (BASELINE_METRICS, "json", "baseline metrics"),
    ]
    check_output_dir(
        out_dir, "out_dir", files, inputs_of(dataset, "the dataset"), overwrite=overwrite
    )  # before anything is read
    ds = as_dataset(dataset, targets=[target], load_images=False)
    catalog, where = ds.catalog, str(ds.root)
    skipped = _forest_skipped(catalog, bands, where)
    if skipped is None or has_image_observables(catalog):
        require_sklearn()
    out = Path(out_dir)
    config = config or ForestConfig()
    t0 = time.perf_counter()
    rf = None if skipped else random_forest_baseline(catalog, bands, target, config, where)
    rf_time = time.perf_counter() - t0
    const = constant_baseline(catalog, target, where)
    oracle = observable_oracle(catalog, target, config.seed, where) if has_image_observables(catalog) else None
    const_path = write_table(const, out / CONSTANT_PREDICTIONS)
    result: dict[str, Any] = {
        "target": target,
        "bands": bands,
        "dataset": str(Path(where).resolve()),
        "config": asdict(config),
        "fit_seconds": None if rf is None else rf_time,
        "rf": None if rf is None else summarize(rf, target, "test"),
        "constant": summarize(const, target, "test"),
        "files": {"constant": str(const_path)},
    }
    if rf is None:
        result["rf_skipped"] = skipped
    else:
        result["files"]["rf"] = str(write_table(rf, out / rf_predictions(bands)))
    if oracle is not None:
        result["oracle"] = summarize(oracle, target, "test")
        result["oracle"]["features"] = list(IMAGE_OBSERVABLES)
        result["files"]["oracle"] = str(write_table(oracle, out / ORACLE_PREDICTIONS))
    if target == "oh_p50" and noise_floor(catalog) is not None:
        result["noise_floor"] = noise_floor(catalog)
    # summarize() quotes the paper's CNN; beside a baseline only the paper's RF number belongs.
    for name in ("rf", "constant", "oracle"):
        (result.get(name) or {}).pop("paper", None)
    if target == "oh_p50" and bands == "gri" and rf is not None:
        result["rf"]["paper"] = {"rmse": PAPER_RF_GRI_RMSE}
    write_json(out / BASELINE_METRICS, result)
    return result


def _forest_skipped(catalog, bands: str, where: str) -> str | None:
    """Why the random forest cannot run on ``catalog`` (its ``modelMag_<band>`` columns are
    missing; logged once, with how to get them), or None when it can."""
    missing = [f"modelMag_{b}" for b in bands if f"modelMag_{b}" not in catalog.columns]
    if not missing:
        return None
    from galmet.data.dataset import find_catalog

    table = find_catalog(Path(where)) if Path(where).is_dir() else None
    why = (
        f"{where}: no magnitude column(s) {', '.join(missing)}: random forest ({bands}) skipped, constant mean only "
        f"(add them with 'galmet catalog --objids {table or 'YOUR_OBJIDS'} --out NEW_DATASET', "
        "then give NEW_DATASET the images: 'galmet download NEW_DATASET')"
    )
    log.warning("%s", why)
    return why


def format_baselines(result: dict) -> str:
    """Plain-text table of :func:`run_baselines` metrics (test split); a skipped forest is left out."""
    rows = [(f"random forest ({result['bands']})", result["rf"]), ("constant mean", result["constant"])]
    rows = [(name, s) for name, s in rows if s is not None]
    if "oracle" in result:
        rows.append(("observable oracle", result["oracle"]))
    lines = [
        f"{result['target']} baselines on the test split",
        f"{'predictor':<24}{'N':>7}{'RMSE':>9}{'RMSE 95% interval':>20}{'NMAD':>9}{'bias':>9}{'paper RMSE':>12}",
    ]
    for name, s in rows:
        paper = s.get("paper", {}).get("rmse") if name.startswith("random") else None
        boot = (s.get("intervals") or {}).get("rmse")
        span = f"[{boot['lo95']:.4f}, {boot['hi95']:.4f}]" if boot else "-"
        lines.append(
            f"{name:<24}{s['n']:>7d}{s['rmse']:>9.4f}{span:>20}{s['nmad']:>9.4f}{s['bias']:>+9.4f}"
            + (f"{paper:>12.3f}" if paper is not None else f"{'-':>12}")
        )
    if result.get("noise_floor") is not None:
        lines.append(f"{'noise floor (RMS of oh_unexplained)':<36}{result['noise_floor']:>9.4f}")
    if "oracle" in result:
        lines.append("observable oracle: gradient boosting on the latent quantities the images show, without redshift")
    return "\n".join(lines)
