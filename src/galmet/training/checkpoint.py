"""The run directory's files during training: checkpoints and history (the run-directory rules are
in :mod:`galmet.training.rundir`).

A checkpoint (``checkpoint.pt``, read with ``torch.load(weights_only=True)``) holds everything
needed to continue a run exactly: model, optimizer and scheduler states, the RNG state, the
epoch and step counters, the config, the history so far, the target standardisation and the
shape of the data it was trained on.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pandas as pd
import torch

from galmet.errors import ConfigError
from galmet.io.atomic import atomic_path
from galmet.io.inputs import require_regular_file
from galmet.io.tables import write_table
from galmet.layout import CHECKPOINT, CHECKPOINT_FORMAT, HISTORY
from galmet.nn.weights import load_error

log = logging.getLogger(__name__)


def read_checkpoint(path: Path) -> dict:
    """A checkpoint written by :class:`CheckpointWriter`; ConfigError when unreadable or foreign
    (a FIFO, device or folder in its place is refused without being opened)."""
    require_regular_file(path, "checkpoint")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, pickle error, permissions: all "unreadable"
        raise load_error(exc, path, "checkpoint") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not a galmet training checkpoint")
    return ck


def cpu_copy(obj):
    """``obj`` with every tensor copied to the CPU (a snapshot the training may then overwrite)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def rng_state(device: torch.device) -> dict:
    """The global torch RNG state (and the device's, on CUDA)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore a state from :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class CheckpointWriter:
    """Writes checkpoint.pt then history.csv (each atomically), one epoch at a time.

    On CUDA in a background thread, so the GPU trains on while the file is written; the next
    write (and the end of training) waits for the previous one. The state is copied to the
    CPU before it is handed over, so training may overwrite its tensors at once.
    """

    def __init__(self, run: Path, background: bool):
        self.run = run
        self.background = background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _write(self, state: dict) -> None:
        try:
            with atomic_path(self.run / CHECKPOINT) as tmp:
                torch.save(state, tmp)
            write_table(pd.DataFrame(state["history"]), self.run / HISTORY)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the training thread
            self._error = exc

    def submit(self, state: dict) -> None:
        """Write ``state`` (its tensors are copied to the CPU first)."""
        self.wait()
        state = cpu_copy(state)
        if not self.background:
            self._write(state)
            self.raise_pending()
            return
        self._thread = threading.Thread(target=self._write, args=(state,), daemon=False)
        self._thread.start()

    def wait(self, raise_errors: bool = True) -> None:
        """Wait for the write in flight; re-raise its error unless ``raise_errors`` is False."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if raise_errors:
            self.raise_pending()

    def raise_pending(self) -> None:
        """Re-raise the error of the last background write, once."""
        if self._error is not None:
            err, self._error = self._error, None
            raise err
