"""``galmet lr-find``: the learning-rate range test (Smith 2015); see docs/training.md."""

from __future__ import annotations

NAME = "lr-find"
ORDER = 41
HELP = "run the learning-rate range test and suggest a learning rate"
DESCRIPTION = """\
Train from the initial weights on the dataset's 'train' rows while the learning rate grows
exponentially (every layer group at the same lr); write DIR/lr_find.csv (lr, loss,
smoothed_loss) and DIR/lr_find.png, and print the suggested lr (lr at the minimum of the
smoothed loss / 10) and the steepest-descent lr. Stops early when the loss diverges.

Examples:
  galmet lr-find DATASET --out runs/lrfind --weights none --arch resnet18
  galmet lr-find DATASET --out runs/lrfind --freeze-body      # the head only, as in epochs 1-2
"""


def add_arguments(p) -> None:
    from galmet.columns import ARCHS
    from galmet.training.config import DEVICES

    p.add_argument("dataset", help="dataset directory (catalog + images/)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for lr_find.csv and lr_find.png")
    p.add_argument("--target", action="append", metavar="COLUMN", help="catalog column(s) to regress (default: oh_p50)")
    p.add_argument("--arch", choices=ARCHS, default="resnet34", help="ResNet body (default: resnet34)")
    p.add_argument("--weights", default="imagenet", metavar="imagenet|none|PATH", help="initial body weights (default: imagenet)")
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default 0.01)")
    p.add_argument("--start-lr", type=float, default=1e-7, help="first lr of the sweep (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last lr of the sweep (default 10)")
    p.add_argument("--steps", type=int, default=100, help="number of steps (batches) of the sweep (default 100)")
    p.add_argument("--freeze-body", action="store_true", help="sweep the head only, body frozen")
    p.add_argument("--size", type=int, help="required image size in pixels (default: the dataset's)")
    p.add_argument("--crop", type=int, metavar="N", help="use the central N x N pixels, as train --crop (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="where to run (default: auto)")
    p.add_argument("--skip-bad", action="store_true", help="drop bad rows instead of failing")


def run(args) -> int:
    from galmet.science.runs.lr_find import run_lr_find
    from galmet.training.config import TrainConfig

    config = TrainConfig(targets=args.target or ["oh_p50"], arch=args.arch, weights=args.weights,
                         batch_size=args.batch_size, weight_decay=args.weight_decay, size=args.size,
                         crop=args.crop, seed=args.seed, device=args.device, skip_bad=args.skip_bad, progress=False)
    r = run_lr_find(args.dataset, args.out, config, start_lr=args.start_lr, end_lr=args.end_lr,
                num_steps=args.steps, freeze=args.freeze_body)
    stop = "stopped early: loss diverged" if r.diverged else "full sweep"
    print(f"{len(r.table)} steps, lr {r.table['lr'].iloc[0]:.1e} to {r.table['lr'].iloc[-1]:.1e} ({stop})")
    print(f"suggested lr: {r.suggested_lr:.2e} (min smoothed loss at {r.min_loss_lr:.2e} / 10); "
          f"steepest descent at {r.steepest_lr:.2e}")
    print(f"wrote {r.csv_path} and {r.plot_path}")
    return 0
