"""The learning-rate range test (Smith 2015, arXiv:1506.01186), as fastai's ``lr_find``.

Train from the initial weights while the learning rate grows exponentially from ``start_lr``
to ``end_lr`` (``torch.optim.lr_scheduler.ExponentialLR``, one step per batch, every layer group
at the same lr); record the training loss (RMSE in standardised target units, or the beta-NLL of a
``--loss gaussian`` head) per step, smooth
it with a bias-corrected exponential moving average (``beta`` = 0.98), and stop early when the
smoothed loss exceeds ``diverge`` times its minimum (or is not finite).

Suggested lr: the lr at the minimum of the smoothed loss divided by 10 -- the rule the paper's
fastai-0.7 workflow used by eye, and more robust on small, noisy datasets than the steepest
descent point, which is reported too.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.optim.lr_scheduler import ExponentialLR

from galmet.errors import ConfigError
from galmet.io.tables import write_table
from galmet.layout import LR_FIND_TABLE
from galmet.nn.device import resolve_device, to_channels_last
from galmet.nn.net import build_model, freeze_body, layer_groups, outputs_per_target
from galmet.training.config import TrainConfig, as_train_config
from galmet.training.data import (
    augmented_input,
    batch_iter,
    epoch_batches,
    load_training_rows,
    place,
    standardisation,
    steps_per_epoch,
)
from galmet.training.distributed import Dist
from galmet.training.losses import training_loss
from galmet.training.recipes import Phase, make_optimizer

#: Largest learning rate a range test sweeps to.
MAX_LR = 1000.0


@dataclass
class LRFindResult:
    """Outcome of :func:`lr_find`.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``lr``, ``loss``, ``smoothed_loss`` (one row per step).
    suggested_lr : float
        ``min_loss_lr / 10``.
    min_loss_lr : float
        lr at the minimum smoothed loss.
    steepest_lr : float
        lr where the smoothed loss falls fastest (per decade of lr).
    diverged : bool
        Stopped early because the loss blew up.
    csv_path : Path or None
        ``lr_find.csv`` when written (``out_dir`` given).
    plot_path : Path or None
        ``lr_find.png``, set by :func:`galmet.runs.lr_find.run_lr_find` which draws it.
    """

    table: pd.DataFrame
    suggested_lr: float
    min_loss_lr: float
    steepest_lr: float
    diverged: bool
    csv_path: Path | None = None
    plot_path: Path | None = None


def smooth(losses: np.ndarray, beta: float = 0.98) -> np.ndarray:
    """Bias-corrected exponential moving average of ``losses`` (fastai's smoothing)."""
    out = np.empty(len(losses))
    avg = 0.0
    for i, v in enumerate(losses):
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def suggest(lrs: np.ndarray, smoothed: np.ndarray, skip: int | None = None) -> tuple[float, float, float]:
    """(suggested, min-loss, steepest) learning rates from a smoothed loss curve.

    The first ``skip`` points (default: a tenth of the curve, at least 3) are ignored, as
    fastai does: the moving average has seen too few batches there to mean anything.
    """
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    finite = np.isfinite(smoothed)
    lrs, smoothed = lrs[finite], smoothed[finite]
    if len(lrs) < 2:
        raise ConfigError("lr range test: fewer than 2 finite losses (lower start_lr)", param="start_lr")
    skip = max(3, len(lrs) // 10) if skip is None else skip
    s = min(skip, len(lrs) - 2)
    i_min = s + int(np.argmin(smoothed[s:]))
    slope = np.gradient(smoothed[s:], np.log10(lrs[s:]))
    steepest = float(lrs[s + int(np.argmin(slope))])
    return float(lrs[i_min] / 10), float(lrs[i_min]), steepest


def _check_sweep(start_lr: float, end_lr: float, num_steps: int, beta: float, diverge: float) -> None:
    """ConfigError (one line, naming the parameters) for a sweep :func:`lr_find` cannot run."""
    if not (math.isfinite(start_lr) and math.isfinite(end_lr) and 0 < start_lr < end_lr <= MAX_LR):
        raise ConfigError(
            f"lr range must satisfy 0 < start_lr < end_lr <= {MAX_LR:g} (finite), got {start_lr} and {end_lr}",
            param=("start_lr", "end_lr"),
        )
    if num_steps < 2:
        raise ConfigError(f"num_steps must be at least 2, got {num_steps}", param="num_steps")
    if not 0 <= beta < 1 or diverge <= 1:
        raise ConfigError(f"need 0 <= beta < 1 and diverge > 1, got {beta} and {diverge}")


def lr_find(
    dataset,
    out_dir: str | os.PathLike | None = None,
    config: TrainConfig | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    beta: float = 0.98,
    diverge: float = 4.0,
    freeze: bool = False,
) -> LRFindResult:
    """Run the LR range test on the train split of ``dataset``.

    Parameters
    ----------
    dataset : path-like or galmet.data.dataset.Dataset
    out_dir : path-like, optional
        Where to write ``lr_find.csv`` (atomically); the plot is drawn by
        :func:`galmet.runs.lr_find.run_lr_find`.
    config : TrainConfig, optional
        Model, batch size, augmentation, device, weight decay and seed (the recipe is ignored).
    start_lr, end_lr : float
        The sweep's first and last learning rates.
    num_steps : int
        Number of steps (batches) of the sweep; epochs repeat as needed.
    beta : float
        Smoothing factor of the moving average, in [0, 1).
    diverge : float
        Stop when the smoothed loss exceeds this multiple of its minimum.
    freeze : bool
        Freeze the body (as for the paper's first two epochs) and sweep the head only.
    """
    _check_sweep(start_lr, end_lr, num_steps, beta, diverge)
    config = (as_train_config(config) or TrainConfig()).resolved()
    device = resolve_device(config.device)
    rows = load_training_rows(dataset, config)
    ds, train_rows, y_train = rows.dataset, rows.train_rows, rows.y_train
    shift, scale = standardisation(y_train, config)
    data = place(ds.images(), train_rows, (y_train - shift) / scale, device, 0)
    steps = steps_per_epoch(len(train_rows), config.global_batch)
    if steps == 0:
        raise ConfigError(f"{ds.root}: too few train rows ({len(train_rows)}) for an lr range test")

    torch.manual_seed(config.seed)
    n_out = len(config.targets) * outputs_per_target(config.loss)
    net = to_channels_last(build_model(config.arch, n_out, config.weights), device)
    cuda = device.type == "cuda"
    freeze_body(net, freeze)
    phase = Phase("lr_find", 0, 1, freeze, (start_lr,) * 3)
    opt = make_optimizer(layer_groups(net), phase, config.decay, config.optimizer or "adamw", config.momentum)
    sched = ExponentialLR(opt, gamma=(end_lr / start_lr) ** (1 / (num_steps - 1)))
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and config.amp)
    g = torch.Generator(device=device)
    g.manual_seed(config.seed)

    lrs: list[float] = []
    losses: list[float] = []
    best, avg, diverged = float("inf"), 0.0, False
    epoch = 0
    net.train()
    while len(losses) < num_steps and not diverged:
        batches = epoch_batches(data, len(train_rows), epoch, config.seed, Dist(), device, config.global_batch, steps)
        for xb, idx in batch_iter(data, batches, config.workers, device):
            x = augmented_input(xb, config, g)
            with amp:
                out = net(x)
            loss, _ = training_loss(out, data.targets.index_select(0, idx), config.loss, config.beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lr = float(opt.param_groups[-1]["lr"])
            opt.step()
            sched.step()
            value = float(loss.item())
            lrs.append(lr)
            losses.append(value)
            avg = beta * avg + (1 - beta) * value
            smoothed = avg / (1 - beta ** len(losses))
            best = min(best, smoothed)
            if not np.isfinite(smoothed) or (len(losses) > 5 and smoothed > diverge * best):
                diverged = True
                break
            if len(losses) >= num_steps:
                break
        epoch += 1

    table = pd.DataFrame({"lr": lrs, "loss": losses, "smoothed_loss": smooth(np.array(losses), beta)})
    suggested, at_min, steepest = suggest(table["lr"].to_numpy(), table["smoothed_loss"].to_numpy())
    if not all(math.isfinite(v) and v > 0 for v in (suggested, at_min, steepest)):
        raise ConfigError(
            f"lr range test: no finite learning rate to suggest ({suggested}); lower end_lr", param="end_lr"
        )
    result = LRFindResult(table, suggested, at_min, steepest, diverged)
    if out_dir is not None:
        result.csv_path = write_table(table, Path(out_dir) / LR_FIND_TABLE)
    return result
