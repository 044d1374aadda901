"""Issue 21, class F: the report caps each file it embeds and their total, and never opens a FIFO
or device; what it leaves out is named in one warning line."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest

from galmet.report import html
from galmet.report.build import write_report


def _png(n_bytes: int) -> bytes:
    """A PNG signature padded to ``n_bytes`` (the report embeds bytes; it does not decode them)."""
    return b"\x89PNG\r\n\x1a\n" + b"\x00" * (n_bytes - 8)


def _run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    t = np.linspace(8.5, 9.2, 40)
    pd.DataFrame({"objID": np.arange(40), "split": "test", "oh_p50_pred": t + 0.05, "oh_p50": t}).to_parquet(
        run / "predictions.parquet"
    )
    return run


@pytest.fixture
def small_caps(monkeypatch):
    """Caps of 1 MB per figure and 2.5 MB in all, so the test files stay small."""
    monkeypatch.setattr(html, "MAX_FIGURE_BYTES", 1 << 20)
    monkeypatch.setattr(html, "MAX_EMBED_BYTES", 5 << 19)


def test_a_figure_over_the_cap_is_left_out_and_named(tmp_path, small_caps, caplog):
    run = _run(tmp_path)
    (run / "big.png").write_bytes(_png((1 << 20) + 1))
    (run / "ok.png").write_bytes(_png(1000))
    with caplog.at_level(logging.WARNING):
        text = write_report(run).read_text()
    assert text.count("data:image/png;base64,") == 1
    lines = [r.getMessage() for r in caplog.records if "big.png" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "MB" in lines[0]


def test_the_total_of_embedded_figures_is_capped(tmp_path, small_caps, caplog):
    run = _run(tmp_path)
    for i in range(4):  # 4 x 0.9 MB: the first two fit in 2.5 MB, then the budget is spent
        (run / f"f{i}.png").write_bytes(_png(900_000 + i))
    with caplog.at_level(logging.WARNING):
        text = write_report(run).read_text()
    assert text.count("data:image/png;base64,") == 2
    assert sum("would pass" in r.getMessage() for r in caplog.records) == 2
    assert len(text) < 4 << 20


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("name", ["fig.png", "metrics.json", "history.csv", "config.yaml"])
def test_a_fifo_among_the_reports_files_is_skipped_unopened(name, tmp_path, caplog):
    run = _run(tmp_path)
    os.mkfifo(run / name)
    with caplog.at_level(logging.WARNING):
        text = write_report(run).read_text()  # (opening the FIFO would block this test forever)
    assert "<h3>Metrics</h3>" in text
    assert any(name in r.getMessage() and "FIFO" in r.getMessage() for r in caplog.records)


def test_the_default_caps_are_sane():
    assert html.MAX_FIGURE_BYTES <= 32 << 20 and html.MAX_EMBED_BYTES <= 256 << 20
    b = html.EmbedBudget()
    assert (b.per_file, b.total) == (html.MAX_FIGURE_BYTES, html.MAX_EMBED_BYTES)
