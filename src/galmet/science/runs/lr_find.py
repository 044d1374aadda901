"""``galmet lr-find``: the learning-rate range test with its table and plot written to a folder."""

from __future__ import annotations

import os
from pathlib import Path

from galmet.layout import LR_FIND_PLOT
from galmet.science.plots.lr_find import LRFindDisplay
from galmet.science.plots.style import save_figure
from galmet.training.config import TrainConfig
from galmet.training.lr_find import LRFindResult, lr_find


def run_lr_find(dataset, out_dir: str | os.PathLike, config: TrainConfig | None = None, **kwargs) -> LRFindResult:
    """Run :func:`galmet.training.lr_find.lr_find` (``kwargs`` are its sweep options) and write
    ``lr_find.csv`` and ``lr_find.png`` into ``out_dir``; the result's paths are set."""
    config = (config or TrainConfig()).resolved()
    result = lr_find(dataset, out_dir, config, **kwargs)
    title = f"{config.arch}, batch {config.global_batch}, {'head only' if kwargs.get('freeze') else 'all layers'}"
    units = "standardised target units" if config.standardize_targets else "target units"
    fig = LRFindDisplay.from_result(result, title=title, units=units).plot().figure_
    stem = Path(out_dir) / Path(LR_FIND_PLOT).stem
    result.plot_path = save_figure(fig, stem, formats=("png",), dpi=120)[0]
    return result
