"""The report's sections, each an HTML fragment of one run's results.

Analysis sections (metrics, uncertainties, cross-validation, baselines, resolution study, MZR,
systematics, controls) draw what the commands wrote; the run's headline, dataset, outliers and
configuration draw :mod:`galmet.report.facts`. ``paper=False`` (a synthetic or an
unknown data set) leaves every number of the paper out: the paper measured SDSS galaxies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galmet.report.html import Paths, esc, num, table
from galmet.science.metrics import format_interval


def _compare(ours, paper, lower_is_better=True) -> str:
    if ours is None or paper is None:
        return ""
    better = ours <= paper if lower_is_better else ours >= paper
    cls = "better" if better else "worse"
    return f'<span class="{cls}">{"&le;" if ours <= paper else "&gt;"} paper</span>'


def metrics_section(summary: dict, source_html: str, paper: bool = True) -> str:
    """HTML table of one :func:`galmet.science.metrics.summarize` dict; with ``paper`` the paper's
    values (its SDSS test set) beside ours, without it (synthetic or unknown data) ours alone.
    A summary with bootstrap ``intervals`` shows the 68% and 95% intervals of RMSE, NMAD and bias.

    ``source_html`` names the file the numbers came from (HTML, e.g. :meth:`Paths.show`).
    """
    ref = summary.get("paper", {}) if paper else {}
    high = [
        ("Z_true &gt; 9.1", "frac_true_above_9.1"),
        ("Z_pred &gt; 9.1", "frac_pred_above_9.1"),
    ]
    rows = [
        ["N", f"{summary['n']:,}", num(ref.get("n"), "{:,}"), ""],
        *(
            [f"{name} (dex)", num(summary[key]), num(ref.get(key), "{:.3f}"), _compare(summary[key], ref.get(key))]
            for name, key in (("RMSE", "rmse"), ("NMAD", "nmad"))
        ),
        ["median bias (dex)", num(summary["bias"], "{:+.4f}"), num(ref.get("bias"), "{:+.3f}"), ""],
        ["mean bias (dex)", num(summary.get("mean_bias"), "{:+.4f}"), "-", ""],
        ["outlier fraction", num(100 * summary.get("outlier_fraction", np.nan), "{:.2f}%"), "-", ""],
    ]
    rows += [
        [label, num(100 * summary[key], "{:.1f}%"), num(100 * ref.get(key, np.nan), "{:.1f}%"), ""]
        for label, key in high
        if key in summary
    ]
    header = ["metric", "galmet", "paper", ""]
    boot = summary.get("intervals")
    if boot:
        keys = [None, "rmse", "nmad", "bias"] + [None] * (len(rows) - 4)
        rows = [[r[0], r[1], *_interval_cells(boot, k), *r[2:]] for r, k in zip(rows, keys, strict=True)]
        header = ["metric", "galmet", "68% interval", "95% interval", "paper", ""]
    head = f"<p>Target <b>{esc(summary['target'])}</b>, split <b>{esc(summary['split'])}</b> (from {source_html}).</p>"
    note = '<p class="note">Outliers: |&Delta;Z| &gt; 3 NMAD and |&Delta;Z| &gt; 0.3 dex.'
    if boot:
        note += f" Intervals: percentile bootstrap over the galaxies ({boot['n_boot']} resamples)."
    if ref:
        note += " The paper's values are for its 20,466 SDSS test galaxies (Wu &amp; Boada 2019)."
        return head + table(header, rows) + note + "</p>"
    keep = len(header) - 2
    return head + table(header[:keep], [r[:keep] for r in rows]) + note + "</p>"


def _interval_cells(boot: dict | None, key: str | None) -> list[str]:
    """The 68% and 95% bootstrap interval cells of metric ``key`` (``"-"`` without one)."""
    if not boot or key is None or key not in boot:
        return ["-", "-"]
    fmt = "{:+.4f}" if key == "bias" else "{:.4f}"
    return [f"[{fmt.format(boot[key][f'lo{lv}'])}, {fmt.format(boot[key][f'hi{lv}'])}]" for lv in (68, 95)]


def _baselines_section(items, paths: Paths, paper: bool = True) -> str:
    out = []
    for path, b in items:
        rows = []
        for key, name in (
            ("rf", f"random forest ({b.get('bands', '?')})"),
            ("constant", "constant mean"),
            ("oracle", "observable oracle"),
        ):
            s = b.get(key)
            if not s:
                continue
            ref = (s.get("paper") or {}).get("rmse")
            rows.append(
                [
                    esc(name),
                    f"{s['n']:,}",
                    num(s["rmse"]),
                    _interval_cells(s.get("intervals"), "rmse")[1],
                    num(s["nmad"]),
                    num(s["bias"], "{:+.4f}"),
                    num(ref, "{:.3f}"),
                ]
            )
        header = ["predictor", "N", "RMSE (dex)", "RMSE 95% interval", "NMAD (dex)", "bias (dex)", "paper RMSE"]
        if not paper:
            header, rows = header[:-1], [r[:-1] for r in rows]
        floor = b.get("noise_floor")
        out.append(
            f"<p>From {paths.show(path)}; fitted on train + valid, scored on test.</p>"
            + table(header, rows)
            + (f'<p class="note">Noise floor of the test galaxies: {floor:.4f} dex.</p>' if floor is not None else "")
        )
    return "".join(out)


#: Columns of the cross-validation table.
_CV_HEADER = [
    "target",
    "N",
    "RMSE (dex)",
    "RMSE 95% interval",
    "+- (fold s.e.)",
    "NMAD (dex)",
    "bias (dex)",
    "RMSE per fold",
]


def _crossval_section(items, paths: Paths) -> str:
    out = []
    for path, cv in items:
        rows = [
            [
                esc(t),
                f"{cv.get('n', 0):,}",
                num(m.get("rmse")),
                esc(format_interval((m.get("intervals") or {}).get("rmse")) or "-"),
                num(m.get("rmse_fold_sem")),
                num(m.get("nmad")),
                num(m.get("bias"), "{:+.4f}"),
                esc(", ".join(f"{v:.4f}" for v in m.get("rmse_per_fold", []))),
            ]
            for t, m in cv["targets"].items()
        ]
        out.append(
            f"<p>From {paths.show(path)}: {cv['folds']}-fold cross-validation, every galaxy predicted "
            f"by the fold model that did not see it{' (TTA x8)' if cv.get('tta') else ''}.</p>"
            + table(_CV_HEADER, rows)
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
                num(m["mean_width"]),
                num(m["interval_score"]),
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
        table(["interval", "coverage (nominal 68 / 95%)", "mean width (dex)", "interval score (dex)"], rows)
        + f'<p class="note">N = {u["n"]}; err (1&sigma;): mean {u["mean_err"]:.4f}, median {u["median_err"]:.4f} '
        f"dex. {gauss}Coverage 68% / 95% per tercile of {esc(target)}: {esc(terc)}.</p>"
        + _pred_tercile_table(u.get("pred_terciles") or [], target)
    )


def _pred_tercile_table(rows: list[dict], target: str) -> str:
    """HTML table of the coverage per tercile of the *predicted* value (with binomial s.e.); '' without."""
    if not rows:
        return ""

    def cov(r: dict, tag: str) -> str:
        return f"{100 * r[f'coverage{tag}']:.1f}% &plusmn; {100 * r[f'se{tag}']:.1f}" if f"coverage{tag}" in r else ""

    body = [[f"{r['lo']:.2f} &ndash; {r['hi']:.2f}", str(r["n"]), cov(r, "68"), cov(r, "95")] for r in rows]
    return (
        f'<p class="note">Coverage per tercile of predicted {esc(target)} (what a user selects on), '
        "&plusmn; binomial standard error:</p>"
        + table([f"predicted {target}", "N", "68% coverage", "95% coverage"], body)
    )


def _label_noise_note(noise: dict) -> str:
    return (
        f'<p class="note">Label uncertainty (oh_p16 / oh_p84, N = {noise["n"]}): median 1&sigma; '
        f"{noise['median_label_sigma']:.4f} dex; it explains {100 * noise['fraction']:.0f}% of the squared error "
        f"(RMSE {noise['rmse']:.4f} dex; {noise['rmse_without']:.4f} without it).</p>"
    )


def _systematics_section(items, paths: Paths) -> str:
    out = []
    for path, s in items:
        rows = []
        for name, t in s["trends"].items():
            worst = t.get("max_abs_bias") or {}
            rows.append(
                [
                    esc(t.get("label", name)),
                    f"{t.get('n', 0):,}",
                    num(t.get("spearman_rho"), "{:+.2f}"),
                    num(t.get("spearman_p"), "{:.2g}"),
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
            f"<p>From {paths.show(path)}: {s.get('n', '?')} galaxies, split {esc(s.get('split', '?'))}; "
            f"{100 * s.get('level', 0.95):.0f}% bootstrap intervals.</p>"
            + table(["property", "N", "Spearman rho", "p", "largest bin bias (dex)"], rows)
            + (f'<p class="note">Not in the data: {esc(missing)}.</p>' if missing else "")
        )
    return "".join(out)


def _controls_section(items, paths: Paths) -> str:
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
            rows.append([label, num(m["rmse"]), num(m["nmad"]), num(m["bias"], "{:+.4f}"), shift])
        d = c.get("fibre_minus_annulus")
        note = (
            f'<p class="note">Paired |shift| fibre &minus; annulus: {d["mean_abs_shift_difference"]:+.4f} '
            f"&plusmn; {d['se']:.4f} dex.</p>"
            if d
            else ""
        )
        out.append(
            f"<p>From {paths.show(path)}: {c.get('n', '?')} galaxies.</p>"
            + table(["input", "RMSE (dex)", "NMAD (dex)", "bias (dex)", "mean shift of Z_pred (dex)"], rows)
            + note
        )
    return "".join(out)


def _resolution_section(tab: pd.DataFrame, extra: dict, path, paths: Paths, paper: bool = True) -> str:
    rows = []
    for _, r in tab.sort_values("size", ascending=False).iterrows():
        rows.append(
            [
                f"{int(r['size'])}",
                num(r.get("rmse")),
                _seed_spread(r),
                num(r.get("nmad")),
                f"{int(r['n'])}" if "n" in r and np.isfinite(r["n"]) else "-",
                num(r.get("train_seconds"), "{:.0f}"),
            ]
        )
    from galmet.science.resolution import baseline_lines

    base = [esc(line) for line in baseline_lines(extra, notes=False)]
    inputs = "s x s (the paper's experiment)"
    if extra.get("min_input", 1) not in (None, 1):
        inputs = f"pixel-replicated to at least {int(extra['min_input'])} px (a deviation from the paper)"
    from galmet.paper import PAPER_CNN_BEATS_RF_FROM, PAPER_RF_GRI_RMSE

    said = (
        f" The paper reports a random forest on gri at RMSE {PAPER_RF_GRI_RMSE:.3f} dex and its CNN beating it "
        f"from {PAPER_CNN_BEATS_RF_FROM}x{PAPER_CNN_BEATS_RF_FROM} pixels up."
        if paper
        else ""
    )
    return (
        f"<p>From {paths.show(path)}. Network inputs: {esc(inputs)}. Baselines: "
        f"{'; '.join(base) or 'none recorded'}.{said}</p>"
        + table(["size (pixels)", "RMSE (dex)", "RMSE std over seeds", "NMAD (dex)", "N test", "train time (s)"], rows)
    )


def _seed_spread(r) -> str:
    """A study row's RMSE standard deviation over its training seeds, with their number ("-" for one)."""
    k = r.get("seeds")
    if k is None or not np.isfinite(k) or k < 2:
        return "-"
    return f"{num(r.get('rmse_std'))} ({int(k)} seeds)"


def _scored(scores: dict, key: str) -> str:
    """A cell: ``scores[key]`` (dex) and, when the scores carry bootstrap intervals, its 95% interval."""
    span = format_interval((scores.get("intervals") or {}).get(key))
    return num(scores[key]) + (f" {esc(span)}" if span else "")


def _mzr_section(items, paths: Paths, paper: bool = True) -> str:
    out = []
    for path, m in items:
        m = m if paper else _without_paper(m)
        sigma = m.get("tremonti_sigma")
        sigma = sigma.get("value") if isinstance(sigma, dict) else sigma  # a dict since issue 10
        rows = [
            [
                "stellar mass RMSE (dex)",
                _scored(m["mass"], "rmse"),
                num(m["mass"].get("paper", {}).get("rmse"), "{:.2f}"),
            ],
            [
                "stellar mass NMAD (dex)",
                _scored(m["mass"], "nmad"),
                num(m["mass"].get("paper", {}).get("nmad"), "{:.2f}"),
            ],
            [
                "Z_MZR vs Z_true RMSE (dex)",
                _scored(m["z_mzr"], "rmse"),
                num(m["z_mzr"].get("paper", {}).get("rmse"), "{:.2f}"),
            ],
            [
                "Z_pred vs Z_true RMSE (dex)",
                _scored(m["z_pred"], "rmse"),
                num(m["z_pred"].get("paper", {}).get("rmse"), "{:.3f}"),
            ],
            [
                "predicted MZR scatter, NMAD (dex)",
                num(m.get("mzr_pred_scatter")),
                num(sigma, "{:.2f}") + " (Tremonti+04 sigma, DR2)",
            ],
            [
                "true MZR scatter, NMAD (dex)",
                num(m.get("mzr_true_scatter")),
                num(sigma, "{:.2f}") + " (Tremonti+04 sigma, DR2)",
            ],
        ]
        nulls = m.get("null_tests") or {}
        if nulls:
            rows += [
                ["sigma(Z_true | M), pooled (dex)", num(nulls.get("sigma_true_given_mass")), "-"],
                [
                    "expected sigma(Z_pred | M) of a calibrated regressor (dex)",
                    num(nulls.get("expected_calibrated")),
                    "-",
                ],
                ["measured sigma(Z_pred | M) (dex)", num(nulls.get("sigma_pred_given_mass")), "-"],
            ]
            if "rf" in nulls:
                rows.append(
                    ["random forest: sigma(Z_rf | M) (dex)", num(nulls["rf"].get("sigma_pred_given_mass")), "-"]
                )
        ssfr = m.get("ssfr") or {}
        if ssfr.get("dz"):
            dz = ssfr["dz"]
            rows.append(
                [
                    f"partial r(Z_pred - Z_true, {esc(ssfr.get('column'))} | M)",
                    f"{num(dz.get('r'))} [{num(dz.get('lo'))}, {num(dz.get('hi'))}]",
                    "-",
                ]
            )
        out.append(
            f"<p>From {paths.show(path)}: {m['n']:,} galaxies, split {esc(m.get('split', '?'))}. A calibrated "
            "regressor gives a tighter predicted MZR by construction; the null tests say how much.</p>"
            + table(["quantity", "galmet", "reference"], rows)
        )
    return "".join(out)


def _without_paper(m: dict) -> dict:
    """``m`` with the paper's values of its mass, Z_MZR and Z_pred entries dropped."""
    return {k: ({kk: vv for kk, vv in v.items() if kk != "paper"} if isinstance(v, dict) else v) for k, v in m.items()}


# --- the run's own sections (facts) ---------------------------------------------------------


def headline_html(head: dict, target: str | None, split: str) -> str:
    """The headline: one sentence and a table of the CNN, its baselines and the noise floor (or the
    paper's numbers on SDSS data), RMSE with paired bootstrap intervals."""
    rows_in = head["rows"]
    if not rows_in:
        return '<p class="note">No predictions or metrics of the CNN were found: no headline.</p>'
    st = head.get("settings") or {}
    level = f"{100 * st['level']:.0f}%" if st else ""
    rows = []
    for r in rows_in:
        ci = f"{num(r.get('lo'), '{:.3f}')}&ndash;{num(r.get('hi'), '{:.3f}')}" if r.get("lo") is not None else "-"
        diff = (
            f"{num(r['diff'], '{:+.3f}')} ({num(r.get('diff_lo'), '{:+.3f}')} to {num(r.get('diff_hi'), '{:+.3f}')})"
            if r.get("diff") is not None
            else "-"
        )
        n = f"{r['n']:,}" if isinstance(r.get("n"), int) else "-"
        rows.append([esc(r["label"]), n, num(r.get("rmse"), "{:.3f}"), ci, diff, esc(r.get("note", ""))])
    rows += [
        [esc(r["label"]), f"{r['n']:,}" if r.get("n") else "-", num(r["rmse"], "{:.3f}"), "-", "-", "the paper"]
        for r in head.get("reference", [])
    ]
    header = ["predictor", "N", "RMSE (dex)", f"{level} interval".strip(), "CNN minus this (dex)", "note"]
    if not any(r[-1] for r in rows):  # no notes: no empty column on a narrow screen
        header, rows = header[:-1], [r[:-1] for r in rows]
    note = (
        f'<p class="note">Target {esc(target or "?")}, split {esc(split or "?")}. Intervals: percentile '
        f"bootstrap, {st['n_boot']:,} resamples of the galaxies (seed {st['seed']}), every predictor scored on "
        "the same resample, so the interval of a difference is that of the paired difference: it excludes 0 "
        "when the gap is real.</p>"
        if st
        else ""
    )
    if any(r["label"] == "noise floor" for r in rows_in):
        from galmet.report.facts import FLOOR_NOTE

        note += f'<p class="note">Noise floor: {esc(FLOOR_NOTE)}.</p>'
    sentence = _headline_sentence(rows_in, head.get("reference", []))
    return sentence + table(header, rows, wrap_last=len(header) == 6) + note


def _headline_sentence(rows: list[dict], reference: list[dict]) -> str:
    from galmet.report.facts import CNN_LABEL

    cnn = rows[0]
    if cnn["label"] != CNN_LABEL:
        return '<p class="lead">No predictions or metrics of the CNN in this run; its baselines:</p>'
    parts = [f"The CNN reaches RMSE <b>{num(cnn.get('rmse'), '{:.3f}')} dex</b>"]
    if cnn.get("lo") is not None:
        parts[0] += f" ({num(cnn['lo'], '{:.3f}')}&ndash;{num(cnn['hi'], '{:.3f}')})"
    parts[0] += f" on {cnn['n']:,} galaxies" if isinstance(cnn.get("n"), int) else ""
    for r in rows[1:]:
        if r.get("diff") is None:
            continue
        lo, hi = r["diff_lo"], r["diff_hi"]
        verdict = "lower than" if hi < 0 else "higher than" if lo > 0 else "indistinguishable from"
        parts.append(f"{verdict} the {esc(r['label'])} ({num(r['rmse'], '{:.3f}')})")
    for r in reference[:1]:
        parts.append(f"against {num(r['rmse'], '{:.3f}')} dex for {esc(r['label'])} on its SDSS test set")
    return f'<p class="lead">{"; ".join(parts)}.</p>'


def dataset_html(ds, mosaic_html: str, split_rows: dict[str, int], ranges: dict, paths: Paths, source: str) -> str:
    """The dataset: where it is, its size and splits, the label ranges, and the mosaic."""
    out = []
    if ds is not None:
        where = paths.show(ds.path) if ds.path is not None else esc(ds.name)
        size = f", {ds.image_size}x{ds.image_size} px images" if ds.image_size else ""
        out.append(f"<p>Dataset {where}: {len(ds.catalog):,} galaxies{size}.</p>")
        pix = ds.settings.get("pixel_scale_arcsec")
        if ds.synthetic:
            out.append(
                f'<p class="note">A galmet synthesis (seed {esc(ds.settings.get("seed", "?"))}'
                + (f", {pix:.3f}&Prime;/px" if isinstance(pix, (int, float)) else "")
                + ").</p>"
            )
    else:
        out.append(f'<p class="note">The dataset folder was not found; numbers from {esc(source)}.</p>')
    if split_rows:
        total = sum(split_rows.values())
        out.append(
            table(
                ["split", "galaxies", "share"],
                [[esc(s), f"{n:,}", f"{100 * n / total:.0f}%"] for s, n in split_rows.items()],
            )
        )
    if ranges:
        out.append(
            table(
                ["label", "N", "min", "16th pct", "median", "84th pct", "max"],
                [
                    [esc(k), f"{r['n']:,}", *(num(r[q], "{:.3f}") for q in ("min", "p16", "median", "p84", "max"))]
                    for k, r in ranges.items()
                ],
            )
        )
    return "".join(out) + mosaic_html


def _outlier_extras(target: str) -> list[tuple[str, str, str]]:
    """(header, column, format) of the optional columns of the outlier table."""
    return [("err (dex)", f"{target}_err", "{:.3f}"), ("ra (deg)", "ra", "{:.5f}"), ("dec (deg)", "dec", "{:+.5f}")]


def outliers_html(rows: pd.DataFrame, target: str, links: list[str | None], synthetic: bool) -> str:
    """The galaxies with the largest |dZ|, each linked to its SkyServer page when it has a real objID.

    Columns are read whole (never row by row: ``iterrows`` would turn an int64 objID into a float
    when every column is numeric); ra/dec and the calibrated error are shown when present.
    """
    ids = rows["objID"].tolist() if "objID" in rows.columns else ["-"] * len(rows)
    columns = [
        (f"{target} true", rows[target], "{:.3f}"),
        ("predicted", rows[f"{target}_pred"], "{:.3f}"),
        ("\u0394Z (dex)", rows["dz"], "{:+.3f}"),
    ]
    columns += [(name, rows[col], fmt) for name, col, fmt in _outlier_extras(target) if col in rows.columns]
    body = []
    for i, (oid, link) in enumerate(zip(ids, links, strict=True)):
        cell = f'<a href="{esc(link)}" rel="noopener">{esc(oid)}</a>' if link else esc(oid)
        body.append([cell, *(num(float(values.iloc[i]), fmt) for _, values, fmt in columns)])
    header = ["objID", *(name for name, _, _ in columns)]
    note = (
        "Synthetic galaxies have no SkyServer page."
        if synthetic
        else "Each objID links to its SDSS SkyServer Explore page (the image, spectrum and photometry)."
        if any(links)
        else "No objID here is a real SDSS objID, so no SkyServer link."
    )
    return table(header, body) + f'<p class="note">{note}</p>'


def config_html(settings: list[tuple[str, str]], config_path, n_total: int, paths: Paths) -> str:
    """The training settings that matter, as a two-column table, and a link to the full config."""
    rows = [[esc(k), esc(v)] for k, v in settings]
    return (
        table(["setting", "value"], rows, text=True)
        + f'<p class="note">The settings that matter; the full configuration ({n_total} entries): '
        f"{paths.show(config_path)}.</p>"
    )
