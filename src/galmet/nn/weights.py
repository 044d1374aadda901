"""Where a network's starting weights come from, and the one safe way to read a torch file.

- :func:`imagenet_state_dict`: torchvision's IMAGENET1K_V1 weights (torch hub cache or download).
- :func:`local_body_state`: a local torchvision ResNet state dict, or the body of a galmet bundle.
- :func:`load_body_state`: check a state dict against a body and return the part that fits.
- :func:`safe_load`: ``torch.load(weights_only=True)``; any failure is a one-line ConfigError.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from galmet._env import env_flag
from galmet.columns import ARCHS
from galmet.errors import ConfigError, one_line
from galmet.io.safety import file_kind
from galmet.layout import BUNDLE_FORMAT


def imagenet_cache_file(arch: str) -> tuple[str, Path]:
    """(download URL, torch hub cache path) of torchvision's IMAGENET1K_V1 weights for ``arch``."""
    import torchvision

    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    url = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for ``arch``, via its weights API.

    The torch hub cache (``$TORCH_HOME/hub/checkpoints``) is used when the file is there;
    torch only checks the hash of files it downloads. Set ``GALMET_OFFLINE=1`` to never try the
    network. Any failure raises a one-line :class:`ConfigError` with the URL and cache path.
    """
    import torchvision

    url, cached = imagenet_cache_file(arch)
    how = (
        f"download {url} into {cached} (or set TORCH_HOME), or pass --weights PATH to a local "
        f"state dict, or --weights none"
    )
    if not cached.is_file() and env_flag("GALMET_OFFLINE"):
        raise ConfigError(f"ImageNet weights for {arch} are not in the torch cache and GALMET_OFFLINE is set: {how}")
    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - URLError, hash mismatch, corrupt cache all end the same way
        raise ConfigError(f"cannot get ImageNet weights for {arch} ({one_line(exc)}): {how}") from exc


#: What :func:`galmet.io.safety.file_kind` calls a file ``torch.load`` may read.
TORCH_KINDS = ("galmet model bundle", "galmet training checkpoint", "PyTorch file", "pickle file")


def safe_load(path: Path, what: str) -> Any:
    """torch.load with weights_only=True; any failure -> one-line ConfigError naming ``path``.

    The message says which of three things is wrong: the file is not a PyTorch file at all (a
    JPEG, a text file, random bytes), it is damaged, or it holds Python objects other than
    plain weights (refused, never executed).
    """
    if not path.exists():
        raise ConfigError(f"{path}: no such {what}")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a {what} file")
    kind = file_kind(path)
    if kind == "damaged zip archive":
        raise ConfigError(f"{path}: cannot read {what} (a damaged or truncated PyTorch file)")
    if kind not in TORCH_KINDS:
        raise ConfigError(f"{path}: not a PyTorch file (it is a {kind or 'text file'}); expected a {what}")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning adds nothing to the refusal
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower():  # "Unsupported global", "unsupported GLOBAL ... is blocked"
            raise ConfigError(f"{path}: not a plain-weights {what} (refusing to unpickle arbitrary objects)") from None
        raise ConfigError(f"{path}: damaged or not a {what} (its pickled structure cannot be read)") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file makes the unpickler raise almost anything
        raise ConfigError(f"{path}: cannot read {what} ({one_line(exc)})") from None


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
