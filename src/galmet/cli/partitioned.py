"""``galmet predict MODEL --positions PATH`` over a partitioned catalogue (:func:`galmet.predict_catalog`).

The predict command routes here when PATH is a folder (a parquet dataset or a HATS catalogue),
when ``--out`` is a folder (a HATS catalogue), or when ``--scheduler``, ``--shard``,
``--partition-rows`` or ``--local-workers`` is given; otherwise the one-machine positions path
(:mod:`galmet.cli.positions`) runs as before. Every option is checked by the library before anything is written.
"""

from __future__ import annotations

from pathlib import Path


def wants_catalog(args) -> bool:
    """Whether ``galmet predict``'s parsed options ask for a catalogue job."""
    catalogue_options = (args.scheduler, args.shard, args.partition_rows, args.local_workers)
    if any(option is not None for option in catalogue_options):
        return True
    positions = args.positions
    if positions is not None and Path(positions).is_dir():
        return True
    if positions is None and not args.ra:
        return False
    out = Path(args.out)
    return out.is_dir() or not out.suffix


def run_catalog(args) -> int:
    """The catalogue path of ``galmet predict``; returns the exit code (0 done or a slice done,
    1 no row predicted, 130 interrupted)."""
    import numpy as np
    import pandas as pd

    from galmet.catalog.run import DEFAULT_PARTITION_ROWS, parse_shard, predict_catalog
    from galmet.cli.positions import library_arguments
    from galmet.columns import STATUS_OK
    from galmet.errors import ConfigError
    from galmet.nn.device import resolve_device

    shard = parse_shard(args.shard)
    for option, given in (("--split", args.split), ("--keep-cutouts", args.keep_cutouts), ("INPUT", args.input)):
        if given:
            raise ConfigError(f"{option} does not apply to a catalogue job (--positions PATH with --scheduler/--shard)")
    catalog = args.positions
    if catalog is None:
        catalog = pd.DataFrame({"ra": np.array(args.ra, float), "dec": np.array(args.dec, float)})
    keywords = library_arguments(args, Path(args.work_dir) if args.work_dir else None, resolve_device(args.device))
    keywords.pop("keep_cutouts", None)
    try:
        summary = predict_catalog(
            args.model,
            catalog,
            args.out,
            scheduler=args.scheduler,
            shard=shard,
            partition_rows=args.partition_rows or DEFAULT_PARTITION_ROWS,
            n_workers=args.local_workers,
            **keywords,
        )
    except KeyboardInterrupt:
        print("catalogue: interrupted; the finished partitions stay in the work folder: rerun to resume")
        return 130
    print(summary.line())
    return 0 if summary.statuses.get(STATUS_OK, 0) or not summary.rows or summary.out is None else 1
