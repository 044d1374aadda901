"""An HTML report of one or several runs: one section per run, each with its headline (the CNN
against its baselines and the noise floor, bootstrap intervals), its dataset and mosaic, the paper's
numbers beside its own on SDSS data only, its largest residuals linked to SkyServer, its analyses,
figures, training settings and provenance.

``galmet report DIR [DIR ...]`` reads whatever the other commands left in each run folder
(searched up to three levels deep, so a run folder with ``figures/``, ``baseline/``, ``mzr/``,
``resolution/`` and a dataset sub-folder works). A folder that holds no run itself but several
run folders (:func:`discover_runs`) gives one section per run folder; runs are never merged.

=============================  =============================================  ==================
file                           written by                                     report section
=============================  =============================================  ==================
``metrics*.json``              ``galmet evaluate --json``                     metrics (vs paper on
                                                                              SDSS), uncertainties
``predictions.parquet|csv``    ``galmet predict``                             headline, outliers,
                                                                              metrics
``baseline_metrics.json``      ``galmet baseline`` (+ its predictions files)  headline, baselines
``resolution.csv`` (+ .json)   ``galmet resolution-study``                    resolution study
``mzr_metrics.json``           ``galmet mzr``                                 stellar mass, MZR
``systematics.json``           ``galmet systematics``                         systematics
``controls.json``              ``galmet explain --controls``                  attribution controls
``*.png``                      ``galmet figures`` / ``mzr`` / ...             figures (embedded)
``mosaic.png`` or a dataset    ``galmet demo`` / ``synth`` / ``download``     dataset
``config.yaml``                ``galmet train``                               training settings
``history.csv``                ``galmet train``                               training history
=============================  =============================================  ==================

The dataset is the one inside the run folder or the one its ``config.yaml`` / JSON files name,
when it is on this machine. Figures are embedded as base64 PNG and the style sheet is inline, so
the file can be mailed alone; every path it shows is relative to the report (files outside the
report's folder and the runs are named, not located), so the report can move with its folder.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from galmet.errors import ConfigError, DataError
from galmet.io.inputs import special_kind
from galmet.io.safety import Input, check_output_file
from galmet.layout import (
    BASELINE_METRICS,
    BUNDLE,
    CATALOG_NAMES,
    CONFIG,
    CONTROLS_JSON,
    CV_SCORES,
    DEMO_MARKER,
    HISTORY,
    IMAGES_DIR,
    MOSAIC,
    MZR_METRICS,
    PREDICTION_NAMES,
    REPORT,
    RESOLUTION_TABLE,
    SYSTEMATICS_JSON,
    UNCERTAINTY_FIGURE,
)
from galmet.report import facts
from galmet.report import sections as sec
from galmet.report.html import CSS, Paths, esc, png_figure, table
from galmet.science.plots.history import history_png

log = logging.getLogger(__name__)

MAX_DEPTH = 3
#: Largest file the report reads (bytes: a predictions table of a few million rows); larger: skipped.
MAX_READ_BYTES = 1 << 30
#: Files whose presence directly in a folder makes it a run's folder (see :func:`discover_runs`).
RUN_ANCHORS = (CONFIG, HISTORY, BUNDLE, *PREDICTION_NAMES, CV_SCORES, RESOLUTION_TABLE, DEMO_MARKER, "metrics.json")
#: Captions of the figures :mod:`galmet.science.plots` draws, by file stem.
CAPTIONS = {
    "fig1_image_grid": "Figure 1. Test galaxies with the lowest and highest predicted and true metallicity, the most "
    "under- and over-predicted, and a random draw; Z_pred and Z_true on each thumbnail.",
    "fig2_histograms": "Figure 2. Distributions of true and predicted metallicity (Freedman-Diaconis bins).",
    "fig3_pred_vs_true": "Figure 3. Predicted against true metallicity: running median with RMSE and NMAD bands, "
    "one-to-one line, residual histogram (inset); upper panel: RMSE and NMAD per bin, "
    "marker area proportional to the number of galaxies.",
    "fig4_resolution": "Figure 4. Scatter of the CNN against image size after block averaging, with the "
    "random-forest and constant-mean baselines.",
    "fig5_mass": "Figure 5. (a) Stellar mass predicted from images against the truth; (b) metallicity from the "
    "predicted mass through the Tremonti et al. (2004) relation against the true metallicity.",
    "fig6_mzr": "Figure 6. The mass-metallicity relation of the predicted metallicity against the true stellar "
    "mass, with Tremonti et al. (2004) median and its 1-sigma scatter.",
    "history": "Training history: train and validation RMSE per epoch.",
    UNCERTAINTY_FIGURE: "Calibrated uncertainties: (a) observed against nominal coverage of the 68% and 95% "
    "intervals and of Gaussian intervals centre +- z err; (b) PIT histogram of N(centre, err); (c) the "
    "distribution of err; (d) RMS residual against err in bins of err.",
    "systematics": "Systematics: bias (median dZ) and scatter (NMAD) of dZ = Z_pred - Z_true in equal-count "
    "bins of each galaxy property, with bootstrap confidence intervals.",
    "attribution_gradcam": "Grad-CAM maps over the cutouts as the network sees them (regions that raise Z).",
    "attribution_integrated_gradients": "Integrated gradients from a sky-coloured baseline (red raises Z, blue "
    "lowers it).",
    "attribution_occlusion": "Occlusion maps (red: hiding the region lowers Z).",
}


def _find(root: Path, pattern: str, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Regular files matching ``pattern`` up to :data:`MAX_DEPTH` folders below ``root``, hidden ones
    and those under a ``skip`` folder (another run's) left out. A FIFO, device or socket is left
    out with a warning (never opened: a FIFO blocks), and so is a file over :data:`MAX_READ_BYTES`."""
    out = []
    for p in sorted(root.rglob(pattern)):
        rel = p.relative_to(root)
        if len(rel.parts) <= MAX_DEPTH + 1 and not any(part.startswith(".") for part in rel.parts):
            if (not skip or not any(p.resolve().is_relative_to(s) for s in skip)) and _readable(p):
                out.append(p)
    return out


def _readable(p: Path) -> bool:
    """True for a regular file of at most :data:`MAX_READ_BYTES` (a folder matching a pattern is
    skipped silently, anything else with a warning naming it)."""
    kind = special_kind(p)
    if kind == "directory":
        return False
    if kind is not None:
        log.warning("report: skipping %s (a %s, not a regular file)", p, kind)
        return False
    with contextlib.suppress(OSError):
        if p.stat().st_size > MAX_READ_BYTES:
            log.warning("report: skipping %s (over %.0f MB)", p, MAX_READ_BYTES / 1e6)
            return False
    return True


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("report: skipping unreadable %s (%s)", path, exc)
        return None


# --- finding the runs ------------------------------------------------------------------------


def _is_run_folder(folder: Path) -> bool:
    """True when ``folder`` directly holds a file only a run's own folder holds (:data:`RUN_ANCHORS`)."""
    return any((folder / name).is_file() for name in RUN_ANCHORS)


def _has_direct_outputs(folder: Path) -> bool:
    """True when ``folder`` directly holds a file the report shows (JSON results or a figure)."""
    return any(
        p.is_file() and p.suffix.lower() in (".json", ".png", ".csv") and not p.name.startswith(".")
        for p in folder.iterdir()
    )


def discover_runs(folder: str | os.PathLike, depth: int = 0) -> list[Path]:
    """The run folders under ``folder``, searched :data:`MAX_DEPTH` levels down.

    ``folder`` is one run when it holds a run's own file (:data:`RUN_ANCHORS`) or fewer than two of
    its sub-folders do. Otherwise each run sub-folder is a run (and searched in turn); ``folder``
    itself is one too when it holds results directly (its sub-folders that are not runs, such as
    ``figures/``, stay with it), else each such sub-folder with results is one. A run's own
    ``figures/``, ``baseline/`` or dataset folder is never split from it; two runs are never merged
    (:func:`write_report` leaves the runs inside a folder out of that folder's section).
    """
    root = Path(folder)
    if depth >= MAX_DEPTH or _is_run_folder(root):
        return [root]
    subs = [c for c in sorted(root.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    if sum(_is_run_folder(c) for c in subs) < 2:
        return [root]
    own = _has_direct_outputs(root)
    out = [root] if own else []
    for c in subs:
        if _is_run_folder(c) or (not own and (_find(c, "*.json") or _find(c, "*.png"))):
            out += discover_runs(c, depth + 1)
    return out


# --- reading one run --------------------------------------------------------------------------


def collect(root: str | os.PathLike, skip=()) -> dict:
    """Gather everything reportable under one run folder ``root``; see the module docstring.

    ``skip``: folders below ``root`` whose files are left out (other runs reported beside it).

    Returns
    -------
    dict
        ``metrics`` (list of (path, dict)), ``baselines``, ``crossval`` (cv.json of
        ``galmet train --folds``), ``resolution`` (table, extra, path), ``mzr``, ``systematics``,
        ``controls``, ``figures`` (png paths, the mosaic and a dataset's images left out),
        ``mosaic`` (path or None), ``dataset_dirs`` (dataset folders inside the run), ``config``
        (text), ``config_dict``, ``config_path``, ``history`` (DataFrame), ``predictions`` (path or
        None).
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such run directory")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (give the folder holding the run's outputs)")
    found: dict = {
        "root": root,
        "skip": tuple(Path(p).resolve() for p in skip),
        "metrics": [],
        "baselines": [],
        "mzr": [],
        "crossval": [],
        "systematics": [],
        "controls": [],
        "resolution": None,
        "figures": [],
        "mosaic": None,
        "dataset_dirs": [],
        "config": None,
        "config_dict": {},
        "config_path": None,
        "history": None,
        "predictions": None,
    }
    _collect_json(root, found)
    res = _find(root, RESOLUTION_TABLE, found["skip"])
    if res:
        from galmet.science.resolution import read_resolution

        try:
            tab, extra = read_resolution(res[0])
            found["resolution"] = (tab, extra, res[0])
        except DataError as exc:
            log.warning("report: skipping %s (%s)", res[0], exc)
    found["dataset_dirs"] = sorted(
        {p.parent for name in CATALOG_NAMES for p in _find(root, name, found["skip"])}, key=lambda p: len(p.parts)
    )
    _collect_figures(root, found)
    _collect_training(root, found)
    for name in PREDICTION_NAMES:
        preds = _find(root, name, found["skip"])
        if preds:
            found["predictions"] = preds[0]
            break
    return found


def _collect_json(root: Path, found: dict) -> None:
    for p in _find(root, "*.json", found["skip"]):
        data = _read_json(p)
        if not isinstance(data, dict):
            continue
        if p.name == BASELINE_METRICS and "rf" in data:
            found["baselines"].append((p, data))
        elif p.name == MZR_METRICS and "mass" in data:
            found["mzr"].append((p, data))
        elif p.name == CV_SCORES and isinstance(data.get("targets"), dict) and "folds" in data:
            found["crossval"].append((p, data))
        elif p.name == SYSTEMATICS_JSON and isinstance(data.get("trends"), dict):
            found["systematics"].append((p, data))
        elif p.name == CONTROLS_JSON and isinstance(data.get("full"), dict):
            found["controls"].append((p, data))
        elif {"rmse", "nmad", "target"} <= set(data):
            found["metrics"].append((p, data))


def _collect_figures(root: Path, found: dict) -> None:
    images = [d / IMAGES_DIR for d in found["dataset_dirs"]]
    for p in _find(root, "*.png", found["skip"]):
        if any(p.is_relative_to(d) for d in images):
            continue  # a dataset's cutouts are data, not figures
        if p.name == MOSAIC:
            found["mosaic"] = found["mosaic"] or p
        else:
            found["figures"].append(p)


def _collect_training(root: Path, found: dict) -> None:
    cfg = _find(root, CONFIG, found["skip"])
    if cfg:
        found["config_path"] = cfg[0]
        found["config"] = cfg[0].read_text(errors="replace")
        try:
            import yaml

            parsed = yaml.safe_load(found["config"])
            found["config_dict"] = parsed if isinstance(parsed, dict) else {}
        except Exception as exc:  # noqa: BLE001 - a damaged config should not stop the report
            log.warning("report: %s is not readable YAML (%s)", cfg[0], exc)
    hist = _find(root, HISTORY, found["skip"])
    if hist:
        try:
            found["history"] = pd.read_csv(hist[0])
        except Exception as exc:  # noqa: BLE001 - a damaged history should not stop the report
            log.warning("report: skipping %s (%s)", hist[0], exc)


# --- one run's section ----------------------------------------------------------------------------


@dataclass
class RunView:
    """One run as the report shows it: what :func:`collect` found and what the report derived."""

    name: str
    anchor: str
    found: dict
    summaries: list
    cnn: pd.DataFrame | None
    target: str | None
    split: str
    dataset: facts.DatasetFacts | None
    kind: facts.DataKind

    @property
    def paper(self) -> bool:
        """Compare with the paper: only on SDSS data."""
        return self.kind.kind == "sdss"


def _summaries(found: dict, cnn: pd.DataFrame | None, target: str | None) -> list:
    """(path, summary) of the run's metrics JSONs, or of its predictions scored on the spot."""
    from galmet.io.jsonfile import provenance
    from galmet.science.calibration import uncertainty_metrics
    from galmet.science.metrics import summarize
    from galmet.science.predictions import load_predictions

    if found["metrics"] or found["predictions"] is None or cnn is None:
        return list(found["metrics"])
    try:
        df, target = load_predictions(found["predictions"])
        split = "test" if "split" in df.columns and (df["split"].astype(str) == "test").any() else "all"
        s = summarize(df, target, split)
        unc = uncertainty_metrics(df, target, split)
        if unc is not None:
            s["uncertainty"] = unc
        s["predictions"] = provenance(found["predictions"])
    except DataError as exc:
        log.warning("report: predictions %s not scored (%s)", found["predictions"], exc)
        return []
    return [(found["predictions"], s)]


def view_run(found: dict, name: str, anchor: str) -> RunView:
    """Derive what the report says about one collected run (its data kind, dataset, headline rows)."""
    cnn, target, split = facts.cnn_rows(found)
    dataset = facts.load_dataset_facts(found)
    kind = facts.data_kind(found, dataset, cnn)
    summaries = _summaries(found, cnn, target)
    if target is None and summaries:
        target, split = summaries[0][1].get("target"), summaries[0][1].get("split", "")
    return RunView(name, anchor, found, summaries, cnn, target, split, dataset, kind)


def _dataset_section(run: RunView, paths: Paths) -> str:
    ds, target = run.dataset, run.target or "oh_p50"
    if ds is not None:
        splits = ds.split_counts()
        cols = [c for c in dict.fromkeys([target, "oh_p50", "lgm_tot_p50"]) if c in ds.catalog.columns]
        ranges = {c: r for c in cols if (r := facts.label_range(ds.catalog[c])) is not None}
        source = "the dataset"
    elif run.cnn is not None:
        splits = {run.split: len(run.cnn)}
        ranges = {f"{target} (true)": r} if (r := facts.label_range(run.cnn[target])) is not None else {}
        source = "the predictions table (the scored galaxies only)"
    else:
        return ""
    mosaic = ""
    if run.found["mosaic"] is not None:
        p = run.found["mosaic"]
        data = paths.budget.read(p)
        if data is not None:
            mosaic = png_figure(data, "mosaic", f"Example galaxies of the dataset ({paths.show(p)}).")
    if not mosaic and ds is not None:
        data = facts.mosaic_png(ds, target)
        if data is not None:
            mosaic = png_figure(data, "mosaic", f"Galaxies of {esc(ds.name)} spanning the {esc(target)} range.")
    return "<h3>Dataset</h3>" + sec.dataset_html(ds, mosaic, splits, ranges, paths, source)


def _headline_section(run: RunView) -> str:
    head = facts.headline(run.found, run.kind, run.dataset, run.cnn, run.target)
    return "<h3>Headline</h3>" + sec.headline_html(head, run.target, run.split)


def _metrics_section(run: RunView, paths: Paths) -> str:
    if not run.summaries:
        return ""
    blocks = [sec.metrics_section(s, paths.show(p), paper=run.paper) for p, s in run.summaries]
    if run.paper:
        return "<h3>Compared with Wu &amp; Boada (2019)</h3>" + "".join(blocks)
    why = (
        "synthetic galaxies are not the paper's SDSS galaxies"
        if run.kind.kind == "synthetic"
        else "the data source of this run is unknown"
    )
    return f'<h3>Metrics</h3><p class="note">No comparison with the paper: {why}.</p>' + "".join(blocks)


def _outlier_section(run: RunView) -> str:
    from galmet.sdss.skyserver import explore_url

    if run.cnn is None or run.target is None:
        return ""
    rows = facts.largest_residuals(run.cnn, run.target)
    release = run.dataset.data_release() if run.dataset is not None else None
    ids = rows["objID"].tolist() if "objID" in rows.columns else [None] * len(rows)
    links = [
        explore_url(int(oid), release) if oid is not None and run.paper and facts.is_sdss_objid(oid) else None
        for oid in ids
    ]
    return (
        f"<h3>Largest residuals</h3><p>The {len(rows)} galaxies with the largest |&Delta;Z| of the "
        f"{len(run.cnn):,} scored.</p>" + sec.outliers_html(rows, run.target, links, run.kind.kind == "synthetic")
    )


def _analysis_sections(run: RunView, paths: Paths) -> list[str]:
    f, parts = run.found, []
    with_unc = [(p, s) for p, s in run.summaries if s.get("uncertainty") or s.get("label_noise")]
    if with_unc:
        parts.append("<h3>Calibrated uncertainties</h3>")
        for p, s in with_unc:
            parts.append(f"<p>From {paths.show(p)}, split {esc(s['split'])}.</p>")
            if s.get("uncertainty"):
                parts.append(sec.uncertainty_section(s["uncertainty"], s["target"]))
            if s.get("label_noise"):
                parts.append(sec._label_noise_note(s["label_noise"]))
    if f["crossval"]:
        parts.append("<h3>Cross-validation</h3>" + sec._crossval_section(f["crossval"], paths))
    if f["baselines"]:
        parts.append("<h3>Baselines</h3>" + sec._baselines_section(f["baselines"], paths, run.paper))
    if f["resolution"] is not None:
        tab, extra, path = f["resolution"]
        parts.append("<h3>Resolution study</h3>" + sec._resolution_section(tab, extra, path, paths, run.paper))
    if f["mzr"]:
        parts.append(
            "<h3>Stellar mass and the mass-metallicity relation</h3>" + sec._mzr_section(f["mzr"], paths, run.paper)
        )
    if f["systematics"]:
        parts.append("<h3>Systematics</h3>" + sec._systematics_section(f["systematics"], paths))
    if f["controls"]:
        parts.append("<h3>What the network looks at: controls</h3>" + sec._controls_section(f["controls"], paths))
    return parts


def _figures_section(run: RunView, paths: Paths) -> str:
    """Every figure of the run (the same file content twice only once), captioned and linked."""
    order = list(CAPTIONS)
    figs = sorted(
        run.found["figures"],
        key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.stem, str(p)),
    )
    seen, out = set(), []
    for p in figs:
        data = paths.budget.read(p)
        if data is None:
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        caption = CAPTIONS.get(p.stem, p.stem.replace("_", " "))
        out.append(png_figure(data, p.stem, f'{esc(caption)} <span class="note">({paths.show(p)})</span>'))
    if run.found["history"] is not None:
        png = history_png(run.found["history"])
        if png:
            out.append(png_figure(png, "history", esc(CAPTIONS["history"])))
    return "<h3>Figures</h3>" + "".join(out) if out else ""


def _config_section(run: RunView, paths: Paths) -> str:
    cfg = run.found["config_dict"]
    if run.found["config_path"] is None:
        return ""
    settings = facts.config_settings(cfg)
    if not settings:
        where = paths.show(run.found["config_path"])
        return f'<h3>Training settings</h3><p class="note">{where} holds no settings.</p>'
    return "<h3>Training settings</h3>" + sec.config_html(settings, run.found["config_path"], len(cfg), paths)


def _provenance_rows(run: RunView, paths: Paths) -> list[list[str]]:
    rows = [["run folder", paths.show(run.found["root"])], ["data", esc(f"{run.kind.kind}: {run.kind.why}")]]
    for _path, s in run.summaries:
        prov = s.get("predictions") or {}
        if prov:
            rows.append(
                [
                    "predictions",
                    f"{paths.show(prov.get('path', '?'))} "
                    + esc(
                        f"(sha256 {str(prov.get('sha256', ''))[:16]}..., {prov.get('bytes', '?')} bytes, "
                        f"modified {prov.get('modified', '?')})"
                    ),
                ]
            )
    if run.dataset is not None:
        where = paths.show(run.dataset.path) if run.dataset.path is not None else esc(run.dataset.name)
        rows.append(["dataset", where])
    return rows


def render_run(run: RunView, paths: Paths) -> str:
    """One run's section, its parts in the order a reader wants them."""
    kind = run.kind.kind
    label = {"sdss": "SDSS galaxies", "synthetic": "synthetic galaxies", "unknown": "data source unknown"}[kind]
    parts = [
        f'<section class="run" id="{esc(run.anchor)}"><h2>{esc(run.name)}</h2>',
        f'<p><span class="kind kind-{kind}">{label}</span> <span class="note">({esc(run.kind.why)})</span></p>',
        _headline_section(run),
        _dataset_section(run, paths),
        _metrics_section(run, paths),
        _outlier_section(run),
        *_analysis_sections(run, paths),
        _figures_section(run, paths),
        _config_section(run, paths),
        "<h3>Provenance</h3>" + table(["item", "value"], _provenance_rows(run, paths), wrap_last=True, text=True),
        "</section>",
    ]
    return "\n".join(p for p in parts if p)


# --- the page -------------------------------------------------------------------------------------


def _run_names(roots: list[Path]) -> list[str]:
    """Section titles: the folder name of a lone run, else each run's path below their common folder."""
    resolved = [r.resolve() for r in roots]
    if len(resolved) == 1:
        return [resolved[0].name or str(roots[0])]
    common = Path(os.path.commonpath(resolved))
    return [Path(os.path.relpath(r, common)).as_posix() if r != common else r.name for r in resolved]


def _has_content(found: dict) -> bool:
    return bool(
        found["metrics"]
        or found["predictions"] is not None
        or found["figures"]
        or found["config"]
        or found["history"] is not None
        or found["baselines"]
        or found["resolution"] is not None
        or found["mzr"]
        or found["crossval"]
        or found["systematics"]
        or found["controls"]
        or found["mosaic"] is not None
    )


def render(runs: list[dict] | dict, title: str | None = None, report_dir: str | os.PathLike = ".") -> str:
    """The report of the collected runs (:func:`collect`, one dict per run) as one HTML string.

    ``report_dir`` is the folder the report will be written to: every path is written relative to it.
    """
    runs = [runs] if isinstance(runs, dict) else list(runs)
    runs = [f for f in runs if _has_content(f)]
    if not runs:
        raise DataError("nothing to report (no metrics JSON, predictions, figures, config.yaml or history.csv)")
    roots = [Path(f["root"]) for f in runs]
    paths = Paths(Path(report_dir), roots)
    names = _run_names(roots)
    views = [view_run(f, n, f"run-{i + 1}") for i, (f, n) in enumerate(zip(runs, names, strict=True))]
    title = title or ("galmet report: " + ", ".join(names))
    toc = ""
    if len(views) > 1:
        items = "".join(
            f'<li><a href="#{v.anchor}">{esc(v.name)}</a> <span class="note">({esc(v.kind.kind)})</span></li>'
            for v in views
        )
        toc = f'<nav class="toc"><p>{len(views)} runs, one section each:</p><ol>{items}</ol></nav>'
    return "\n".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><h1>{esc(title)}</h1>",
            '<p class="note">Gas-phase metallicity 12 + log(O/H) predicted from gri images, after '
            "Wu &amp; Boada (2019, MNRAS 484, 4683). Residuals &Delta;Z = Z_pred &minus; Z_true; "
            "NMAD = 1.4826 median(|&Delta;Z &minus; median &Delta;Z|). The paper's numbers appear only "
            "beside runs on SDSS galaxies.</p>",
            toc,
            *(render_run(v, paths) for v in views),
            "<h2>About this report</h2>" + table(["item", "value"], _report_provenance(), text=True),
            "</body></html>",
        ]
    )


def _report_provenance() -> list[list[str]]:
    import galmet

    return [
        ["written", esc(datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))],
        ["galmet version", esc(galmet.__version__)],
        ["python / platform", esc(f"{platform.python_version()} / {platform.system()} {platform.machine()}")],
    ]


def write_report(
    run_dirs: str | os.PathLike | list,
    out_html: str | os.PathLike | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the HTML report of one or several run folders atomically; return its path.

    Parameters
    ----------
    run_dirs : path-like or list of path-like
        Folders with the outputs of ``galmet train / predict / evaluate / figures / baseline /
        mzr / resolution-study`` (see the module docstring); each folder holding several runs is
        split into them (:func:`discover_runs`), each run gets its own section.
    out_html : path-like, optional
        Default: ``<run_dir>/report.html`` for one folder; required for several.
    title : str, optional
        Default: "galmet report: " and the run names.
    overwrite : bool
        Replace an existing report file that galmet did not write.
    """
    from galmet.io.atomic import atomic_write_text

    dirs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    out = check_report_output(dirs, out_html, overwrite=overwrite)
    roots: list[Path] = []
    for d in dirs:
        collect(d)  # a missing or non-folder argument fails here, in one line
        for r in discover_runs(d):
            if r.resolve() not in {x.resolve() for x in roots}:
                roots.append(r)
    # a folder reported beside runs inside it keeps only what is not theirs
    found = [collect(r, [o for o in roots if o != r and o.resolve().is_relative_to(r.resolve())]) for r in roots]
    if not any(_has_content(f) for f in found):
        where = ", ".join(str(d) for d in dirs)
        raise DataError(
            f"{where}: nothing to report (no metrics JSON, predictions, figures, config.yaml or history.csv)"
        )
    atomic_write_text(out, render(found, title, out.parent))
    return out


#: Suffixes of the files a report reads under its folders (its output must be none of them).
READ_SUFFIXES = (".json", ".csv", ".parquet", ".png", ".yaml", ".fits")


def check_report_output(run_dirs, out_html=None, overwrite: bool = False) -> Path:
    """The report's path (default ``run_dir/report.html`` for one folder), refused (one line) when
    it does not end in .html/.htm, is a directory or sits under a file, is one of the files the
    report reads, exists and was not written by galmet (unless ``overwrite``), or is missing
    while several folders are reported."""
    dirs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    if not dirs:
        raise ConfigError("give at least one run folder to report")
    if out_html is None and len(dirs) > 1:
        raise ConfigError(
            "out_html is required when reporting several run folders (where should the report go?)", param="out_html"
        )
    out = Path(out_html) if out_html is not None else Path(dirs[0]) / REPORT
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"out_html {out}: the report is HTML; give a file name ending in .html", param="out_html")
    reads = [Input(Path(d), "a file the report reads", tree=True, suffixes=READ_SUFFIXES) for d in dirs]
    return check_output_file(out, "out_html", "html", "report", reads, overwrite=overwrite)
