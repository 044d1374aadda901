"""``galmet info``: load and validate a dataset directory or image folder, print a summary."""

from __future__ import annotations

NAME = "info"
ORDER = 20
HELP = "validate a dataset directory (or image folder) and summarise it"
DESCRIPTION = """\
Load a dataset directory (catalog.parquet or catalog.csv + images/) or a folder of images,
check every row (image present, decodable, RGB, one size; label finite and in range), build
the decode cache (images.npy) if missing, and print a summary: its labels and their ranges, and
the rows per split (the catalogue's, or the seeded one galmet draws for a labelled set; an
unlabelled set shows "no labels" and "splits: none").

Example:
  galmet info ../shared/data/sdss_sample
"""


def add_arguments(p) -> None:
    p.add_argument("dataset", help="dataset directory or folder of images")
    p.add_argument("--target", action="append", help="label column(s) to validate (default: oh_p50 when present)")
    p.add_argument("--skip-bad", action="store_true", help="drop bad rows (and count them) instead of failing")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the decode cache images.npy")
    from galmet.cli.options import add_progress_option

    add_progress_option(p)


def run(args) -> int:
    from galmet.data.dataset import load_dataset
    from galmet.data.summary import dataset_summary

    ds = load_dataset(
        args.dataset, targets=args.target, on_error="skip" if args.skip_bad else "raise", cache=not args.no_cache
    )
    print(dataset_summary(ds, args.target))
    return 0
