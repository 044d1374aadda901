"""``galmet synth``: write a synthetic SDSS-like dataset directory with known physics."""

from __future__ import annotations

import argparse
import math

NAME = "synth"
ORDER = 15
HELP = "make a synthetic SDSS-, Legacy- or PS1-like dataset (GalSim galaxies whose metallicity follows known physics)"
DESCRIPTION = """\
Draw N galaxies (stellar mass, redshift, bulge + inclined disk, colours, star formation) and
render each as a survey images them (--survey sdss: gri -> RGB JPEG like SDSS DR14 cutouts;
legacy: grz at 0.262"/px, its seeing and depth, the Legacy viewer's colours; ps1: gri at
0.25"/px), with seeing, sky noise and neighbouring stars; --format fits writes the band fluxes
(nanomaggies) instead. The same seed gives the same galaxies and labels for every survey.
The label oh_p50 follows the Tremonti et al. (2004) mass-metallicity
relation plus terms the image reveals (disk colour / sSFR, inclination, size) plus scatter no
image can explain; every latent truth is in the catalog, and the noise floor (best possible
RMSE, sqrt(sigma_unobs^2 + 0.03^2)) is in synth_config.yaml. Same seed -> identical output,
whatever --workers.

Writes OUT/images/<objID>.jpg (or .fits), OUT/synth_config.yaml and OUT/catalog.parquet (last).

Example:
  galmet synth --n 1000 --out data/synth --seed 1
  galmet synth --n 1000 --out data/synth-legacy --seed 1 --survey legacy
  galmet synth --n 1000 --out data/synth-ps1-fits --seed 1 --survey ps1 --format fits
  galmet info data/synth
"""


def _test_amount(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1) or a count, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1) or a count, got {text!r}")
    return int(value) if value >= 1 and value == int(value) else value


def add_arguments(p) -> None:
    from galmet.cli.options import SEED, add_progress_option, format_name, integer, number, survey_name
    from galmet.paper import TEST_FRACTION, VALID_FRACTION

    p.add_argument("--n", type=integer(), required=True, help="number of galaxies")
    p.add_argument(
        "--out",
        required=True,
        help="output dataset directory (must be absent or empty, or a previous synthesis with --overwrite)",
    )
    p.add_argument("--seed", type=SEED, default=0, help="random seed, 0 to 2**32-1 (default 0)")
    p.add_argument(
        "--size",
        type=integer(),
        default=128,
        help="cutout size in pixels, a power of two from 8 to 1024 (default 128); the field of view stays the "
        "survey's (sdss 37.9 arcsec, legacy 33.5, ps1 32.0: their default pixel scale at 128 px)",
    )
    p.add_argument(
        "--survey",
        type=survey_name,
        default="sdss",
        help="the survey whose bands, pixel scale, seeing, depth and rendering the images have: "
        "sdss (default), legacy, ps1; the galaxies and labels are the same for all",
    )
    p.add_argument(
        "--format",
        type=format_name,
        default="jpeg",
        help="jpeg (default: the survey's colour rendering) or fits (float32 band fluxes in nanomaggies, "
        "images/<objID>.fits); any survey may be written as either",
    )
    p.add_argument(
        "--pixel-scale",
        type=number(what="arcsec per pixel"),
        default=None,
        help="arcsec per pixel, 0.01-10 (default: the survey's field of view over --size)",
    )
    p.add_argument("--workers", type=integer(), default=None, help="worker processes, 1 to 256 (default: all CPUs)")
    p.add_argument(
        "--test",
        type=_test_amount,
        default=TEST_FRACTION,
        help="held-out test set: a fraction in [0, 1) or a count (default %(default)s, the paper's 25,000 of 142,182)",
    )
    p.add_argument(
        "--valid-fraction",
        type=number(what="a fraction in [0, 1)"),
        default=VALID_FRACTION,
        help="fraction of the non-test galaxies used for validation (default 0.2)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous synthesis in OUT (only the files it wrote; other files stay)",
    )
    add_progress_option(p)


def run(args) -> int:
    from galmet.synthetic.physics import NOISE_FLOOR_RMSE
    from galmet.synthetic.render import synthesize

    out = synthesize(
        args.out,
        args.n,
        seed=args.seed,
        size=args.size,
        workers=args.workers,
        progress=not args.no_progress,
        test=args.test,
        valid_fraction=args.valid_fraction,
        overwrite=args.overwrite,
        survey=args.survey,
        format=args.format,
        pixel_scale=args.pixel_scale,
    )
    what = f"{args.size}x{args.size} px, {args.survey} {args.format}"
    print(f"wrote {args.n} galaxies ({what}) to {out}; noise floor RMSE {NOISE_FLOOR_RMSE:.3f} dex")
    return 0
