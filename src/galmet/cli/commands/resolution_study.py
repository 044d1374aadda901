"""``galmet resolution-study``: train and test the CNN on block-averaged images (Figure 4)."""

from __future__ import annotations

NAME = "resolution-study"
ORDER = 68
HELP = "train and test the CNN at several image resolutions (block averaging), with baselines (Figure 4)"
DESCRIPTION = """\
For each size s in --sizes (pixels per side; each must divide the image size), block-average
every image to s x s pixels (as the paper did), train the CNN on these s x s images with the
same recipe and seed on the train split (the network sees s x s inputs, as in the authors'
notebook, down to 1 x 1), and score it on the test split.
--min-input N (a deviation from the paper, galmet's earlier default 32) instead pixel-replicates
images smaller than N back up to at least N pixels before the network sees them.
--seeds K trains K runs per size (training seeds --seed, --seed + 1, ...): a single run mixes
the resolution's effect with the spread between seeds. Figure 4's error bars are the standard
deviation over the seeds (for one seed: the test sample's bootstrap standard error).
Also fits the random-forest (magnitudes, when the catalog has them) and constant-mean
baselines. Writes in --out:
  resolution.csv        per size: size, input_size, RMSE, NMAD, bias, outlier fraction, N,
                        train time (means over the seeds), seeds, rmse_std, rmse_se, nmad_std,
                        nmad_se (spread over the seeds and standard error of the mean)
  resolution_seeds.csv  per size and seed: the metrics of each training run
  resolution.json       baselines, training config, dataset
  runs/size_<s>/        each size's training run and test predictions (runs/size_<s>_rep<k>/
                        for further seeds)
  fig4_resolution.png/.pdf
Resumable: rerun the same command and finished runs are skipped; an interrupted one continues
from its checkpoint; a rerun with a larger --seeds adds the missing seeds.

Examples:
  galmet resolution-study data/synth --sizes 128,64,32,16,8,4,2,1 --out runs/resolution
  galmet resolution-study data/synth --sizes 32,8,2 --recipe onecycle --epochs 3 \\
      --arch resnet18 --out res
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out"}


def add_arguments(p) -> None:
    from galmet.cli.options import add_training_options, integer
    from galmet.paper import PAPER_RESOLUTION_SIZES

    p.add_argument("dataset", help="dataset directory (catalog + images/) with a test split")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder (reuse it to resume)")
    g = p.add_argument_group("study")
    g.add_argument(
        "--sizes",
        default=",".join(map(str, PAPER_RESOLUTION_SIZES)),
        help="comma-separated image sizes (default: the paper's)",
    )
    g.add_argument(
        "--min-input",
        type=integer(1, 4096),
        default=1,
        help="pixel-replicate smaller images up to this side (default: 1 = native s x s inputs, the paper's; "
        "larger values are a deviation)",
    )
    g.add_argument(
        "--seeds",
        type=integer(1, 1000),
        default=1,
        metavar="K",
        help="training runs per size, seeds --seed, --seed + 1, ... (default: 1); the table gives their spread",
    )
    g.add_argument("--bands", default="gri", help="magnitudes of the random-forest baseline (default: gri)")
    g.add_argument("--no-tta", action="store_true", help="no test-time augmentation when scoring")
    add_training_options(p, schedule=True)
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def config_from_args(args):
    """The TrainConfig of the study: --config (or the paper's defaults) with the given overrides."""
    from galmet.cli.options import config_from_args as training_config

    return training_config(args)[0].resolved()


def run(args) -> int:
    from pathlib import Path

    from galmet.layout import FIGURE_NAMES, RESOLUTION_TABLE
    from galmet.runs.resolution import run_study
    from galmet.science.resolution import format_resolution, read_resolution

    config = config_from_args(args)
    _check_options(args)
    run_study(
        args.dataset,
        args.out,
        args.sizes,
        config,
        args.min_input,
        args.bands,
        tta=not args.no_tta,
        overwrite=args.overwrite,
        seeds=args.seeds,
    )
    table, meta = read_resolution(args.out)
    print(format_resolution(table, meta))
    print(f"wrote {Path(args.out) / RESOLUTION_TABLE} and {Path(args.out) / FIGURE_NAMES[4]}.png")
    return 0


def _check_options(args) -> None:
    """--sizes and --bands, checked before the dataset is read."""
    from galmet.science.baseline import parse_bands
    from galmet.science.resolution import parse_sizes

    parse_sizes(args.sizes)
    parse_bands(args.bands)
