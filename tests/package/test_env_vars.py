"""Every environment variable galmet reads treats an empty (or blank) value as unset, and is read
through galmet._env only (so a new variable cannot forget it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT
from galmet._env import ENV_VARS, env, env_flag, env_int

SRC = ROOT / "src" / "galmet"


def _cache_dir(tmp_path, monkeypatch) -> Path:
    from galmet.data.cache import cache_location

    folder = tmp_path / "photos"  # not made by galmet: its cache goes elsewhere
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return cache_location(folder, True)


def _offline(tmp_path, monkeypatch):
    return env_flag("GALMET_OFFLINE")


def _interval(tmp_path, monkeypatch):
    from galmet.io.progress import progress_interval

    return progress_interval()


def _tqdm(tmp_path, monkeypatch):
    from galmet.io.progress import tqdm_disabled_by_env

    return tqdm_disabled_by_env()


def _dist(tmp_path, monkeypatch):
    from galmet.training.distributed import dist_from_env

    return dist_from_env()


def _registry(tmp_path, monkeypatch):
    from galmet.registry.entries import registry_files

    return registry_files(tmp_path / "no-shipped-models")


def _model_cache(tmp_path, monkeypatch):
    from galmet.registry.fetch import cache_root

    monkeypatch.delenv("GALMET_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return cache_root()


def _engine(tmp_path, monkeypatch):
    from galmet.nn.cpu_engine import engine_candidates

    return engine_candidates("auto")


#: What each variable decides, read back: the same with the variable empty as with it unset.
EFFECT = {
    "GALMET_CACHE_DIR": _cache_dir,
    "GALMET_OFFLINE": _offline,
    "GALMET_MODEL_REGISTRY": _registry,
    "XDG_CACHE_HOME": _model_cache,
    "GALMET_ENGINE": _engine,
    "GALMET_PROGRESS_INTERVAL": _interval,
    "TQDM_DISABLE": _tqdm,
    "WORLD_SIZE": _dist,
    "RANK": _dist,
    "LOCAL_RANK": _dist,
}


def test_every_variable_read_is_listed_and_has_a_check():
    read = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r"\benv(?:_flag|_int)?\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
        read |= {m for m in re.findall(r"^[A-Z_]+_ENV = \"([A-Z][A-Z0-9_]*)\"", text, re.MULTILINE)}
    assert read and read <= set(ENV_VARS), read - set(ENV_VARS)
    assert set(EFFECT) == set(ENV_VARS)


def test_no_module_reads_the_environment_but_galmet_env():
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "_env.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, offenders


@pytest.mark.parametrize("name", sorted(ENV_VARS))
@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_variable_is_unset(name, empty, tmp_path, monkeypatch):
    check = EFFECT[name]
    monkeypatch.delenv(name, raising=False)
    unset = check(tmp_path, monkeypatch)
    monkeypatch.setenv(name, empty)
    assert check(tmp_path, monkeypatch) == unset
    if name == "GALMET_CACHE_DIR":  # not the working directory
        assert str(unset).startswith(str(tmp_path / "home" / ".cache" / "galmet"))


def test_the_readers():
    assert env("GALMET_TEST_UNSET_VARIABLE", "d") == "d"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GALMET_TEST_VAR", " 3 ")
        assert env("GALMET_TEST_VAR") == "3" and env_int("GALMET_TEST_VAR", 1) == 3 and env_flag("GALMET_TEST_VAR")
        for off in ("0", "false", "No", "OFF", ""):
            mp.setenv("GALMET_TEST_VAR", off)
            assert not env_flag("GALMET_TEST_VAR")
        mp.setenv("GALMET_TEST_VAR", "two")
        with pytest.raises(ValueError, match="GALMET_TEST_VAR='two' is not an integer"):
            env_int("GALMET_TEST_VAR", 1)
