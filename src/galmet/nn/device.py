"""Choosing the device and moving image batches onto it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from galmet.errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU -> ConfigError."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name}: CUDA is not available on this machine (use cpu or auto)", param="device")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device {name}: not a device (use auto, cpu or cuda)", param="device") from exc


def to_channels_last(net: torch.nn.Module, dev: torch.device) -> torch.nn.Module:
    """``net`` moved to ``dev`` with its 4-d weights in channels_last memory format (faster on
    oneDNN CPUs and on CUDA tensor cores); returns ``net``."""
    return net.to(dev).to(memory_format=torch.channels_last)


def to_device(batch, dev: torch.device) -> torch.Tensor:
    """A uint8 batch (numpy array, memmap slice or tensor) as a tensor on ``dev``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(dev, non_blocking=True)
    if dev.type == "cuda":
        # One copy from the (possibly memory-mapped) array straight into pinned memory; the
        # caching host allocator keeps it alive until the asynchronous upload has finished.
        pinned = torch.empty(batch.shape, dtype=torch.uint8, pin_memory=True)
        pinned.numpy()[...] = batch
        return pinned.to(dev, non_blocking=True)
    batch = np.ascontiguousarray(batch)
    if not batch.flags.writeable:  # a read-only memmap slice: torch wants memory it may own
        batch = batch.copy()
    return torch.from_numpy(batch)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA out-of-memory error (``torch.cuda.OutOfMemoryError``, torch >= 1.13; a
    RuntimeError saying so in older versions)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def out_of_memory_error(batch_size: int, what: str, param: str = "batch_size") -> ConfigError:
    """The one-line error for a CUDA out-of-memory failure of ``what`` at ``batch_size`` images per
    step, suggesting half that batch size; about the API parameter ``param``."""
    smaller = max(1, int(batch_size) // 2)
    return ConfigError(f"CUDA out of memory while {what}: try {param} {smaller} (half of {batch_size})", param=param)


@contextlib.contextmanager
def suggest_smaller_batch(batch_size: int, what: str, param: str = "batch_size") -> Iterator[None]:
    """Turn a CUDA out-of-memory error inside the block into :func:`out_of_memory_error`."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised unchanged unless it is an OOM
        if not is_out_of_memory(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise out_of_memory_error(batch_size, what, param) from exc
