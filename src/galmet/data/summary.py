"""Plain-text summaries of datasets for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from galmet.data.stretch import default_stretch

#: What the stretch line says of a FITS set whose survey is not known.
UNKNOWN_SURVEY = "(survey unknown: the headers name none and their bands, unit and scale do not tell)"


def dataset_summary(ds, targets: Sequence[str] | None = None) -> str:
    """A short table: rows per split and mean/std/range of each label column."""
    cat = ds.catalog
    lines = [f"dataset {ds.root}: {len(ds)} galaxies, images {ds.image_size}x{ds.image_size} RGB"]
    stretch = getattr(ds, "stretch", None)
    if stretch is not None:  # FITS fluxes: how they became the RGB the network sees
        im = ds.imaging
        d = stretch.to_dict()
        lines[0] = lines[0].replace(" RGB", f" from FITS {im.bands or ''} fluxes".replace("  ", " "))
        lines.append(
            f"flux stretch: {d['kind']} scales {d['scales']} minimum {d['minimum']} stretch {d['stretch']:g} "
            f"Q {d['Q']:g} " + (f"({im.survey})" if im.survey else UNKNOWN_SURVEY)
        )
        if im.survey is None and stretch == default_stretch(None):
            lines[-1] = lines[-1][:-1] + "; SDSS's default stretch, as fluxes in nanomaggies)"
    if ds.cache_path is not None:
        lines.append(f"decode cache: {ds.cache_path}")
    if ds.skipped:
        lines.append(f"skipped {len(ds.skipped)} bad rows, first: {ds.skipped[0]}")
    from galmet.data.dataset import find_catalog

    if find_catalog(ds.root) is None:
        lines.append("no catalogue: a plain image folder")
    labels = ds.labels
    lines.append(f"labels: {', '.join(labels)}" if labels else "no labels (nothing to train or score on)")
    counts = ds.split_counts()
    if counts:
        source = "" if ds.split_source == "catalogue" else " (drawn by galmet, seeded)"
        lines.append("split: " + ", ".join(f"{s} {n}" for s, n in counts.items()) + source)
    else:
        lines.append("splits: none")
    cols = list(targets) if targets else [c for c in ("oh_p50", "lgm_tot_p50", "z") if c in cat.columns]
    if cols:
        lines.append(f"{'column':<14}{'mean':>9}{'std':>9}{'min':>9}{'max':>9}")
        for c in cols:
            v = pd.to_numeric(cat[c], errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if len(v):
                lines.append(f"{c:<14}{v.mean():9.3f}{v.std():9.3f}{v.min():9.3f}{v.max():9.3f}")
    return "\n".join(lines)
