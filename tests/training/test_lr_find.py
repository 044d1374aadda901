"""The LR range test: smoothing and suggestion on a known curve, files written, CLI and bad options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.runs.lr_find import run_lr_find
from galmet.training.config import TrainConfig
from galmet.training.lr_find import smooth, suggest


def test_smoothing_is_bias_corrected_ema():
    x = np.array([4.0, 2.0, 3.0])
    s = smooth(x, beta=0.5)
    assert s[0] == pytest.approx(4.0)
    assert s[1] == pytest.approx((0.5 * 0.5 * 4 + 0.5 * 2) / (1 - 0.25))
    assert np.allclose(smooth(np.full(50, 1.3)), 1.3)


def test_suggestion_on_a_known_curve():
    lrs = np.logspace(-6, 1, 141)
    loss = 1.0 + (np.log10(lrs) + 2) ** 2 / 10  # minimum at lr = 1e-2
    loss[lrs > 1] = 50.0  # divergence
    suggested, at_min, steepest = suggest(lrs, loss)
    assert at_min == pytest.approx(1e-2, rel=0.05)
    assert suggested == pytest.approx(at_min / 10)
    assert steepest < at_min


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("lrf") / "ds", n=32, size=16)


def test_lr_find_writes_csv_and_plot(tiny, tmp_path):
    config = TrainConfig(arch="resnet18", weights="none", batch_size=8, progress=False)
    r = run_lr_find(tiny, tmp_path / "out", config, start_lr=1e-5, end_lr=1e3, num_steps=30)
    t = pd.read_csv(r.csv_path)
    assert list(t.columns) == ["lr", "loss", "smoothed_loss"]
    assert 6 <= len(t) <= 30 and (len(t) == 30 or r.diverged)
    assert t["lr"].iloc[0] == pytest.approx(1e-5)
    ratios = t["lr"].iloc[1:].to_numpy() / t["lr"].iloc[:-1].to_numpy()
    np.testing.assert_allclose(ratios, (1e3 / 1e-5) ** (1 / 29), rtol=1e-9)  # exponential sweep
    assert np.allclose(t["smoothed_loss"], smooth(t["loss"].to_numpy()))
    assert r.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.suggested_lr == pytest.approx(r.min_loss_lr / 10)
    assert t["lr"].min() <= r.min_loss_lr <= t["lr"].max()


def test_cli_prints_suggestion_and_rejects_bad_range(tiny, tmp_path, capsys):
    code = main(
        [
            "lr-find",
            str(tiny),
            "--out",
            str(tmp_path / "o"),
            "--arch",
            "resnet18",
            "--weights",
            "none",
            "--batch-size",
            "8",
            "--steps",
            "12",
            "--freeze-body",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "suggested lr:" in out and "steepest descent at" in out
    assert (tmp_path / "o" / "lr_find.png").is_file() and (tmp_path / "o" / "lr_find.csv").is_file()

    code = main(["lr-find", str(tiny), "--out", str(tmp_path / "bad"), "--start-lr", "1", "--end-lr", "0.1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "0 < --start-lr < --end-lr" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
