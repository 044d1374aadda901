"""``galmet predict`` at sky positions (--ra/--dec, --positions FILE): validate everything, run the
resumable positions job (:mod:`galmet.predict.positions`), write the table, report by status."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: Position-table suffix -> astropy format (other suffixes: astropy guesses).
POSITION_FORMATS = {
    ".csv": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
    ".parquet": "parquet",
}


def read_positions(path: str) -> object:
    """The table of a positions file, in any format astropy reads; DataError naming the file."""
    from astropy.table import QTable

    from galmet.errors import DataError

    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a folder, not a table of positions")
    if not p.is_file():
        raise DataError(f"{p}: positions file not found")
    name = p.name.lower()
    fmt = next((f for s, f in POSITION_FORMATS.items() if name.endswith(s)), None)
    if fmt == "ascii.csv":  # galmet's reader: objIDs as exact int64 even when written as 123...422.0
        from galmet.io.tables import read_table

        return read_table(p)
    try:
        table = QTable.read(p, format=fmt) if fmt else QTable.read(p)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise DataError(f"{p}: cannot read a table ({type(exc).__name__}: {exc})") from None
    from galmet.columns import is_id_column, objid_array

    for col in table.colnames:
        if is_id_column(col) and getattr(table[col], "ndim", 1) == 1:  # exact, or one line naming the row
            table[col] = objid_array(table[col].tolist(), str(p), column=col)
    return table


def run_positions(args, positions_file: str | None) -> int:
    """The positions path of ``galmet predict``; returns the exit code."""
    import numpy as np
    import pandas as pd

    from galmet.cli.options import check_server_options
    from galmet.errors import ConfigError
    from galmet.io.safety import Input, check_output_file, model_input
    from galmet.layout import POSITIONS_WORK_SUFFIX
    from galmet.predict.positions import (
        OUTPUT_FORMATS,
        STATUS_OK,
        PositionsJob,
        output_format,
        positions_table,
        write_positions_table,
    )
    from galmet.sdss.coords import Positions, sky_positions

    # everything is checked before anything is written
    fmt = output_format(args.out)
    if fmt is None:
        raise ConfigError(f"--out {args.out}: unknown table format (use {', '.join(OUTPUT_FORMATS)})")
    if args.split:
        raise ConfigError("--split applies to dataset directories only, not to sky positions")
    check_server_options(args)
    inputs = [model_input(args.model)]
    if positions_file is not None:
        inputs.append(Input(Path(positions_file), "the positions table"))
    kind = "parquet" if fmt == "parquet" else "fits" if fmt == "fits" else "csv"
    out = check_output_file(args.out, "--out", kind, "predictions table", inputs)
    work = Path(args.work_dir) if args.work_dir else out.with_name(out.name + POSITIONS_WORK_SUFFIX)
    for option, folder in (("--work-dir", work), ("--keep-cutouts", args.keep_cutouts)):
        if folder is not None and any(item.holds(Path(folder)) for item in inputs):
            raise ConfigError(f"{option} {folder}: is an input of this command; choose another folder")
    if positions_file is not None:
        positions = sky_positions(read_positions(positions_file), where=positions_file)
    else:
        n = len(args.ra)
        positions = Positions(np.array(args.ra, float), np.array(args.dec, float), frame=pd.DataFrame(index=range(n)))
    from galmet.nn.bundle import load_model
    from galmet.nn.device import resolve_device

    device = resolve_device(args.device)
    model = load_model(args.model)
    opts = _positions_options(args, work, device)
    job = PositionsJob(model, positions, opts)
    job.check()
    try:
        results = job.run()
    except KeyboardInterrupt:
        s = job.summary
        print(
            f"positions: interrupted; {s.resumed + s.predicted} rows are in finished shards in {work}; "
            "rerun the same command to resume",
            flush=True,
        )
        return 130
    table = positions_table(positions, results, model.targets, job.meta())
    if args.skip_bad:
        table = table[np.asarray(table["status"]) == STATUS_OK]
    write_positions_table(table, out)
    job.cleanup()
    summary = job.summary
    print(
        f"wrote {len(table)} rows to {out} ({summary.statuses.get(STATUS_OK, 0)} predicted, "
        f"{device.type}, {summary.rows / max(summary.seconds, 1e-9):.1f} rows/s)"
    )
    print(summary.line())
    _print_tables(table, model)
    return 0 if summary.statuses.get(STATUS_OK, 0) or not summary.rows else 1


def _positions_options(args, work: Path, device):
    """The :class:`~galmet.predict.positions.PositionsOptions` the parsed options describe (the server
    options drive the downloader; ``--data-release`` or ``--base-url``, when given, override the
    model's own release)."""
    from galmet.cli.options import base_url
    from galmet.predict.positions import PositionsOptions
    from galmet.sdss.download import DownloadOptions

    download = DownloadOptions(
        workers=args.workers,
        rate=args.rate,
        retries=args.retries,
        timeout=args.timeout,
        backoff_base=args.backoff_base,
        max_bytes=args.max_bytes,
        progress=False,
    )
    return PositionsOptions(
        batch_size=args.batch_size,
        device=str(device),
        tta=args.tta,
        tta_mode=args.tta_mode,
        tta_seed=args.tta_seed,
        shard_size=args.shard_size,
        progress=False if args.no_progress else None,
        work_dir=work,
        keep_cutouts=Path(args.keep_cutouts) if args.keep_cutouts else None,
        base_url=base_url(args) if (args.base_url or getattr(args, "data_release", None)) else None,
        download=download,
    )


def _print_tables(table, model) -> None:
    """The RMSE and flag lines of ``galmet predict``, on the predicted rows."""
    import numpy as np
    import pandas as pd

    from galmet.cli.commands.predict import _print_scores, _print_trust

    ok = np.asarray(table["status"]) == "ok"
    plain = pd.DataFrame(
        {
            name: np.asarray(getattr(table[name], "value", table[name]))[ok]
            for name in table.colnames
            if getattr(table[name], "ndim", 1) == 1 and type(table[name]).__name__ != "SkyCoord"
        }
    )
    plain.attrs["flag_checks"] = [c for c in str(table.meta.get("flag_checks", "")).split(",") if c]
    _print_scores(plain, model.targets)
    _print_trust(plain, model)
