#!/usr/bin/env python3
"""Validate the out-of-domain detectors against injected shifts (issue 19, item 3).

    python benchmarks/ood_validation.py --model RUN/model.pt --dataset SYN_DATASET
        [--real ../shared/data/sdss_sample] [--n 300] [--seed 0] [--out table.csv]

The model's training domain is the dataset's ``train``/``valid`` rows; the test images are its
``test`` rows. Each shift is applied to ``--n`` test images; the table gives, per shift, the
fraction flagged by the embedding check (bit ``EMBEDDING_OUT_OF_DOMAIN``, the bundle's k-NN
statistics), by the image-statistics check (bit ``IMAGE_OUT_OF_DOMAIN``; the reference is fitted
here on the training rows' images, as ``galmet calibrate --reference`` does for bundles trained
before the check existed) and by either, each with its binomial standard error. The ``none`` row is
the false-positive rate on unshifted test images; ``rot90`` is a symmetry the model should accept
(it trained with rotations), so it should stay near that rate. ``real`` is the real SDSS sample
(another rendering of the same survey: the sim-to-real case).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from galmet.data.dataset import load_dataset
from galmet.data.image_domain import ImageDomainReference
from galmet.nn.bundle import load_model
from galmet.predict.flags import ood_scores


def _resize(img: np.ndarray, size: int, resample=Image.BILINEAR) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((size, size), resample))


def _zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Magnify by ``factor`` about the centre (> 1: crop and enlarge; < 1: shrink, reflect-pad)."""
    n, h = len(x), x.shape[1]
    out = np.empty_like(x)
    for i in range(n):
        if factor >= 1:
            c = int(round(h / factor))
            o = (h - c) // 2
            out[i] = _resize(np.ascontiguousarray(x[i, o : o + c, o : o + c]), h)
        else:
            s = int(round(h * factor))
            small = _resize(x[i], s, Image.BOX)
            p = (h - s) // 2
            out[i] = np.pad(small, ((p, h - s - p), (p, h - s - p), (0, 0)), mode="reflect")
    return out


def _pil(x: np.ndarray, fn) -> np.ndarray:
    return np.stack([np.asarray(fn(Image.fromarray(im))) for im in x])


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _noisy(x: np.ndarray, sigma: float, offset: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(x + offset + rng.normal(0, sigma, x.shape), 0, 255).astype(np.uint8)


def shifts(x: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The shifted versions of uint8 test images ``x`` (N, H, W, 3), by name."""
    f = x.astype(np.float32)
    grey = np.repeat(f.mean(axis=3, keepdims=True), 3, axis=3).astype(np.uint8)
    tilt = np.clip(f * np.array([1.3, 1.0, 0.75], np.float32), 0, 255).astype(np.uint8)
    return {
        "none": x,
        "rot90": np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2))),
        "colour tilt (R x1.3, B x0.75)": tilt,
        "greyscale": grey,
        "zoom x2": _zoom(x, 2.0),
        "zoom x0.5": _zoom(x, 0.5),
        "pixel scale 0.2 arcsec (zoom x1.48)": _zoom(x, 0.296 / 0.2),
        "extra noise (sigma 6 levels)": _noisy(f, 6.0, 0.0, seed),
        "shallower (sky +10, noise 3)": _noisy(f, 3.0, 10.0, seed + 1),
        "blur (Gaussian sigma 1.5 px)": _pil(x, lambda im: im.filter(ImageFilter.GaussianBlur(1.5))),
        "JPEG quality 20": _pil(x, lambda im: _jpeg(im, 20)),
    }


def _real(path: Path, n: int, size: int, seed: int) -> np.ndarray:
    files = sorted((path / "images").glob("*.jpg"))
    pick = np.random.default_rng(seed).permutation(len(files))[:n]
    return np.stack([_resize(np.asarray(Image.open(files[i]).convert("RGB")), size) for i in pick])


def _rate(flag: np.ndarray) -> str:
    p = float(flag.mean())
    return f"{100 * p:.1f} +- {100 * np.sqrt(p * (1 - p) / len(flag)):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--real", default="../shared/data/sdss_sample")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()
    ds = load_dataset(a.dataset)
    split = ds.catalog["split"].to_numpy()
    images = ds.images()
    train = np.flatnonzero(split != "test")
    test = np.random.default_rng(a.seed).permutation(np.flatnonzero(split == "test"))[: a.n]
    ref = ImageDomainReference.fit_images(np.asarray(images[np.sort(train)]))
    model = load_model(a.model)
    sets = shifts(np.asarray(images[np.sort(test)]), a.seed)
    if Path(a.real).is_dir():
        sets["real SDSS sample (sim-to-real)"] = _real(Path(a.real), a.n, images.shape[1], a.seed)
    rows = []
    for name, x in sets.items():
        emb = ood_scores(model, x) > 1
        img = ref.score(x) > 1
        rates = {"embedding": _rate(emb), "image": _rate(img), "union": _rate(emb | img)}
        rows.append({"shift": name, "n": len(x), **rates})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + " --- |" * len(table.columns))
    for r in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in r) + " |")
    if a.out:
        table.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
