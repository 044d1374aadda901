"""Issue 21, class F: every user-set limit has a sane maximum, and a value just above it is refused
(one line naming the parameter, exit 2 on the command line) before anything is written.

The range owners: ``galmet.sdss.transport.SETTING_RANGES`` (client settings),
``galmet.sdss.download.DOWNLOAD_RANGES``, ``galmet.training.config_schema.RANGES`` and
``galmet.nn.options`` (inference batch size); plus the shard size of prediction at positions
and the worker count of a synthesis."""

from __future__ import annotations

import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.errors import ConfigError
from galmet.nn.options import MAX_BATCH_SIZE, InferenceOptions
from galmet.sdss.download import DOWNLOAD_RANGES, DownloadOptions
from galmet.sdss.transport import SETTING_RANGES, ClientSettings
from galmet.training.config import TrainConfig
from galmet.training.config_schema import RANGES

#: The largest value each resource limit may have (what the issue calls "sane").
SANE = {
    "timeout": 3600,
    "retries": 20,
    "rate": 1000,
    "backoff_base": 60,
    "max_bytes": 1 << 30,
    "workers": 64,
    "manifest_every": 3600,
    "batch_size": 1 << 13,
}


def _above(rng) -> float:
    """The smallest value past ``rng``'s upper end (its end itself when the end is open)."""
    if getattr(rng, "open_high", False):
        return rng.hi
    return rng.hi + 1 if float(rng.hi).is_integer() else rng.hi * (1 + 1e-9)


@pytest.mark.parametrize("name", sorted(SETTING_RANGES))
def test_client_settings_refuse_just_above_their_maximum(name):
    rng = SETTING_RANGES[name]
    assert rng.hi <= SANE[name]
    ClientSettings(**{name: int(rng.hi) if float(rng.hi).is_integer() else rng.hi}).check()  # the maximum is fine
    value = _above(rng)
    with pytest.raises(ConfigError) as err:
        ClientSettings(**{name: int(value) if float(value).is_integer() else value}).check()
    assert err.value.param == name
    with pytest.raises(ConfigError):
        DownloadOptions(**{name: int(value) if float(value).is_integer() else value}).check()


@pytest.mark.parametrize("name", sorted(DOWNLOAD_RANGES))
def test_download_options_refuse_just_above_their_maximum(name):
    rng = DOWNLOAD_RANGES[name]
    if name in SANE:
        assert rng.hi <= SANE[name]
    value = _above(rng)
    with pytest.raises(ConfigError) as err:
        DownloadOptions(**{name: int(value) if float(value).is_integer() and name != "scale" else value}).check()
    assert err.value.param == name


@pytest.mark.parametrize("name", sorted(n for n, r in RANGES.items() if r.hi is not None))
def test_training_settings_refuse_just_above_their_maximum(name):
    rng = RANGES[name]
    if name in SANE:
        assert rng.hi <= SANE[name]
    value = _above(rng)
    value = int(value) if float(value).is_integer() and name not in ("lr", "frozen_lr", "max_zoom") else value
    if name in ("lr", "cycles"):
        value = [value]
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"recipe": "onecycle", name: value})
    assert name in str(err.value)


def test_inference_batch_size_is_capped():
    assert MAX_BATCH_SIZE <= SANE["batch_size"]
    InferenceOptions(batch_size=MAX_BATCH_SIZE)
    with pytest.raises(ConfigError) as err:
        InferenceOptions(batch_size=MAX_BATCH_SIZE + 1)
    assert err.value.param == "batch_size"


def test_positions_shard_size_and_synthesis_workers_are_capped():
    from galmet.predict.positions import MAX_SHARD_SIZE, PositionsOptions
    from galmet.synthetic.render import MAX_WORKERS, check_options

    assert MAX_SHARD_SIZE <= 1 << 20 and MAX_WORKERS <= 256
    with pytest.raises(ConfigError) as err:
        PositionsOptions(shard_size=MAX_SHARD_SIZE + 1).check()
    assert err.value.param == "shard_size"
    with pytest.raises(ConfigError) as err:
        check_options(10, 0, 16, workers=MAX_WORKERS + 1)
    assert err.value.param == "workers"


# argv -> the flag that must be named; {ds} a dataset, {tmp} a scratch folder that must stay empty
CLI_CASES = [
    (
        ["predict", "{tmp}/m.pt", "--ra", "10", "--dec", "1", "--out", "{tmp}/o/p.csv", "--max-bytes", "100G"],
        "--max-bytes",
    ),
    (
        ["predict", "{tmp}/m.pt", "--ra", "10", "--dec", "1", "--out", "{tmp}/o/p.csv", "--max-bytes", "1025M"],
        "--max-bytes",
    ),
    (
        ["predict", "{tmp}/m.pt", "{ds}", "--out", "{tmp}/o/p.csv", "--batch-size", str(MAX_BATCH_SIZE + 1)],
        "--batch-size",
    ),
    (
        ["predict", "{tmp}/m.pt", "--ra", "10", "--dec", "1", "--out", "{tmp}/o/p.csv", "--shard-size", "1048577"],
        "--shard-size",
    ),
    (["predict", "{tmp}/m.pt", "--ra", "10", "--dec", "1", "--out", "{tmp}/o/p.csv", "--timeout", "3601"], "--timeout"),
    (["predict", "{tmp}/m.pt", "--ra", "10", "--dec", "1", "--out", "{tmp}/o/p.csv", "--retries", "21"], "--retries"),
    (["predict", "{tmp}/m.pt", "--ra", "10", "--dec", "1", "--out", "{tmp}/o/p.csv", "--workers", "65"], "--workers"),
    (["download", "{ds}", "--max-bytes", "2G"], "--max-bytes"),
    (["download", "{ds}", "--backoff-base", "61"], "--backoff-base"),
    (["catalog", "--out", "{tmp}/o", "--max-bytes", "100G", "--dry-run"], "--max-bytes"),
    (["train", "{ds}", "--out", "{tmp}/o", "--batch-size", "8193"], "--batch-size"),
    (["train", "{ds}", "--out", "{tmp}/o", "--workers", "65"], "--workers"),
    (["synth", "--n", "4", "--size", "16", "--out", "{tmp}/o", "--workers", "257"], "--workers"),
]


@pytest.mark.parametrize("argv, flag", CLI_CASES, ids=[f"{a[0]}{a[-2]}" for a, _ in CLI_CASES])
def test_the_command_line_refuses_just_above_each_maximum_before_writing(argv, flag, tmp_path, capsys):
    ds = make_tiny_dataset(tmp_path / "ds", n=4, size=16)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code = main([a.format(tmp=tmp_path, ds=ds) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and flag in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
