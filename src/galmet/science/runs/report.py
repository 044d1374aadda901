"""A self-contained HTML report of a run: metrics beside the paper's, figures, config, provenance.

``galmet report DIR`` reads whatever the other commands left in ``DIR`` (searched up to three
levels deep, so a run folder with ``figures/``, ``baseline/``, ``mzr/`` and
``resolution/`` sub-folders works):

=============================  =============================================  ==================
file                           written by                                     report section
=============================  =============================================  ==================
``metrics*.json``              ``galmet evaluate --json``                     metrics vs paper,
                                                                              calibrated uncertainties
``predictions.parquet|csv``    ``galmet predict`` (scored when no metrics)    metrics vs paper
``baseline_metrics.json``      ``galmet baseline``                            baselines
``resolution.csv`` (+ .json)   ``galmet resolution-study``                    resolution study
``mzr_metrics.json``           ``galmet mzr``                                 stellar mass, MZR
``systematics.json``           ``galmet systematics``                         systematics
``controls.json``              ``galmet explain --controls``                  attribution controls
``*.png``                      ``galmet figures`` / ``mzr`` / ...             figures (embedded)
``config.yaml``                ``galmet train``                               configuration
``history.csv``                ``galmet train``                               training history
=============================  =============================================  ==================

The HTML has no external references: figures are base64 PNG ``data:`` URIs and the style
sheet is inline, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from galmet.errors import ConfigError, DataError
from galmet.io.safety import Input, check_output_file
from galmet.layout import (
    BASELINE_METRICS,
    CONFIG,
    CONTROLS_JSON,
    CV_SCORES,
    HISTORY,
    MZR_METRICS,
    PREDICTION_NAMES,
    REPORT,
    RESOLUTION_TABLE,
    SYSTEMATICS_JSON,
    UNCERTAINTY_FIGURE,
)
from galmet.science.plots.history import history_png

log = logging.getLogger(__name__)

MAX_DEPTH = 3
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

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #ccc;padding-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .7em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0;text-align:center}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;text-align:left;margin-top:.3em}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.7em;overflow-x:auto;font-size:.85em}
.note{color:#666;font-size:.9em}.better{color:#17702a}.worse{color:#a32020}
"""


def _find(root: Path, pattern: str) -> list[Path]:
    out = []
    for p in sorted(root.rglob(pattern)):
        rel = p.relative_to(root)
        if len(rel.parts) <= MAX_DEPTH + 1 and not any(part.startswith(".") for part in rel.parts):
            out.append(p)
    return out


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("report: skipping unreadable %s (%s)", path, exc)
        return None


def collect(root: str | os.PathLike) -> dict:
    """Gather everything reportable under ``root``; see the module docstring for the file names.

    Returns
    -------
    dict
        ``metrics`` (list of (path, dict)), ``baselines``, ``crossval`` (cv.json of
        ``galmet train --folds``), ``resolution`` (table, extra, path),
        ``mzr``, ``figures`` (list of png paths), ``config`` (text), ``history`` (DataFrame),
        ``predictions`` (path or None).
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such run directory")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (give the folder holding the run's outputs)")
    found: dict = {
        "root": root,
        "metrics": [],
        "baselines": [],
        "mzr": [],
        "crossval": [],
        "systematics": [],
        "controls": [],
        "resolution": None,
        "figures": [],
        "config": None,
        "config_path": None,
        "history": None,
        "predictions": None,
    }
    for p in _find(root, "*.json"):
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
    res = _find(root, RESOLUTION_TABLE)
    if res:
        from galmet.science.resolution import read_resolution

        try:
            tab, extra = read_resolution(res[0])
            found["resolution"] = (tab, extra, res[0])
        except DataError as exc:
            log.warning("report: skipping %s (%s)", res[0], exc)
    found["figures"] = _find(root, "*.png")
    cfg = _find(root, CONFIG)
    if cfg:
        found["config_path"] = cfg[0]
        found["config"] = cfg[0].read_text(errors="replace")
    hist = _find(root, HISTORY)
    if hist:
        try:
            found["history"] = pd.read_csv(hist[0])
        except Exception as exc:  # noqa: BLE001 - a damaged history should not stop the report
            log.warning("report: skipping %s (%s)", hist[0], exc)
    for name in PREDICTION_NAMES:
        preds = _find(root, name)
        if preds:
            found["predictions"] = preds[0]
            break
    return found


# --- rendering helpers -----------------------------------------------------------------------


def _e(x) -> str:
    return html.escape(str(x))


def _num(v, fmt="{:.4f}") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return fmt.format(v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _compare(ours, paper, lower_is_better=True) -> str:
    if ours is None or paper is None:
        return ""
    better = ours <= paper if lower_is_better else ours >= paper
    cls = "better" if better else "worse"
    return f'<span class="{cls}">{"&le;" if ours <= paper else "&gt;"} paper</span>'


def metrics_section(summary: dict, source: str) -> str:
    """HTML table of one :func:`galmet.science.metrics.summarize` dict with the paper's values beside ours."""
    paper = summary.get("paper", {})
    rows = [
        ["N", f"{summary['n']:,}", _num(paper.get("n"), "{:,}"), ""],
        [
            "RMSE (dex)",
            _num(summary["rmse"]),
            _num(paper.get("rmse"), "{:.3f}"),
            _compare(summary["rmse"], paper.get("rmse")),
        ],
        [
            "NMAD (dex)",
            _num(summary["nmad"]),
            _num(paper.get("nmad"), "{:.3f}"),
            _compare(summary["nmad"], paper.get("nmad")),
        ],
        ["median bias (dex)", _num(summary["bias"], "{:+.4f}"), _num(paper.get("bias"), "{:+.3f}"), ""],
        ["mean bias (dex)", _num(summary.get("mean_bias"), "{:+.4f}"), "-", ""],
        ["outlier fraction", _num(100 * summary.get("outlier_fraction", np.nan), "{:.2f}%"), "-", ""],
    ]
    if "frac_true_above_9.1" in summary:
        rows.append(
            [
                "Z_true &gt; 9.1",
                _num(100 * summary["frac_true_above_9.1"], "{:.1f}%"),
                _num(100 * paper.get("frac_true_above_9.1", np.nan), "{:.1f}%"),
                "",
            ]
        )
        rows.append(
            [
                "Z_pred &gt; 9.1",
                _num(100 * summary["frac_pred_above_9.1"], "{:.1f}%"),
                _num(100 * paper.get("frac_pred_above_9.1", np.nan), "{:.1f}%"),
                "",
            ]
        )
    head = f"<p>Target <b>{_e(summary['target'])}</b>, split <b>{_e(summary['split'])}</b> (from {_e(source)}).</p>"
    note = (
        (
            '<p class="note">Outliers: |&Delta;Z| &gt; 3 NMAD and |&Delta;Z| &gt; 0.3 dex. The paper\'s '
            "values are for its 20,466 SDSS test galaxies (Wu &amp; Boada 2019).</p>"
        )
        if paper
        else ""
    )
    return head + _table(["metric", "galmet", "paper", ""], rows) + note


def _rel(path, root: Path) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(p)


def _baselines_section(items, root: Path) -> str:
    out = []
    for path, b in items:
        rows = []
        for key, name in (("rf", f"random forest ({b.get('bands', '?')})"), ("constant", "constant mean")):
            s = b.get(key)
            if not s:
                continue
            paper = (s.get("paper") or {}).get("rmse")
            rows.append(
                [
                    _e(name),
                    f"{s['n']:,}",
                    _num(s["rmse"]),
                    _num(s["nmad"]),
                    _num(s["bias"], "{:+.4f}"),
                    _num(paper, "{:.3f}"),
                ]
            )
        out.append(
            f"<p>From {_e(_rel(path, root))}; fitted on train + valid, scored on test.</p>"
            + _table(["predictor", "N", "RMSE (dex)", "NMAD (dex)", "bias (dex)", "paper RMSE"], rows)
        )
    return "".join(out)


def _crossval_section(items, root: Path) -> str:
    out = []
    for path, cv in items:
        rows = [
            [
                _e(t),
                f"{cv.get('n', 0):,}",
                _num(m.get("rmse")),
                _num(m.get("rmse_fold_sem")),
                _num(m.get("nmad")),
                _num(m.get("bias"), "{:+.4f}"),
                _e(", ".join(f"{v:.4f}" for v in m.get("rmse_per_fold", []))),
            ]
            for t, m in cv["targets"].items()
        ]
        out.append(
            f"<p>From {_e(_rel(path, root))}: {cv['folds']}-fold cross-validation, every galaxy predicted "
            f"by the fold model that did not see it{' (TTA x8)' if cv.get('tta') else ''}.</p>"
            + _table(["target", "N", "RMSE (dex)", "+- (fold s.e.)", "NMAD (dex)", "bias (dex)", "RMSE per fold"], rows)
        )
    return "".join(out)


def uncertainty_section(u: dict, target: str) -> str:
    """HTML table of :func:`galmet.science.calibration.uncertainty_metrics` (coverage, width, per tercile)."""
    rows = []
    for tag in ("68", "95"):
        m = u.get(tag)
        if not m:
            continue
        rows.append(
            [
                f"{tag}%",
                f"{100 * m['coverage']:.1f}% &plusmn; {100 * m['coverage_se']:.1f}",
                _num(m["mean_width"]),
                _num(m["interval_score"]),
            ]
        )
    terc = "; ".join(
        f"[{r['lo']:.2f}, {r['hi']:.2f}] (n={r['n']}): "
        + " / ".join(f"{100 * r[t]:.0f}%" for t in ("68", "95") if t in r)
        for r in u.get("terciles", [])
    )
    gauss = ""
    if "crps" in u:
        gauss = (
            f"Read as Gaussians N(centre, err): CRPS {u['crps']:.4f} dex, NLL {u['nll']:.3f}, "
            f"std of (Z_true &minus; centre)/err {u['z_std']:.3f} (1 when err is right). "
        )
    return (
        _table(["interval", "coverage (nominal 68 / 95%)", "mean width (dex)", "interval score (dex)"], rows)
        + f'<p class="note">N = {u["n"]}; err (1&sigma;): mean {u["mean_err"]:.4f}, median {u["median_err"]:.4f} '
        f"dex. {gauss}Coverage 68% / 95% per tercile of {_e(target)}: {_e(terc)}.</p>"
    )


def _label_noise_note(noise: dict) -> str:
    return (
        f'<p class="note">Label uncertainty (oh_p16 / oh_p84, N = {noise["n"]}): median 1&sigma; '
        f"{noise['median_label_sigma']:.4f} dex; it explains {100 * noise['fraction']:.0f}% of the squared error "
        f"(RMSE {noise['rmse']:.4f} dex; {noise['rmse_without']:.4f} without it).</p>"
    )


def _systematics_section(items, root: Path) -> str:
    out = []
    for path, s in items:
        rows = []
        for name, t in s["trends"].items():
            worst = t.get("max_abs_bias") or {}
            rows.append(
                [
                    _e(t.get("label", name)),
                    f"{t.get('n', 0):,}",
                    _num(t.get("spearman_rho"), "{:+.2f}"),
                    _num(t.get("spearman_p"), "{:.2g}"),
                    (
                        f"{worst['bias']:+.3f} [{worst['bias_lo']:+.3f}, {worst['bias_hi']:+.3f}] "
                        f"at {worst['lo']:.3g}&ndash;{worst['hi']:.3g}"
                    )
                    if worst
                    else "-",
                ]
            )
        missing = ", ".join(s.get("not_available", []))
        out.append(
            f"<p>From {_e(_rel(path, root))}: {s.get('n', '?')} galaxies, split {_e(s.get('split', '?'))}; "
            f"{100 * s.get('level', 0.95):.0f}% bootstrap intervals.</p>"
            + _table(["property", "N", "Spearman rho", "p", "largest bin bias (dex)"], rows)
            + (f'<p class="note">Not in the data: {_e(missing)}.</p>' if missing else "")
        )
    return "".join(out)


def _controls_section(items, root: Path) -> str:
    out = []
    names = {
        "full": "full image",
        "fibre_occluded": "central 3&Prime; (fibre) painted with sky",
        "annulus_occluded": "equal-area annulus painted with sky",
        "colour_only": "colour only (pixels shuffled in the galaxy)",
        "morphology_only": "morphology only (grayscale)",
    }
    for path, c in items:
        rows = []
        for key, label in names.items():
            m = c.get(key)
            if not m:
                continue
            shift = "-" if key == "full" else f"{m['mean_shift']:+.4f} &plusmn; {m['mean_shift_se']:.4f}"
            rows.append([label, _num(m["rmse"]), _num(m["nmad"]), _num(m["bias"], "{:+.4f}"), shift])
        d = c.get("fibre_minus_annulus")
        note = (
            f'<p class="note">Paired |shift| fibre &minus; annulus: {d["mean_abs_shift_difference"]:+.4f} '
            f"&plusmn; {d['se']:.4f} dex.</p>"
            if d
            else ""
        )
        out.append(
            f"<p>From {_e(_rel(path, root))}: {c.get('n', '?')} galaxies.</p>"
            + _table(["input", "RMSE (dex)", "NMAD (dex)", "bias (dex)", "mean shift of Z_pred (dex)"], rows)
            + note
        )
    return "".join(out)


def _resolution_section(tab: pd.DataFrame, extra: dict, path: Path, root: Path) -> str:
    rows = []
    for _, r in tab.sort_values("size", ascending=False).iterrows():
        rows.append(
            [
                f"{int(r['size'])}",
                _num(r.get("rmse")),
                _num(r.get("nmad")),
                f"{int(r['n'])}" if "n" in r and np.isfinite(r["n"]) else "-",
                _num(r.get("train_seconds"), "{:.0f}"),
            ]
        )
    base = []
    if extra.get("rf_rmse") is not None:
        base.append(f"random forest ({_e(extra.get('bands', 'gri'))}) RMSE {extra['rf_rmse']:.4f} dex")
    if extra.get("constant_rmse") is not None:
        base.append(f"constant mean RMSE {extra['constant_rmse']:.4f} dex")
    if extra.get("oracle_rmse") is not None:
        base.append(f"observable oracle RMSE {extra['oracle_rmse']:.4f} dex")
    if extra.get("noise_floor") is not None:
        base.append(f"noise floor {extra['noise_floor']:.4f} dex")
    inputs = "s x s (the paper's experiment)"
    if extra.get("min_input", 1) not in (None, 1):
        inputs = f"pixel-replicated to at least {int(extra['min_input'])} px (a deviation from the paper)"
    from galmet.paper import PAPER_CNN_BEATS_RF_FROM, PAPER_RF_GRI_RMSE

    return (
        f"<p>From {_e(_rel(path, root))}. Network inputs: {_e(inputs)}. Baselines: "
        f"{'; '.join(base) or 'none recorded'}. The paper reports a random forest on gri at RMSE "
        f"{PAPER_RF_GRI_RMSE:.3f} dex and its CNN beating it from {PAPER_CNN_BEATS_RF_FROM}x"
        f"{PAPER_CNN_BEATS_RF_FROM} pixels up.</p>"
        + _table(["size (pixels)", "RMSE (dex)", "NMAD (dex)", "N test", "train time (s)"], rows)
    )


def _mzr_section(items, root: Path) -> str:
    out = []
    for path, m in items:
        sigma = m.get("tremonti_sigma")
        sigma = sigma.get("value") if isinstance(sigma, dict) else sigma  # a dict since issue 10
        rows = [
            [
                "stellar mass RMSE (dex)",
                _num(m["mass"]["rmse"]),
                _num(m["mass"].get("paper", {}).get("rmse"), "{:.2f}"),
            ],
            [
                "stellar mass NMAD (dex)",
                _num(m["mass"]["nmad"]),
                _num(m["mass"].get("paper", {}).get("nmad"), "{:.2f}"),
            ],
            [
                "Z_MZR vs Z_true RMSE (dex)",
                _num(m["z_mzr"]["rmse"]),
                _num(m["z_mzr"].get("paper", {}).get("rmse"), "{:.2f}"),
            ],
            [
                "Z_pred vs Z_true RMSE (dex)",
                _num(m["z_pred"]["rmse"]),
                _num(m["z_pred"].get("paper", {}).get("rmse"), "{:.3f}"),
            ],
            [
                "predicted MZR scatter, NMAD (dex)",
                _num(m.get("mzr_pred_scatter")),
                _num(sigma, "{:.2f}") + " (Tremonti+04 sigma, DR2)",
            ],
            [
                "true MZR scatter, NMAD (dex)",
                _num(m.get("mzr_true_scatter")),
                _num(sigma, "{:.2f}") + " (Tremonti+04 sigma, DR2)",
            ],
        ]
        nulls = m.get("null_tests") or {}
        if nulls:
            rows += [
                ["sigma(Z_true | M), pooled (dex)", _num(nulls.get("sigma_true_given_mass")), "-"],
                [
                    "expected sigma(Z_pred | M) of a calibrated regressor (dex)",
                    _num(nulls.get("expected_calibrated")),
                    "-",
                ],
                ["measured sigma(Z_pred | M) (dex)", _num(nulls.get("sigma_pred_given_mass")), "-"],
            ]
            if "rf" in nulls:
                rows.append(
                    ["random forest: sigma(Z_rf | M) (dex)", _num(nulls["rf"].get("sigma_pred_given_mass")), "-"]
                )
        ssfr = m.get("ssfr") or {}
        if ssfr.get("dz"):
            dz = ssfr["dz"]
            rows.append(
                [
                    f"partial r(Z_pred - Z_true, {_e(ssfr.get('column'))} | M)",
                    f"{_num(dz.get('r'))} [{_num(dz.get('lo'))}, {_num(dz.get('hi'))}]",
                    "-",
                ]
            )
        out.append(
            f"<p>From {_e(_rel(path, root))}: {m['n']:,} galaxies, split {_e(m.get('split', '?'))}. A calibrated "
            "regressor gives a tighter predicted MZR by construction; the null tests say how much.</p>"
            + _table(["quantity", "galmet", "reference"], rows)
        )
    return "".join(out)


def _figure_html(path: Path, root: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = CAPTIONS.get(path.stem, path.stem.replace("_", " "))
    return (
        f'<figure><img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'
        f'<figcaption>{_e(caption)} <span class="note">({_e(path.relative_to(root))})</span></figcaption></figure>'
    )


def _provenance_rows(found: dict, summaries) -> list[list[str]]:
    import galmet

    rows = [
        ["report written", _e(datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))],
        ["galmet version", _e(galmet.__version__)],
        ["python / platform", _e(f"{platform.python_version()} / {platform.platform()}")],
        ["run directory", _e(Path(found["root"]).resolve())],
    ]
    for _path, s in summaries:
        prov = s.get("predictions") or {}
        if prov:
            rows.append(
                [
                    "predictions",
                    _e(
                        f"{prov.get('path')} (sha256 {str(prov.get('sha256', ''))[:16]}..., "
                        f"{prov.get('bytes', '?')} bytes, modified {prov.get('modified', '?')})"
                    ),
                ]
            )
        if s.get("dataset"):
            rows.append(["dataset", _e(s["dataset"])])
    for _, b in found["baselines"]:
        if b.get("dataset"):
            rows.append(["baseline dataset", _e(b["dataset"])])
    if found["config"]:
        try:
            import yaml

            cfg = yaml.safe_load(found["config"]) or {}
            run = cfg.get("run", {}) if isinstance(cfg, dict) else {}
            for k, v in (run or {}).items():
                rows.append([f"training {_e(k)}", _e(v)])
        except Exception:  # noqa: BLE001 - provenance is best effort; the YAML is shown verbatim anyway
            pass
    return rows


def render(found: dict, title: str | None = None) -> str:
    """The report as one HTML string (see :func:`collect`)."""
    from galmet.science.metrics import summarize

    root = Path(found["root"])
    title = title or f"galmet report: {root.resolve().name}"
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>",
        '<p class="note">Gas-phase metallicity 12 + log(O/H) predicted from gri images, reproducing '
        "Wu &amp; Boada (2019, MNRAS 484, 4683). Residuals &Delta;Z = Z_pred &minus; Z_true; "
        "NMAD = 1.4826 median(|&Delta;Z &minus; median &Delta;Z|).</p>",
    ]
    summaries = list(found["metrics"])
    if not summaries and found["predictions"] is not None:
        from galmet.io.jsonfile import provenance
        from galmet.science.predictions import load_predictions

        try:
            df, target = load_predictions(found["predictions"])
            split = "test" if "split" in df.columns and (df["split"] == "test").any() else "all"
            s = summarize(df, target, split)
            from galmet.science.calibration import uncertainty_metrics

            unc = uncertainty_metrics(df, target, split)
            if unc is not None:
                s["uncertainty"] = unc
            s["predictions"] = provenance(found["predictions"])
            summaries.append((found["predictions"], s))
        except DataError as exc:
            parts.append(f'<p class="note">Predictions {_e(found["predictions"])} not scored: {_e(exc)}</p>')
    if summaries:
        parts.append("<h2>Metrics</h2>")
        parts += [metrics_section(s, _rel(p, root)) for p, s in summaries]
    with_unc = [(p, s) for p, s in summaries if s.get("uncertainty") or s.get("label_noise")]
    if with_unc:
        parts.append("<h2>Calibrated uncertainties</h2>")
        for p, s in with_unc:
            parts.append(f"<p>From {_e(_rel(p, root))}, split {_e(s['split'])}.</p>")
            if s.get("uncertainty"):
                parts.append(uncertainty_section(s["uncertainty"], s["target"]))
            if s.get("label_noise"):
                parts.append(_label_noise_note(s["label_noise"]))
    if found["crossval"]:
        parts.append("<h2>Cross-validation</h2>" + _crossval_section(found["crossval"], root))
    if found["baselines"]:
        parts.append("<h2>Baselines</h2>" + _baselines_section(found["baselines"], root))
    if found["resolution"] is not None:
        tab, extra, path = found["resolution"]
        parts.append("<h2>Resolution study</h2>" + _resolution_section(tab, extra, path, root))
    if found["mzr"]:
        parts.append("<h2>Stellar mass and the mass-metallicity relation</h2>" + _mzr_section(found["mzr"], root))
    if found["systematics"]:
        parts.append("<h2>Systematics</h2>" + _systematics_section(found["systematics"], root))
    if found["controls"]:
        parts.append("<h2>What the network looks at: controls</h2>" + _controls_section(found["controls"], root))
    figs = sorted(found["figures"], key=lambda p: (p.stem not in CAPTIONS, p.stem, str(p)))
    seen = set()
    fig_html = []
    for p in figs:
        if p.stem in seen:  # the same figure written by two commands (e.g. figures/ and mzr/)
            continue
        seen.add(p.stem)
        fig_html.append(_figure_html(p, root))
    if found["history"] is not None:
        png = history_png(found["history"])
        if png:
            fig_html.append(
                f'<figure><img alt="history" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                f"<figcaption>{_e(CAPTIONS['history'])}</figcaption></figure>"
            )
    if fig_html:
        parts.append("<h2>Figures</h2>" + "".join(fig_html))
    if found["config"]:
        parts.append(
            f'<h2>Configuration</h2><p class="note">{_e(found["config_path"].relative_to(root))}</p>'
            f"<pre>{_e(found['config'])}</pre>"
        )
    parts.append("<h2>Provenance</h2>" + _table(["item", "value"], _provenance_rows(found, summaries)))
    if len(parts) <= 3:
        raise DataError(
            f"{root}: nothing to report (no metrics JSON, predictions, figures, config.yaml or history.csv)"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    run_dir: str | os.PathLike, out_html: str | os.PathLike | None = None, title: str | None = None
) -> Path:
    """Write the self-contained HTML report of ``run_dir`` atomically; return its path.

    Parameters
    ----------
    run_dir : path-like
        Folder with the outputs of ``galmet train / predict / evaluate / figures / baseline /
        mzr / resolution-study`` (see the module docstring).
    out_html : path-like, optional
        Default: ``run_dir/report.html``.
    """
    from galmet.io.atomic import atomic_write_text

    out = check_report_output(run_dir, out_html)
    found = collect(run_dir)
    atomic_write_text(out, render(found, title))
    return out


#: Suffixes of the files a report reads under its folder (its output must be none of them).
READ_SUFFIXES = (".json", ".csv", ".parquet", ".png", ".yaml", ".fits")


def check_report_output(run_dir, out_html=None) -> Path:
    """The report's path (default ``run_dir/report.html``), refused (one line) when it does not end in
    .html/.htm, is a directory or sits under a file, or is one of the files the report reads."""
    out = Path(out_html) if out_html is not None else Path(run_dir) / REPORT
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {out}: the report is HTML; give a file name ending in .html")
    reads = Input(Path(run_dir), "a file the report reads", tree=True, suffixes=READ_SUFFIXES)
    return check_output_file(out, "--out", "html", "report", [reads])
