"""``galmet lr-find``: the learning-rate range test with its table and plot written to a folder."""

from __future__ import annotations

import os
from pathlib import Path

from galmet.io.locks import holds_folder_lock
from galmet.io.safety import check_output_dir, inputs_of
from galmet.layout import LR_FIND_PLOT, LR_FIND_TABLE
from galmet.science.plots.lr_find import LRFindDisplay
from galmet.science.plots.style import require_matplotlib, save_figure
from galmet.training.config import TrainConfig, as_train_config
from galmet.training.lr_find import LRFindResult, lr_find


def check_lr_find_outputs(out_dir, dataset=None, config: TrainConfig | None = None, overwrite: bool = False) -> None:
    """Refuse (one line) an ``out_dir`` where lr_find.csv/png would replace an input (the
    dataset's files, the initial weights), a file of another kind or (without ``overwrite``) a
    file galmet did not write; touches nothing."""
    require_matplotlib()
    inputs = inputs_of(dataset, "the dataset")
    if config is not None and config.weights not in ("imagenet", "none"):
        inputs += inputs_of(config.weights, "the --weights file")
    files = [(LR_FIND_TABLE, "csv", "lr range test table"), (Path(LR_FIND_PLOT).name, "png", "figure")]
    check_output_dir(out_dir, "out_dir", files, inputs, overwrite=overwrite)


@holds_folder_lock("out_dir", "'galmet lr-find'")
def run_lr_find(
    dataset, out_dir: str | os.PathLike, config: TrainConfig | None = None, overwrite: bool = False, **kwargs
) -> LRFindResult:
    """Run :func:`galmet.training.lr_find.lr_find` (``kwargs`` are its sweep options) and write
    ``lr_find.csv`` and ``lr_find.png`` into ``out_dir``; the result's paths are set. Files at
    those names that galmet did not write are replaced only with ``overwrite``."""
    config = (as_train_config(config) or TrainConfig()).resolved()
    check_lr_find_outputs(out_dir, dataset, config, overwrite=overwrite)
    result = lr_find(dataset, out_dir, config, **kwargs)
    title = f"{config.arch}, batch {config.global_batch}, {'head only' if kwargs.get('freeze') else 'all layers'}"
    units = "standardised target units" if config.standardize_targets else "target units"
    fig = LRFindDisplay.from_result(result, title=title, units=units).plot().figure_
    stem = Path(out_dir) / Path(LR_FIND_PLOT).stem
    result.plot_path = save_figure(fig, stem, formats=("png",), dpi=120)[0]
    return result
