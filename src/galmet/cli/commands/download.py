"""``galmet download``: fetch the catalog's cutouts (SDSS, Legacy Surveys, PS1), resumably and politely."""

from __future__ import annotations

NAME = "download"
ORDER = 6
HELP = "fetch the cutouts (SDSS, Legacy Surveys, PS1) of DATASET/catalog.parquet into DATASET/images/"
DESCRIPTION = """\
Fetch a cutout for every catalog row that has no valid image yet, into DATASET/images/<objID>.jpg
(or .fits). --survey sdss (default): <base-url>/SkyServerWS/ImgCutout/getjpeg, the paper's
cutouts (128 x 128 pixels at 0.296"/pixel). --survey legacy: the Legacy Survey viewer,
<base-url>/viewer/cutout.jpg or cutout.fits (--layer ls-dr10, ls-dr9-north, ls-dr9-south; FITS:
g, r, z fluxes in nanomaggies). --survey ps1: <base-url>/cgi-bin/ps1filenames.py, then
fitscut.cgi (FITS by default: g, r, i linear fluxes; 0.25"/pixel only). --scale and --size
default to the survey's. Any catalogue with objID, ra, dec will do: an SDSS catalogue with
--survey legacy is the cross-survey training set (MPA-JHU labels, Legacy Surveys images).
A dataset folder holds one survey's (and layer's) cutouts: --catalog PATH takes the catalogue of
another folder (copied as DATASET/catalog.parquet) so that another survey's cutouts get a folder
of their own; a run of another survey or layer over a folder's cutouts is refused (exit 2).
A position where the survey has no imaging (blank sky, no PS1 image) is a permanent failure of
its own, "outside footprint", which counts toward neither failure budget.
Requests run concurrently (--workers) under a global rate limit (--rate), with retries,
exponential backoff and jitter (Retry-After is honoured). Each image is decoded and checked
before it is written atomically; DATASET/manifest.parquet records status, attempts and last
error per objID. Rerunning resumes: valid images are kept, permanent failures (404, bad
bodies) of the same survey, layer, format, size and scale are skipped unless --retry-failed.
Ctrl-C stops cleanly with a summary.

Every request has a total deadline (--timeout: connection, headers and body) and a body cap
(--max-bytes); a cutout must be one JPEG of the requested size, checked from its header before it
is decoded, with nothing after its end (junk appended to a valid image is refused).

Exit status: 0 when done (failures within --max-failures), 1 when more than --max-failures
of the images failed, --max-consecutive-failures fetches in a row failed, or --failure-budget
requests in a row got no answer (an unreachable server; the run stops early, a rerun resumes),
130 when interrupted, 2 for bad input.

Examples:
  galmet download paper                          # 8 workers, 5 requests/s
  galmet download paper --scale-by-size          # the authors' field-scaled mode
  galmet download paper --retry-failed --workers 2 --rate 1
  galmet download xs --catalog paper/catalog.parquet --survey legacy  # Legacy cutouts, new folder
  galmet download xf --catalog paper/catalog.parquet --survey legacy --format fits  # grz fluxes
  galmet download xp --catalog paper/catalog.parquet --survey ps1     # gri fluxes at 0.25"/pixel
"""


def add_arguments(p) -> None:
    from galmet.cli.options import add_progress_option, add_server_options, add_survey_options, option_type
    from galmet.data.surveys import SURVEYS
    from galmet.sdss.download import DOWNLOAD_RANGES, DownloadOptions

    d = DownloadOptions()
    p.add_argument("dataset", help="dataset directory with catalog.parquet (objID, ra, dec); with --catalog, a new one")
    p.add_argument(
        "--catalog",
        metavar="PATH",
        help="take the catalogue from this table (objID, ra, dec; e.g. another dataset's catalog.parquet), "
        "copied as DATASET/catalog.parquet: another survey's cutouts of a catalogue in a folder of their own "
        "(refused when DATASET has another catalogue)",
    )
    g = add_server_options(p, d.settings())
    g.add_argument(
        "--workers",
        type=option_type(DOWNLOAD_RANGES["workers"]),
        default=d.workers,
        help="concurrent requests (default: %(default)s)",
    )
    add_survey_options(p)
    p.add_argument(
        "--scale",
        type=option_type(DOWNLOAD_RANGES["scale"]),
        help="arcsec per pixel (default: the survey's: "
        + ", ".join(f"{s.name} {s.default_pixel_scale:g}" for s in SURVEYS.values())
        + ")",
    )
    p.add_argument(
        "--size",
        type=option_type(DOWNLOAD_RANGES["size"]),
        help=f"width = height in pixels (default: the survey's, {d.size})",
    )
    p.add_argument(
        "--scale-by-size",
        action="store_true",
        help="scale = 2 * petroR90_r / 0.396 / size per galaxy (the authors' alternative)",
    )
    p.add_argument(
        "--max-failures",
        type=option_type(DOWNLOAD_RANGES["max_failures"]),
        default=d.max_failures,
        help="fraction of failures that stops the run with exit 1 (default: %(default)s)",
    )
    p.add_argument(
        "--max-consecutive-failures",
        type=option_type(DOWNLOAD_RANGES["max_consecutive_failures"]),
        default=d.max_consecutive_failures,
        metavar="N",
        help="stop with exit 1 after N fetches in a row failed (a dead server; default: %(default)s)",
    )
    p.add_argument(
        "--failure-budget",
        type=option_type(DOWNLOAD_RANGES["failure_budget"]),
        default=d.failure_budget,
        metavar="N",
        help="stop with exit 1 after N requests in a row, over all workers, got no answer (connection "
        "refused, DNS failure, timed out: an unreachable server; default: %(default)s)",
    )
    p.add_argument("--retry-failed", action="store_true", help="try permanent failures of earlier runs again")
    p.add_argument(
        "--verify",
        action="store_true",
        help="decode every existing image, not only those the manifest does not list as ok",
    )
    p.add_argument(
        "--manifest-every",
        type=option_type(DOWNLOAD_RANGES["manifest_every"]),
        default=d.manifest_every,
        help="seconds between manifest rewrites (default: %(default)s)",
    )
    add_progress_option(p)
    from galmet.cli.options import add_overwrite_option

    add_overwrite_option(
        p, "replace a manifest.parquet, and fetch a cutout over a file at its name, that galmet did not write"
    )


def run(args) -> int:
    import re

    from galmet.cli.options import survey_base_url
    from galmet.sdss.download import DownloadOptions, download_cutouts

    opts = DownloadOptions(
        base_url=survey_base_url(args),
        survey=args.survey,
        layer=args.layer,
        format=args.format,
        workers=args.workers,
        rate=args.rate,
        retries=args.retries,
        timeout=args.timeout,
        backoff_base=args.backoff_base,
        scale=args.scale,
        size=args.size,
        scale_by_size=args.scale_by_size,
        max_failures=args.max_failures,
        max_consecutive_failures=args.max_consecutive_failures,
        failure_budget=args.failure_budget,
        retry_failed=args.retry_failed,
        verify=args.verify,
        manifest_every=args.manifest_every,
        progress=not args.no_progress,
        max_bytes=args.max_bytes,
    )
    summary = download_cutouts(args.dataset, opts, overwrite=args.overwrite, catalog=args.catalog)
    line = summary.line()
    # the budget that stopped it, as the flag
    for param in ("max_consecutive_failures", "max_failures", "failure_budget"):
        line = re.sub(rf"\b{param}\b", "--" + param.replace("_", "-"), line)
    print(line, flush=True)
    if summary.interrupted:
        return 130
    return 1 if summary.aborted else 0
