#!/usr/bin/env python3
"""The full ``paper`` recipe on >= 77,000 synthetic 128 px images built on the GPU; timings.

The training set is made on the device: a small carried set of real or synthetic cutouts
(``--seed-images``: a dataset directory, or an ``.npy`` of uint8 (N, H, W, 3) with an optional
``--seed-labels`` ``.npy``) is replicated with random dihedral transforms and a little noise up
to ``--n-train + --n-valid`` images; without one, random Gaussian blobs whose brightness sets the
label. Then ``galmet.training.loop.train`` runs the paper recipe (2 frozen + 1, 1, 2, 4 SGDR epochs, batch
256, bf16, channels_last, images resident on the GPU) from random init (no internet for the
ImageNet weights), and ``GalmetModel.predict`` measures inference with and without TTA.

Prints one JSON line: wall time of the whole recipe, training images/s (median over epochs and
overall), peak GPU memory, inference images/s. ``--smoke`` runs tiny sizes on any device.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def seed_set(path: str | None, labels: str | None, size: int):
    """(uint8 (M, size, size, 3) numpy, float (M,) labels) from a dataset dir or .npy, or (None, None)."""
    if not path:
        return None, None
    p = Path(path)
    if p.suffix == ".npy":
        x = np.load(p)
        y = np.load(labels) if labels else None
    else:
        from galmet.data.dataset import load_dataset

        ds = load_dataset(p, cache=False)
        ds = ds.subset(["train", "valid"])  # a timing run still never looks at test rows
        x = np.asarray(ds.images())
        y = ds.catalog["oh_p50"].to_numpy(np.float32) if "oh_p50" in ds.catalog else None
    if x.shape[1] != size:
        from galmet.data.transforms import rebin

        x = rebin(x, size) if x.shape[1] % size == 0 else x
    return x, y


def build_images(n: int, size: int, device: torch.device, seed: int, base=None, base_y=None):
    """uint8 (n, size, size, 3) images and float32 (n,) labels, generated on ``device``."""
    from galmet.nn.augment import random_dihedral

    g = torch.Generator(device=device)
    g.manual_seed(seed)
    if base is not None:
        src = torch.from_numpy(np.ascontiguousarray(base)).to(device)
        src_y = torch.from_numpy(
            np.asarray(base_y if base_y is not None else src.float().mean((1, 2, 3)) / 255 + 8.4, dtype=np.float32)
        ).to(device)
        pick = torch.randint(0, len(src), (n,), device=device, generator=g)
        out = torch.empty((n, size, size, 3), dtype=torch.uint8, device=device)
        for s in range(0, n, 8192):
            xb = random_dihedral(src[pick[s : s + 8192]], generator=g).float()
            xb += torch.randn(xb.shape, device=device, generator=g) * 2
            out[s : s + 8192] = xb.clamp_(0, 255).to(torch.uint8)
        return out, src_y[pick]
    yy, xx = torch.meshgrid(torch.arange(size, device=device), torch.arange(size, device=device), indexing="ij")
    r2 = ((yy - (size - 1) / 2) ** 2 + (xx - (size - 1) / 2) ** 2).float()
    b = torch.rand(n, device=device, generator=g) * 0.8 + 0.2
    width = torch.rand(n, device=device, generator=g) * size / 8 + size / 12
    out = torch.empty((n, size, size, 3), dtype=torch.uint8, device=device)
    colour = torch.tensor([230.0, 180.0, 130.0], device=device)
    for s in range(0, n, 8192):
        blob = torch.exp(-r2 / (2 * width[s : s + 8192, None, None] ** 2)) * b[s : s + 8192, None, None]
        xb = blob[..., None] * colour + torch.randn((len(blob), size, size, 3), device=device, generator=g) * 4
        out[s : s + 8192] = xb.clamp_(0, 255).to(torch.uint8)
    return out, 8.4 + 0.8 * b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=77_000)
    ap.add_argument("--n-valid", type=int, default=19_200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--arch", default="resnet34")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seed-images", help="dataset dir or .npy of uint8 (N, H, W, 3) to replicate")
    ap.add_argument("--seed-labels", help=".npy of labels for --seed-images .npy")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (compile time counts)")
    ap.add_argument("--infer-n", type=int, default=20_000, help="images for the inference timing")
    ap.add_argument("--out", help="run directory (default: a temporary one)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (checks the script end to end)")
    a = ap.parse_args()
    if a.smoke:
        a.n_train, a.n_valid, a.size, a.arch, a.batch, a.infer_n = 48, 16, 16, "resnet18", 16, 32

    from galmet.data.dataset import Dataset
    from galmet.nn.bundle import load_model
    from galmet.training.config import TrainConfig
    from galmet.training.loop import train

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    n = a.n_train + a.n_valid
    t0 = time.perf_counter()
    base, base_y = seed_set(a.seed_images, a.seed_labels, a.size)
    images, labels = build_images(n, a.size, device, 0, base, base_y)
    sync()
    t_build = time.perf_counter() - t0

    catalog = pd.DataFrame(
        {
            "objID": np.arange(n, dtype=np.int64),
            "oh_p50": labels.float().cpu().numpy(),
            "split": ["train"] * a.n_train + ["valid"] * a.n_valid,
        }
    )
    root = Path(tempfile.gettempdir()) / "galmet-gpu-bench"
    ds = Dataset(
        root=root, catalog=catalog, paths=[root / f"{i}.jpg" for i in range(n)], image_size=a.size, _images=images
    )
    config = TrainConfig(
        recipe="paper",
        arch=a.arch,
        weights="none",
        batch_size=a.batch,
        device=str(device.type),
        compile=a.compile,
        progress=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(a.out) if a.out else Path(tmp) / "run"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        result = train(ds, run, config, overwrite=True)
        sync()
        wall = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        h = result.history
        model = load_model(result.bundle_path, device=str(device.type))
        xi = images[: a.infer_n]
        infer = {}
        for tta in (False, True):
            model.predict(
                xi[: a.batch * 2], tta=tta, batch_size=1024 if cuda else a.batch, device=device.type, progress=False
            )  # warm-up
            sync()
            t1 = time.perf_counter()
            model.predict(xi, tta=tta, batch_size=1024 if cuda else a.batch, device=device.type, progress=False)
            sync()
            infer["tta" if tta else "no_tta"] = len(xi) / (time.perf_counter() - t1)
    train_images = float((h["images_per_s"] * h["train_time_s"]).sum())
    out = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": str(torch.__version__),
        "arch": a.arch,
        "size": a.size,
        "batch": a.batch,
        "n_train": a.n_train,
        "n_valid": a.n_valid,
        "epochs": int(len(h)),
        "build_images_s": round(t_build, 2),
        "recipe_wall_s": round(wall, 2),
        "train_img_s_overall": round(train_images / wall, 1),
        "train_img_s_median_epoch": round(float(h["images_per_s"].median()), 1),
        "train_img_s_unfrozen_median": round(float(h.loc[h["phase"] == "unfrozen", "images_per_s"].median()), 1),
        "epoch_time_s": [round(v, 2) for v in h["time_s"]],
        "peak_mem_gib": peak and round(peak, 2),
        "infer_img_s_no_tta": round(infer["no_tta"], 1),
        "infer_img_s_tta": round(infer["tta"], 1),
        "final_valid_rmse": round(result.final_valid_rmse, 4),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
