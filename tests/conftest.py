"""Shared fixtures: tiny datasets made on the fly, and the real SDSS sample when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SDSS_SAMPLE = ROOT.parent / "shared" / "data" / "sdss_sample"
#: ``galmet train`` options of a tiny CPU run (each test adds the dataset, ``--out`` and ``--epochs``).
TINY_TRAIN = ["--recipe", "onecycle", "--arch", "resnet18", "--weights", "none", "--batch-size", "8", "--device", "cpu"]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``galmet ARGV`` in this process: (exit code, stdout, stderr), arguments given as str()."""
    from galmet.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_tiny_dataset(root: Path, n: int = 24, size: int = 16, seed: int = 0, split: bool = False) -> Path:
    """Write a small dataset directory: random-blob RGB JPEGs and a catalog whose oh_p50
    depends on image brightness (so a model can learn something). Returns ``root``."""
    from galmet.data.dataset import write_catalog
    from galmet.io.images import encode_jpeg

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    ids = 1237648700000000000 + np.arange(n, dtype=np.int64) * 7
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    brightness = rng.uniform(0.2, 1.0, n)
    for oid, b in zip(ids, brightness, strict=True):
        blob = np.exp(-(xx**2 + yy**2) / (2 * (size / 6) ** 2))
        img = np.stack([blob * b * 255 * f for f in (0.9, 0.7, 0.5)], -1) + rng.normal(0, 4, (size, size, 3))
        (root / "images" / f"{oid}.jpg").write_bytes(encode_jpeg(np.clip(img, 0, 255).astype(np.uint8), 95))
    cat = pd.DataFrame(
        {
            "objID": ids,
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-10, 60, n),
            "z": rng.uniform(0.02, 0.2, n),
            "oh_p50": 8.4 + 0.8 * brightness,
            "lgm_tot_p50": 9.0 + 2.0 * brightness,
        }
    )
    for band, off in zip("ugriz", (2.0, 1.0, 0.5, 0.2, 0.0), strict=True):
        cat[f"modelMag_{band}"] = 17.5 - 2 * brightness + off + rng.normal(0, 0.05, n)
    if split:
        cat["split"] = np.where(np.arange(n) % 4 == 0, "test", "train")
    write_catalog(root, cat)
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A 24-galaxy dataset directory with 16x16 images and no split column."""
    return make_tiny_dataset(tmp_path / "tiny")


@pytest.fixture
def sdss_sample() -> Path:
    """The real 500-galaxy SDSS sample (../shared/data/sdss_sample); skipped when absent."""
    if not (SDSS_SAMPLE / "catalog.csv").is_file():
        pytest.skip(f"real SDSS sample not found at {SDSS_SAMPLE}")
    return SDSS_SAMPLE


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Decode caches of read-only datasets go to a per-test folder, not ~/.cache."""
    monkeypatch.setenv("GALMET_CACHE_DIR", str(tmp_path / "galmet-cache"))


# Set at import too, not only per test: module- and session-scoped fixtures (a cross-validation
# run, a trained bundle) are made before any function-scoped fixture runs.
os.environ["GALMET_ENGINE"] = "eager"


@pytest.fixture(autouse=True)
def _eager_engine(monkeypatch):
    """``engine="auto"`` means eager float32 in the suite (GALMET_ENGINE), as the exact-equality tests
    were written for it and an OpenVINO conversion per tiny model costs seconds; the fast engines
    are tested in tests/nn/test_cpu_engine.py, which unsets it."""
    monkeypatch.setenv("GALMET_ENGINE", "eager")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run faster on one thread, and a shared 2-core CI box does not oversubscribe."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes); symlinks are read through."""
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def changed_files(before: dict[str, bytes], root: Path) -> list[str]:
    """Files of ``before`` that are gone or no longer byte-identical under ``root``."""
    root = Path(root)
    return [rel for rel, data in before.items() if not (root / rel).is_file() or (root / rel).read_bytes() != data]


def tiny_card(name: str = "tiny", image_size: int = 16, crop: int | None = None) -> dict:
    """A valid model card (no weights section: ``galmet models pack`` fills it) for a tiny test bundle."""
    return {
        "name": name,
        "version": "0.1",
        "survey": "SDSS DR14",
        "imaging": {"bands": "gri", "pixel_scale": 0.296, "image_size": image_size, "crop": crop, "format": "jpeg"},
        "architecture": "resnet18, untrained (a test model)",
        "training": {"n_galaxies": 24, "source": "make_tiny_dataset", "selection": "none", "label": "oh_p50"},
        "metrics": {
            "set": "tiny test split",
            "n": 8,
            "rmse": 0.2,
            "rmse_ci": [0.15, 0.25],
            "nmad": 0.1,
            "coverage68": 0.7,
            "coverage95": 0.94,
        },
        "calibration": {"method": "split conformal", "coverage": [0.68, 0.95]},
        "intended_use": "tests only",
        "limits": ["untrained"],
        "citation": "Wu & Boada (2019)",
        "acknowledgement": "SDSS",
    }
