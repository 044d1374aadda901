"""``galmet demo``: the whole workflow, end to end, on synthetic galaxies made on the spot."""

from __future__ import annotations

NAME = "demo"
ORDER = 1
#: The default demo's time, said the same in this help, the README and the docs (BENCHMARKS.md
#: section 6 has the measurements behind it).
TYPICAL_TIME = "about a minute on an idle 2-core CPU"
HELP = f"run the whole workflow on a small synthetic set (no network; {TYPICAL_TIME})"
DESCRIPTION = f"""\
Synthesise a small set of SDSS-like galaxies with GalSim, show them (summary table and a
mosaic), train a small CNN on them, predict the held-out test galaxies with test-time
augmentation, compare with the constant-mean and random-forest baselines, and finish with the
metrics, the paper's figures and an HTML report. Everything lands in --out.

The defaults (600 galaxies, 64x64 pixels, ResNet-18, 12 one-cycle epochs, batch 32, CPU)
take {TYPICAL_TIME} (longer on a busy one; see BENCHMARKS.md).
The finished run keeps its model, not the optimizer state (--keep-checkpoint keeps that too).
Real runs use `galmet synth` or `galmet catalog`, then `galmet train` (the paper's ResNet-34
recipe) on a GPU.

Example:
  galmet demo --out galmet-demo
"""


def add_arguments(p) -> None:
    from galmet.cli.options import SEED, integer
    from galmet.columns import ARCHS

    p.add_argument(
        "--out",
        default="galmet-demo",
        help="output folder (default: ./galmet-demo); a previous demo there is replaced (only the files "
        "it wrote), any other non-empty folder is refused",
    )
    p.add_argument("--n", type=integer(50, 100_000), default=600, help="number of synthetic galaxies (default 600)")
    p.add_argument(
        "--size",
        type=integer(8, 1024),
        default=64,
        help="image size in pixels, a power of two (default 64; the paper's is 128)",
    )
    p.add_argument("--epochs", type=integer(1, 10_000), default=12, help="training epochs (default 12)")
    p.add_argument(
        "--batch-size", type=integer(2, 65_536), default=32, help="training batch size, at least 2 (default 32)"
    )
    p.add_argument("--arch", default="resnet18", choices=ARCHS, help="ResNet body (default resnet18)")
    p.add_argument(
        "--seed", type=SEED, default=0, help="seed for the synthesis, split and training, 0 to 2**32-1 (default 0)"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train (default auto)")
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep the finished run's checkpoint.pt (optimizer state, about twice the model's size); "
        "by default it is deleted once training has finished",
    )
    from galmet.cli.options import add_progress_option

    add_progress_option(p)
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(
        p,
        "write the demo into a folder that is neither empty nor a previous demo, replacing the files at "
        "the demo's names; nothing else is deleted",
    )


def run(args) -> int:
    from galmet.runs.demo import run_demo

    run_demo(
        out=args.out,
        n=args.n,
        size=args.size,
        epochs=args.epochs,
        arch=args.arch,
        seed=args.seed,
        device=args.device,
        batch_size=args.batch_size,
        keep_checkpoint=args.keep_checkpoint,
        overwrite=args.overwrite,
    )
    return 0
