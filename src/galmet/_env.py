"""The environment variables galmet reads, read one way: an empty (or all-blank) value is unset.

``GALMET_CACHE_DIR=`` (as a shell or a batch script often leaves it) must not mean "the current
directory", nor ``WORLD_SIZE=`` a crash: every variable is read through :func:`env` (text) or
:func:`env_flag` (a switch), never ``os.environ`` directly (tests/package/test_env_vars.py checks).
"""

from __future__ import annotations

import os

#: Every environment variable galmet reads, and what it does (the docs and tests list them from here).
ENV_VARS = {
    "GALMET_CACHE_DIR": "folder of the decode caches of datasets galmet did not make (default ~/.cache/galmet)",
    "GALMET_MODEL_REGISTRY": "registry files of named models (JSON lists of entries), separated by os.pathsep",
    "XDG_CACHE_HOME": "downloaded model weights go to $XDG_CACHE_HOME/galmet/models unless GALMET_CACHE_DIR is set",
    "GALMET_OFFLINE": "set (1, true, yes): never download ImageNet weights",
    "GALMET_ENGINE": "what engine auto means on a CPU: eager, bf16 or openvino (default: the fastest available)",
    "GALMET_PROGRESS_INTERVAL": "seconds between plain progress lines off a terminal (default 30)",
    "TQDM_DISABLE": "set (1, true, yes): no progress bars, plain lines instead",
    "WORLD_SIZE": "torchrun: processes of a distributed run (default 1)",
    "RANK": "torchrun: this process's rank (default 0)",
    "LOCAL_RANK": "torchrun: this process's rank on its machine (default 0)",
}
_OFF = ("", "0", "false", "no", "off")


def env(name: str, default: str | None = None) -> str | None:
    """The value of environment variable ``name`` without surrounding blanks, or ``default`` when
    it is unset or empty (empty means unset)."""
    value = os.environ.get(name, "").strip()
    return value if value else default


def env_flag(name: str) -> bool:
    """True when ``name`` is set to anything but empty, ``0``, ``false``, ``no`` or ``off`` (any case)."""
    return (env(name) or "").lower() not in _OFF


def env_int(name: str, default: int) -> int:
    """The integer value of ``name`` (``default`` when unset or empty); ValueError naming the
    variable when it is not an integer."""
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None
