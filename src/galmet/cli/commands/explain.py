"""``galmet explain``: attribution maps with captum, and controlled tests of what the network reads."""

from __future__ import annotations

NAME = "explain"
ORDER = 67
HELP = "attribution maps (Grad-CAM, integrated gradients, occlusion) and fibre/colour/morphology controls"
DESCRIPTION = """\
Draw attribution maps of --n seeded-random galaxies of INPUT (default: its test split) over their
cutouts, as the network sees them (the bundle's central crop), in a Figure-1-like grid ordered by
predicted Z, and save the arrays:
  gradcam               Grad-CAM on a ResNet stage (--layer; auto: the deepest with a map of at
                        least 4x4 pixels), regions that raise Z
  integrated-gradients  from a sky-coloured baseline image; signed
  occlusion             1/8-of-the-input windows painted with the sky colour; signed
Writes OUT/attribution_<method>.png/.pdf/.npz. Needs captum: pip install 'galmet[explain]'.

--controls also scores every galaxy of the split (TTA x8) with the central 3 arcsec (the SDSS
fibre) painted with the sky colour, against an annulus of equal area just outside it; with the
pixels shuffled inside the galaxy's footprint (colour only); and in grayscale (morphology only),
beside the full images: OUT/controls.json and controls.csv.

Example:
  galmet explain cv/model.pt ../shared/data/sdss_sample --out explain --method gradcam \\
      --n 16 --controls
"""

#: library parameter -> the flag that sets it, where the names differ (errors name the parameter).
PARAM_FLAGS = {"out_dir": "--out"}


def add_arguments(p) -> None:
    from galmet.cli.options import SEED, add_device_option, integer

    p.add_argument(
        "model", help="model bundle (model.pt), a run directory holding one, or a model name (galmet models)"
    )
    p.add_argument("input", help="dataset directory (or folder of images)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--method",
        default="gradcam",
        choices=("gradcam", "integrated-gradients", "occlusion"),
        help="attribution method (default: gradcam)",
    )
    p.add_argument("--n", type=integer(1, 100), default=16, help="galaxies in the grid (default: 16)")
    p.add_argument("--split", default="test", help="split to draw from: train, valid, test or all (default: test)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the galaxy draw and the pixel shuffle (default: 0)")
    p.add_argument("--layer", default="auto", help="Grad-CAM stage: auto, layer1 .. layer4 (default: auto)")
    p.add_argument("--ncols", type=integer(1, 20), default=4, help="galaxies per row of the grid (default: 4)")
    p.add_argument("--controls", action="store_true", help="run the fibre-occlusion and colour/morphology controls")
    add_device_option(p)
    from galmet.cli.options import add_progress_option

    add_progress_option(p)
    from galmet.cli.options import add_other_survey_option, add_overwrite_option

    add_overwrite_option(p)
    add_other_survey_option(p)


def run(args) -> int:
    from galmet.errors import ConfigError
    from galmet.runs.explain import explain, format_controls

    if not 1 <= args.ncols <= 10:
        raise ConfigError(f"--ncols must be between 1 and 10, got {args.ncols}")
    res = explain(
        args.model,
        args.input,
        args.out,
        method=args.method,
        n=args.n,
        split=None if args.split == "all" else args.split,
        seed=args.seed,
        layer=args.layer,
        controls=args.controls,
        device=args.device,
        ncols=args.ncols,
        overwrite=args.overwrite,
        allow_other_survey=args.allow_other_survey,
    )
    if res.get("layer"):
        print(f"Grad-CAM on {res['layer']}")
    if "controls" in res:
        print(format_controls(res["controls"]))
    for f in res["files"]:
        print(f)
    return 0
