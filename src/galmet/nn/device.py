"""Choosing the device and moving image batches onto it."""

from __future__ import annotations

import numpy as np
import torch

from galmet.errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU -> ConfigError."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name}: not a device (use auto, cpu or cuda)") from exc


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
