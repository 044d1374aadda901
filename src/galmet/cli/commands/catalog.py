"""``galmet catalog``: build the paper's galaxy catalog from SkyServer, or cut a local table."""

from __future__ import annotations

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

Examples:
  galmet catalog --dry-run                    # print the SQL and the URLs, send nothing
  galmet catalog --out paper --limit 1000     # the first 1,000 galaxies
  galmet catalog --out paper                  # the full sample (about 142,000 galaxies)
  galmet catalog --out mine --from-table mpajhu_dr14.fits   # same cuts, local table
"""


def _test_size(text: str):
    try:
        value = float(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a fraction (0.176) or a count (25000), got {text!r}") from None
    return int(value) if value >= 1 and value == int(value) and "." not in text else value


def add_arguments(p) -> None:
    from galmet.cli.options import ServerDefaults, add_progress_option, add_server_options
    from galmet.sdss.catalog import Cuts

    d = Cuts()
    p.add_argument("--out", metavar="DATASET", help="dataset directory to write catalog.parquet into")
    p.add_argument(
        "--from-table", metavar="FILE", help="apply the cuts to this FITS/CSV/parquet table instead of querying SDSS"
    )
    p.add_argument("--dry-run", action="store_true", help="print the SQL and the request URLs; send nothing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing DATASET/catalog.parquet")
    add_progress_option(p)
    g = add_server_options(p, ServerDefaults(timeout=180.0, retries=5, rate=1.0, backoff_base=2.0))
    g.add_argument("--limit", type=int, metavar="N", help="stop after N galaxies (SQL TOP)")
    g.add_argument(
        "--chunks", type=int, default=36, metavar="K", help="split the query into K ra bands (default: %(default)s)"
    )
    c = p.add_argument_group("cuts (defaults: the paper's)")
    c.add_argument("--rchi2-max", type=float, default=d.rchi2_max, help="rChi2 < this (default: %(default)s)")
    c.add_argument("--mag-min", type=float, default=d.mag_min, help="each modelMag_ugriz > this (default: %(default)s)")
    c.add_argument("--mag-max", type=float, default=d.mag_max, help="each modelMag_ugriz < this (default: %(default)s)")
    c.add_argument("--u-r-min", type=float, default=d.u_r_min, help="u - r > this (default: %(default)s)")
    c.add_argument("--u-r-max", type=float, default=d.u_r_max, help="u - r < this (default: %(default)s)")
    c.add_argument("--z-min", type=float, default=d.z_min, help="z > this (default: %(default)s)")
    c.add_argument("--zerr-max", type=float, default=d.zerr_max, help="0 < zErr < this (default: %(default)s)")
    c.add_argument("--petro-r-min", type=float, default=d.petro_r_min, help="petroMag_r > this (default: %(default)s)")
    c.add_argument("--petro-r-max", type=float, default=d.petro_r_max, help="petroMag_r < this (default: %(default)s)")
    s = p.add_argument_group("split")
    s.add_argument(
        "--test", type=_test_size, default=0.176, help="held-out test fraction or count (default: %(default)s)"
    )
    s.add_argument(
        "--valid-fraction", type=float, default=0.2, help="fraction of the rest for validation (default: %(default)s)"
    )
    s.add_argument("--seed", type=int, default=0, help="split seed (default: %(default)s)")


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


def _check(args) -> None:
    from galmet.errors import ConfigError

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    if args.chunks < 1:
        raise ConfigError(f"--chunks must be at least 1, got {args.chunks}")


def run(args) -> int:
    import json
    import shutil
    from pathlib import Path

    from galmet.cli.options import server_client
    from galmet.data.dataset import write_catalog
    from galmet.data.splits import assign_splits
    from galmet.errors import ConfigError, DataError
    from galmet.io.atomic import atomic_write_text
    from galmet.layout import CATALOG_CHUNKS, CATALOG_JSON, CATALOG_PARQUET
    from galmet.sdss.catalog import build_sql, catalog_from_table, chunk_queries, cuts_config, query_catalog

    _check(args)
    cuts = _cuts(args)
    client = server_client(args)
    if args.dry_run:
        print("-- the paper's query (SkyServer SQL, DR14 schema)")
        print(build_sql(cuts, top=args.limit))
        queries = chunk_queries(cuts, args.chunks, args.limit)
        print(f"-- sent as {len(queries)} requests (GET, one per ra band):")
        for label, sql in queries:
            print(f"{label}: {client.sql_url(sql)}")
        return 0
    if not args.out:
        raise ConfigError("--out DATASET is required (or use --dry-run)")
    out = Path(args.out)
    target = out / CATALOG_PARQUET
    if target.exists() and not args.overwrite:
        raise ConfigError(f"{target} already exists (use --overwrite to replace it)")

    if args.from_table:
        catalog = catalog_from_table(args.from_table, cuts)
        source = {"from_table": str(Path(args.from_table).resolve())}
    else:
        cache = out / CATALOG_CHUNKS
        catalog = query_catalog(client, cuts, args.chunks, args.limit, progress=not args.no_progress, cache_dir=cache)
        source = {
            "base_url": client.base_url,
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
    shutil.rmtree(out / CATALOG_CHUNKS, ignore_errors=True)
    counts = catalog["split"].value_counts()
    parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("train", "valid", "test"))
    print(f"catalog: {len(catalog)} galaxies ({parts}) -> {target}")
    return 0
