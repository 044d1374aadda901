"""``galmet.train`` from a plain script reports each epoch (epoch, loss, valid RMSE, seconds) on
stderr by default, even off a terminal, and is silent with ``progress=False``."""

from __future__ import annotations

import logging
import re

import pytest

from conftest import make_tiny_dataset
from galmet.training.config import TrainConfig

EPOCH_LINE = re.compile(r"epoch 1/1 \w+: loss [\d.]+, train RMSE [\d.]+, valid RMSE [\d.]+ \(oh_p50\), .* [\d.]+ s")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "ds", n=16, size=16)


def _unconfigure_logging(monkeypatch) -> None:
    """Logging as a plain script has it: no handler anywhere (pytest's own are added after the
    fixtures, so this runs in the test), root at WARNING, stderr not a terminal."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    monkeypatch.setattr(logging.getLogger("galmet"), "handlers", [])
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as off a terminal: no bar, only lines


def _config(**kw) -> TrainConfig:
    return TrainConfig(arch="resnet18", weights="none", batch_size=8, recipe="onecycle", epochs=1, **kw)


@pytest.mark.parametrize("how", ["default", "progress=False", "progress=True over config"])
def test_a_script_sees_one_line_per_epoch_unless_silenced(tiny, tmp_path, capsys, monkeypatch, how):
    import galmet

    _unconfigure_logging(monkeypatch)
    if how == "default":
        galmet.train(tiny, tmp_path / "run", _config())
    elif how == "progress=False":
        galmet.train(tiny, tmp_path / "run", _config(), progress=False)
    else:
        galmet.train(tiny, tmp_path / "run", _config(progress=False), progress=True)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if EPOCH_LINE.search(line)]
    if how in ("default", "progress=True over config"):
        assert len(lines) == 1, err
    else:
        assert lines == [] and "epoch" not in err, err
    # the temporary handler is gone: logging is as the script left it
    assert logging.getLogger("galmet").handlers == [] and logging.getLogger("galmet").level == logging.NOTSET


def test_a_program_that_configures_logging_decides_itself(tiny, tmp_path, capsys, caplog):
    import galmet

    with caplog.at_level(logging.INFO, logger="galmet"):
        galmet.train(tiny, tmp_path / "run", _config())
    assert sum(bool(EPOCH_LINE.search(r.getMessage())) for r in caplog.records) == 1
    assert not EPOCH_LINE.search(capsys.readouterr().err)  # through the program's handler, not a second one
