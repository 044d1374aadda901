"""The training loop: recipes, on-device augmentation, bf16 autocast, checkpoints, resume, DDP.

One entry point, :func:`train`. A run directory holds::

    RUN/
      config.yaml     the resolved TrainConfig (+ a ``run:`` section: dataset, sizes, world size)
      history.csv     one row per epoch: train/valid RMSE (target units), lr per group, time, images/s
      checkpoint.pt   after every epoch (atomic): model, optimizer, scheduler, RNG states, epoch, step
      model.pt        the final model bundle (galmet.nn.bundle.save_bundle)

Fast path: the train and valid images go to the device once as uint8 (N, H, W, 3) when they fit;
each epoch draws a ``torch.randperm`` on the device, gathers batches by index, applies a random
dihedral element per image (and fastai's random zoom) on the device, normalises, runs under bf16
autocast on CUDA, channels_last everywhere, and accumulates the loss on the device: the host reads it
once per epoch. When the images do not fit, batches are gathered from the memory-mapped decode
cache (in a DataLoader with ``workers`` processes).

Randomness is re-seeded at the start of every epoch from (seed, epoch, rank), so a run resumed
from the checkpoint of epoch ``e`` replays epoch ``e + 1`` exactly as an uninterrupted run would.

Under ``torchrun`` (env ``WORLD_SIZE`` > 1) the same call trains with DistributedDataParallel:
nccl on CUDA, gloo on CPU; the global batch is split over the processes, each epoch's
permutation is sharded ``perm[rank::world]`` (padded to equal length, as DistributedSampler),
validation is sharded and all-reduced, and only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from galmet.io.atomic import atomic_path, remove_stale_temp_files
from galmet.errors import ConfigError, DataError
from galmet.training.recipes import Phase, build_phases, current_lrs, make_optimizer, make_scheduler, phase_index
from galmet.training.config import RUNTIME_FIELDS, TrainConfig, save_config

log = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
HISTORY_NAME = "history.csv"
CHECKPOINT_NAME = "checkpoint.pt"
BUNDLE_NAME = "model.pt"
CHECKPOINT_FORMAT = "galmet-checkpoint"
#: Probability that fastai's RandomScale zooms an image (the rest are left at scale 1).
ZOOM_PROBABILITY = 0.75
#: Keep a CPU run's images in RAM (instead of reading the memory map per batch) up to this fraction of RAM.
RAM_FRACTION = 0.4


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


# ------------------------------------------------------------------------------ distributed


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_from_env() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def _init_dist(dist: _Dist, device: torch.device) -> _Dist:
    import torch.distributed as td

    if dist.world <= 1 or td.is_initialized():
        return dist
    td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dataclasses.replace(dist, initialised_here=True)


def _barrier(dist: _Dist) -> None:
    if dist.world > 1:
        import torch.distributed as td

        td.barrier()


def _all_reduce(t: torch.Tensor, dist: _Dist) -> torch.Tensor:
    if dist.world > 1:
        import torch.distributed as td

        td.all_reduce(t)
    return t


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


# ------------------------------------------------------------------------------ data


@dataclass
class _Split:
    images: Any  # torch uint8 (N, H, W, 3) on the device or in RAM, or a numpy memmap
    targets: torch.Tensor  # float32 (N, T), standardised, on the device
    resident: bool  # images already on the compute device


def _load(dataset, config: TrainConfig):
    from galmet.data.dataset import Dataset, load_dataset

    if isinstance(dataset, Dataset):
        ds = dataset
    else:
        ds = load_dataset(dataset, targets=config.targets, on_error="skip" if config.skip_bad else "raise",
                          size=config.size, valid_fraction=config.valid_fraction, split_seed=config.split_seed)
    if config.size is not None and ds.image_size != config.size:
        raise DataError(f"{ds.root}: images are {ds.image_size}x{ds.image_size} pixels, --size is {config.size}")
    if config.crop is not None and config.crop > ds.image_size:
        raise DataError(f"{ds.root}: images are {ds.image_size}x{ds.image_size} pixels, smaller than --crop {config.crop}")
    train_rows, valid_rows = ds.split_indices("train"), ds.split_indices("valid")
    if len(train_rows) == 0:
        raise DataError(f"{ds.root}: no rows with split 'train'")
    if len(valid_rows) == 0:
        raise DataError(f"{ds.root}: no rows with split 'valid' (set valid_fraction > 0 or add valid rows)")
    labels = dataclasses.replace(ds, _images=None)  # subset the catalog, not the images
    y_train = labels.subset(train_rows).targets(config.targets).astype(np.float64)
    y_valid = labels.subset(valid_rows).targets(config.targets).astype(np.float64)
    return ds, train_rows, valid_rows, y_train, y_valid


def _place(images, rows: np.ndarray, y: np.ndarray, device: torch.device, extra_bytes: int) -> _Split:
    """Put a split's images on ``device`` as uint8 when they fit, else leave them memory-mapped.

    ``images`` is the dataset's uint8 (N, H, W, 3) numpy array or memmap, or a uint8 torch
    tensor (e.g. built on the GPU), which is indexed where it lives.
    """
    targets = torch.from_numpy(y.astype(np.float32)).to(device)
    if isinstance(images, torch.Tensor):
        x = images[torch.as_tensor(rows, device=images.device)]
        return _Split(images=x.to(device), targets=targets, resident=True)
    need = len(rows) * int(np.prod(images.shape[1:]))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        fits = need + extra_bytes < 0.6 * free
    else:
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            ram = 8 << 30
        fits = need + extra_bytes < RAM_FRACTION * ram
    if not fits:
        log.info("images (%.1f GiB) do not fit in %s memory: reading batches from the memory map", need / 2**30, device.type)
        return _Split(images=(images, rows), targets=targets, resident=False)
    x = torch.from_numpy(np.ascontiguousarray(images[rows]))
    return _Split(images=x.to(device), targets=targets, resident=True)


class _MemmapBatches(torch.utils.data.Dataset):
    """Batch ``i`` of one epoch: uint8 (B, H, W, 3) gathered from the memory map (rows sorted for locality)."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, batches: list[np.ndarray]):
        self.images, self.rows, self.batches = images, rows, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        local = self.batches[i]
        order = np.argsort(self.rows[local], kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        x = np.ascontiguousarray(self.images[self.rows[local][order]])[inverse]
        return torch.from_numpy(x), torch.from_numpy(local)


def _steps_per_epoch(n_local: int, batch: int) -> int:
    # A last batch of one image would break BatchNorm in training mode: drop it.
    return n_local // batch + (1 if n_local % batch >= 2 else 0)


def _epoch_indices(n: int, epoch: int, config: TrainConfig, dist: _Dist, device: torch.device) -> torch.Tensor:
    """This rank's shuffled train indices for ``epoch`` (same permutation on every rank)."""
    g = torch.Generator(device=device)
    g.manual_seed(_seed(config.seed, epoch, 1))
    perm = torch.randperm(n, generator=g, device=device)
    if dist.world > 1:
        total = -(-n // dist.world) * dist.world
        if total > n:
            perm = torch.cat([perm, perm[: total - n]])
        perm = perm[dist.rank :: dist.world]
    return perm


def random_zoom(x: torch.Tensor, max_zoom: float, generator: torch.Generator | None = None,
                p: float = ZOOM_PROBABILITY) -> torch.Tensor:
    """fastai's ``RandomScale`` + ``RandomCrop`` on a float batch (N, C, H, W), on its device.

    Each image is, with probability ``p``, magnified by a factor uniform in [1, max_zoom]
    (bilinear, about a random centre that keeps the view inside the image) and cropped back
    to H x W; the rest pass through unchanged. No host synchronisation.
    """
    n = x.shape[0]
    u = torch.rand((n, 4), device=x.device, generator=generator)
    zoom = torch.where(u[:, 1] < p, 1 + (max_zoom - 1) * u[:, 0], torch.ones_like(u[:, 0]))
    inv = 1.0 / zoom
    theta = torch.zeros((n, 2, 3), device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = inv
    theta[:, 1, 1] = inv
    theta[:, :, 2] = (1 - inv).unsqueeze(1) * (2 * u[:, 2:] - 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------ run directory


def augmented_input(xb: torch.Tensor, config: TrainConfig, generator: torch.Generator | None) -> torch.Tensor:
    """A uint8 batch (N, H, W, 3) as training feeds it to the network: the central crop (when
    ``config.crop``), a random dihedral element, ImageNet normalisation (float NCHW,
    channels_last), then the random zoom."""
    from galmet.nn.augment import center_crop, random_dihedral, to_model_input

    xb = center_crop(xb, config.crop)
    if config.dihedral:
        xb = random_dihedral(xb, generator=generator)
    x = to_model_input(xb)
    if config.max_zoom > 1:
        x = random_zoom(x, config.max_zoom, generator)
    return x


def _check_run_dir(run: Path, resume: bool, overwrite: bool) -> None:
    bundle, ckpt = run / BUNDLE_NAME, run / CHECKPOINT_NAME
    if run.exists() and not run.is_dir():
        raise ConfigError(f"{run}: exists and is not a directory")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if resume:
        if not ckpt.is_file():
            raise ConfigError(f"{run}: no {CHECKPOINT_NAME} to resume from")
        return
    if overwrite:
        return
    if bundle.exists():
        raise ConfigError(f"{run}: already holds a finished run ({BUNDLE_NAME}); use --overwrite to replace it")
    if ckpt.exists():
        raise ConfigError(f"{run}: holds an unfinished run ({CHECKPOINT_NAME}); use --resume to continue it or --overwrite")


def _read_checkpoint(path: Path) -> dict:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, pickle error, permissions: all "unreadable"
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ConfigError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not a galmet training checkpoint")
    return ck


def _cpu_copy(obj):
    """``obj`` with every tensor copied to the CPU (a snapshot the training may then overwrite)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


class _Writer:
    """Writes checkpoint.pt then history.csv (each atomically), one epoch at a time.

    On CUDA in a background thread, so the GPU trains on while the file is written; the next
    write (and the end of training) waits for the previous one.
    """

    def __init__(self, background: bool):
        self.background = background
        self._thread = None
        self._error: BaseException | None = None

    def _write(self, state: dict, run: Path) -> None:
        from galmet.io.tables import write_table

        try:
            with atomic_path(run / CHECKPOINT_NAME) as tmp:
                torch.save(state, tmp)
            write_table(pd.DataFrame(state["history"]), run / HISTORY_NAME)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the training thread
            self._error = exc

    def submit(self, state: dict, run: Path) -> None:
        self.wait()
        if not self.background:
            self._write(state, run)
            self.raise_pending()
            return
        import threading

        self._thread = threading.Thread(target=self._write, args=(state, run), daemon=False)
        self._thread.start()

    def wait(self, raise_errors: bool = True) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if raise_errors:
            self.raise_pending()

    def raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------------------ the loop


def train(
    dataset,
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Train a model on the ``train`` split of ``dataset``, validating on ``valid``.

    Parameters
    ----------
    dataset : path-like or galmet.data.dataset.Dataset
        A dataset directory (loaded with :func:`galmet.data.dataset.load_dataset`, decode cache used),
        or an already-loaded Dataset (e.g. with re-binned images). ``test`` rows are never read.
    out_dir : path-like
        The run directory (created).
    config : TrainConfig, optional
        Default: the paper's recipe (``TrainConfig()``). With ``resume``, the checkpoint's config is
        used; a ``config`` passed along must agree with it except in runtime fields.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (the last completed epoch), exactly.
    overwrite : bool
        Replace a finished or unfinished run in ``out_dir``.
    on_step : callable, optional
        Called with a :class:`StepInfo` at every step (tests, monitoring); may raise to stop.

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError, DataError
        One-line messages for bad options, datasets, run directories or checkpoints.
    """
    from galmet.nn.bundle import build_model, freeze_body, layer_groups, resolve_device, save_bundle, unwrap

    run = Path(out_dir)
    _check_run_dir(run, resume, overwrite)
    ckpt = None
    if resume:
        ckpt = _read_checkpoint(run / CHECKPOINT_NAME)
        saved = TrainConfig.from_dict(ckpt["config"], where=str(run / CHECKPOINT_NAME))
        if config is not None:
            diff = config.resolved().training_differences(saved)
            if diff:
                raise ConfigError(f"{run}: --resume with different settings than the checkpoint ({', '.join(diff)}); "
                                  f"use --overwrite to start again")
            saved = dataclasses.replace(saved, **{k: getattr(config, k) for k in RUNTIME_FIELDS})
        config = saved
    config = (config or TrainConfig()).resolved()
    if ckpt is not None and int(ckpt["epoch"]) >= config.epochs and (run / BUNDLE_NAME).is_file():
        log.info("%s: the run is already finished (%d epochs); nothing to do", run, config.epochs)
        return _result(run, pd.DataFrame(ckpt["history"]), config)

    dist = _dist_from_env()
    device = resolve_device(config.device)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    dist = _init_dist(dist, device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    local_batch = config.batch_size // dist.world
    if local_batch < 2:
        raise ConfigError(f"batch size {config.batch_size} over {dist.world} processes leaves < 2 images per process")

    ds, train_rows, valid_rows, y_train, y_valid = _load(dataset, config)
    n_targets = len(config.targets)
    if config.standardize_targets:
        shift, scale = y_train.mean(0), y_train.std(0)
        scale = np.where(scale > 0, scale, 1.0)
    else:
        shift, scale = np.zeros(n_targets), np.ones(n_targets)
    if ckpt is not None:
        shift, scale = np.asarray(ckpt["target_shift"]), np.asarray(ckpt["target_scale"])
        if ckpt["data"] != {"n_train": len(train_rows), "n_valid": len(valid_rows), "image_size": ds.image_size}:
            raise ConfigError(f"{run}: the dataset differs from the one the checkpoint was trained on "
                              f"({ckpt['data']}); use --overwrite to start again")

    n_local = -(-len(train_rows) // dist.world)
    steps = _steps_per_epoch(n_local, local_batch)
    if steps == 0:
        raise DataError(f"{ds.root}: the train split has {len(train_rows)} rows: too few to train "
                        f"(need at least 2 per process)")
    if dist.world > 1:
        valid_rows_local = valid_rows[dist.rank :: dist.world]
        y_valid_local = y_valid[dist.rank :: dist.world]
    else:
        valid_rows_local, y_valid_local = valid_rows, y_valid
    images = ds.images()
    train_data = _place(images, train_rows, (y_train - shift) / scale, device, 0)
    valid_data = _place(images, valid_rows_local, (y_valid_local - shift) / scale, device,
                        train_data.images.nbytes if train_data.resident else 0)

    phases = build_phases(config)
    torch.manual_seed(config.seed)
    net = build_model(config.arch, n_targets, config.weights).to(device, memory_format=torch.channels_last)
    groups = layer_groups(net)

    history: list[dict] = []
    start_epoch, global_step = 0, 0
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        history = list(ckpt["history"])
        start_epoch, global_step = int(ckpt["epoch"]), int(ckpt["step"])
    meta = {"n_train": len(train_rows), "n_valid": len(valid_rows), "image_size": ds.image_size}

    if dist.main:
        run.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(run)
        if overwrite and not resume:
            for name in (BUNDLE_NAME, CHECKPOINT_NAME, HISTORY_NAME):
                (run / name).unlink(missing_ok=True)
        save_config(config, run / CONFIG_NAME, extra={
            "dataset": str(ds.root), **meta, "world_size": dist.world, "steps_per_epoch": steps,
            "device": str(device), "torch": str(torch.__version__)})
    _barrier(dist)

    writer = _Writer(background=cuda)

    def save_checkpoint(epoch: int, pi: int, opt, sched) -> None:
        state = {
            "format": CHECKPOINT_FORMAT, "epoch": epoch, "step": global_step, "phase": pi,
            "model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": _rng_state(device), "config": config.to_dict(), "history": list(history),
            "target_shift": [float(v) for v in shift], "target_scale": [float(v) for v in scale],
            "data": meta,
        }
        writer.submit(_cpu_copy(state), run)

    scale_t = torch.as_tensor(scale, dtype=torch.float32, device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and config.amp)
    opt = sched = None
    current_phase = -1
    forward = net
    try:
        for epoch in range(start_epoch, config.epochs):
            pi = phase_index(phases, epoch)
            phase = phases[pi]
            if pi != current_phase:
                freeze_body(net, phase.frozen)
                opt = make_optimizer(groups, phase, config.weight_decay)
                sched = make_scheduler(opt, phase, steps, config)
                if ckpt is not None and int(ckpt["phase"]) == pi and epoch == start_epoch:
                    opt.load_state_dict(ckpt["optimizer"])
                    sched.load_state_dict(ckpt["scheduler"])
                    _set_rng_state(ckpt["rng"], device)
                forward = net
                if dist.world > 1:
                    from torch.nn.parallel import DistributedDataParallel as DDP

                    forward = DDP(net, device_ids=[device.index] if cuda else None)
                if config.compile:
                    forward = torch.compile(forward)
                current_phase = pi

            torch.manual_seed(_seed(config.seed, epoch, 2, dist.rank))  # dropout
            g_aug = torch.Generator(device=device)
            g_aug.manual_seed(_seed(config.seed, epoch, 3, dist.rank))
            lrs_start = current_lrs(opt)
            net.train()
            idx_all = _epoch_indices(len(train_rows), epoch, config, dist,
                                     device if train_data.resident else torch.device("cpu"))
            batches = [idx_all[i * local_batch:(i + 1) * local_batch] for i in range(steps)]
            sse = torch.zeros(n_targets, dtype=torch.float64, device=device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            seen = 0
            bar = _progress(config.progress and dist.main, steps * config.batch_size,
                            f"epoch {epoch + 1}/{config.epochs} {phase.name}")
            t0 = time.perf_counter()
            for step, (xb, idx) in enumerate(_batch_iter(train_data, batches, config.workers, device)):
                yb = train_data.targets.index_select(0, idx)
                x = augmented_input(xb, config, g_aug)
                with amp:
                    out = forward(x)
                out = out.float()
                err = out - yb
                loss = torch.sqrt((err * err).mean())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if on_step is not None:
                    on_step(StepInfo(epoch, step, global_step, phase, current_lrs(opt), net))
                opt.step()
                sched.step()
                global_step += 1
                with torch.no_grad():
                    sse += (err.detach() ** 2).sum(0).double()
                    loss_sum += loss.detach().double() * len(idx)
                seen += len(idx)
                if bar is not None:
                    bar.update(len(idx) * dist.world)
                    if not cuda:  # on a CPU reading the loss costs nothing; on a GPU it would sync every step
                        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            counts = _all_reduce(torch.tensor([float(seen)], dtype=torch.float64, device=device), dist)
            sse = _all_reduce(sse, dist)
            loss_sum = _all_reduce(loss_sum, dist)
            train_rmse = (torch.sqrt(sse / counts) * scale_t.double()).cpu().numpy()
            train_time = time.perf_counter() - t0
            valid_rmse = _evaluate(net, valid_data, len(valid_rows), local_batch * 2, device, amp, scale_t, dist,
                                   crop=config.crop)
            elapsed = time.perf_counter() - t0
            n_images = float(counts.item())
            row = {"epoch": epoch + 1, "phase": phase.name, "train_loss": float(loss_sum.item() / n_images)}
            for t, name in enumerate(config.targets):
                row[f"train_rmse_{name}"] = float(train_rmse[t])
                row[f"valid_rmse_{name}"] = float(valid_rmse[t])
            for g, lr in enumerate(lrs_start):
                row[f"lr_group{g}"] = lr
            row.update({"time_s": elapsed, "train_time_s": train_time, "images_per_s": n_images / train_time,
                        "steps": steps})
            history.append(row)
            if bar is not None:
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", refresh=False)
                bar.close()
            if dist.main:
                save_checkpoint(epoch + 1, pi, opt, sched)
                first = config.targets[0]
                log.info("epoch %d/%d %s: train RMSE %.4f, valid RMSE %.4f (%s), lr %s, %.1f s, %.0f img/s",
                         epoch + 1, config.epochs, phase.name, row[f"train_rmse_{first}"], row[f"valid_rmse_{first}"],
                         first, "/".join(f"{lr:.1e}" for lr in lrs_start), elapsed, row["images_per_s"])
            _barrier(dist)
    finally:
        writer.wait(raise_errors=False)
    writer.raise_pending()

    bundle_path = run / BUNDLE_NAME
    if dist.main:
        bundle_meta = {
            "targets": list(config.targets), "target_shift": [float(v) for v in shift],
            "target_scale": [float(v) for v in scale], "image_size": ds.image_size, "crop": config.crop,
            "recipe": config.recipe,
            "config": config.to_dict(), "dataset": str(ds.root), "epochs": config.epochs,
            "valid_rmse": {t: history[-1][f"valid_rmse_{t}"] for t in config.targets} if history else {},
        }
        save_bundle(bundle_path, unwrap(net), bundle_meta)
    _barrier(dist)
    if dist.initialised_here:
        import torch.distributed as td

        td.destroy_process_group()
    return _result(run, pd.DataFrame(history), config)


def _result(run: Path, hist: pd.DataFrame, config: TrainConfig) -> TrainResult:
    first = f"valid_rmse_{config.targets[0]}"
    return TrainResult(
        run_dir=run, bundle_path=run / BUNDLE_NAME, history=hist,
        best_valid_rmse=float(hist[first].min()), final_valid_rmse=float(hist[first].iloc[-1]),
        valid_rmse={t: float(hist[f"valid_rmse_{t}"].iloc[-1]) for t in config.targets},
    )


def _progress(show: bool, total: int, desc: str):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, leave=False, dynamic_ncols=True)


def _batch_iter(data: _Split, batches: list[torch.Tensor], workers: int, device: torch.device):
    """Yield (uint8 (B, H, W, 3) on ``device``, index tensor on the targets' device) per batch."""
    if data.resident:
        for idx in batches:
            yield data.images.index_select(0, idx), idx  # much faster than x[idx] for uint8 on CPU
        return
    images, rows = data.images
    source = _MemmapBatches(images, rows, [b.numpy() for b in batches])
    # Its own generator: a DataLoader iterator otherwise draws its base seed from the global RNG,
    # which would shift the dropout masks and break exact resume/equivalence with the in-RAM path.
    loader = torch.utils.data.DataLoader(source, batch_size=None, shuffle=False, num_workers=workers,
                                         pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
    for xb, idx in loader:
        yield xb.to(device, non_blocking=True), idx.to(device, non_blocking=True)


@torch.no_grad()
def _evaluate(net, data: _Split, n_total: int, batch: int, device, amp, scale_t, dist: _Dist,
              crop: int | None = None) -> np.ndarray:
    """Per-target RMSE (target units) over the whole valid split (sharded over ranks, all-reduced),
    on the central ``crop`` pixels when given."""
    net.eval()
    n = len(data.targets)
    sse = torch.zeros(len(scale_t), dtype=torch.float64, device=device)
    from galmet.nn.augment import center_crop, to_model_input

    order = torch.arange(n, device=device if data.resident else torch.device("cpu"))
    batches = [order[i:i + batch] for i in range(0, n, batch)]
    for xb, idx in _batch_iter(data, batches, 0, device):
        with amp:
            out = net(to_model_input(center_crop(xb, crop))).float()
        sse += ((out - data.targets.index_select(0, idx)) ** 2).sum(0).double()
    sse = _all_reduce(sse, dist)
    return (torch.sqrt(sse / n_total) * scale_t.double()).cpu().numpy()

