"""``galmet explain``: attribution maps of a sample of galaxies, and the fibre / colour / morphology controls.

Writes into ``OUT``::

    attribution_<method>.png / .pdf   the grid (:mod:`galmet.science.plots.attribution`)
    attribution_<method>.npz          images (what the network sees), maps, objID, pred, truth, settings,
                                      other_survey ("" unless a transfer run: what differs)
    controls.json, controls.csv       with --controls: :func:`galmet.science.attribution.control_summary`
                                      and the per-galaxy predictions of every altered image

Everything is checked (captum installed, options, the dataset, the truth for --controls) before
the first file is written.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet.columns import OBJID
from galmet.data.dataset import load_dataset
from galmet.data.labels import usable_truths
from galmet.data.quality import pixel_scale_of
from galmet.errors import ConfigError, DataError
from galmet.io.atomic import atomic_write_bytes, atomic_write_text
from galmet.io.jsonfile import write_json
from galmet.io.locks import holds_folder_lock
from galmet.io.safety import check_output_dir, inputs_of
from galmet.layout import CONTROLS_JSON, CONTROLS_TABLE, attribution_stem
from galmet.nn.attribution import METHODS, attribution_maps, require_captum
from galmet.nn.augment import center_crop
from galmet.nn.bundle import load_model
from galmet.registry.resolve import model_input
from galmet.science.attribution import (
    control_summary,
    fibre_masks,
    fill_with_sky,
    galaxy_masks,
    grayscale,
    shuffle_within,
)
from galmet.science.plots.attribution import AttributionGridDisplay
from galmet.science.plots.style import require_matplotlib, save_figure

log = logging.getLogger(__name__)


def _ids(ds) -> np.ndarray:
    cat = ds.catalog
    if OBJID in cat.columns:
        return cat[OBJID].to_numpy()
    return np.array([str(p.name) for p in ds.paths], dtype=object)


def run_controls(model, images: np.ndarray, z_true: np.ndarray, ids, seed: int = 0, device: str = "auto", tta=True):
    """Predict full and altered images; return (summary dict, per-galaxy DataFrame).

    Variants: ``fibre_occluded`` / ``annulus_occluded`` (the central 3 arcsec disc, or an
    equal-area annulus, painted with the sky colour), ``colour_only`` (pixels shuffled within the
    galaxy's footprint), ``morphology_only`` (grayscale).
    """
    size = images.shape[1]
    scale = pixel_scale_of(size)
    disc, annulus = fibre_masks(size, scale)
    masks = galaxy_masks(images)
    variants_in = {
        "fibre_occluded": fill_with_sky(images, disc),
        "annulus_occluded": fill_with_sky(images, annulus),
        "colour_only": shuffle_within(images, masks, seed),
        "morphology_only": grayscale(images),
    }
    t = model.targets[0]

    def first(pred):
        return np.asarray(pred).reshape(len(images), -1)[:, 0]

    full = first(model.predict(images, tta=tta, device=device))
    preds = {k: first(model.predict(v, tta=tta, device=device)) for k, v in variants_in.items()}
    summary = control_summary(z_true, full, preds)
    summary.update(
        {
            "target": t,
            "tta": tta,
            "pixel_scale_arcsec": scale,
            "fibre_pixels": int(disc.sum()),
            "annulus_pixels": int(annulus.sum()),
            "galaxy_mask_pixels_median": float(np.median(masks.reshape(len(masks), -1).sum(1))),
            "no_galaxy_mask": int((masks.reshape(len(masks), -1).sum(1) == 0).sum()),
        }
    )
    table = pd.DataFrame({"id": ids, t: z_true, f"{t}_pred": full, **{f"{t}_pred_{k}": v for k, v in preds.items()}})
    return summary, table


@holds_folder_lock("out_dir", "'galmet explain'")
def explain(
    model_path,
    dataset,
    out_dir: str | os.PathLike,
    method: str = "gradcam",
    n: int = 16,
    split: str | None = "test",
    seed: int = 0,
    layer: str = "auto",
    controls: bool = False,
    device: str = "auto",
    ncols: int = 4,
    formats=("png", "pdf"),
    overwrite: bool = False,
    allow_other_survey: bool = False,
) -> dict[str, Any]:
    """Attribution maps of ``n`` seeded-random galaxies of ``split``, and the controls; see the module doc.

    Files at the output names that galmet did not write are replaced only with ``overwrite``;
    another survey's images only with ``allow_other_survey``: then ``other_survey`` (what differs)
    is in the result, the npz, controls.json, and the figure's caption.

    Returns
    -------
    dict
        ``files`` written, ``rows`` (ids shown), ``layer``, and ``controls`` (the summary) when run.
    """
    require_captum()
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}", param="method")
    if not 1 <= n <= 100:
        raise ConfigError(f"n must be between 1 and 100, got {n}", param="n")
    out = Path(out_dir)
    stem = attribution_stem(method)
    expected = [(f"{stem}.{fmt}", fmt, "figure") for fmt in formats] + [(f"{stem}.npz", "npz", "attribution arrays")]
    if controls:
        expected += [(CONTROLS_JSON, "json", "controls summary"), (CONTROLS_TABLE, "csv", "controls table")]
    inputs = [model_input(model_path), *inputs_of(dataset, "the dataset")]
    check_output_dir(out, "out_dir", expected, inputs, overwrite=overwrite)
    require_matplotlib()
    model = load_model(model_path)
    other = model.check_dataset_imaging(dataset, allow_other_survey=allow_other_survey)
    ds = load_dataset(dataset, targets=[], size=model.image_size, stretch=model.imaging.stretch)
    if split not in (None, "all"):
        rows = ds.split_indices(split)
        if len(rows) == 0:
            raise DataError(f"{ds.root}: no rows with split {split!r}")
        ds = ds.subset(rows)
    target = model.targets[0]
    # the truth by the label rules: a -9999 is shown as missing and never scored against
    truth = usable_truths(ds.catalog, target, str(ds.root))[0] if target in ds.catalog.columns else None
    truth = truth if truth is not None and np.isfinite(truth).any() else None
    if controls and (truth is None or not np.isfinite(truth).all()):
        first = 0 if truth is None else int(np.flatnonzero(~np.isfinite(truth))[0])
        raise DataError(
            f"{ds.root}: controls scores against the truth, but {target!r} is missing or not a label for some rows "
            f"(first: objID {ds.names[first]})",
            param="controls",
        )
    ids = _ids(ds)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(ds), min(n, len(ds)), replace=False))
    images = np.asarray(ds.images()[pick])
    res = attribution_maps(model, images, method, target, layer, device=device)
    order = np.argsort(res["pred"], kind="stable")  # the grid runs from low to high predicted Z
    views = np.asarray(center_crop(images, model.crop))[order]
    maps, pred = res["maps"][order], res["pred"][order]
    shown_truth = None if truth is None else truth[pick][order]
    display = AttributionGridDisplay.from_maps(views, maps, pred, shown_truth, method, target).plot(ncols=ncols)
    caption_other_survey(display.figure_, other)
    control_out = None
    if controls:
        all_images = np.asarray(ds.images())
        control_out = run_controls(model, all_images, np.asarray(truth), ids, seed, device)

    out.mkdir(parents=True, exist_ok=True)
    stem = attribution_stem(method)
    files = save_figure(display.figure_, out / stem, formats)
    _save_arrays(
        out / f"{stem}.npz",
        images=views,
        maps=maps,
        ids=np.asarray(ids[pick][order]).astype(str),
        pred=pred,
        truth=np.full(len(pred), np.nan) if shown_truth is None else shown_truth,
        method=np.array(method),
        layer=np.array(res["layer"] or ""),
        target=np.array(target),
        other_survey=np.array(other or ""),
    )
    files.append(out / f"{stem}.npz")
    result: dict[str, Any] = {"files": files, "rows": [str(i) for i in ids[pick][order]], "layer": res["layer"]}
    result.update({"other_survey": other} if other is not None else {})
    if control_out is not None:
        noted = {"dataset": str(Path(ds.root).resolve()), "split": split or "all", "model": str(model.path)}
        summary, table = control_out
        result["controls"] = _write_controls(out, summary, table, {**noted, **result}, files)
    return result


def _save_arrays(path: Path, **arrays: Any) -> None:
    """Write ``arrays`` to ``path`` as a compressed .npz, atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def caption_other_survey(fig, other: str | None) -> None:
    """Caption ``fig`` (a matplotlib Figure) at its foot with a transfer run's description
    ``other`` (:meth:`galmet.nn.inference.GalmetModel.check_survey`): another survey's images;
    nothing when None."""
    if other is None:
        return
    fig.text(0.5, 0.002, f"other survey (transfer run): {other}", ha="center", va="bottom", fontsize=6, wrap=True)


def _write_controls(out: Path, summary: dict, table: pd.DataFrame, noted: dict, files: list[Path]) -> dict:
    """Write the controls summary (with ``dataset``, ``split``, ``model`` and any ``other_survey``
    of ``noted``) and table into ``out``; add them to ``files``; return the summary."""
    summary.update({k: noted[k] for k in ("dataset", "split", "model", "other_survey") if k in noted})
    write_json(out / CONTROLS_JSON, summary)
    atomic_write_text(out / CONTROLS_TABLE, table.to_csv(index=False))
    files += [out / CONTROLS_JSON, out / CONTROLS_TABLE]
    return summary


def format_controls(summary: dict[str, Any]) -> str:
    """Plain-text lines of the control experiments for the command line."""
    t = summary.get("target", "Z")
    full = summary["full"]
    lines = [
        f"controls on {summary['n']} galaxies ({t}, TTA {'on' if summary.get('tta') else 'off'}); "
        f"fibre disc {summary['fibre_pixels']} px, annulus {summary['annulus_pixels']} px",
        f"{'input':<18}{'RMSE':>8}{'NMAD':>8}{'bias':>9}{'mean shift':>18}{'mean |shift|':>14}{'r(full)':>9}",
        f"{'full image':<18}{full['rmse']:>8.4f}{full['nmad']:>8.4f}{full['bias']:>+9.4f}",
    ]
    for name in ("fibre_occluded", "annulus_occluded", "colour_only", "morphology_only"):
        m = summary.get(name)
        if m:
            lines.append(
                f"{name:<18}{m['rmse']:>8.4f}{m['nmad']:>8.4f}{m['bias']:>+9.4f}"
                f"{m['mean_shift']:>+10.4f} +- {m['mean_shift_se']:.4f}"
                f"{m['mean_abs_shift']:>14.4f}{m['corr_with_full']:>9.3f}"
            )
    d = summary.get("fibre_minus_annulus")
    if d:
        lines.append(
            f"|shift| fibre - annulus: {d['mean_abs_shift_difference']:+.4f} +- {d['se']:.4f} dex "
            "(paired; > 0: the fibre region matters more)"
        )
    return "\n".join(lines)
