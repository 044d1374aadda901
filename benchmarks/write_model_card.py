#!/usr/bin/env python3
"""Write the model card of a trained, calibrated galmet bundle from its test metrics.

    python benchmarks/write_model_card.py --bundle MODEL.pt --metrics test_metrics.json \
        --name NAME --version V --out card.json [--texts TEXTS.json] [--n-train N] [--source TEXT]

Everything measurable comes from the files, nothing is typed in by hand:

- imaging (bands, pixel scale, fetch size, crop, format) and the architecture from the bundle's meta;
- the number of training galaxies from the bundle (the galaxies its members trained on), unless ``--n-train``;
- the calibration (method, Mondrian bins, CV+, how many galaxies) from the bundle's calibration;
- the metrics (set, N, RMSE with its 95% bootstrap interval, NMAD, 68% / 95% coverage) from the
  JSON of ``galmet evaluate --json`` on the held-out set.

The texts (survey, training source / selection / label, intended use, limits, citation,
acknowledgement) default to the SDSS DR14 / MPA-JHU texts of the paper's data; ``--texts`` is a JSON
object overriding any of them (``metrics_set`` names the held-out set; ``extra_limits`` appends to the
limits). The card is validated and written with its ``weights`` left for
``galmet models pack`` to fill.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SDSS_TEXTS = {
    "survey": "SDSS DR14",
    "training": {
        "source": "Wu & Boada (2019) data set: SDSS DR14 ImgCutout JPEGs of MPA-JHU DR7 galaxies",
        "selection": (
            "star-forming galaxies of the SDSS main galaxy sample with the paper's cuts: MPA-JHU oh_p50 measured, "
            "rChi2 < 2, 10 < ugriz < 25, 0 < u - r < 6, z > 0.02, 0 < zErr < 0.01, 10 < petroMag_r < 18"
        ),
        "label": "oh_p50: MPA-JHU DR7 median 12 + log(O/H) (Tremonti et al. 2004), dex",
    },
    "intended_use": (
        "Gas-phase metallicity 12 + log(O/H) of star-forming galaxies from SDSS gri imaging alone, for galaxies like "
        "the training set (SDSS main sample, z ~ 0.02-0.3, r < 17.8), with calibrated 68% / 95% intervals and flags."
    ),
    "limits": [
        "Trained on star-forming galaxies only: AGN, composites and passive galaxies get a number with no meaning.",
        "Images must be SDSS DR14 ImgCutout gri JPEGs at the paper's 0.296 arcsec/pixel (galmet fetches them so); "
        "other surveys, scales or stretches are out of domain (flag IMAGE_OUT_OF_DOMAIN).",
        "The high-metallicity tail is compressed: the model rarely predicts Z > 9.1 although ~11% of "
        "such galaxies are.",
        "Error bars are calibrated on galaxies like the training set; under a shift in the population they can "
        "under-cover (see galmet domain-check and calibrate --weights).",
    ],
    "citation": (
        "Wu, J. F. & Boada, S. 2019, MNRAS 484, 4683 (doi:10.1093/mnras/stz333); galmet (CITATION.cff); "
        "labels: Tremonti et al. 2004, ApJ 613, 898; Brinchmann et al. 2004, MNRAS 351, 1151"
    ),
    "acknowledgement": (
        "Funding for the Sloan Digital Sky Survey IV has been provided by the Alfred P. Sloan Foundation, the U.S. "
        "Department of Energy Office of Science, and the Participating Institutions. SDSS-IV acknowledges support and "
        "resources from the Center for High-Performance Computing at the University of Utah. The SDSS website is "
        "www.sdss.org. The MPA-JHU DR7 catalogue of spectrum measurements is by Brinchmann, Charlot, Kauffmann, "
        "Tremonti, White and others (MPA Garching and Johns Hopkins University)."
    ),
}


def _architecture(meta: dict) -> str:
    members = meta.get("members") or [{}]
    start = (meta.get("config") or {}).get("weights", "none")
    start = {"none": "from scratch", "imagenet": "from ImageNet weights"}.get(str(start), "from a pretrained body")
    ens = f"ensemble of {len(members)} fold models (CV+)" if len(members) > 1 else "one model"
    return f"{meta['arch']} body + fastai regression head, {start}; {ens}; 8x dihedral TTA"


def _calibration(meta: dict, target: str) -> dict:
    cal = (meta.get("calibration") or {}).get(target)
    if not cal:
        return {"method": "none", "coverage": []}
    bins = len(cal.get("bins") or [])
    cv_plus = f" with CV+ over {cal['members']} fold models" if cal.get("members") else ""
    binned = f"Mondrian by predicted Z ({bins} bins)" if bins > 1 else "pooled (one set of quantiles)"
    return {
        "method": (
            f"split-conformal, {cal['method']} residuals, {binned}{cv_plus}, on {cal['n']} out-of-sample galaxies"
        ),
        "coverage": [0.68, 0.95],
    }


def _metrics(m: dict) -> dict:
    rmse = m["intervals"]["rmse"] if "intervals" in m else {"lo95": m["rmse"], "hi95": m["rmse"]}
    unc = m.get("uncertainty") or {}
    return {
        "set": f"{m.get('split', 'test')} split",
        "n": int(m["n"]),
        "rmse": round(m["rmse"], 4),
        "rmse_ci": [round(rmse["lo95"], 4), round(rmse["hi95"], 4)],
        "nmad": round(m["nmad"], 4),
        "coverage68": round(unc["68"]["coverage"], 3) if "68" in unc else None,
        "coverage95": round(unc["95"]["coverage"], 3) if "95" in unc else None,
    }


def build_card(bundle: Path, metrics: dict, name: str, version: str, texts: dict, n_train: int | None) -> dict:
    """The card (a dict ``ModelCard.from_dict`` accepts with ``weights=False``)."""
    from galmet.nn.bundle import load_model

    meta = load_model(bundle).meta
    target = meta["targets"][0]
    imaging = meta.get("imaging") or {}
    if n_train is None:
        trained = [(mem.get("trained_on") or {}).get("n") for mem in meta.get("members") or [meta]]
        n_train = (meta.get("cross_validation") or {}).get("n") or max(t or 0 for t in trained)
    training = {"n_galaxies": int(n_train), **SDSS_TEXTS["training"], **texts.get("training", {})}
    return {
        "name": name,
        "version": version,
        "survey": texts.get("survey", SDSS_TEXTS["survey"]),
        "imaging": {
            "bands": imaging.get("bands") or "gri",
            "pixel_scale": imaging.get("pixel_scale") or 0.296,
            "image_size": int(imaging.get("fetch_size") or meta["image_size"]),
            "crop": meta.get("crop"),
            "format": "jpeg",
        },
        "architecture": _architecture(meta),
        "training": training,
        "metrics": {**_metrics(metrics), **({"set": texts["metrics_set"]} if "metrics_set" in texts else {})},
        "calibration": _calibration(meta, target),
        **{k: texts.get(k, SDSS_TEXTS[k]) for k in ("intended_use", "citation", "acknowledgement")},
        "limits": texts.get("limits", SDSS_TEXTS["limits"]) + texts.get("extra_limits", []),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--texts", type=Path)
    ap.add_argument("--n-train", type=int)
    ap.add_argument("--dataset", help="(recorded for the log only)")
    a = ap.parse_args()
    from galmet.io.atomic import atomic_write_text
    from galmet.registry.card import ModelCard

    texts = json.loads(a.texts.read_text()) if a.texts else {}
    card = build_card(a.bundle, json.loads(a.metrics.read_text()), a.name, a.version, texts, a.n_train)
    ModelCard.from_dict(card, str(a.out), weights=False)
    atomic_write_text(a.out, json.dumps(card, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
