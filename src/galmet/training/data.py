"""Getting a dataset's train and valid images to the network: placement, batches, augmentation.

Fast path: the train and valid images go to the device once as uint8 (N, H, W, 3) when they fit;
each epoch draws a ``torch.randperm`` on the device and gathers batches by index. When the images
do not fit, batches are gathered from the memory-mapped decode cache (in a DataLoader with
``workers`` processes). Both paths give the same batches, bit for bit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from galmet.data.dataset import Dataset, as_dataset
from galmet.errors import DataError
from galmet.nn.augment import augment_batch
from galmet.training.config import TrainConfig
from galmet.training.distributed import Dist

log = logging.getLogger(__name__)

#: Keep a CPU run's images in RAM (instead of reading the memory map per batch) up to this fraction of RAM.
RAM_FRACTION = 0.4


def derive_seed(*parts: int) -> int:
    """A 32-bit seed derived from integers (e.g. run seed, epoch, purpose, rank)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


@dataclass
class SplitData:
    """One split's images and standardised targets, where training reads them.

    Attributes
    ----------
    images : torch.Tensor or (numpy.ndarray, numpy.ndarray)
        uint8 (N, H, W, 3) on the device or in RAM when ``resident``; otherwise the
        memory-mapped dataset images and the row numbers of this split.
    targets : torch.Tensor
        float32 (N, T), standardised, on the device.
    resident : bool
        The images are a tensor already where the batches are gathered.
    """

    images: Any
    targets: torch.Tensor
    resident: bool


@dataclass
class TrainingRows:
    """What :func:`load_training_rows` returns: the dataset, its train/valid rows and their labels
    (float64 (N, T), target units)."""

    dataset: Dataset
    train_rows: np.ndarray
    valid_rows: np.ndarray
    y_train: np.ndarray
    y_valid: np.ndarray


def load_training_rows(dataset, config: TrainConfig) -> TrainingRows:
    """The dataset (loaded with ``config``'s options unless already loaded) and its train/valid rows.

    Raises DataError for an image size other than ``config.size``, a crop larger than the
    images, or an empty train or valid split. ``test`` rows are never read.
    """
    ds = as_dataset(
        dataset,
        targets=config.targets,
        on_error="skip" if config.skip_bad else "raise",
        size=config.size,
        valid_fraction=config.valid_fraction,
        split_seed=config.split_seed,
    )
    if config.size is not None and ds.image_size != config.size:
        raise DataError(
            f"{ds.root}: images are {ds.image_size}x{ds.image_size} pixels, size is {config.size}", param="size"
        )
    if config.crop is not None and config.crop > ds.image_size:
        raise DataError(
            f"{ds.root}: images are {ds.image_size}x{ds.image_size} pixels, smaller than crop {config.crop}",
            param="crop",
        )
    train_rows, valid_rows = ds.split_indices("train"), ds.split_indices("valid")
    if len(train_rows) == 0:
        raise DataError(f"{ds.root}: no rows with split 'train'")
    if len(valid_rows) == 0:
        raise DataError(
            f"{ds.root}: no rows with split 'valid' (set valid_fraction > 0 or add valid rows)", param="valid_fraction"
        )
    labels = ds.without_images()  # subset the catalog, not the images
    y_train = labels.subset(train_rows).targets(config.targets).astype(np.float64)
    y_valid = labels.subset(valid_rows).targets(config.targets).astype(np.float64)
    return TrainingRows(ds, train_rows, valid_rows, y_train, y_valid)


def place(images, rows: np.ndarray, y: np.ndarray, device: torch.device, extra_bytes: int) -> SplitData:
    """Put a split's images on ``device`` as uint8 when they fit, else leave them memory-mapped.

    ``images`` is the dataset's uint8 (N, H, W, 3) numpy array or memmap, or a uint8 torch
    tensor (e.g. built on the GPU), which is indexed where it lives. ``extra_bytes`` is memory
    already taken by another split on the same device.
    """
    targets = torch.from_numpy(y.astype(np.float32)).to(device)
    if isinstance(images, torch.Tensor):
        x = images[torch.as_tensor(rows, device=images.device)]
        return SplitData(images=x.to(device), targets=targets, resident=True)
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
        log.info(
            "images (%.1f GiB) do not fit in %s memory: reading batches from the memory map", need / 2**30, device.type
        )
        return SplitData(images=(images, rows), targets=targets, resident=False)
    x = torch.from_numpy(np.ascontiguousarray(images[rows]))
    return SplitData(images=x.to(device), targets=targets, resident=True)


class MemmapBatches(torch.utils.data.Dataset):
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


def steps_per_epoch(n_local: int, batch: int) -> int:
    """Optimizer steps in one epoch over ``n_local`` images in batches of ``batch``."""
    # A last batch of one image would break BatchNorm in training mode: drop it.
    return n_local // batch + (1 if n_local % batch >= 2 else 0)


def epoch_indices(n: int, epoch: int, seed: int, dist: Dist, device: torch.device) -> torch.Tensor:
    """This rank's shuffled train indices for ``epoch`` (the same permutation on every rank,
    sharded ``perm[rank::world]`` and padded to equal length as DistributedSampler does)."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, epoch, 1))
    perm = torch.randperm(n, generator=g, device=device)
    if dist.world > 1:
        total = -(-n // dist.world) * dist.world
        if total > n:
            perm = torch.cat([perm, perm[: total - n]])
        perm = perm[dist.rank :: dist.world]
    return perm


def epoch_batches(
    data: SplitData, n: int, epoch: int, seed: int, dist: Dist, device: torch.device, batch: int, steps: int
) -> list[torch.Tensor]:
    """The index tensors of this rank's ``steps`` batches of ``epoch`` (on the device the images live on)."""
    idx_all = epoch_indices(n, epoch, seed, dist, device if data.resident else torch.device("cpu"))
    return [idx_all[i * batch : (i + 1) * batch] for i in range(steps)]


def batch_iter(
    data: SplitData, batches: list[torch.Tensor], workers: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (uint8 (B, H, W, 3) on ``device``, index tensor on the targets' device) per batch."""
    if data.resident:
        for idx in batches:
            yield data.images.index_select(0, idx), idx  # much faster than x[idx] for uint8 on CPU
        return
    images, rows = data.images
    source = MemmapBatches(images, rows, [b.numpy() for b in batches])
    # Its own generator: a DataLoader iterator otherwise draws its base seed from the global RNG,
    # which would shift the dropout masks and break exact resume/equivalence with the in-RAM path.
    loader = torch.utils.data.DataLoader(
        source,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )
    for xb, idx in loader:
        yield xb.to(device, non_blocking=True), idx.to(device, non_blocking=True)


def augmented_input(xb: torch.Tensor, config: TrainConfig, generator: torch.Generator | None) -> torch.Tensor:
    """A uint8 batch (N, H, W, 3) as training feeds it to the network: the central crop (when
    ``config.crop``), a random dihedral element, fastai's random zoom, rotation and lighting (as
    ``config`` asks), ImageNet normalisation: float NCHW, channels_last
    (:func:`galmet.nn.augment.augment_batch`)."""
    return augment_batch(
        xb,
        generator,
        crop=config.crop,
        dihedral=config.dihedral,
        max_zoom=config.max_zoom,
        rotate_deg=float(config.rotate or 0.0),
        lighting_change=float(config.lighting or 0.0),
    )


def standardisation(y_train: np.ndarray, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) per target: the train split's mean and std (a zero std becomes 1), or (0, 1)
    when ``config.standardize_targets`` is off. Training targets are (y - shift) / scale."""
    n = y_train.shape[1]
    if not config.standardize_targets:
        return np.zeros(n), np.ones(n)
    shift, scale = y_train.mean(0), y_train.std(0)
    return shift, np.where(scale > 0, scale, 1.0)
