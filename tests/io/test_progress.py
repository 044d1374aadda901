"""Progress that behaves: bars only on a terminal, plain log lines otherwise, TQDM_DISABLE and
--no-progress honoured, the training bar in whole steps, and CUDA out-of-memory as one line."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, make_tiny_dataset
from galmet.errors import ConfigError
from galmet.io import progress
from galmet.io.progress import LogProgress, progress_bar, progress_disabled


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    """Call it in the test body (pytest's capture resets sys.stderr between setup and call):
    stderr that says it is a terminal."""

    def install() -> _Terminal:
        stream = _Terminal()
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
        return stream

    return install


def test_a_real_bar_only_on_a_terminal(terminal):
    terminal = terminal()
    from tqdm import tqdm

    bar = progress_bar(total=3, desc="work")
    assert isinstance(bar, tqdm)
    bar.update(3)
    bar.close()
    assert "work" in terminal.getvalue()


@pytest.mark.parametrize("value", ["1", "True", "yes"])
def test_tqdm_disable_is_honoured(terminal, monkeypatch, caplog, value):
    terminal = terminal()
    monkeypatch.setenv("TQDM_DISABLE", value)
    caplog.set_level(logging.INFO, logger="galmet.io.progress")
    with progress_bar(total=4, desc="work", unit="img", interval=1e-9) as bar:
        bar.update(2)
    assert isinstance(bar, LogProgress) and terminal.getvalue() == ""
    assert "work: 2/4 img (50%)" in caplog.text


def test_tqdm_disable_zero_or_empty_still_shows_the_bar(terminal, monkeypatch):
    terminal = terminal()
    from tqdm import tqdm

    for value in ("", "0", "false"):
        monkeypatch.setenv("TQDM_DISABLE", value)
        assert isinstance(progress_bar(total=1), tqdm)


def test_plain_lines_at_info_when_not_a_terminal(monkeypatch, caplog):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.000001")
    caplog.set_level(logging.INFO, logger="galmet.io.progress")
    seen = list(progress_bar(iterable=range(5), desc="decoding", unit="img"))
    assert seen == list(range(5))
    lines = [r.getMessage() for r in caplog.records if r.name == "galmet.io.progress"]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "galmet.io.progress")
    assert lines[0].startswith("decoding: 1/5 img (20%)") and "img/s" in lines[0]
    assert lines[-1].startswith("decoding: 5/5 img (100%)")  # the closing line
    assert sum("(100%)" in line for line in lines) == 1  # once, though the last update wrote it already
    assert not any("\r" in line for line in lines)


@pytest.mark.parametrize("moved_after_last_line", [False, True])
def test_the_closing_line_only_when_the_count_moved(monkeypatch, caplog, moved_after_last_line):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger="galmet.io.progress")
    bar = progress_bar(total=4, desc="rows", unit="row", interval=3600)
    bar.update(1)
    bar._last -= 3600  # an interval later
    bar.update(3 if not moved_after_last_line else 2)
    if moved_after_last_line:
        bar.update(1)
    bar.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "galmet.io.progress"]
    assert [line.split(",")[0] for line in lines] == ["rows: 4/4 row (100%)"] * (
        1 if not moved_after_last_line else 0
    ) + (["rows: 3/4 row (75%)", "rows: 4/4 row (100%)"] if moved_after_last_line else [])


def test_plain_lines_are_periodic_not_per_item(monkeypatch, caplog):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger="galmet.io.progress")
    with progress_bar(total=1000, desc="quick") as bar:  # default interval: 30 s
        for _ in range(1000):
            bar.update()
    assert bar.n == 1000 and caplog.records == []  # short work stays quiet


def test_nothing_when_disabled(terminal, caplog):
    terminal = terminal()
    caplog.set_level(logging.DEBUG)
    with progress_bar(total=2, enabled=False, interval=1e-9) as bar:
        bar.update(2)
        bar.set_postfix(loss="0.1")
    with progress_disabled(), progress_bar(total=2, interval=1e-9) as bar2:
        bar2.update(2)
    assert terminal.getvalue() == "" and caplog.records == []
    assert list(progress_bar(iterable=[1, 2], enabled=False)) == [1, 2]
    from tqdm import tqdm

    assert isinstance(progress_bar(total=1), tqdm)  # the switch is off again outside the block


def test_bad_interval_env_falls_back(monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "soon")
    assert progress.progress_interval() == progress.DEFAULT_INTERVAL
    monkeypatch.setenv(progress.INTERVAL_ENV, "5")
    assert progress.progress_interval() == 5.0


def _cli(*argv, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    env.pop("TQDM_DISABLE", None)
    return subprocess.run(
        [sys.executable, "-m", "galmet", *map(str, argv)],
        cwd=ROOT,
        env=env,
        capture_output=True,  # stderr is a pipe, not a terminal
        text=True,
        timeout=300,
    )


def test_cli_no_bars_when_stderr_is_not_a_terminal(tmp_path):
    args = ("synth", "--n", "4", "--size", "16", "--workers", "1", "--test", "1")
    proc = _cli(*args, "--out", tmp_path / "a", env_extra={progress.INTERVAL_ENV: "0.000001"})
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "%|" not in proc.stderr
    assert "synthesizing galaxies: 4/4 gal (100%)" in proc.stderr  # plain lines instead
    quiet = _cli(*args, "--out", tmp_path / "b", "--no-progress", env_extra={progress.INTERVAL_ENV: "0.000001"})
    assert quiet.returncode == 0, quiet.stderr
    assert "synthesizing" not in quiet.stderr and "\r" not in quiet.stderr


TINY = dict(arch="resnet18", weights="none", batch_size=8, frozen_epochs=0, cycles=[2])


def test_training_bar_counts_steps_to_100_percent_with_its_loss(tmp_path, monkeypatch, caplog):
    from galmet.training import loop
    from galmet.training.config import TrainConfig

    bars = []
    real = loop.epoch_bar

    def spy(steps, desc, show):
        bar = real(steps, desc, show)
        bars.append(bar)
        return bar

    monkeypatch.setattr(loop, "epoch_bar", spy)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.000001")
    caplog.set_level(logging.INFO, logger="galmet.io.progress")
    ds = make_tiny_dataset(tmp_path / "ds", n=32, size=16)
    result = loop.train(ds, tmp_path / "run", TrainConfig(**TINY))
    steps = int(result.history["steps"].iloc[0])
    assert len(bars) == 2 and steps == 3
    for bar in bars:
        assert bar.total == steps and bar.n == steps and isinstance(bar.n, int)
        assert bar.postfix.startswith("loss=")
    last = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/2")][-1]
    assert "3/3 step (100%)" in last and "loss=" in last


def _oom(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_training_out_of_memory_suggests_a_batch_size(tmp_path, monkeypatch, capsys):
    from galmet.cli.main import main
    from galmet.training import loop
    from galmet.training.config import TrainConfig

    ds = make_tiny_dataset(tmp_path / "ds", n=32, size=16)
    with pytest.raises(
        ConfigError, match=r"CUDA out of memory while training \(epoch 1\): try batch_size 4 \(half of 8\)"
    ):
        loop.train(ds, tmp_path / "run", TrainConfig(**TINY), on_step=_oom)
    monkeypatch.setattr(loop, "training_loss", _oom)
    code = main(["train", str(ds), "--out", str(tmp_path / "run2"), "--arch", "resnet18", "--weights", "none"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "CUDA out of memory" in err and "--batch-size 128" in err  # the default 256, halved


def test_prediction_out_of_memory_suggests_a_batch_size(tmp_path, monkeypatch):
    from galmet.nn.bundle import load_model, save_bundle
    from galmet.nn.net import build_model

    path = save_bundle(tmp_path / "model.pt", build_model("resnet18", 1), {"image_size": 16})
    model = load_model(path)
    monkeypatch.setattr(model.nets[0], "forward", _oom)
    images = np.zeros((4, 16, 16, 3), np.uint8)
    with pytest.raises(ConfigError, match=r"while predicting: try batch_size 32 \(half of 64\)"):
        model.predict(images, batch_size=64, device="cpu")
    monkeypatch.setattr(model.nets[0], "forward", lambda x: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):  # anything else goes through unchanged
        model.predict(images, batch_size=64, device="cpu")
