"""Realism of ``galmet synth``: how well a classifier tells synthetic cutouts from real SDSS ones.

Usage::

    python benchmarks/synth_realism.py [--n 1500] [--seed 1] [--real ../shared/data/sdss_sample]
        [--save-stats FILE.npz] [--compare FILE.npz]

Renders ``n`` synthetic 128-pixel galaxies in this process (the same code and JPEG quality as
``galmet synth``, encoded and decoded in memory), computes the image statistics of
:mod:`galmet.data.image_stats` of them and of every real cutout of the SDSS sample (used only as
unlabelled images), and prints

- the domain classifier's cross-validated AUC (:func:`galmet.science.domain.domain_check`, the
  same as ``galmet domain-check SYNTH REAL``) with its 95% bootstrap interval;
- per statistic: the real and synthetic medians, 10th and 90th percentiles, the two-sample KS
  distance and the AUC of the statistic alone (0.5: same distribution), most separating first.

``--save-stats`` keeps the synthetic statistics, ``--compare`` adds a saved set (e.g. of an older
generator) as a "before" column and AUC.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from galmet.data.image_stats import STAT_NAMES, image_statistics
from galmet.io.images import decode_image, encode_jpeg
from galmet.science.domain import domain_check, roc_auc
from galmet.synthetic.render import JPEG_QUALITY, make_galaxy

DEFAULT_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss_sample"


def real_images(root: Path) -> np.ndarray:
    """uint8 (N, 128, 128, 3): every JPEG under ``root/images``, sorted by name."""
    files = sorted((root / "images").glob("*.jpg"))
    return np.stack([decode_image(p.read_bytes(), where=str(p)) for p in files])


def synthetic_images(n: int, seed: int, size: int = 128) -> np.ndarray:
    """uint8 (n, size, size, 3): galaxies 0..n-1 of ``seed``, JPEG-encoded and decoded as on disk."""
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        _, rgb = make_galaxy(seed, i, size)
        out[i] = decode_image(encode_jpeg(rgb, JPEG_QUALITY))
    return out


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the empirical CDFs."""
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def statistic_table(real: np.ndarray, synth: np.ndarray, before: np.ndarray | None = None) -> str:
    """Markdown table per statistic, the most separating (largest KS distance) first."""
    rows = []
    for k, name in enumerate(STAT_NAMES):
        r, s = real[:, k], synth[:, k]
        label = np.r_[np.zeros(len(s), bool), np.ones(len(r), bool)]
        auc1 = roc_auc(label, np.r_[s, r])
        q = lambda v: np.percentile(v, [10, 50, 90])  # noqa: E731
        row = [name, *q(r), *q(s), ks_distance(r, s), max(auc1, 1 - auc1)]
        if before is not None:
            row += [float(np.median(before[:, k])), ks_distance(r, before[:, k])]
        rows.append(row)
    rows.sort(key=lambda v: -v[7])
    head = "| statistic | real p10 / p50 / p90 | synthetic p10 / p50 / p90 | KS | AUC alone |"
    sep = "|---|---|---|---|---|"
    if before is not None:
        head += " before p50 | before KS |"
        sep += "---|---|"
    lines = [head, sep]
    for v in rows:
        real_q, synth_q = " / ".join(f"{x:.3g}" for x in v[1:4]), " / ".join(f"{x:.3g}" for x in v[4:7])
        line = f"| {v[0]} | {real_q} | {synth_q} | {v[7]:.3f} | {v[8]:.3f} |"
        if before is not None:
            line += f" {v[9]:.3g} | {v[10]:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL)
    ap.add_argument("--save-stats", type=Path)
    ap.add_argument("--compare", type=Path)
    args = ap.parse_args()
    if not (args.real / "images").is_dir():
        raise SystemExit(f"{args.real}: no images/ folder (the real SDSS sample); pass --real")
    real = image_statistics(real_images(args.real))
    t0 = time.perf_counter()
    synth = image_statistics(synthetic_images(args.n, args.seed))
    seconds = time.perf_counter() - t0
    if args.save_stats:
        np.savez(args.save_stats, stats=synth)
    check = domain_check(synth, real)
    lo, hi = check.auc_interval
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{args.n} synthetic (seed {args.seed}) vs {len(real)} real; {1000 * seconds / args.n:.1f} ms per galaxy")
    print(f"AUC {check.auc:.4f} (95% interval {lo:.4f}-{hi:.4f})")
    before = None
    if args.compare:
        before = np.load(args.compare)["stats"]
        old = domain_check(before, real)
        lo, hi = old.auc_interval
        print(f"before ({args.compare}): AUC {old.auc:.4f} (95% interval {lo:.4f}-{hi:.4f})")
    print(statistic_table(real, synth, before))


if __name__ == "__main__":
    main()
