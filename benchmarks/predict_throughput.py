"""Prediction throughput: GalmetModel.predict with and without TTA vs a bare forward loop, same run.

The baseline is the model alone: a plain ``net(x)`` loop over batches already converted to
normalised float tensors on the device (no uint8 conversion, no host-to-device copies, no
result collection). ``predict`` (no TTA) should come close to it; TTA costs 8 forward passes.

Usage::

    python benchmarks/predict_throughput.py                       # CPU: resnet34, 128 px, batch 64, 2 threads
    python benchmarks/predict_throughput.py --device cuda --n 65536 --batch-size 1024 --on-device
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from galmet.augment import to_model_input
from galmet.model import GalmetModel, build_model, resolve_device


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bare_forward(net, images: np.ndarray, batch_size: int, dev: torch.device) -> float:
    """Images/s of the model alone on pre-normalised device tensors (the baseline)."""
    cuda = dev.type == "cuda"
    xs = [to_model_input(torch.from_numpy(images[i:i + batch_size]).to(dev)) for i in range(0, len(images), batch_size)]
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        net(xs[0])
        _sync(dev)
        t0 = time.perf_counter()
        for x in xs:
            net(x)
        _sync(dev)
    return len(images) / (time.perf_counter() - t0)


def predict_rate(model: GalmetModel, images, batch_size: int, dev: torch.device, tta: bool) -> float:
    """Images/s of ``GalmetModel.predict`` from uint8 images to the returned numpy array."""
    model.predict(images[:batch_size], tta=tta, batch_size=batch_size, device=dev, progress=False)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    model.predict(images, tta=tta, batch_size=batch_size, device=dev, progress=False)
    _sync(dev)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet34")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--n", type=int, default=256, help="images per measurement")
    ap.add_argument("--n-tta", type=int, help="images for the TTA measurement (default: --n)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the best of each is reported")
    ap.add_argument("--on-device", action="store_true", help="pass predict a uint8 tensor already on the device")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, args.size, args.size, 3), dtype=np.uint8)
    torch.manual_seed(0)
    net = build_model(args.arch).eval().to(dev, memory_format=torch.channels_last)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = GalmetModel(net, {"arch": args.arch, "targets": ["oh_p50"], "n_targets": 1, "image_size": args.size})
    src = torch.from_numpy(images).to(dev) if args.on_device else images

    # Interleaved rounds, best of each: a shared machine's load hits all three alike.
    rates = {"bare": [], "plain": [], "tta": []}
    for _ in range(args.rounds):
        rates["bare"].append(bare_forward(net, images, args.batch_size, dev))
        rates["plain"].append(predict_rate(model, src, args.batch_size, dev, tta=False))
        rates["tta"].append(predict_rate(model, src[: args.n_tta or args.n], args.batch_size, dev, tta=True))
    bare, plain, tta = (max(rates[k]) for k in ("bare", "plain", "tta"))
    result = {
        "arch": args.arch, "size": args.size, "batch_size": args.batch_size, "n": args.n,
        "threads": args.threads, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "inputs": "device uint8 tensor" if args.on_device else "host numpy uint8",
        "bare_forward_img_s": round(bare, 1), "predict_no_tta_img_s": round(plain, 1),
        "predict_tta_img_s": round(tta, 1), "ratio_no_tta_vs_bare": round(plain / bare, 3),
        "ratio_tta_vs_no_tta": round(tta / plain, 3), "rounds": args.rounds,
        "all_img_s": {k: [round(v, 1) for v in r] for k, r in rates.items()},
    }
    if dev.type == "cuda":
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    print(json.dumps(result, indent=2))
    if args.json:
        from galmet.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
