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

from galmet.nn.augment import to_model_input
from galmet.nn.device import resolve_device
from galmet.nn.inference import GalmetModel
from galmet.nn.net import build_model


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


class _Clock:
    """Wall time and process CPU time (all threads) of a block, device work included."""

    def __init__(self, dev: torch.device) -> None:
        self.dev = dev

    def __enter__(self) -> _Clock:
        _sync(self.dev)
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        _sync(self.dev)
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def bare_forward(net, images: np.ndarray, batch_size: int, dev: torch.device) -> _Clock:
    """Timing of the model alone on pre-normalised device tensors (the baseline)."""
    cuda = dev.type == "cuda"
    xs = [
        to_model_input(torch.from_numpy(images[i : i + batch_size]).to(dev)) for i in range(0, len(images), batch_size)
    ]
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        net(xs[0])
        with _Clock(dev) as clock:
            for x in xs:
                net(x)
    return clock


def predict_rate(model: GalmetModel, images, batch_size: int, dev: torch.device, tta: bool) -> _Clock:
    """Timing of ``GalmetModel.predict`` from uint8 images to the returned numpy array."""
    model.predict(images[:batch_size], tta=tta, batch_size=batch_size, device=dev, progress=False)  # warm-up
    with _Clock(dev) as clock:
        model.predict(images, tta=tta, batch_size=batch_size, device=dev, progress=False)
    return clock


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

    # Interleaved rounds, best of each: a shared machine's load hits all three alike. On a
    # loaded CPU, images per CPU-second (process time of all threads) is the steadier figure.
    n_tta = min(args.n_tta or args.n, args.n)
    clocks = {"bare": [], "plain": [], "tta": []}
    for _ in range(args.rounds):
        clocks["bare"].append(bare_forward(net, images, args.batch_size, dev))
        clocks["plain"].append(predict_rate(model, src, args.batch_size, dev, tta=False))
        clocks["tta"].append(predict_rate(model, src[:n_tta], args.batch_size, dev, tta=True))
    count = {"bare": args.n, "plain": args.n, "tta": n_tta}
    rates = {k: [count[k] / c.wall for c in v] for k, v in clocks.items()}
    cpu_rates = {k: [count[k] / c.cpu for c in v] for k, v in clocks.items()}
    bare, plain, tta = (max(rates[k]) for k in ("bare", "plain", "tta"))
    cbare, cplain, ctta = (max(cpu_rates[k]) for k in ("bare", "plain", "tta"))
    result = {
        "arch": args.arch,
        "size": args.size,
        "batch_size": args.batch_size,
        "n": args.n,
        "threads": args.threads,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "inputs": "device uint8 tensor" if args.on_device else "host numpy uint8",
        "bare_forward_img_s": round(bare, 1),
        "predict_no_tta_img_s": round(plain, 1),
        "predict_tta_img_s": round(tta, 1),
        "ratio_no_tta_vs_bare": round(plain / bare, 3),
        "ratio_tta_vs_no_tta": round(tta / plain, 3),
        "rounds": args.rounds,
        "all_img_s": {k: [round(v, 1) for v in r] for k, r in rates.items()},
    }
    if dev.type == "cpu":
        result.update(
            {
                "bare_forward_img_per_cpu_s": round(cbare, 2),
                "predict_no_tta_img_per_cpu_s": round(cplain, 2),
                "predict_tta_img_per_cpu_s": round(ctta, 2),
                "cpu_ratio_no_tta_vs_bare": round(cplain / cbare, 3),
                "cpu_ratio_tta_vs_no_tta": round(ctta / cplain, 3),
            }
        )
    if dev.type == "cuda":
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    print(json.dumps(result, indent=2))
    if args.json:
        from galmet.io.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
