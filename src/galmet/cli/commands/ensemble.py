"""``galmet ensemble``: combine model bundles into one ensemble bundle."""

from __future__ import annotations

NAME = "ensemble"
#: save_ensemble calls its output `path`
PARAM_FLAGS = {"path": "--out"}
ORDER = 45
HELP = "combine several model bundles (e.g. cross-validation runs with other seeds) into one"
DESCRIPTION = """\
Write one bundle that holds every given model: predictions are the mean over the members (and
over the 8 TTA views), <target>_spread their spread. The members must share architecture,
targets, normalisation, image size and crop. An ensemble given as a MODEL (such as RUN/model.pt
of 'galmet train --folds') contributes all of its members.

Example:
  galmet train DATASET --out cv_s0 --folds 5 --seed 0 ...
  galmet train DATASET --out cv_s1 --folds 5 --seed 1 ...
  galmet ensemble cv_s0 cv_s1 --out ens.pt        # 10 members
  galmet predict ens.pt DATASET --split test --out pred.parquet
"""


def add_arguments(p) -> None:
    p.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="model bundles, run directories holding one, or model names (galmet models)",
    )
    p.add_argument("--out", required=True, help="the ensemble bundle to write (.pt)")
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(p)


def run(args) -> int:
    from galmet.io.safety import check_not_run_model, check_output_file
    from galmet.nn.bundle import load_model, save_ensemble
    from galmet.registry.resolve import model_input

    # the output is checked before the members are read (save_ensemble checks it again)
    inputs = [model_input(m, f"the input model {m}") for m in args.models]
    check_output_file(args.out, "--out", "bundle", "model bundle", inputs, overwrite=args.overwrite)
    check_not_run_model(args.out, "--out")
    models = [load_model(m) for m in args.models]
    path = save_ensemble(args.out, models, overwrite=args.overwrite)
    n = sum(len(m.nets) for m in models)
    print(f"wrote {path}: an ensemble of {n} {models[0].arch} networks from {len(models)} bundles")
    return 0
