"""Where a network's starting weights come from, and the one safe way to read a torch file.

- :func:`imagenet_state_dict`: torchvision's IMAGENET1K_V1 weights (torch hub cache or download),
  their sha256 checked against the prefix in the file name every time they are read.
- :func:`local_body_state`: a local torchvision ResNet state dict, or the body of a galmet bundle.
- :func:`load_body_state`: check a state dict against a body and return the part that fits.
- :func:`safe_load`: ``torch.load(weights_only=True)``; any failure is a one-line ConfigError.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from galmet._env import env_flag
from galmet.columns import ARCHS, IMAGENET_ARCHS
from galmet.errors import ConfigError, one_line, raise_if_out_of_resources
from galmet.io.inputs import require_regular_file, sha256_prefix_matches
from galmet.io.safety import file_kind
from galmet.layout import BUNDLE_FORMAT

#: Longest wait (s) for the weights server to answer or send more bytes during a download.
DOWNLOAD_TIMEOUT_S = 60.0


def imagenet_url(arch: str) -> str:
    """The download URL of torchvision's IMAGENET1K_V1 weights for ``arch``; its file name
    carries the first hex digits of the file's sha256 (``resnet34-b627a593.pth``)."""
    import torchvision

    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    if arch not in IMAGENET_ARCHS:
        raise ConfigError(
            f"torchvision has no ImageNet weights for {arch} (only {', '.join(IMAGENET_ARCHS)}); "
            "use weights none or a local file",
            param="weights",
        )
    return torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url


def imagenet_cache_file(arch: str) -> tuple[str, Path]:
    """(download URL, torch hub cache path) of torchvision's IMAGENET1K_V1 weights for ``arch``."""
    url = imagenet_url(arch)
    return url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def hash_prefix(url: str) -> str:
    """The sha256 prefix torchvision puts in a weights file name (``resnet34-b627a593.pth`` ->
    ``b627a593``); ConfigError when the name carries none (such a file is never trusted)."""
    match = re.search(r"-([0-9a-fA-F]{6,64})\.[A-Za-z0-9]+$", os.path.basename(url))
    if match is None:
        raise ConfigError(f"{url}: the weights file name carries no sha256 prefix; cannot verify it")
    return match.group(1).lower()


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for ``arch``, from the torch hub cache.

    The file (``$TORCH_HOME/hub/checkpoints/<name from the URL>``) is downloaded there when
    absent (torch checks the hash of what it downloads; a stalled server fails after
    :data:`DOWNLOAD_TIMEOUT_S`). Every time, cached or not, its sha256 is checked against the
    prefix in its name before it is read with :func:`safe_load` (``weights_only=True``): a
    planted or damaged file is refused, never unpickled. Set ``GALMET_OFFLINE=1`` to never try
    the network. Any failure raises a one-line :class:`ConfigError` with the URL and cache path.
    """
    url, cached = imagenet_cache_file(arch)
    prefix = hash_prefix(url)
    how = f"download {url} into {cached} (or set TORCH_HOME), or set weights to a local state dict file or to none"
    if not os.path.lexists(cached):
        if env_flag("GALMET_OFFLINE"):
            raise ConfigError(
                f"the ImageNet state dict for {arch} is not in the torch cache and GALMET_OFFLINE is set: {how}",
                param="weights",
            )
        _download(url, cached, prefix, how, arch)
    obj = safe_load(cached, f"ImageNet weights file for {arch}", sha256_prefix=prefix)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{cached}: not a state dict; remove it (rm {cached}) so galmet downloads it again")
    return dict(obj)


def _download(url: str, dst: Path, prefix: str, how: str, arch: str) -> None:
    """torch.hub.download_url_to_file into ``dst`` (its temp file + rename) with the hash checked,
    each socket wait bounded by :data:`DOWNLOAD_TIMEOUT_S`; ConfigError on any failure."""
    import socket

    old = socket.getdefaulttimeout()
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # urllib inside torch.hub takes no timeout of its own
        torch.hub.download_url_to_file(url, str(dst), hash_prefix=prefix, progress=False)
    except Exception as exc:  # noqa: BLE001 - URLError, timeout, hash mismatch, full disk all end the same way
        raise ConfigError(
            f"cannot get the ImageNet state dict for {arch} ({one_line(exc)}): {how}", param="weights"
        ) from exc
    finally:
        socket.setdefaulttimeout(old)


def _check_sha256(fh, path: Path, prefix: str) -> None:
    """ConfigError naming ``path`` (and how to remove it) when the sha256 of open ``fh`` does not
    start with ``prefix``."""
    ok, digest = sha256_prefix_matches(fh, prefix)
    if not ok:
        raise ConfigError(
            f"{path}: sha256 {digest[:16]}... does not start with the {prefix} its name promises "
            f"(a damaged or planted file, not loaded); remove it (rm {path}) and run again"
        )


#: What :func:`galmet.io.safety.file_kind` calls a file ``torch.load`` may read.
TORCH_KINDS = ("galmet model bundle", "galmet training checkpoint", "PyTorch file", "pickle file")


def safe_load(path: Path, what: str, sha256_prefix: str | None = None, param: str | None = None) -> Any:
    """torch.load with weights_only=True; any failure -> one-line ConfigError naming ``path``.

    ``path`` must be a regular file (a FIFO, device or folder is refused without opening it).
    With ``sha256_prefix`` the file's sha256 must start with it (checked on the same open file
    that is then loaded): a mismatch is refused before anything is unpickled. The message says
    which of three things is wrong: the file is not a PyTorch file at all (a JPEG, a text file,
    random bytes), it is damaged, or it holds Python objects other than plain weights (refused,
    never executed).
    """
    path = require_regular_file(path, what, param)
    try:
        with open(path, "rb") as fh:
            if sha256_prefix is not None:  # before anything else reads it
                _check_sha256(fh, path, sha256_prefix)
            kind = file_kind(path)
            if kind == "damaged zip archive":
                raise ConfigError(f"{path}: cannot read {what} (a damaged or truncated PyTorch file)")
            if kind not in TORCH_KINDS:
                raise ConfigError(f"{path}: not a PyTorch file (it is a {kind or 'text file'}); expected a {what}")
            with warnings.catch_warnings():  # a foreign pickle's protocol warning adds nothing to the refusal
                warnings.simplefilter("ignore", UserWarning)
                return torch.load(fh, map_location="cpu", weights_only=True)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file makes the unpickler raise almost anything
        raise load_error(exc, path, what) from None


#: What torch says when ``weights_only=True`` refuses a file; its advice (re-run with
#: ``weights_only=False``, allow-list the global) is the unsafe step and is never relayed.
_WEIGHTS_ONLY_REFUSAL = ("weights only load failed", "weightsunpickler", "weights_only", "unsupported global")


def load_error(exc: BaseException, path: Path, what: str) -> ConfigError:
    """The one-line ConfigError for ``torch.load(path, weights_only=True)`` raising ``exc``.

    A weights-only refusal says only that the file holds objects other than plain weights: torch's
    own text (which advises loading it with ``weights_only=False``) is not relayed. Any other
    failure is a damaged or unreadable file and its first line is kept. Running out of memory or
    threads re-raises (:func:`galmet.errors.raise_if_out_of_resources`).
    """
    raise_if_out_of_resources(exc)  # (an address space too small is not a damaged file)
    text = str(exc).lower()
    if any(s in text for s in _WEIGHTS_ONLY_REFUSAL) or "global" in text and isinstance(exc, pickle.UnpicklingError):
        return ConfigError(f"{path}: not a plain-weights {what} (refusing to unpickle arbitrary objects)")
    if isinstance(exc, pickle.UnpicklingError):
        return ConfigError(f"{path}: damaged or not a {what} (its pickled structure cannot be read)")
    return ConfigError(f"{path}: cannot read {what} ({one_line(exc)})")


def local_body_state(path: Path) -> dict[str, torch.Tensor]:
    obj = safe_load(path, "weights file")
    if isinstance(obj, dict) and obj.get("format") == BUNDLE_FORMAT:
        obj = obj.get("state_dict")
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{path}: not a state dict (expected a torchvision ResNet state dict or a galmet bundle)")
    if any(k.startswith("body.") for k in obj):
        return {k[len("body.") :]: v for k, v in obj.items() if k.startswith("body.")}
    return dict(obj)


def load_body_state(body: nn.Module, arch: str, state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` that make up ``body`` (a torchvision classifier's ``fc`` is dropped);
    ConfigError naming ``source`` when a key is missing, extra, or of another shape."""
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = body.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise ConfigError(
            f"{source}: weights do not fit a {arch} body ({what}; "
            f"{len(missing)} missing, {len(unexpected)} unexpected keys)"
        )
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ConfigError(
                f"{source}: weights do not fit a {arch} body "
                f"({k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)})"
            )
    return state
