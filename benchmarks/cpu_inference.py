#!/usr/bin/env python3
"""CPU inference engines (galmet.nn.cpu_engine) against eager float32, on real SDSS images.

Variants are alternated in one process, round after round; each round's time is divided by that
round's eager float32 time, and the median ratio over the rounds is reported (the machine is
shared: medians of same-round ratios, not absolute times, are the comparable numbers), with the
RMS change of the predictions in dex against eager float32 and of the out-of-domain score.

Models:
- ``sdss400`` as shipped (5 x ResNet-10, crop 64), through ``GalmetModel.predict_uncertainty``
  with the OOD score on, with and without the 8 dihedral TTA views;
- ``--bundle PATH`` (repeatable): any other bundle, TTA and OOD on;
- a ResNet-34 at 128 px (random body with trained-looking BatchNorm statistics, its last layer
  fitted by ridge regression to the real labels of ``--probe`` images, so that its predictions
  spread like real ones and the RMS change is in dex), the same library path, OOD on, no TTA;
  and, for the same network alone, torch.compile (freezing) under bf16 autocast with ``--compile``.
- ``--cli``: the whole ``galmet predict sdss400 SAMPLE --split test`` command, ``--engine eager``
  against ``--engine auto`` (wall time; the OpenVINO conversion is cached on disk by the first
  auto run, reported apart).

    python benchmarks/cpu_inference.py --threads 2 --rounds 3 --images 32 [--bundle B.pt] [--compile] [--cli]

Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from galmet.data.dataset import load_dataset
from galmet.nn.bundle import load_model
from galmet.nn.embedding import EmbeddingReference
from galmet.nn.inference import GalmetModel
from galmet.nn.net import build_model

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sdss_sample"


def real_images(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images of the real sample and their oh_p50 labels."""
    ds = load_dataset(SAMPLE, targets=["oh_p50"], size=size, cache=False)
    return np.ascontiguousarray(ds.images()[:n]), ds.catalog["oh_p50"].to_numpy(dtype=np.float64)[:n]


def resnet34_model(probe: np.ndarray, labels: np.ndarray) -> GalmetModel:
    """A ResNet-34 at 128 px, no crop: random body with trained-looking BatchNorm statistics and
    a last layer fitted (ridge regression on its eager float32 embeddings) to the oh_p50 labels of
    ``probe`` images, so its predictions spread like real ones; with embedding statistics."""
    torch.manual_seed(0)
    net = build_model("resnet34", n_targets=1)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    meta = {"targets": ["oh_p50"], "image_size": 128, "arch": "resnet34"}
    emb = GalmetModel([net], meta).embed(probe, device="cpu")[0].astype(np.float64)
    centre = emb.mean(0)
    e = emb - centre
    y = (labels - labels.mean()) / labels.std()
    ridge = np.trace(e.T @ e) / e.shape[1]
    w = np.linalg.solve(e.T @ e + ridge * np.eye(e.shape[1]), e.T @ y)
    last = net.head[-1]
    with torch.no_grad():
        last.weight.copy_(torch.from_numpy(w[None]).float())
        last.bias.fill_(float(-centre @ w))
    meta["target_scale"] = [float(labels.std())]
    meta["target_shift"] = [float(labels.mean())]
    meta["embedding_stats"] = EmbeddingReference.fit(emb.astype(np.float32), max_points=len(probe)).to_dict()
    return GalmetModel([net], meta)


def library_variants(model: GalmetModel, images: np.ndarray, tta: bool, engines: list[str], unchecked: bool = False):
    """name -> callable returning (pred, ood_score) through the library path; ``unchecked``: the
    engines run even where their once-per-model check against eager float32 would give way (the
    synthetic ResNet-34, whose changes are not representative: it measures their speed)."""

    def run(engine):
        def call():
            if unchecked:
                model._engines[("agrees", engine)] = True
            r = model.predict_uncertainty(images, tta=tta, device="cpu", engine=engine, ood=True, batch_size=64)
            assert model.engine_used == engine, (model.engine_used, engine)
            return r.pred[:, 0], r.ood_score

        return call

    return {e: run(e) for e in engines}


def compiled_variants(model: GalmetModel, images: np.ndarray) -> dict:
    """eager / bf16 / torch.compile(freezing)+bf16 of the bare network (no TTA, no OOD)."""
    import torch._inductor.config as inductor

    from galmet.nn.augment import center_crop, to_model_input

    inductor.freezing = True
    net = model.nets[0].eval().to(memory_format=torch.channels_last)
    x = to_model_input(center_crop(torch.from_numpy(images), model.crop), *model.norm)
    scale, shift = model.meta["target_scale"][0], model.meta["target_shift"][0]
    start = time.perf_counter()
    compiled = torch.compile(net)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for b in (64, len(x) % 64 or 64):
            compiled(x[:b])
    compile_s = time.perf_counter() - start

    def bare(fn, bf16):
        def call():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = torch.cat([fn(x[s : s + 64]).float() for s in range(0, len(x), 64)])
            return out[:, 0].double().numpy() * scale + shift, None

        return call

    return {"bare eager": bare(net, False), "bare bf16": bare(net, True), "bare compile+bf16": bare(compiled, True)}, (
        compile_s
    )


def alternate(variants: dict, rounds: int) -> dict:
    """Run every variant once per round (first is the reference); per variant the median
    same-round ratio of its time to the reference's, its median seconds, and its RMS changes."""
    names = list(variants)
    ref_name = names[0]
    for call in variants.values():  # warm up (and build engines) outside the timing
        call()
    times = {n: [] for n in names}
    outputs = {}
    for _ in range(rounds):
        for n in names:
            t = time.perf_counter()
            outputs[n] = variants[n]()
            times[n].append(time.perf_counter() - t)
    ref_pred, ref_ood = outputs[ref_name]
    result = {}
    for n in names:
        pred, ood = outputs[n]
        ratio = statistics.median(r / t for r, t in zip(times[ref_name], times[n], strict=True))
        result[n] = {
            "speedup": ratio,
            "median_s": statistics.median(times[n]),
            "rms_dex": float(np.sqrt(np.mean((pred - ref_pred) ** 2))),
            "rms_ood": None if ood is None else float(np.sqrt(np.mean((ood - ref_ood) ** 2))),
        }
    return result


def cli_wall(rounds: int, out_dir: Path) -> dict:
    """Wall seconds of ``galmet predict sdss400 SAMPLE --split test`` with --engine eager and auto."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    env.pop("GALMET_ENGINE", None)

    def run(engine: str) -> float:
        out = out_dir / f"{engine}.parquet"
        cmd = [sys.executable, "-m", "galmet", "predict", "sdss400", str(SAMPLE), "--split", "test"]
        cmd += ["--out", str(out), "--engine", engine, "--no-progress", "--overwrite"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        return time.perf_counter() - t

    first_auto = run("auto")  # converts (or reads the disk cache) once
    times: dict[str, list[float]] = {"eager": [], "auto": []}
    for _ in range(rounds):
        for e in times:
            times[e].append(run(e))
    import pandas as pd

    eager, auto = (pd.read_parquet(out_dir / f"{e}.parquet")["oh_p50_pred"].to_numpy() for e in ("eager", "auto"))
    return {
        "first_auto_s": first_auto,
        "eager_s": statistics.median(times["eager"]),
        "auto_s": statistics.median(times["auto"]),
        "speedup": statistics.median(e / a for e, a in zip(times["eager"], times["auto"], strict=True)),
        "rms_dex": float(np.sqrt(np.mean((eager - auto) ** 2))),
    }


def table(title: str, result: dict) -> str:
    lines = [f"\n{title}\n", "| variant | speed-up vs eager fp32 | median s | RMS change (dex) | RMS change OOD |"]
    lines.append("|---|---|---|---|---|")
    for n, r in result.items():
        ood = "" if r["rms_ood"] is None else f"{r['rms_ood']:.4f}"
        lines.append(f"| {n} | {r['speedup']:.2f}x | {r['median_s']:.2f} | {r['rms_dex']:.5f} | {ood} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--probe", type=int, default=128, help="images the ResNet-34's last layer is fitted on")
    ap.add_argument("--bundle", action="append", default=[], help="also this bundle (TTA on, OOD on)")
    ap.add_argument("--compile", action="store_true", help="also torch.compile(freezing)+bf16 of the ResNet-34")
    ap.add_argument("--cli", action="store_true", help="also the whole galmet predict command, eager vs auto")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    engines = ["eager", "bf16", "openvino"]
    report: dict = {"threads": a.threads, "rounds": a.rounds, "images": a.images, "torch": torch.__version__}
    sdss400 = load_model("sdss400")
    images, labels = real_images(max(a.images, a.probe), sdss400.image_size or 128)
    probe, images = images[: a.probe], images[: a.images]
    t = time.perf_counter()
    sdss400.predict(images[:1], tta=False, device="cpu", engine="openvino")
    report["sdss400_openvino_ready_s"] = time.perf_counter() - t
    for tta in (True, False):
        key = f"sdss400 {'TTA x8' if tta else 'no TTA'}, OOD on"
        report[key] = alternate(library_variants(sdss400, images, tta, engines), a.rounds)
        print(table(key, report[key]), flush=True)
    for path in a.bundle:
        extra = load_model(path)
        key = f"{extra.arch} at {extra.crop or extra.image_size} px ({Path(path).parent.name}), TTA x8, OOD on"
        report[key] = alternate(library_variants(extra, images, True, engines), a.rounds)
        print(table(key, report[key]), flush=True)
    r34 = resnet34_model(probe, labels[: a.probe])
    key = "ResNet-34 128 px, no TTA, OOD on"
    report[key] = alternate(library_variants(r34, images, False, engines, unchecked=True), a.rounds)
    print(table(key, report[key]), flush=True)
    if a.compile:
        variants, report["compile_s"] = compiled_variants(r34, images)
        key = "ResNet-34 128 px, the bare network (no TTA, no OOD)"
        report[key] = alternate(variants, a.rounds)
        print(table(key, report[key]) + f"\n(torch.compile took {report['compile_s']:.0f} s)", flush=True)
    if a.cli:
        with tempfile.TemporaryDirectory() as tmp:
            report["cli"] = cli_wall(max(1, a.rounds - 1), Path(tmp))
        print(f"\nCLI: {json.dumps(report['cli'])}", flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
