"""``galmet predict`` at sky positions (--ra/--dec, --positions FILE): check the options, then call
:func:`galmet.predict.positions.predict_positions` (which runs the resumable job, writes the
table and only then cleans up), and report by status (:mod:`galmet.cli.predict_output`)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def read_positions(path: str) -> object:
    """The table of a positions file, in any format astropy reads
    (:func:`galmet.io.tables.read_any_table`); DataError naming the file."""
    from galmet.errors import DataError
    from galmet.io.tables import read_any_table

    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a folder, not a table of positions")
    if not p.exists():  # (a FIFO or device: read_any_table refuses it, unopened)
        raise DataError(f"{p}: positions file not found")
    return read_any_table(p)


def run_positions(args, positions_file: str | None) -> int:
    """The positions path of ``galmet predict``; returns the exit code."""
    import numpy as np
    import pandas as pd

    from galmet.cli.options import check_server_options
    from galmet.cli.predict_output import print_positions_done, print_positions_interrupted
    from galmet.columns import STATUS_OK
    from galmet.errors import ConfigError
    from galmet.io.safety import Input, check_output_file
    from galmet.io.tables import require_table_format
    from galmet.predict.positions import PositionsSummary, default_work_dir, predict_positions
    from galmet.registry.resolve import model_input
    from galmet.sdss.coords import Positions, sky_positions

    # everything is checked before anything is written
    fmt = require_table_format(args.out, param="out")
    if args.split:
        raise ConfigError("--split applies to dataset directories only, not to sky positions")
    check_server_options(args)
    inputs = [model_input(args.model)]
    if positions_file is not None:
        inputs.append(Input(Path(positions_file), "the positions table"))
    if args.archive is not None:
        inputs.append(Input(Path(args.archive), "the cutout archive", tree=True))
    out = check_output_file(args.out, "--out", fmt.kind or "csv", "predictions table", inputs, overwrite=args.overwrite)
    work = Path(args.work_dir) if args.work_dir else default_work_dir(out)
    for option, folder in (("--work-dir", work), ("--keep-cutouts", args.keep_cutouts)):
        if folder is not None and any(item.holds(Path(folder)) for item in inputs):
            raise ConfigError(f"{option} {folder}: is an input of this command; choose another folder")
    if positions_file is not None:
        # (the table read is this command's own: its columns are not copied again)
        positions = sky_positions(read_positions(positions_file), where=positions_file, copy=False)
    else:
        n = len(args.ra)
        positions = Positions(np.array(args.ra, float), np.array(args.dec, float), frame=pd.DataFrame(index=range(n)))
    from galmet.nn.bundle import load_model
    from galmet.nn.device import resolve_device

    device = resolve_device(args.device)
    model = load_model(args.model)
    summary = PositionsSummary()
    try:
        table = predict_positions(model, positions, out=out, summary=summary, **library_arguments(args, work, device))
    except KeyboardInterrupt:
        print_positions_interrupted(summary, work)
        return 130
    print_positions_done(table, model, out, summary, device.type)
    return 0 if summary.statuses.get(STATUS_OK, 0) or not summary.rows else 1


def library_arguments(args, work: Path | None, device) -> dict:
    """The keywords of :func:`~galmet.predict.positions.predict_positions` the parsed options give
    (the server options drive the downloader; ``--data-release`` or ``--base-url``, when given,
    override the model's own release)."""
    from galmet.cli.options import base_url, inference_options
    from galmet.sdss.download import DownloadOptions

    return dict(
        options=inference_options(args, device),
        download=DownloadOptions(
            workers=args.workers,
            rate=args.rate,
            retries=args.retries,
            timeout=args.timeout,
            backoff_base=args.backoff_base,
            max_bytes=args.max_bytes,
            max_consecutive_failures=args.max_consecutive_failures,
            failure_budget=args.failure_budget,
            progress=False,
        ),
        drop_failed=args.skip_bad,
        work_dir=work,
        keep_cutouts=Path(args.keep_cutouts) if args.keep_cutouts else None,
        shard_size=args.shard_size,
        overwrite=args.overwrite,
        archive=Path(args.archive) if args.archive else None,
        match_radius=args.match_radius,
        base_url=base_url(args) if (args.base_url or getattr(args, "data_release", None)) else None,
        survey=getattr(args, "survey", None),
        layer=getattr(args, "layer", None),
        format=getattr(args, "format", None),
        allow_other_survey=getattr(args, "allow_other_survey", False),
    )
