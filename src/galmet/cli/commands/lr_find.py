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

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out", "num_steps": "--steps"}


def add_arguments(p) -> None:
    from galmet.cli.options import add_training_options, integer, number

    p.add_argument("dataset", help="dataset directory (catalog + images/)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for lr_find.csv and lr_find.png")
    add_training_options(p, schedule=False)
    g = p.add_argument_group("sweep")
    g.add_argument(
        "--start-lr", type=number(0, 1000, open_low=True), default=1e-7, help="first lr of the sweep (default 1e-7)"
    )
    g.add_argument(
        "--end-lr", type=number(0, 1000, open_low=True), default=10.0, help="last lr of the sweep (default 10)"
    )
    g.add_argument(
        "--steps", type=integer(2, 100_000), default=100, help="number of steps (batches) of the sweep (default 100)"
    )
    g.add_argument("--freeze-body", action="store_true", help="sweep the head only, body frozen")
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    import dataclasses
    from pathlib import Path

    from galmet.cli.options import config_from_args
    from galmet.runs.lr_find import run_lr_find

    config = dataclasses.replace(config_from_args(args)[0], progress=False)
    if args.config:  # the config file is an input too
        from galmet.io.safety import check_not_inputs, inputs_of
        from galmet.layout import LR_FIND_PLOT, LR_FIND_TABLE

        outs = [Path(args.out) / LR_FIND_TABLE, Path(args.out) / LR_FIND_PLOT]
        check_not_inputs(outs, "--out", inputs_of(args.config, "the --config file"))
    r = run_lr_find(
        args.dataset,
        args.out,
        config,
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        num_steps=args.steps,
        freeze=args.freeze_body,
        overwrite=args.overwrite,
    )
    stop = "stopped early: loss diverged" if r.diverged else "full sweep"
    print(f"{len(r.table)} steps, lr {r.table['lr'].iloc[0]:.1e} to {r.table['lr'].iloc[-1]:.1e} ({stop})")
    print(
        f"suggested lr: {r.suggested_lr:.2e} (min smoothed loss at {r.min_loss_lr:.2e} / 10); "
        f"steepest descent at {r.steepest_lr:.2e}"
    )
    print(f"wrote {r.csv_path} and {r.plot_path}")
    return 0
