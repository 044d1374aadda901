"""The HTML report: self-contained, paper numbers beside ours, every section found."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from galmet.cli.main import main


def _run_dir(tmp_path, n=300):
    rng = np.random.default_rng(0)
    t = rng.normal(8.9, 0.15, n)
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame(
        {"objID": np.arange(n), "split": "test", "oh_p50_pred": t + rng.normal(0, 0.08, n), "oh_p50": t}
    ).to_parquet(run / "predictions.parquet")
    (run / "config.yaml").write_text("recipe: paper\narch: resnet34\nrun:\n  dataset: /data/synth\n  n_train: 10\n")
    pd.DataFrame({"epoch": [1, 2], "train_rmse_oh_p50": [0.2, 0.1], "valid_rmse_oh_p50": [0.15, 0.12]}).to_csv(
        run / "history.csv", index=False
    )
    return run


def test_report_from_predictions_only(tmp_path):
    from galmet.report.build import write_report

    run = _run_dir(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    text = out.read_text()
    # objIDs 0..299 say neither SDSS nor synthetic: metrics without the paper's numbers
    assert "<h3>Headline</h3>" in text and "<h3>Metrics</h3>" in text and "data source unknown" in text
    assert "<th>paper</th>" not in text and "Wu &amp; Boada (2019) CNN" not in text and ">0.085<" not in text
    # the settings that matter as a table, never the YAML itself; the dataset by name only
    assert "<td>recipe</td><td>paper</td>" in text and "<td>network</td><td>resnet34</td>" in text
    assert "recipe: paper" not in text and "/data/synth" not in text and "<td>dataset</td><td>synth</td>" in text
    assert "sha256" in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "report must not reference external URLs"
    assert text.count("data:image/png;base64,") == 1  # the training history plot


def test_report_cli_embeds_figures_and_sections(tmp_path):
    run = _run_dir(tmp_path)
    assert main(["evaluate", str(run / "predictions.parquet"), "--json", str(run / "metrics.json")]) == 0
    assert main(["figures", str(run / "predictions.parquet"), "--out", str(run / "figures"), "--format", "png"]) == 0
    (run / "baseline").mkdir()
    (run / "baseline" / "baseline_metrics.json").write_text(
        json.dumps(
            {
                "target": "oh_p50",
                "bands": "gri",
                "rf": {"n": 10, "rmse": 0.13, "nmad": 0.1, "bias": 0.0, "paper": {"rmse": 0.13}},
                "constant": {"n": 10, "rmse": 0.2, "nmad": 0.18, "bias": 0.01},
            }
        )
    )
    (run / "res").mkdir()
    pd.DataFrame(
        {
            "size": [32, 8],
            "input_size": [32, 32],
            "rmse": [0.1, 0.12],
            "nmad": [0.08, 0.1],
            "n": [10, 10],
            "train_seconds": [5.0, 4.0],
        }
    ).to_csv(run / "res" / "resolution.csv", index=False)
    (run / "res" / "resolution.json").write_text(json.dumps({"rf_rmse": 0.13, "constant_rmse": 0.2, "bands": "gri"}))
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(run), "--out", str(out), "--title", "My run"]) == 0
    text = out.read_text()
    for section in (
        "Headline",
        "Metrics",
        "Baselines",
        "Resolution study",
        "Figures",
        "Training settings",
        "Provenance",
    ):
        assert f"<h3>{section}</h3>" in text
    assert "<title>My run</title>" in text
    assert text.count("data:image/png;base64,") == 3  # fig2, fig3, history
    assert "Figure 3." in text and "random forest (gri)" in text


def test_report_empty_dir_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing to report" in err and len(err.splitlines()) == 1


def test_report_missing_dir_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_report_shows_cross_validation_scores(tmp_path):
    from galmet.report.build import write_report

    run = _run_dir(tmp_path)
    cv = {
        "folds": 5,
        "fold_seed": 0,
        "n": 400,
        "tta": True,
        "targets": {
            "oh_p50": {
                "rmse": 0.10084,
                "nmad": 0.0906,
                "bias": -0.0073,
                "rmse_fold_sem": 0.0032,
                "rmse_per_fold": [0.1076, 0.0923, 0.1022, 0.107, 0.0942],
            }
        },
    }
    (run / "cv.json").write_text(json.dumps(cv))
    text = write_report(run).read_text()
    section = text[text.index("<h3>Cross-validation</h3>") :]
    assert "5-fold cross-validation" in section and "(TTA x8)" in section
    assert "0.1008" in section and "0.0032" in section and "-0.0073" in section and "0.1076, 0.0923" in section


# --- issue 11: one section per run, headline intervals, dataset, paper only on SDSS, outliers, paths ---

SDSS_IDS = 1237661465452740762  # real SDSS DR14 objIDs start with 1237
SYNTH_IDS = 1_230_000_000_000_000_000  # galmet.synthetic.render.OBJID_BASE


class _Html(HTMLParser):
    """Sections (id -> text inside), every href / src, the headline tables' cells."""

    def __init__(self):
        super().__init__()
        self.sections, self.links, self.srcs, self._sec = [], [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append({"id": a.get("id"), "html": ""})
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img":
            self.srcs.append(a.get("src", ""))


def _parse(text):
    p = _Html()
    p.feed(text)
    return p


def _sections(text):
    """The HTML of each run's <section>, in order."""
    return re.findall(r'<section class="run" id="[^"]+">(.*?)</section>', text, flags=re.S)


def _predictions(path, ids, seed=0, n=120, noise=0.08):
    rng = np.random.default_rng(seed)
    t = rng.normal(8.9, 0.15, n)
    df = pd.DataFrame({"objID": ids + np.arange(n), "split": "test", "oh_p50_pred": t + rng.normal(0, noise, n)})
    df["oh_p50"] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)
    return df


def _png(path, colour):
    from galmet.science.plots.style import figure_bytes, new_figure

    fig = new_figure((2, 1.5))
    fig.add_subplot().plot([0, 1], [0, 1], color=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_bytes(fig, "png", dpi=40))


def _baselines(folder, cnn, seed=1):
    """baseline_metrics.json with rf / constant predictions files on the CNN's galaxies."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, noise in (("rf_gri_predictions.parquet", 0.14), ("constant_predictions.parquet", 0.2)):
        b = cnn[["objID", "split", "oh_p50"]].copy()
        b["oh_p50_pred"] = b["oh_p50"] + rng.normal(0, noise, len(b))
        b.to_parquet(folder / name)
    (folder / "baseline_metrics.json").write_text(
        json.dumps(
            {
                "target": "oh_p50",
                "bands": "gri",
                "rf": {"n": len(cnn), "rmse": 0.14, "nmad": 0.12, "bias": 0.0},
                "constant": {"n": len(cnn), "rmse": 0.2, "nmad": 0.18, "bias": 0.0},
            }
        )
    )


def _two_runs(tmp_path):
    """A real-sample run (SDSS objIDs) and a synthetic study (synthetic objIDs), each with a fig3."""
    real, synth = tmp_path / "runs" / "real", tmp_path / "runs" / "synth"
    _predictions(real / "predictions.parquet", SDSS_IDS, seed=0)
    cnn = _predictions(synth / "predictions.parquet", SYNTH_IDS, seed=1)
    _baselines(synth / "baseline", cnn)
    _png(real / "figures" / "fig3_pred_vs_true.png", "red")
    _png(synth / "figures" / "fig3_pred_vs_true.png", "blue")
    return real, synth


def test_report_two_runs_two_sections_same_stem_figures_both_present(tmp_path):
    from galmet.report.build import write_report

    real, synth = _two_runs(tmp_path)
    # one folder holding both runs is split into them; the same runs given one by one read the same
    for args in ([tmp_path / "runs"], [real, synth]):
        out = write_report(args, tmp_path / "out" / "report.html")
        text = out.read_text()
        sections = _sections(text)
        assert len(sections) == 2
        assert "<h2>real</h2>" in sections[0] and "<h2>synth</h2>" in sections[1]
        for sec in sections:  # each run's own figure, in its own section
            assert sec.count("data:image/png;base64,") == 1 and "fig3_pred_vs_true.png" in sec
        srcs = [s for s in _parse(text).srcs if s.startswith("data:image/png")]
        assert len(srcs) == 2 and srcs[0] != srcs[1]


def test_report_run_with_subfolders_stays_one_section(tmp_path):
    from galmet.report.build import discover_runs, write_report

    run = tmp_path / "run"
    cnn = _predictions(run / "predictions.parquet", SYNTH_IDS)
    _baselines(run / "baseline", cnn)
    _png(run / "figures" / "fig2_histograms.png", "green")
    assert discover_runs(run) == [run]
    assert len(_sections(write_report(run).read_text())) == 1


def test_report_paper_only_on_sdss_and_links_only_for_real_objids(tmp_path):
    from galmet.report.build import write_report
    from galmet.sdss.skyserver import explore_url

    real, synth = _two_runs(tmp_path)
    sec_real, sec_synth = _sections(write_report([real, synth], tmp_path / "r.html").read_text())
    # SDSS: the paper's numbers beside ours, and the 10 largest |dZ| linked to SkyServer by objID
    assert "SDSS galaxies" in sec_real and "Compared with Wu &amp; Boada (2019)" in sec_real
    assert "<td>0.085</td>" in sec_real and "<td>0.067</td>" in sec_real and "<th>paper</th>" in sec_real
    df = pd.read_parquet(real / "predictions.parquet")
    worst = df.assign(a=(df["oh_p50_pred"] - df["oh_p50"]).abs()).nlargest(10, "a")["objID"]
    links = [h for h in _parse(sec_real).links if "skyserver" in h]
    assert len(links) == 10
    for oid in worst:
        assert explore_url(int(oid)) in links and f">{oid}</a>" in sec_real
    # synthetic: no paper anywhere in its section, no SkyServer link
    assert "synthetic galaxies" in sec_synth
    for paper_text in (">0.085<", ">0.067<", "<th>paper</th>", "Wu &amp; Boada (2019) CNN", "paper RMSE", "skyserver"):
        assert paper_text not in sec_synth, paper_text
    assert "No comparison with the paper" in sec_synth and "Synthetic galaxies have no SkyServer page" in sec_synth


def test_report_headline_bootstrap_intervals_contain_the_rmse(tmp_path):
    from galmet.report.build import write_report

    _real, synth = _two_runs(tmp_path)
    text = write_report(synth).read_text()
    head = text[text.index("<h3>Headline</h3>") : text.index("<h3>Dataset</h3>")]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([\d,]+)</td><td>([\d.]+)</td><td>([\d.]+)&ndash;([\d.]+)</td>", head)
    labels = [r[0] for r in rows]
    assert labels[0] == "CNN (galmet)" and "random forest (gri)" in labels and "constant mean" in labels
    for _label, _n, rmse, lo, hi in rows:
        assert float(lo) <= float(rmse) <= float(hi) and float(lo) < float(hi)
    df = pd.read_parquet(synth / "predictions.parquet")
    assert float(rows[0][2]) == pytest.approx(np.sqrt(np.mean((df["oh_p50_pred"] - df["oh_p50"]) ** 2)), abs=5e-4)
    assert "CNN minus this" in head and "2,000 resamples" in head
    # seeded: a second report gives the same intervals
    again = write_report(synth, tmp_path / "again.html").read_text()
    assert head == again[again.index("<h3>Headline</h3>") : again.index("<h3>Dataset</h3>")]


def test_bootstrap_rmse_paired_and_seeded():
    from galmet.errors import DataError
    from galmet.science.metrics import bootstrap_rmse

    rng = np.random.default_rng(3)
    a = rng.normal(0, 0.1, 500)
    b = a + rng.normal(0, 0.02, 500)  # nearly the same residuals: the paired difference is tight
    out = bootstrap_rmse({"a": a, "b": b}, n_boot=500, seed=1)
    assert out == bootstrap_rmse({"a": a, "b": b}, n_boot=500, seed=1)
    for k in ("a", "b"):
        assert out[k]["lo"] <= out[k]["rmse"] <= out[k]["hi"]
    assert out["b"]["diff"] == pytest.approx(out["a"]["rmse"] - out["b"]["rmse"])
    assert out["b"]["diff_hi"] - out["b"]["diff_lo"] < 0.5 * (out["a"]["hi"] - out["a"]["lo"])
    with pytest.raises(DataError, match="differ in length"):
        bootstrap_rmse({"a": a, "b": b[:10]})


def test_report_paths_relative_and_report_moves_with_its_folder(tmp_path):
    from galmet.report.build import write_report

    project = tmp_path / "project"
    real, synth = _two_runs(project)
    (real / "metrics.json").write_text(
        json.dumps(
            {
                "target": "oh_p50",
                "split": "test",
                "n": 120,
                "rmse": 0.08,
                "nmad": 0.07,
                "bias": 0.0,
                "predictions": {"path": str(tmp_path / "elsewhere" / "p.parquet"), "sha256": "ab" * 32},
            }
        )
    )
    out = write_report(project / "runs", project / "report.html")
    text = out.read_text()
    assert str(tmp_path) not in text and "/tmp/" not in text
    parsed = _parse(text)
    local = [h for h in parsed.links if not h.startswith(("http", "#"))]
    assert local and all(not h.startswith(("/", "file:")) for h in local)
    assert "runs/real/figures/fig3_pred_vs_true.png" in local and "runs/real/metrics.json" in local
    assert 'p.parquet <span class="note">(outside the report\'s folder)</span>' in text
    moved = tmp_path / "moved"
    project.rename(moved)
    for h in local:
        assert (moved / h).exists(), h
    assert all(s.startswith("data:image/png;base64,") for s in parsed.srcs)


def test_report_dataset_section_with_mosaic_from_the_dataset(tmp_path):
    from galmet.io.images import encode_jpeg
    from galmet.report.build import write_report

    run = tmp_path / "run"
    ds = tmp_path / "data"
    (ds / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    n = 40
    ids = SYNTH_IDS + np.arange(n)
    for oid in ids:
        (ds / "images" / f"{oid}.jpg").write_bytes(encode_jpeg(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)))
    z = rng.normal(8.9, 0.2, n)
    split = np.array(["train"] * 24 + ["valid"] * 6 + ["test"] * 10)
    pd.DataFrame({"objID": ids, "oh_p50": z, "split": split}).to_csv(ds / "catalog.csv", index=False)
    (ds / "synth_config.yaml").write_text("generator: galmet.synthetic.render\nseed: 5\nn: 40\nsize: 16\n")
    test = split == "test"
    pd.DataFrame(
        {"objID": ids[test], "split": "test", "oh_p50": z[test], "oh_p50_pred": z[test] + rng.normal(0, 0.1, 10)}
    ).to_parquet((run.mkdir() or run) / "predictions.parquet")
    (run / "config.yaml").write_text(f"arch: resnet18\nrun:\n  dataset: {ds}\n  n_train: 24\n")
    text = write_report(run).read_text()
    sec = text[text.index("<h3>Dataset</h3>") :]
    assert "40 galaxies, 16x16 px images" in sec and "galmet synthesis (seed 5" in sec
    assert "<td>train</td><td>24</td>" in sec and "<td>test</td><td>10</td>" in sec
    assert f"<td>{z.min():.3f}</td>" in sec and f"<td>{z.max():.3f}</td>" in sec  # the label range
    assert 'alt="mosaic"' in sec
    assert "synthetic galaxies" in text and str(ds) not in text  # the dataset marks it; named, not located


def test_report_several_folders_need_out(tmp_path, capsys):
    real, synth = _two_runs(tmp_path)
    assert main(["report", str(real), str(synth)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out is required" in err and len(err.splitlines()) == 1
    assert not (real / "report.html").exists()
    assert main(["report", str(real), str(synth), "--out", str(tmp_path / "both.html")]) == 0


def test_report_html_reads_on_a_phone(tmp_path):
    from galmet.report.build import write_report

    real, _ = _two_runs(tmp_path)
    text = write_report(real).read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "max-width:1100px" in text and "figure img{display:block;max-width:100%" in text
    assert ".scroll{overflow-x:auto" in text
    assert text.count("<table") == text.count('<div class="scroll"><table') > 3  # every table scrolls in its box


def test_report_outlier_objids_exact_in_an_all_numeric_table(tmp_path):
    """int64 objIDs above 2**53 survive a table with no string column (no float round trip)."""
    from galmet.report.build import write_report

    run = tmp_path / "run"
    df = _predictions(run / "predictions.parquet", SDSS_IDS, n=30).drop(columns="split")
    df = df.assign(ra=np.linspace(150, 151, 30), dec=np.linspace(-1, 1, 30))
    df.to_parquet(run / "predictions.parquet")
    text = write_report(run).read_text()
    worst = df.assign(a=(df["oh_p50_pred"] - df["oh_p50"]).abs()).nlargest(10, "a")
    for oid, ra in zip(worst["objID"], worst["ra"], strict=True):
        assert f'summary.aspx?id={oid}"' in text and f">{oid}</a>" in text and f"<td>{ra:.5f}</td>" in text


def test_report_folder_with_results_of_its_own_and_two_runs_inside(tmp_path):
    """The folder's own figure gets its section; the runs inside get theirs; nothing appears twice."""
    from galmet.report.build import discover_runs, write_report

    top = tmp_path / "study"
    real, synth = _two_runs(top)  # top/runs/real, top/runs/synth
    runs = top / "runs"
    _png(runs / "overview.png", "black")
    _png(runs / "figures" / "summary.png", "orange")
    assert discover_runs(runs) == [runs, real, synth]
    text = write_report(runs).read_text()
    sections = _sections(text)
    assert len(sections) == 3
    assert "overview.png" in sections[0] and "figures/summary.png" in sections[0]
    assert "fig3_pred_vs_true" not in sections[0]  # the runs' figures are theirs only
    assert text.count("data:image/png;base64,") == 4
