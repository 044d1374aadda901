"""``galmet embed``: export the network's penultimate-layer embeddings of a dataset."""

from __future__ import annotations

NAME = "embed"
ORDER = 52
HELP = "write the penultimate-layer embeddings (512 features) of every image as a table"
DESCRIPTION = """\
Run MODEL over INPUT (a dataset directory or image folder, like 'galmet predict') and write,
per image, the 512 features the head's last linear layer reads (emb_000 ... emb_511, no TTA),
with objID (or file), split, the truth and pass-through columns, and ood_score: the k-nearest-
neighbour distance to the model's training embeddings over its 99th percentile (> 1: out of the
training domain; bundles with embedding statistics) and flags (Flag bits as in 'galmet predict':
EMBEDDING_OUT_OF_DOMAIN, and OTHER_SURVEY on every row with --allow-other-survey). An ensemble's
members embed into different spaces: --member picks one (default 0), --member all stacks them
with a member column.

Example:
  galmet embed runs/r1 ../shared/data/sdss_sample --out emb.parquet --split test
"""


def add_arguments(p) -> None:
    from galmet.cli.options import add_device_option, integer

    p.add_argument(
        "model", help="model bundle (model.pt), a run directory holding one, or a model name (galmet models)"
    )
    p.add_argument("input", help="dataset directory or folder of images")
    p.add_argument("--out", required=True, metavar="EMB", help="output table: .parquet, .csv or .fits")
    p.add_argument("--member", default="0", help="ensemble member to embed with, or 'all' (default: 0)")
    p.add_argument("--split", nargs="+", metavar="SPLIT", help="only these splits (train, valid, test)")
    from galmet.nn.options import MAX_BATCH_SIZE, InferenceOptions

    p.add_argument(
        "--batch-size",
        type=integer(1, MAX_BATCH_SIZE),
        default=InferenceOptions.batch_size,
        help="images per forward pass (default: %(default)s)",
    )
    add_device_option(p)
    p.add_argument("--skip-bad", action="store_true", help="drop unreadable/wrong-size images instead of failing")
    from galmet.cli.options import add_progress_option

    add_progress_option(p)
    from galmet.cli.options import add_other_survey_option, add_overwrite_option

    add_overwrite_option(p)
    add_other_survey_option(p)


def run(args) -> int:
    from galmet.runs.embed import embedding_table

    table = embedding_table(
        args.model,
        args.input,
        args.out,
        member=args.member,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        skip_bad=args.skip_bad,
        overwrite=args.overwrite,
        allow_other_survey=args.allow_other_survey,
    )
    n_feat = sum(c.startswith("emb_") for c in table.columns)
    print(f"wrote {len(table)} rows x {n_feat} embedding features to {args.out}")
    if "ood_score" in table.columns:
        print(f"out of the training domain (ood_score > 1): {int((table['ood_score'] > 1).sum())} rows")
    return 0
