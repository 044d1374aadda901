"""The training loop: recipes, on-device augmentation, bf16 autocast, checkpoints, resume, DDP.

One entry point, :func:`train`, a short orchestrator over :func:`train_one_epoch` and
:func:`evaluate`. A run directory holds::

    RUN/
      config.yaml     the resolved TrainConfig (+ a ``run:`` section: dataset, sizes, world size)
      history.csv     one row per epoch: train/valid RMSE (target units), lr per group, time, images/s
      checkpoint.pt   after every epoch (atomic): model, optimizer, scheduler, RNG states, epoch, step;
                      deleted once the run has finished (its optimizer state is then dead weight,
                      ~2x the model) unless ``keep_checkpoint``
      model.pt        the final model bundle (galmet.nn.bundle.save_bundle)

Each epoch applies a random dihedral element per image and fastai's random zoom, rotation and
lighting (as the recipe asks) on the device (:func:`galmet.training.data.augmented_input`),
normalises, runs under bf16 autocast on CUDA,
channels_last everywhere, and accumulates the loss on the device: the host reads it once per epoch.

Randomness is re-seeded at the start of every epoch from (seed, epoch, rank), so a run resumed
from the checkpoint of epoch ``e`` replays epoch ``e + 1`` exactly as an uninterrupted run would.

Under ``torchrun`` (env ``WORLD_SIZE`` > 1) the same call trains with DistributedDataParallel:
nccl on CUDA, gloo on CPU; the global batch is split over the processes, each epoch's
permutation is sharded, validation is sharded and all-reduced, and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.optim.lr_scheduler import LRScheduler

from galmet._env import env_int
from galmet.data.galaxy_ids import GalaxyIdSet
from galmet.data.image_domain import ImageDomainReference
from galmet.data.imaging import UNKNOWN, Imaging
from galmet.errors import ConfigError, DataError
from galmet.io.progress import progress_bar
from galmet.io.safety import check_not_inputs, inputs_of
from galmet.layout import BUNDLE, CHECKPOINT, CHECKPOINT_FORMAT, CONFIG, HISTORY, RUN_FILES
from galmet.nn.augment import center_crop, to_model_input
from galmet.nn.bundle import save_bundle
from galmet.nn.bundle_meta import training_meta
from galmet.nn.device import resolve_device, suggest_smaller_batch, to_channels_last
from galmet.nn.embedding import EmbeddingReference, embed
from galmet.nn.net import build_model, freeze_body, layer_groups, outputs_per_target, unwrap
from galmet.training.checkpoint import CheckpointWriter, read_checkpoint, rng_state, set_rng_state
from galmet.training.config import RUNTIME_FIELDS, TrainConfig, as_train_config, load_config, save_config
from galmet.training.data import (
    SplitData,
    augmented_input,
    batch_iter,
    derive_seed,
    epoch_batches,
    load_training_rows,
    place,
    standardisation,
    steps_per_epoch,
)
from galmet.training.distributed import (
    Dist,
    all_reduce,
    barrier,
    dist_from_env,
    finish_dist,
    init_dist,
    wrap_for_training,
)
from galmet.training.losses import training_loss
from galmet.training.recipes import Phase, build_phases, current_lrs, make_optimizer, make_scheduler, phase_index
from galmet.training.rundir import RunDir, check_run_output, open_run_dir, staging_dir

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    run_dir : Path
    bundle_path : Path
        The final model bundle (``run_dir/model.pt``).
    history : pandas.DataFrame
        One row per epoch (the content of ``history.csv``).
    best_valid_rmse, final_valid_rmse : float
        Validation RMSE of the first target, in its units (dex for ``oh_p50``).
    valid_rmse : dict of str to float
        Final validation RMSE of every target.
    """

    run_dir: Path
    bundle_path: Path
    history: pd.DataFrame
    best_valid_rmse: float
    final_valid_rmse: float
    valid_rmse: dict[str, float]


@dataclass
class StepInfo:
    """Passed to ``on_step`` after the backward pass, *before* the optimizer step.

    ``lrs`` are the learning rates this step will use; ``model`` is the unwrapped GalmetNet.
    """

    epoch: int
    step: int
    global_step: int
    phase: Phase
    lrs: list[float]
    model: torch.nn.Module


@dataclass
class Trainer:
    """Everything fixed for the length of a run: config, device, data, network, recipe."""

    config: TrainConfig
    run: Path
    dist: Dist
    device: torch.device
    net: torch.nn.Module
    groups: list
    phases: list[Phase]
    train_data: SplitData
    valid_data: SplitData
    n_train: int
    n_valid: int
    steps: int
    local_batch: int
    shift: np.ndarray
    scale: np.ndarray
    data_meta: dict
    dataset_root: Path
    label_range: dict[str, list[float]] = field(default_factory=dict)
    recorded: Imaging = UNKNOWN
    #: :meth:`GalaxyIdSet.to_dict` of the train rows (the bundle records which galaxies trained it).
    trained_on: dict = field(default_factory=dict)

    @property
    def scale_t(self) -> torch.Tensor:
        """``scale`` as a float32 tensor on the device (the precision history values are computed in)."""
        return torch.as_tensor(self.scale, dtype=torch.float32, device=self.device)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        """bf16 autocast on CUDA (when ``config.amp``); a no-op context elsewhere."""
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda and self.config.amp)


@dataclass
class LivePhase:
    """The optimizer, scheduler and forward callable of the phase being trained."""

    index: int
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    forward: Any  # the net, or its DDP / compiled wrapper


@dataclass
class RunState:
    """What changes as a run goes: counters, history, and the live phase."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    history: list[dict] = field(default_factory=list)
    live: LivePhase | None = None

    @property
    def phase(self) -> int:
        """Index of the live phase (-1 before the first)."""
        return -1 if self.live is None else self.live.index

    def require_live(self) -> LivePhase:
        if self.live is None:
            raise RuntimeError("no phase entered yet: call _enter_phase first")
        return self.live


def train(
    dataset,
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[StepInfo], None] | None = None,
    keep_checkpoint: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train a model on the ``train`` split of ``dataset``, validating on ``valid``.

    Parameters
    ----------
    dataset : path-like or galmet.data.dataset.Dataset
        A dataset directory (loaded with :func:`galmet.data.dataset.load_dataset`, decode cache
        used), or an already-loaded Dataset (e.g. with re-binned images). ``test`` rows are never read.
    out_dir : path-like
        The run directory (created).
    config : TrainConfig, optional
        Default: the paper's recipe (``TrainConfig()``). With ``resume``, the checkpoint's config is
        used; a ``config`` passed along must agree with it except in runtime fields.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (the last completed epoch), exactly; or the run an
        interrupted ``overwrite`` was building, which then replaces the old run when it finishes.
    overwrite : bool
        Replace a finished or unfinished run in ``out_dir``: the new run is built in
        ``out_dir/.galmet-staging`` and replaces the old one only when it has finished (a
        killed or diverged retrain leaves the old run as it was). ``out_dir`` is locked for
        the whole run: a second ``train`` into it fails at once (see :mod:`galmet.training.rundir`).
    on_step : callable, optional
        Called with a :class:`StepInfo` at every step (tests, monitoring); may raise to stop.
    keep_checkpoint : bool
        Keep ``checkpoint.pt`` (optimizer and scheduler state) once the run has finished. By
        default it is deleted then: ``model.pt`` holds everything needed to predict, and an
        unfinished run keeps its checkpoint, so resuming is unaffected.
    progress : bool, optional
        Over ``config.progress`` (default True): report the run as it goes, a bar per epoch on a
        terminal and one line per finished epoch (epoch, loss, train and valid RMSE, learning
        rate, seconds) through the ``galmet`` logger. When logging is not configured (a plain
        script), those lines go to stderr for the run; a program that configures logging
        decides itself. ``False``: silent.

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError, DataError
        One-line messages for bad options, datasets, run directories or checkpoints.
    """
    config = as_train_config(config)
    run = Path(out_dir)
    check_run_output(run, resume, overwrite)
    check_not_inputs([run / name for name in RUN_FILES], "out_dir", inputs_of(dataset, "the dataset"))
    if not resume:
        (config or TrainConfig()).resolved()  # every option checked before a file is read or written
    source = _resume_source(run) if resume else run
    if resume and not (source / CHECKPOINT).is_file() and (run / BUNDLE).is_file():
        return _finished_result(run, config)  # finished, its checkpoint dropped: nothing to resume
    config, ckpt = _resolve_config(source, config, resume)
    if progress is not None:
        config = dataclasses.replace(config, progress=bool(progress))
    if ckpt is not None and int(ckpt["epoch"]) >= config.total_epochs and (source / BUNDLE).is_file():
        if source == run:
            log.info("%s: the run is already finished (%d epochs); nothing to do", run, config.total_epochs)
            return _result(run, pd.DataFrame(ckpt["history"]), config)

    with epoch_lines_to_stderr(config.progress and env_int("RANK", 0) == 0):  # torchrun: rank 0 speaks
        return _train_run(dataset, run, source, config, ckpt, (resume, overwrite, keep_checkpoint), on_step)


def _train_run(dataset, run: Path, source: Path, config: TrainConfig, ckpt: dict | None, flags, on_step) -> TrainResult:
    """:func:`train` once its options are resolved: set up, lock the run folder, train, save the
    bundle; ``flags`` is (resume, overwrite, keep_checkpoint)."""
    resume, overwrite, keep_checkpoint = flags
    t = _setup(dataset, source, config, ckpt)
    state = RunState()
    if ckpt is not None:
        t.net.load_state_dict(ckpt["model"])
        state = RunState(epoch=int(ckpt["epoch"]), step=int(ckpt["step"]), history=list(ckpt["history"]))
    lock = open_run_dir(run, resume, overwrite) if t.dist.main else contextlib.nullcontext(RunDir(run, source))
    with lock as rd:
        t.run = rd.work
        if t.dist.main:
            _prepare_run_dir(t)
        barrier(t.dist)
        _train_epochs(t, state, ckpt, on_step)
        if t.dist.main:
            with suggest_smaller_batch(t.config.global_batch, "embedding the training images"):
                references = _domain_references(t)
            save_bundle(rd.work / BUNDLE, unwrap(t.net), _bundle_meta(t, state, *references))
            rd.commit()  # a run that replaces another moves into place only now, finished
            if not keep_checkpoint:
                # after the commit: a kill in between leaves a finished run that still has its checkpoint
                (rd.run / CHECKPOINT).unlink(missing_ok=True)
    barrier(t.dist)
    finish_dist(t.dist)
    return _result(run, pd.DataFrame(state.history), config)


def _finished_result(run: Path, config: TrainConfig | None) -> TrainResult:
    """The result of a finished run whose checkpoint was dropped (``--resume`` has nothing to do);
    ConfigError when ``config`` differs from the run's own in a training setting."""
    saved = load_config(run / CONFIG, saved_run=True)
    if config is not None:
        diff = config.resolved().training_differences(saved)
        if diff:
            raise ConfigError(
                f"{run}: resuming with different settings than the finished run ({', '.join(diff)}); "
                f"use overwrite to start again",
                param="overwrite",
            )
    log.info("%s: the run is already finished (%s; no %s); nothing to do", run, BUNDLE, CHECKPOINT)
    return _result(run, pd.read_csv(run / HISTORY), saved.resolved())


def _resume_source(run: Path) -> Path:
    """Where ``--resume`` continues: the run an ``--overwrite`` was building (staging), else the run."""
    stage = staging_dir(run)
    return stage if (stage / CHECKPOINT).is_file() else run


def _train_epochs(t: Trainer, state: RunState, ckpt: dict | None, on_step) -> None:
    """The epochs still to train; a checkpoint and a history row after each (main process)."""
    config = t.config
    writer = CheckpointWriter(t.run, background=t.cuda)
    start_epoch = state.epoch
    try:
        for epoch in range(start_epoch, config.total_epochs):
            pi = phase_index(t.phases, epoch)
            if pi != state.phase:
                _enter_phase(t, state, pi, ckpt if epoch == start_epoch else None)
            with suggest_smaller_batch(config.global_batch, f"training (epoch {epoch + 1})"):
                row = train_one_epoch(t, state, epoch, on_step)
                row["valid"] = _validate(t)
            if not (np.isfinite(row["train_loss"]) and np.all(np.isfinite(row["valid"]))):
                raise ConfigError(
                    f"{t.run}: training diverged in epoch {epoch + 1} (train loss {row['train_loss']:.4g}); "
                    f"that epoch was not saved; lower the learning rate (lr, frozen_lr)",
                    param=("lr", "frozen_lr"),
                )
            row = _history_row(t, epoch, row)
            state.history.append(row)
            state.epoch = epoch + 1
            if t.dist.main:
                writer.submit(_checkpoint_state(t, state))
                _log_epoch(t, row)
            barrier(t.dist)
    finally:
        writer.wait(raise_errors=False)
    writer.raise_pending()


def _validate(t: Trainer) -> np.ndarray:
    """The valid split's RMSE per target (see :func:`evaluate`)."""
    return evaluate(
        t.net,
        t.valid_data,
        t.n_valid,
        t.local_batch * 2,
        t.device,
        t.autocast(),
        t.scale_t,
        t.dist,
        crop=t.config.crop,
    )


def _resolve_config(run: Path, config: TrainConfig | None, resume: bool) -> tuple[TrainConfig, dict | None]:
    """The run's resolved config and, when resuming, its checkpoint (whose config wins)."""
    ckpt = None
    if resume:
        ckpt = read_checkpoint(run / CHECKPOINT)
        saved = TrainConfig.from_saved(ckpt["config"], where=str(run / CHECKPOINT))
        if config is not None:
            diff = config.resolved().training_differences(saved)
            if diff:
                raise ConfigError(
                    f"{run}: resuming with different settings than the checkpoint ({', '.join(diff)}); "
                    f"use overwrite to start again",
                    param="overwrite",
                )
            saved = dataclasses.replace(saved, **{k: getattr(config, k) for k in RUNTIME_FIELDS})
        config = saved
    return (config or TrainConfig()).resolved(), ckpt


def _setup(dataset, run: Path, config: TrainConfig, ckpt: dict | None) -> Trainer:
    """Device, processes, data on the device, and the network, in the order that fixes the RNG."""
    dist = dist_from_env()
    device = resolve_device(config.device)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    dist = init_dist(dist, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    local_batch = config.global_batch // dist.world
    if local_batch < 2:
        raise ConfigError(f"batch size {config.batch_size} over {dist.world} processes leaves < 2 images per process")

    rows = load_training_rows(dataset, config)
    ds = rows.dataset
    shift, scale = standardisation(rows.y_train, config)
    data_meta = {"n_train": len(rows.train_rows), "n_valid": len(rows.valid_rows), "image_size": ds.image_size}
    if ckpt is not None:
        shift, scale = np.asarray(ckpt["target_shift"]), np.asarray(ckpt["target_scale"])
        if ckpt["data"] != data_meta:
            raise ConfigError(
                f"{run}: the dataset differs from the one the checkpoint was trained on "
                f"({ckpt['data']}); use overwrite to start again",
                param="overwrite",
            )
    steps = steps_per_epoch(-(-len(rows.train_rows) // dist.world), local_batch)
    if steps == 0:
        raise DataError(
            f"{ds.root}: the train split has {len(rows.train_rows)} rows: too few to train "
            f"(need at least 2 per process)"
        )
    valid_rows, y_valid = rows.valid_rows, rows.y_valid
    if dist.world > 1:
        valid_rows, y_valid = valid_rows[dist.rank :: dist.world], y_valid[dist.rank :: dist.world]
    images = ds.images()
    train_data = place(images, rows.train_rows, (rows.y_train - shift) / scale, device, 0)
    valid_data = place(
        images, valid_rows, (y_valid - shift) / scale, device, train_data.images.nbytes if train_data.resident else 0
    )

    phases = build_phases(config)
    torch.manual_seed(config.seed)
    n_out = len(config.targets) * outputs_per_target(config.loss)
    net = to_channels_last(build_model(config.arch, n_out, config.weights), device)
    return Trainer(
        config=config,
        run=run,
        dist=dist,
        device=device,
        net=net,
        groups=layer_groups(net),
        phases=phases,
        train_data=train_data,
        valid_data=valid_data,
        n_train=len(rows.train_rows),
        n_valid=len(rows.valid_rows),
        steps=steps,
        local_batch=local_batch,
        shift=shift,
        scale=scale,
        data_meta=data_meta,
        dataset_root=ds.root,
        label_range={
            name: [float(rows.y_train[:, j].min()), float(rows.y_train[:, j].max())]
            for j, name in enumerate(config.targets)
        },
        recorded=ds.imaging,
        trained_on=GalaxyIdSet.of(np.asarray(ds.names, dtype=object)[rows.train_rows], "train").to_dict(),
    )


def _prepare_run_dir(t: Trainer) -> None:
    save_config(
        t.config,
        t.run / CONFIG,
        extra={
            "dataset": str(t.dataset_root),
            **t.data_meta,
            "world_size": t.dist.world,
            "steps_per_epoch": t.steps,
            "device": str(t.device),
            "torch": str(torch.__version__),
        },
    )


def _enter_phase(t: Trainer, state: RunState, pi: int, ckpt: dict | None) -> None:
    """A new optimizer and scheduler for phase ``pi`` (fastai 0.7 built one per ``fit``); restored
    from ``ckpt`` when the run resumes inside that phase."""
    phase = t.phases[pi]
    freeze_body(t.net, phase.frozen)
    optimizer = make_optimizer(t.groups, phase, t.config.decay, t.config.optimizer or "adamw", t.config.momentum)
    scheduler = make_scheduler(optimizer, phase, t.steps, t.config)
    if ckpt is not None and int(ckpt["phase"]) == pi:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"], t.device)
    state.live = LivePhase(pi, optimizer, scheduler, wrap_for_training(t.net, t.dist, t.device, t.config.compile))


def train_one_epoch(t: Trainer, state: RunState, epoch: int, on_step: Callable[[StepInfo], None] | None = None) -> dict:
    """One epoch over this rank's shuffled train batches; returns its raw tallies.

    Seeds, in this order (resume replays them exactly): dropout from (seed, epoch, 2, rank), the
    augmentation generator from (seed, epoch, 3, rank), the permutation from (seed, epoch, 1).

    Returns
    -------
    dict
        ``lrs`` (per group, at the epoch's start), ``train_rmse`` (float64 (T,), target units,
        over all processes), ``train_loss`` (mean batch RMSE, standardised units), ``n`` (images
        seen by all processes), ``train_time`` (s), ``t0`` (perf_counter at the start).
    """
    config, device = t.config, t.device
    live = state.require_live()
    phase = t.phases[live.index]
    torch.manual_seed(derive_seed(config.seed, epoch, 2, t.dist.rank))  # dropout
    g_aug = torch.Generator(device=device)
    g_aug.manual_seed(derive_seed(config.seed, epoch, 3, t.dist.rank))
    opt, sched = live.optimizer, live.scheduler
    lrs_start = current_lrs(opt)
    t.net.train()
    batches = epoch_batches(t.train_data, t.n_train, epoch, config.seed, t.dist, device, t.local_batch, t.steps)
    sse = torch.zeros(len(config.targets), dtype=torch.float64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    show = config.progress and t.dist.main
    bar = epoch_bar(t.steps, f"epoch {epoch + 1}/{config.total_epochs} {phase.name}", show)
    shown = time.perf_counter()
    t0 = time.perf_counter()
    for step, (xb, idx) in enumerate(batch_iter(t.train_data, batches, config.workers, device)):
        yb = t.train_data.targets.index_select(0, idx)
        x = augmented_input(xb, config, g_aug)
        with t.autocast():
            out = live.forward(x)
        loss, err = training_loss(out, yb, config.loss, config.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if on_step is not None:
            on_step(StepInfo(epoch, step, state.step, phase, current_lrs(opt), t.net))
        opt.step()
        sched.step()
        state.step += 1
        with torch.no_grad():
            sse += (err.detach() ** 2).sum(0).double()
            loss_sum += loss.detach().double() * len(idx)
        seen += len(idx)
        bar.update(1)
        # Reading the loss syncs a GPU: on CUDA at most once a second (free on a CPU).
        if show and (not t.cuda or time.perf_counter() - shown >= 1.0):
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            shown = time.perf_counter()
    counts = all_reduce(torch.tensor([float(seen)], dtype=torch.float64, device=device), t.dist)
    sse = all_reduce(sse, t.dist)
    loss_sum = all_reduce(loss_sum, t.dist)
    train_time = time.perf_counter() - t0
    n = float(counts.item())
    train_loss = float(loss_sum.item() / n)
    bar.set_postfix(loss=f"{train_loss:.4f}", refresh=False)  # the epoch's mean
    bar.close()
    return {
        "lrs": lrs_start,
        "train_rmse": (torch.sqrt(sse / counts) * t.scale_t.double()).cpu().numpy(),
        "train_loss": train_loss,
        "n": n,
        "train_time": train_time,
        "t0": t0,
    }


@torch.no_grad()
def evaluate(
    net,
    data: SplitData,
    n_total: int,
    batch: int,
    device,
    amp,
    scale_t: torch.Tensor,
    dist: Dist,
    crop: int | None = None,
) -> np.ndarray:
    """Per-target RMSE (target units, float64 (T,)) over the whole valid split, sharded over ranks
    and all-reduced, on the central ``crop`` pixels when given. ``scale_t`` (T,) is the target
    std that turns standardised errors back into target units."""
    net.eval()
    n = len(data.targets)
    sse = torch.zeros(len(scale_t), dtype=torch.float64, device=device)
    order = torch.arange(n, device=device if data.resident else torch.device("cpu"))
    batches = [order[i : i + batch] for i in range(0, n, batch)]
    for xb, idx in batch_iter(data, batches, 0, device):
        with amp:
            out = net(to_model_input(center_crop(xb, crop))).float()[:, : len(scale_t)]  # the means
        sse += ((out - data.targets.index_select(0, idx)) ** 2).sum(0).double()
    sse = all_reduce(sse, dist)
    return (torch.sqrt(sse / n_total) * scale_t.double()).cpu().numpy()


def _history_row(t: Trainer, epoch: int, tally: dict) -> dict:
    """The ``history.csv`` row of an epoch from :func:`train_one_epoch`'s tallies and the valid RMSE."""
    elapsed = time.perf_counter() - tally["t0"]
    row = {"epoch": epoch + 1, "phase": t.phases[phase_index(t.phases, epoch)].name, "train_loss": tally["train_loss"]}
    for j, name in enumerate(t.config.targets):
        row[f"train_rmse_{name}"] = float(tally["train_rmse"][j])
        row[f"valid_rmse_{name}"] = float(tally["valid"][j])
    for g, lr in enumerate(tally["lrs"]):
        row[f"lr_group{g}"] = lr
    row.update(
        {
            "time_s": elapsed,
            "train_time_s": tally["train_time"],
            "images_per_s": tally["n"] / tally["train_time"],
            "steps": t.steps,
        }
    )
    return row


def _checkpoint_state(t: Trainer, state: RunState) -> dict:
    live = state.require_live()
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": state.epoch,
        "step": state.step,
        "phase": live.index,
        "model": t.net.state_dict(),
        "optimizer": live.optimizer.state_dict(),
        "scheduler": live.scheduler.state_dict(),
        "rng": rng_state(t.device),
        "config": t.config.to_dict(),
        "history": list(state.history),
        "target_shift": [float(v) for v in t.shift],
        "target_scale": [float(v) for v in t.scale],
        "data": t.data_meta,
    }


@contextlib.contextmanager
def epoch_lines_to_stderr(show: bool):
    """Within this block, with ``show``, the ``galmet`` logger's INFO lines (one per epoch, and the
    periodic progress lines off a terminal) reach stderr even when nothing configured logging:
    a plain script calling :func:`train` is not silent for minutes. A handler already on the
    ``galmet`` logger or above (the CLI's, a program's, pytest's) is left to decide alone."""
    logger = logging.getLogger("galmet")
    if not show or logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _log_epoch(t: Trainer, row: dict) -> None:
    first = t.config.targets[0]
    lrs = [row[k] for k in row if k.startswith("lr_group")]
    log.info(
        "epoch %d/%d %s: loss %.4f, train RMSE %.4f, valid RMSE %.4f (%s), lr %s, %.1f s, %.0f img/s",
        row["epoch"],
        t.config.epochs,
        row["phase"],
        row["train_loss"],
        row[f"train_rmse_{first}"],
        row[f"valid_rmse_{first}"],
        first,
        "/".join(f"{lr:.1e}" for lr in lrs),
        row["time_s"],
        row["images_per_s"],
    )


def _bundle_meta(t: Trainer, state: RunState, embedding_stats: dict, image_stats: dict | None) -> dict:
    """The finished run's bundle meta (:func:`galmet.nn.bundle_meta.training_meta`); its imaging
    is the dataset's record (pixel scale, mode, data release) at the sizes this run trained on."""
    config = t.config
    return training_meta(
        targets=list(config.targets),
        target_shift=list(t.shift),
        target_scale=list(t.scale),
        image_size=t.data_meta["image_size"],
        crop=config.crop,
        recipe=config.recipe,
        config=config.to_dict(),
        dataset=str(t.dataset_root),
        epochs=config.epochs,
        valid_rmse={n: state.history[-1][f"valid_rmse_{n}"] for n in config.targets} if state.history else {},
        loss=config.loss,
        label_range=t.label_range,
        imaging=t.recorded.trained_on(int(t.data_meta["image_size"]), config.crop),
        embedding_stats=embedding_stats,
        trained_on=t.trained_on or None,
        image_stats=image_stats,
    )


#: Training images embedded for the out-of-domain statistics of the bundle (a seeded sample).
EMBEDDING_SAMPLE = 5000


def _domain_references(t: Trainer) -> tuple[dict, dict | None]:
    """The training domain, for the ``EMBEDDING_OUT_OF_DOMAIN`` and ``IMAGE_OUT_OF_DOMAIN`` flags:
    (:meth:`EmbeddingReference.to_dict` of the final network's training embeddings,
    :meth:`ImageDomainReference.to_dict` of the training images' statistics, None for images
    under 16 px), both from one
    seeded sample of at most :data:`EMBEDDING_SAMPLE` train images (eval mode, no augmentation);
    draws from numpy only, so no torch random stream (and no resume) is touched.
    """
    rng = np.random.default_rng(derive_seed(t.config.seed, 4))
    n = t.n_train
    pick = np.sort(rng.choice(n, min(n, EMBEDDING_SAMPLE), replace=False))
    if t.train_data.resident:
        images = t.train_data.images.index_select(0, torch.as_tensor(pick, device=t.train_data.images.device))
    else:
        source, rows = t.train_data.images
        images = source[np.sort(rows[pick])]
    emb = embed([unwrap(t.net)], images, t.config.crop, batch_size=t.local_batch * 2, device=t.device, progress=False)
    pixels = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return (
        EmbeddingReference.fit(emb[0], seed=t.config.seed).to_dict(),
        image_ref.to_dict() if (image_ref := ImageDomainReference.fit_images_if_possible(pixels)) else None,
    )


def _result(run: Path, hist: pd.DataFrame, config: TrainConfig) -> TrainResult:
    first = f"valid_rmse_{config.targets[0]}"
    return TrainResult(
        run_dir=run,
        bundle_path=run / BUNDLE,
        history=hist,
        best_valid_rmse=float(hist[first].min()),
        final_valid_rmse=float(hist[first].iloc[-1]),
        valid_rmse={t: float(hist[f"valid_rmse_{t}"].iloc[-1]) for t in config.targets},
    )


def epoch_bar(steps: int, desc: str, show: bool):
    """The progress of one epoch: ``steps`` optimizer steps (whole numbers, 100% at the epoch's
    end), the loss (standardised units) as its postfix ``loss=...``."""
    return progress_bar(total=steps, desc=desc, unit="step", enabled=show, leave=False, dynamic_ncols=True)
