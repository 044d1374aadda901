"""``galmet resolution-study``: train and test the CNN on block-averaged images (Figure 4)."""

from __future__ import annotations

NAME = "resolution-study"
ORDER = 68
HELP = "train and test the CNN at several image resolutions (block averaging), with baselines (Figure 4)"
DESCRIPTION = """\
For each size in --sizes (pixels per side; each must divide the image size), block-average
every image to that size (as the paper did), pixel-replicate it back up to at least
--min-input pixels so the ResNet's strides still work (no information is added), train the
CNN with the same recipe and seed on the train split, and score it on the test split.
Also fits the random-forest (magnitudes, when the catalog has them) and constant-mean
baselines. Writes in --out:
  resolution.csv        size, input_size, RMSE, NMAD, bias, outlier fraction, N, train time
  resolution.json       baselines, training config, dataset
  runs/size_<s>/        each size's training run and test predictions
  fig4_resolution.png/.pdf
Resumable: rerun the same command and finished sizes are skipped; an interrupted size
continues from its checkpoint.

Examples:
  galmet resolution-study data/synth --sizes 128,64,32,16,8,4,2,1 --out runs/resolution
  galmet resolution-study data/synth --sizes 32,8,2 --recipe onecycle --epochs 3 --arch resnet18 --out res
"""


def add_arguments(p) -> None:
    from galmet.columns import ARCHS
    from galmet.training.config import DEVICES, RECIPES

    p.add_argument("dataset", help="dataset directory (catalog + images/) with a test split")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder (reuse it to resume)")
    p.add_argument("--sizes", default="128,64,32,16,8,4,2,1", help="comma-separated image sizes (default: the paper's)")
    p.add_argument("--min-input", type=int, default=32, help="smallest network input side, pixels (default: 32)")
    p.add_argument("--bands", default="gri", help="magnitudes of the random-forest baseline (default: gri)")
    p.add_argument("--config", metavar="YAML", help="training config.yaml to start from (options below override it)")
    p.add_argument("--target", help="label column (default: oh_p50)")
    p.add_argument("--recipe", choices=RECIPES, help="learning-rate recipe (default: paper)")
    p.add_argument("--epochs", type=int, help="total epochs (onecycle; the paper recipe is 10)")
    p.add_argument("--arch", choices=ARCHS, help="ResNet body (default: resnet34)")
    p.add_argument("--weights", metavar="imagenet|none|PATH", help="initial body weights (default: imagenet)")
    p.add_argument("--lr", type=float, nargs="+", metavar="LR", help="learning rate(s): 1 value or 3 (one per layer group)")
    p.add_argument("--batch-size", type=int, help="batch size (default: 256)")
    p.add_argument("--seed", type=int, help="random seed, the same for every size (default: 0)")
    p.add_argument("--device", choices=DEVICES, help="where to train (default: auto)")
    p.add_argument("--no-tta", action="store_true", help="no test-time augmentation when scoring")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args):
    """The TrainConfig of the study: --config (or the paper's defaults) with the given overrides."""
    import dataclasses

    from galmet.training.config import load_config, TrainConfig

    config = load_config(args.config) if args.config else TrainConfig()
    overrides = {k: getattr(args, k) for k in ("recipe", "epochs", "arch", "weights", "lr", "batch_size", "seed", "device")
                 if getattr(args, k) is not None}
    if args.target:
        overrides["targets"] = [args.target]
    if args.no_progress:
        overrides["progress"] = False
    return dataclasses.replace(config, **overrides).resolved()


def run(args) -> int:
    from pathlib import Path

    from galmet.science.resolution import format_resolution, read_resolution
    from galmet.science.runs.resolution import run_study

    config = config_from_args(args)
    run_study(args.dataset, args.out, args.sizes, config, args.min_input, args.bands, tta=not args.no_tta)
    table, meta = read_resolution(args.out)
    print(format_resolution(table, meta))
    print(f"wrote {Path(args.out) / 'resolution.csv'} and {Path(args.out) / 'fig4_resolution.png'}")
    return 0
