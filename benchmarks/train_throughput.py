#!/usr/bin/env python3
"""Training images/s of ``galmet.training.loop.train`` against a minimal plain-PyTorch loop, same run.

Both train the same network (galmet's ResNet + fastai head, channels_last, AdamW, RMSE loss) on
the same uint8 images held in memory, with the same batch size and thread count. The plain loop
is what a user would write by hand: ``randperm`` batches from a uint8 tensor, one random
rotation/flip per batch, normalise, forward, backward, step. galmet's loop additionally does a
per-image dihedral element and the fastai random zoom, tracks per-target RMSE, validates and
writes an atomic checkpoint every epoch (those last two are outside its timed train phase, as
they are outside the plain loop).

Rounds alternate galmet / plain (A B A B ...) so that load from other processes hits both alike;
each round builds fresh models and its first epoch (one-off set-up) is not counted. Reported:
the median per-epoch images/s of each loop, their ratio, and the median of the per-round ratios
(each galmet epoch against the plain epoch timed right after it), which is the figure that best
resists load from other processes on a shared machine among the epoch figures. Last, single
steps of galmet's step (its augmentation, optimizer and scheduler) and of the plain step are
alternated in one process (``--pairs``), which cancels load drift best.

    python benchmarks/train_throughput.py                 # resnet34, batch 64, 128 px, 2 threads
    python benchmarks/train_throughput.py --smoke         # seconds: resnet18, 16 px

Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def make_dataset(n_train: int, n_valid: int, size: int, seed: int = 0):
    """An in-memory galmet Dataset of random-blob uint8 images with a brightness-dependent label."""
    from galmet.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    n = n_train + n_valid
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(xx**2 + yy**2) / (2 * (size / 6) ** 2))
    b = rng.uniform(0.2, 1.0, n)
    images = (
        (
            blob[None, :, :, None] * b[:, None, None, None] * np.array([230, 180, 130])
            + rng.normal(0, 6, (n, size, size, 3))
        )
        .clip(0, 255)
        .astype(np.uint8)
    )
    catalog = pd.DataFrame(
        {
            "objID": np.arange(n, dtype=np.int64),
            "oh_p50": 8.4 + 0.8 * b,
            "split": ["train"] * n_train + ["valid"] * n_valid,
        }
    )
    root = Path(tempfile.gettempdir()) / "galmet-bench-train"
    return Dataset(
        root=root, catalog=catalog, paths=[root / f"{i}.jpg" for i in range(n)], image_size=size, _images=images
    )


def galmet_round(ds, arch: str, batch: int, epochs: int, workdir: Path) -> list[float]:
    """Per-epoch train images/s of galmet's loop (from its history)."""
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    config = TrainConfig(
        recipe="onecycle",
        arch=arch,
        weights="none",
        batch_size=batch,
        epochs=epochs,
        device="cpu",
        progress=False,
        seed=1,
    )
    result = train(ds, workdir, config, overwrite=True)
    return list(result.history["images_per_s"])


#: ImageNet statistics on the 0-255 scale, shape (1, 3, 1, 1).
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def plain_step(model, opt, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """One step of the minimal loop on a uint8 NHWC batch: one random rot90/flip for the whole
    batch, ImageNet normalisation, channels_last forward, RMSE loss, AdamW step. Returns the loss."""
    xb = torch.rot90(xb.permute(0, 3, 1, 2), int(torch.randint(0, 4, ())), (2, 3))
    if torch.rand(()) < 0.5:
        xb = xb.flip(3)
    xb = ((xb.float() - IMAGENET_MEAN) / IMAGENET_STD).contiguous(memory_format=torch.channels_last)
    loss = torch.sqrt(((model(xb) - yb) ** 2).mean())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def plain_round(ds, arch: str, batch: int, epochs: int) -> list[float]:
    """Per-epoch train images/s of a minimal hand-written loop over the same data."""
    from galmet.nn.net import build_model

    x_all = torch.from_numpy(np.ascontiguousarray(ds.images()[ds.split_indices("train")]))
    y_all = torch.from_numpy(ds.catalog.loc[ds.split_indices("train"), "oh_p50"].to_numpy(np.float32)).unsqueeze(1)
    y_all = (y_all - y_all.mean()) / y_all.std()
    torch.manual_seed(1)
    model = build_model(arch, 1, "none").to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    n = len(x_all)
    steps = n // batch
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            loss = plain_step(model, opt, x_all[idx], y_all[idx])
        loss.item()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return rates


def step_pairs(ds, arch: str, batch: int, pairs: int) -> tuple[list[float], list[float]]:
    """Seconds per step of galmet's step (its own augmentation, recipe optimizer and scheduler)
    and of the plain step, alternated step by step (order swapped every pair) in one process."""
    from galmet.nn.net import build_model, layer_groups
    from galmet.training.config import TrainConfig
    from galmet.training.data import augmented_input
    from galmet.training.recipes import build_phases, make_optimizer, make_scheduler

    rows = ds.split_indices("train")
    x_all = torch.from_numpy(np.ascontiguousarray(ds.images()[rows]))
    y_all = torch.from_numpy(ds.catalog.loc[rows, "oh_p50"].to_numpy(np.float32)).unsqueeze(1)
    n = len(x_all)
    cfg = TrainConfig(recipe="onecycle", epochs=pairs + 1, arch=arch, weights="none").resolved()
    torch.manual_seed(1)
    mg = build_model(arch, 1, "none").to(memory_format=torch.channels_last).train()
    phase = build_phases(cfg)[0]
    og = make_optimizer(layer_groups(mg), phase, cfg.weight_decay)
    sg = make_scheduler(og, phase, 1, cfg)
    torch.manual_seed(1)
    mp = build_model(arch, 1, "none").to(memory_format=torch.channels_last).train()
    op = torch.optim.AdamW(mp.parameters(), lr=1e-3, weight_decay=1e-2)
    g = torch.Generator()
    g.manual_seed(0)

    def galmet_step():
        idx = torch.randperm(n)[:batch]
        xb, yb = x_all.index_select(0, idx), y_all.index_select(0, idx)
        x = augmented_input(xb, cfg, g)  # dihedral, normalisation, zoom 1.1: the train loop's chain
        err = mg(x).float() - yb
        loss = torch.sqrt((err * err).mean())
        og.zero_grad(set_to_none=True)
        loss.backward()
        og.step()
        sg.step()

    def plain_pair_step():
        idx = torch.randperm(n)[:batch]
        plain_step(mp, op, x_all[idx], y_all[idx])

    galmet_step()
    plain_pair_step()
    tg, tp = [], []
    for i in range(pairs):
        order = [(galmet_step, tg), (plain_pair_step, tp)]
        for f, times in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
    return tg, tp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet34")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=4, help="train steps per epoch")
    ap.add_argument(
        "--epochs", type=int, default=2, help="epochs per round (the first of each is warm-up, not counted)"
    )
    ap.add_argument("--rounds", type=int, default=5, help="A/B rounds")
    ap.add_argument("--pairs", type=int, default=8, help="alternated single-step pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for checking the script")
    a = ap.parse_args()
    if a.smoke:
        a.arch, a.batch, a.size, a.steps, a.epochs, a.rounds, a.pairs = "resnet18", 8, 16, 2, 2, 1, 2
    torch.set_num_threads(a.threads)
    ds = make_dataset(a.steps * a.batch, a.batch, a.size)
    galmet_rates, plain_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            # Each round builds a fresh model: its first epoch pays one-off allocation/kernel set-up.
            gr = galmet_round(ds, a.arch, a.batch, a.epochs, Path(tmp) / "run")[1:]
            pr = plain_round(ds, a.arch, a.batch, a.epochs)[1:]
            galmet_rates += gr
            plain_rates += pr
            print(
                f"round {r + 1}/{a.rounds}: galmet {[round(v, 2) for v in gr]}, plain {[round(v, 2) for v in pr]}",
                flush=True,
            )
    g, p = statistics.median(galmet_rates), statistics.median(plain_rates)
    paired = statistics.median(a / b for a, b in zip(galmet_rates, plain_rates, strict=True))
    tg, tp = step_pairs(ds, a.arch, a.batch, a.pairs)
    step_ratio = statistics.median(p_ / g_ for g_, p_ in zip(tg, tp, strict=True))
    res = {
        "arch": a.arch,
        "batch": a.batch,
        "size": a.size,
        "threads": a.threads,
        "steps_per_epoch": a.steps,
        "epochs": len(galmet_rates),
        "galmet_img_s": round(g, 2),
        "plain_img_s": round(p, 2),
        "ratio": round(g / p, 3),
        "paired_ratio_median": round(paired, 3),
        "step_s_galmet": [round(v, 3) for v in tg],
        "step_s_plain": [round(v, 3) for v in tp],
        "step_ratio_median": round(step_ratio, 3),
        "torch": str(torch.__version__),
        "machine": platform.machine(),
        "galmet_all": [round(v, 2) for v in galmet_rates],
        "plain_all": [round(v, 2) for v in plain_rates],
    }
    print(
        f"\n| loop | images/s (median of {len(galmet_rates)} epochs) |\n|---|---|\n"
        f"| galmet train | {g:.2f} |\n| plain PyTorch | {p:.2f} |\n| ratio of medians | {g / p:.3f} |\n"
        f"| median of paired ratios | {paired:.3f} |\n"
        f"| step-alternated: median step time galmet / plain | {statistics.median(tg):.3f} s / "
        f"{statistics.median(tp):.3f} s |\n| step-alternated: median ratio (images/s) | {step_ratio:.3f} |\n"
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
