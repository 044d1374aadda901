"""``galmet catalog``: build the paper's galaxy catalog from SkyServer, or cut a local table."""

from __future__ import annotations

from pathlib import Path

NAME = "catalog"
ORDER = 5
HELP = "build the paper's galaxy catalog (SDSS SkyServer query or a local table) into DATASET/catalog.parquet"
DESCRIPTION = """\
Select galaxies with the cuts of Wu & Boada (2019): MPA-JHU spectra (DR7) joined to DR14
photometry, rChi2 < 2, oh_p50 measured, 10 < ugriz < 25, 0 < u - r < 6, z > 0.02,
0 < zErr < 0.01, 10 < petroMag_r < 18 (every bound is an option below). The query runs on the
SkyServer SqlSearch service in ra bands (--chunks), each retried on failure; the merged,
de-duplicated catalog gets a seeded train/valid/test split column and is written atomically to
DATASET/catalog.parquet (with catalog.json: the cuts, the server and the SQL). Finished chunks
are kept in DATASET/.catalog_chunks/ until the end, so a rerun after a failure resumes.

Your own galaxies: --objids FILE looks up the paper's columns and labels of the SDSS objIDs in
FILE (a csv/parquet/fits/ecsv table with an objID column, or a text list, one objID a line) and
reports which fail which cut; failing rows are dropped (counted per reason) unless
--keep-failing keeps them, flagged (passes_cuts, failed_cuts); objIDs SkyServer does not know
are counted and named, never written. The input's row order and other columns are kept, and its
split column, if any, is respected. --cone RA DEC RADIUS selects the paper's galaxies within
RADIUS (a bare number is arcmin; 10arcmin, 0.5deg, 30arcsec; at most 3 deg) of RA DEC (degrees,
or sexagesimal: 12h30m49.4s +12d23m28s; a negative sexagesimal DEC needs a leading space,
" -5:12:30", or decimal degrees, -5.2083), nearest first.

Examples:
  galmet catalog --dry-run                    # print the SQL and the URLs, send nothing
  galmet catalog --out paper --limit 1000     # the first 1,000 galaxies
  galmet catalog --out paper                  # the full sample (about 142,000 galaxies)
  galmet catalog --out mine --from-table mpajhu_dr14.fits   # same cuts, local table
  galmet catalog --out mine --objids my_objids.txt          # your objIDs, with the paper's columns
  galmet catalog --out virgo --cone 187.7 12.4 30arcmin     # the paper's galaxies in a cone
"""


def _test_size(text: str):
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction (0.176) or a count (25000), got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1) or a whole count, got {text!r}")
    return int(value) if value >= 1 else value


def add_arguments(p) -> None:
    from galmet.cli.options import SEED, add_progress_option, add_server_options, number, option_type
    from galmet.paper import TEST_FRACTION, VALID_FRACTION
    from galmet.sdss.catalog import QUERY_RANGES, QUERY_SETTINGS, Cuts

    d = Cuts()
    p.add_argument("--out", metavar="DATASET", help="dataset directory to write catalog.parquet into")
    p.add_argument(
        "--from-table", metavar="FILE", help="apply the cuts to this FITS/CSV/parquet table instead of querying SDSS"
    )
    p.add_argument(
        "--objids",
        metavar="FILE",
        help="look up these SDSS objIDs (a table with an objID column, or a text list, one a line)",
    )
    p.add_argument(
        "--cone",
        nargs=3,
        metavar=("RA", "DEC", "RADIUS"),
        help="the paper's galaxies within RADIUS (arcmin unless it says: 10arcmin, 0.5deg; at most 3deg) "
        "of RA DEC (degrees or sexagesimal)",
    )
    p.add_argument(
        "--keep-failing",
        action="store_true",
        help="with --objids: keep the objIDs that fail a cut, flagged (passes_cuts, failed_cuts), not dropped",
    )
    p.add_argument("--dry-run", action="store_true", help="print the SQL and the request URLs; send nothing")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing DATASET/catalog.parquet (and catalog.json), also ones galmet did not write",
    )
    add_progress_option(p)
    g = add_server_options(p, QUERY_SETTINGS, survey_root=False)
    g.add_argument(
        "--limit", type=option_type(QUERY_RANGES["limit"]), metavar="N", help="stop after N galaxies (SQL TOP)"
    )
    g.add_argument(
        "--chunks",
        type=option_type(QUERY_RANGES["chunks"]),
        default=36,
        metavar="K",
        help="split the query into K ra bands (default: %(default)s)",
    )
    c = p.add_argument_group("cuts (defaults: the paper's)")
    c.add_argument("--rchi2-max", type=number(), default=d.rchi2_max, help="rChi2 < this (default: %(default)s)")
    c.add_argument(
        "--mag-min", type=number(), default=d.mag_min, help="each modelMag_ugriz > this (default: %(default)s)"
    )
    c.add_argument(
        "--mag-max", type=number(), default=d.mag_max, help="each modelMag_ugriz < this (default: %(default)s)"
    )
    c.add_argument("--u-r-min", type=number(), default=d.u_r_min, help="u - r > this (default: %(default)s)")
    c.add_argument("--u-r-max", type=number(), default=d.u_r_max, help="u - r < this (default: %(default)s)")
    c.add_argument("--z-min", type=number(), default=d.z_min, help="z > this (default: %(default)s)")
    c.add_argument("--zerr-max", type=number(), default=d.zerr_max, help="0 < zErr < this (default: %(default)s)")
    c.add_argument(
        "--petro-r-min", type=number(), default=d.petro_r_min, help="petroMag_r > this (default: %(default)s)"
    )
    c.add_argument(
        "--petro-r-max", type=number(), default=d.petro_r_max, help="petroMag_r < this (default: %(default)s)"
    )
    s = p.add_argument_group("split")
    s.add_argument(
        "--test", type=_test_size, default=TEST_FRACTION, help="held-out test fraction or count (default: %(default)s)"
    )
    s.add_argument(
        "--valid-fraction",
        type=number(0, 1, open_high=True),
        default=VALID_FRACTION,
        help="fraction of the rest for validation (default: %(default)s)",
    )
    s.add_argument("--seed", type=SEED, default=0, help="split seed, 0 to 2**32-1 (default: %(default)s)")


def _cuts(args):
    from galmet.sdss.catalog import Cuts

    return Cuts(
        rchi2_max=args.rchi2_max,
        mag_min=args.mag_min,
        mag_max=args.mag_max,
        u_r_min=args.u_r_min,
        u_r_max=args.u_r_max,
        z_min=args.z_min,
        zerr_max=args.zerr_max,
        petro_r_min=args.petro_r_min,
        petro_r_max=args.petro_r_max,
    )


def _check_output(args, out) -> None:
    """Refuse an --out that is a file, sits under a file, or would replace --from-table, a
    catalogue (without --overwrite) or catalogue settings galmet did not write (without --overwrite)."""
    from galmet.errors import ConfigError
    from galmet.io.safety import Input, check_output_dir
    from galmet.layout import CATALOG_JSON, CATALOG_PARQUET

    inputs = []
    if args.from_table:
        table = Path(args.from_table)
        if not table.exists():
            raise ConfigError(f"--from-table {table}: no such file")
        if table.is_dir():
            raise ConfigError(f"--from-table {table}: is a folder, not a table file")
        inputs.append(Input(table, "the --from-table input"))
    if args.objids:
        inputs.append(Input(Path(args.objids), "the --objids input"))
    check_output_dir(
        out,
        "--out",
        [(CATALOG_PARQUET, "parquet", "catalogue"), (CATALOG_JSON, "json", "catalogue settings")],
        inputs,
        overwrite=args.overwrite,
    )
    from galmet.data.dataset import find_catalog

    existing = find_catalog(out) if out.is_dir() else None
    if existing is not None and not args.overwrite:
        raise ConfigError(f"{existing} already exists (use --overwrite to replace it)")


def run(args) -> int:
    from galmet.cli.options import data_release, server_client
    from galmet.errors import ConfigError
    from galmet.paper import DATA_RELEASE
    from galmet.sdss.catalog import build_sql, chunk_queries

    cuts = _cuts(args)
    cuts.check()
    client = server_client(args)
    selection = _selection(args, cuts)  # every objID / the cone checked before anything is sent or written
    if args.dry_run and selection is not None:
        return _dry_run_selection(args, client, selection)
    if args.dry_run:
        print(
            f"-- the paper's query (SkyServer SQL, {DATA_RELEASE} schema) for {data_release(args) or client.base_url}"
        )
        print(build_sql(cuts, top=args.limit))
        queries = chunk_queries(cuts, args.chunks, args.limit)
        print(f"-- sent as {len(queries)} requests (GET, one per ra band):")
        for label, sql in queries:
            print(f"{label}: {client.sql_url(sql)}")
        return 0
    if not args.out:
        raise ConfigError("--out DATASET is required (or use --dry-run)")
    out = Path(args.out)
    _check_output(args, out)
    from galmet.io.locks import locked_folder

    with locked_folder(out, "'galmet catalog'"):  # one run per dataset folder at a time
        _check_output(args, out)  # again, under the lock: another run may have written there meanwhile
        return _write_catalog(args, out, cuts, client, selection)


def _selection(args, cuts):
    """The user's objIDs (a DataFrame) or cone ((ra, dec) degrees, radius arcmin), checked; None
    for the paper's query or --from-table. ConfigError for options that do not go together."""
    from galmet.errors import ConfigError

    chosen = [f for f, v in (("--from-table", args.from_table), ("--objids", args.objids), ("--cone", args.cone)) if v]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} do not go together: give one")
    if args.keep_failing and not args.objids:
        raise ConfigError("--keep-failing applies to --objids only")
    if args.objids:
        if args.limit is not None:
            raise ConfigError("--limit does not apply to --objids (every objID given is looked up)")
        from galmet.sdss.by_objid import read_objid_file

        return read_objid_file(args.objids)
    if args.cone:
        from galmet.sdss.cone import cone_center, parse_radius

        try:
            return cone_center(*args.cone[:2]), parse_radius(args.cone[2])
        except ConfigError as exc:
            raise ConfigError(f"--cone: {exc}") from None
    return None


def _dry_run_selection(args, client, selection) -> int:
    """Print the SQL and the URLs of --objids or --cone; send nothing."""
    import pandas as pd

    from galmet.sdss.by_objid import objid_chunks, objid_sql
    from galmet.sdss.cone import cone_sql

    where = args.data_release or client.base_url
    if isinstance(selection, pd.DataFrame):
        chunks = objid_chunks(client, selection["objID"].to_numpy())
        print(f"-- {len(selection)} objIDs on {where}, sent as {len(chunks)} requests (GET); the first:")
        print(objid_sql(chunks[0]))
        for k, chunk in enumerate(chunks):
            print(f"objID chunk {k + 1}/{len(chunks)}: {client.sql_url(objid_sql(chunk))}")
        return 0
    (ra, dec), arcmin = selection
    sql = cone_sql(ra, dec, arcmin, _cuts(args), args.limit)
    print(f"-- the paper's galaxies within {arcmin:g} arcmin of ra {ra:g} dec {dec:g} on {where}:")
    print(sql)
    print(f"cone: {client.sql_url(sql)}")
    return 0


def _write_catalog(args, out: Path, cuts, client, selection=None) -> int:
    """Query (or read) the catalogue, split it and write it with its settings into ``out`` (locked)."""
    import json

    from galmet.cli.options import data_release
    from galmet.data.dataset import write_catalog
    from galmet.data.splits import assign_splits
    from galmet.errors import DataError
    from galmet.io.atomic import atomic_write_text
    from galmet.layout import CATALOG_CHUNKS, CATALOG_JSON, CATALOG_PARQUET
    from galmet.sdss.catalog import build_sql, catalog_from_table, cuts_config, query_catalog, remove_chunk_cache

    target = out / CATALOG_PARQUET
    source: dict[str, object]
    if selection is not None:
        catalog, source = _lookup(args, client, cuts, selection)
    elif args.from_table:
        catalog = catalog_from_table(args.from_table, cuts)
        source = {"from_table": str(Path(args.from_table).resolve())}
    else:
        if args.data_release:  # a release other than the paper's schema may lack a table: ask first
            from galmet.sdss.skyserver import check_tables

            check_tables(client, release=args.data_release)
        cache = out / CATALOG_CHUNKS
        catalog = query_catalog(client, cuts, args.chunks, args.limit, progress=not args.no_progress, cache_dir=cache)
        source = {
            "base_url": client.base_url,
            "data_release": data_release(args),
            "chunks": args.chunks,
            "limit": args.limit,
            "sql": build_sql(cuts, top=args.limit),
        }
    if len(catalog) == 0:
        raise DataError(f"{args.from_table or client.base_url}: no galaxies pass the cuts")
    catalog["split"] = assign_splits(catalog, test=args.test, valid_fraction=args.valid_fraction, seed=args.seed)
    write_catalog(out, catalog)
    config = {
        "cuts": cuts_config(cuts),
        **source,
        "rows": len(catalog),
        "split": {"test": args.test, "valid_fraction": args.valid_fraction, "seed": args.seed},
    }
    atomic_write_text(out / CATALOG_JSON, json.dumps(config, indent=2) + "\n")
    remove_chunk_cache(out / CATALOG_CHUNKS)  # only the chunk files galmet wrote
    counts = catalog["split"].value_counts()
    parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("train", "valid", "test"))
    print(f"catalog: {len(catalog)} galaxies ({parts}) -> {target}")
    return 0


def _lookup(args, client, cuts, selection):
    """The catalogue of --objids or --cone and its catalog.json entries; tells what became of the objIDs."""
    import pandas as pd

    from galmet.cli.options import data_release
    from galmet.runs.catalog_lookup import cone_catalog, describe_objids, objid_catalog

    if args.data_release:  # a release other than the paper's schema may lack a table: ask first
        from galmet.sdss.skyserver import check_tables

        check_tables(client, release=args.data_release)
    source: dict[str, object] = {"base_url": client.base_url, "data_release": data_release(args)}
    if isinstance(selection, pd.DataFrame):
        catalog, info = objid_catalog(
            client, selection, cuts, args.keep_failing, progress=not args.no_progress, where=args.objids
        )
        print("\n".join(describe_objids(info)))
        return catalog, {**source, "objids": {"input": str(Path(args.objids).resolve()), **info}}
    catalog, info = cone_catalog(client, *selection, cuts, args.limit)
    return catalog, {**source, **info}
