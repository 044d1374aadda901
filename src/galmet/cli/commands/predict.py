"""``galmet predict``: run a model bundle over a dataset, an image folder, or sky positions."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

NAME = "predict"
ORDER = 50
#: library parameters whose flag has another name (galmet.predict_catalog's n_workers)
PARAM_FLAGS = {"n_workers": "--local-workers"}
HELP = "predict metallicity (or any trained target) for images with a model bundle, with TTA"
DESCRIPTION = """\
Load a model bundle (model.pt, or a training run directory holding one) and predict every
image of INPUT: a dataset directory (catalog + images/) or a plain folder of JPEG/PNG images.
Test-time augmentation (default) averages the 8 dihedral views (rotations by 90 degrees and
flips); --tta-mode fastai averages instead the image and 4 randomly augmented copies (fastai
0.7's TTA, as the paper did; seeded by --tta-seed). <target>_spread is the views' spread (NaN
with --no-tta), not an error bar. The output format follows the suffix of --out (.parquet, .csv,
.fits, .ecsv); it is written atomically. FITS and ECSV carry each column's unit (dex, deg, ...)
and the provenance (galmet version, model sha256, command, date) in their header.

Columns: objID (or file), split (dataset directories), <target>_pred, <target>_spread,
<target>_sigma (--loss gaussian models), <target>_err and <target>_lo68/_hi68/_lo95/_hi95
(calibrated bundles: 'galmet calibrate', or 'galmet train --folds'), <target> (truth, when the
catalog has it), lgm_tot_p50/oh_p50/z/ra/dec/oh_p16/oh_p84 when present, ood_score and flags.

flags (bits; 0 = nothing raised): 1 prediction outside the training label range, 2 catalogue
label outside it, 4 embedding out of the training domain, 8 image mostly empty, 16 saturated,
32 source off-centre, 64 fails the paper's photometric cuts, 128 image statistics out of the
training domain, 256 another survey's images (--allow-other-survey; see docs/model.md).

The model knows its survey: images whose dataset records another survey, layer, bands or
format than the model was trained on are refused in one line (exit 2) before any is decoded;
--allow-other-survey predicts them anyway for a transfer experiment (every row flagged 256).

Sky positions: --ra/--dec (decimal degrees or sexagesimal, repeat for several positions; a
southern one as it is, --dec -05:12:30) or --positions FILE, a
table in any format astropy reads (FITS, VOTable, ECSV, CSV, parquet) with ra/dec columns (ra,
RA, RAJ2000, _RAJ2000, RA_ICRS ... in degrees, with angular units, or sexagesimal text;
columns of numbers first, so a VizieR export is read from its degrees). The cutouts
there are fetched with the model's own imaging (survey: SDSS ImgCutout, the Legacy Surveys
viewer or PS1; its layer, format, pixel scale, size, data release) by the
downloader (--workers concurrent requests under --rate, retries, every cutout validated), and
predicted in shards while the rest are fetched. Output (.parquet, .csv, .ecsv, .fits; units and
provenance in all but CSV): the input's columns, ra/dec (deg), the predictions, then status (ok,
fetch failed, bad image, outside footprint, invalid position, not in archive) and error per
row: a bad row never stops the run. --archive DIR predicts from a local cutout archive (a dataset
directory, e.g. a mirror of the survey's cutouts) the rows with a cutout there within
--match-radius, without a server; the rest are fetched when --base-url or --data-release is
given. Shards and cutouts live in --work-dir (default: OUT.galmet-work); after Ctrl-C or a kill
the same command resumes without fetching or predicting finished rows again.
The cutouts are deleted at the end unless --keep-cutouts DIR. Exit status: 0 when done, 1 when
no row could be predicted, 130 when interrupted (rerun to resume), 2 for bad input.

Catalogue scale: --positions may be a folder (a parquet dataset or a HATS catalogue) and --out a
folder (a HATS catalogue); with either, or --scheduler, --shard or --partition-rows, the rows are
split into partitions of --partition-rows, one task each, on a local Dask cluster (one worker per
core), on a running scheduler (--scheduler tcp://HOST:PORT or a scheduler file: Slurm through
dask-jobqueue, Kubernetes ...), or, for a job array, --shard I/N runs every N-th partition here
without Dask; the run that finds every partition done writes --out. A rerun skips finished
partitions (the work folder keeps them); a dead server stops the job (exit 2) with one line.

Examples:
  galmet predict runs/r1/model.pt ../shared/data/sdss_sample --out preds.parquet --split test
  galmet predict runs/r1 my_cutouts/ --out preds.csv --no-tta --device cpu
  galmet predict runs/r1/model.pt --ra 12h30m49.4s --dec +12d23m28s --out m87.ecsv
  galmet predict runs/r1/model.pt --ra 185.0 --dec 15.8 --ra 186.2 --dec 16.0 --out two.csv
  galmet predict runs/r1/model.pt --positions targets.fits --out targets_pred.fits \\
      --keep-cutouts cutouts/
  galmet predict sdss400 --positions big.parquet --out big_pred.parquet --partition-rows 20000
  galmet predict sdss400 --positions big.parquet --out big_pred.parquet --scheduler scheduler.json
"""

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    from galmet.cli.options import add_progress_option

    p.add_argument(
        "model", help="model bundle (model.pt), a run directory that holds one, or a model name (galmet models)"
    )
    p.add_argument(
        "input",
        nargs="?",
        help="dataset directory, folder of images, or a table of sky positions (as --positions)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="predictions file: .parquet, .csv, or .fits / .ecsv (with units and provenance)",
    )
    _add_inference_arguments(p)
    p.add_argument(
        "--split", nargs="+", metavar="SPLIT", help="only these splits of a dataset directory (train, valid, test)"
    )
    p.add_argument("--skip-bad", action="store_true", help="drop unreadable/wrong-size images instead of failing")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the decode cache images.npy")
    add_progress_option(p)
    from galmet.cli.options import add_other_survey_option, add_overwrite_option

    add_other_survey_option(p)

    add_overwrite_option(
        p,
        "replace an existing --out file that galmet did not write (work and cutouts folders "
        "must hold only galmet's files even so)",
    )
    _add_positions_arguments(p)
    _add_catalog_arguments(p)


def _add_positions_arguments(p) -> None:
    """The options of predicting at sky positions: the positions, the work folder, the server."""
    from galmet.cli.options import add_server_options, integer, number, option_type
    from galmet.data.archive import DEFAULT_MATCH_RADIUS, MAX_MATCH_RADIUS
    from galmet.paper import DATA_RELEASE
    from galmet.sdss.download import DOWNLOAD_RANGES, MAX_WORKERS, DownloadOptions

    s = p.add_argument_group("sky positions")
    s.add_argument(
        "--ra",
        action="append",
        type=_angle("ra"),
        metavar="ANGLE",
        help="right ascension: degrees (187.7) or sexagesimal (12h30m49.4s, 12:30:49.4); repeat with --dec",
    )
    s.add_argument(
        "--dec",
        action="append",
        type=_angle("dec"),
        metavar="ANGLE",
        help="declination: degrees or sexagesimal (+12d23m28s, -05:12:30); repeat with --ra",
    )
    s.add_argument(
        "--positions",
        metavar="PATH",
        help="table of positions: FITS, VOTable, ECSV, CSV or parquet; or a parquet dataset or HATS folder",
    )
    s.add_argument(
        "--work-dir", metavar="DIR", help="shards and cutouts of the run, for resuming (default: OUT.galmet-work)"
    )
    s.add_argument("--keep-cutouts", metavar="DIR", help="keep the cutouts in DIR (a galmet dataset directory)")
    s.add_argument(
        "--shard-size", type=integer(1, 1 << 20), default=1024, help="rows per shard of results (default: 1024)"
    )
    s.add_argument(
        "--archive",
        metavar="DIR",
        help="a local cutout archive (a dataset directory: catalog with objID, ra, dec and images/<objID>.jpg, "
        "e.g. a mirror of the survey's cutouts or a --keep-cutouts folder): rows with a cutout there are "
        "predicted from it, without a server; the others are fetched when --base-url or --data-release is "
        "given, else get status 'not in archive'",
    )
    s.add_argument(
        "--match-radius",
        type=number(0, MAX_MATCH_RADIUS, open_low=True, what="a number of arcsec"),
        default=DEFAULT_MATCH_RADIUS,
        metavar="ARCSEC",
        help="an archived cutout matches a row when its centre is this close (default: %(default)s arcsec)",
    )
    _add_survey_arguments(s)
    d = DownloadOptions()
    g = add_server_options(p)
    g.add_argument(
        "--workers", type=integer(1, MAX_WORKERS), default=d.workers, help="concurrent requests (default: %(default)s)"
    )
    g.add_argument(
        "--max-consecutive-failures",
        type=option_type(DOWNLOAD_RANGES["max_consecutive_failures"]),
        default=d.max_consecutive_failures,
        metavar="N",
        help="stop (exit 2; a rerun resumes) after N cutouts in a row failed to fetch after their retries: "
        "a dead server (default: %(default)s)",
    )
    g.add_argument(
        "--failure-budget",
        type=option_type(DOWNLOAD_RANGES["failure_budget"]),
        default=d.failure_budget,
        metavar="N",
        help="stop (exit 2; a rerun resumes) after N requests in a row, over all workers, got no answer "
        "(connection refused, DNS failure, timed out): an unreachable server (default: %(default)s)",
    )
    for action in g._group_actions:  # the model's imaging names the server, unless one is given
        if action.dest == "base_url":
            action.default = None
            action.help = (
                "root of the survey's cutout service, its paths used unchanged (default: the survey's; for SDSS the "
                f"model's data release's SkyServer, {DATA_RELEASE} for bundles that do not record one)"
            )
        elif action.dest == "data_release":
            action.help = "fetch from this release's SkyServer instead of the one the model was trained on"


def _add_survey_arguments(s) -> None:
    """--survey, --layer, --format: fetch another survey's cutouts than the model's (a transfer experiment)."""
    from galmet.cli.options import format_name, survey_name
    from galmet.data.surveys import FORMATS, SURVEYS

    s.add_argument(
        "--survey",
        type=survey_name,
        choices=tuple(SURVEYS),
        help="fetch this survey's cutouts instead of the model's own (a transfer experiment: needs "
        "--allow-other-survey; every row is flagged); default: the survey the model was trained on",
    )
    s.add_argument(
        "--layer",
        type=survey_name,
        metavar="LAYER",
        help="the survey's image layer (legacy: ls-dr10, ls-dr9-north, ls-dr9-south); default: the model's",
    )
    s.add_argument(
        "--format",
        type=format_name,
        choices=FORMATS,
        help="cutout format to fetch: jpeg or fits, any case (default: the model's)",
    )


def _add_inference_arguments(p) -> None:
    """How the model runs: --tta, --tta-mode, --tta-seed, --batch-size, --device, --engine."""
    from galmet.cli.options import SEED, add_engine_option, integer
    from galmet.nn.options import MAX_BATCH_SIZE, TTA_MODES, InferenceOptions

    DEFAULTS = InferenceOptions()
    p.add_argument(
        "--tta", action=argparse.BooleanOptionalAction, default=True, help="test-time augmentation (default: on)"
    )
    p.add_argument(
        "--tta-mode",
        choices=TTA_MODES,
        default=DEFAULTS.tta_mode,
        help="dihedral: the 8 fixed rotations/flips (default; exact symmetries, deterministic); fastai: the image "
        "and 4 copies with the training augmentation (fastai 0.7's TTA, the paper's)",
    )
    p.add_argument(
        "--tta-seed",
        type=SEED,
        default=DEFAULTS.tta_seed,
        help="seed of the fastai-style TTA views (default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=integer(1, MAX_BATCH_SIZE),
        default=DEFAULTS.batch_size,
        help="images per forward pass (default: %(default)s)",
    )
    p.add_argument("--device", default=DEFAULTS.device, help="auto, cpu or cuda (default: auto = cuda when available)")
    add_engine_option(p)


def _add_catalog_arguments(p) -> None:
    """The options of a catalogue job (:mod:`galmet.cli.partitioned`)."""
    from galmet.cli.options import integer

    c = p.add_argument_group("catalogue scale (galmet.predict_catalog: one task per partition, on Dask)")
    c.add_argument(
        "--scheduler",
        metavar="ADDRESS|FILE",
        help="run the partitions on this running Dask scheduler (tcp://HOST:PORT, or its scheduler file); "
        "default: a local cluster, one worker per core",
    )
    c.add_argument(
        "--shard", metavar="I/N", help="run only partitions I, I+N, I+2N ... here, without Dask (a job array)"
    )
    c.add_argument(
        "--partition-rows",
        type=integer(1, 1 << 22),
        metavar="N",
        help="rows per partition of a catalogue job (default: 10000)",
    )
    c.add_argument(
        "--local-workers",
        type=integer(1, 4096),
        metavar="N",
        help="worker processes of the local Dask cluster (default: one per core; not with --scheduler or --shard)",
    )


def _angle(kind: str):
    """argparse type: an angle in degrees from decimal degrees or sexagesimal text."""

    def parse(text: str) -> float:
        from galmet.sdss.coords import parse_angle

        try:
            return parse_angle(text, kind)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "angle"
    return parse


def run(args) -> int:
    from galmet.cli.partitioned import run_catalog, wants_catalog
    from galmet.cli.positions import run_positions
    from galmet.cli.predict_output import print_dataset_done
    from galmet.errors import ConfigError
    from galmet.io.tables import require_table_format, table_provenance, write_table
    from galmet.nn.bundle import load_model
    from galmet.nn.device import resolve_device
    from galmet.nn.inference import named_model

    if wants_catalog(args):
        return run_catalog(args)
    if Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out}: is a directory; give a file name (.parquet, .csv or .fits)")
    ras, decs = args.ra or [], args.dec or []
    if len(ras) != len(decs):
        raise ConfigError(f"--ra and --dec go together (got {len(ras)} --ra and {len(decs)} --dec)")
    table_input = args.input is not None and Path(args.input).is_file()
    sources = [bool(ras), args.positions is not None, args.input is not None]
    if sum(sources) != 1:
        raise ConfigError(
            "give one of INPUT (a dataset directory, image folder or positions table), --ra/--dec, or --positions"
            if sum(sources) > 1
            else "give INPUT (a dataset directory, image folder or positions table), --ra/--dec, or --positions"
        )
    if ras or args.positions is not None or table_input:
        return run_positions(args, args.positions or (args.input if table_input else None))
    require_table_format(args.out, param="out")
    for option in ("work_dir", "keep_cutouts", "archive", "survey", "layer", "format"):
        if getattr(args, option) is not None:
            raise ConfigError(f"--{option.replace('_', '-')} applies to sky positions only")
    _check_output(args)
    device = resolve_device(args.device)
    model = load_model(args.model)
    table, seconds = _predict_input(model, args, device)
    provenance = table_provenance(model=model.path)
    if model.name:  # a registered model: its name and card version
        provenance["model_name"] = named_model(model)
    provenance["engine"] = str(table.attrs.get("engine") or "eager")
    if table.attrs.get("other_survey"):  # a transfer experiment: every row is flagged OTHER_SURVEY
        provenance["other_survey"] = str(table.attrs["other_survey"])
    write_table(table, args.out, provenance=provenance)
    where = device.type if device.type != "cpu" else f"cpu, {provenance['engine']}"
    print_dataset_done(table, model, args.out, args.tta, args.tta_mode, where, seconds)
    return 0


def _check_output(args) -> None:
    """Refuse an --out that would replace an input (the model, the dataset's catalogue or images,
    the positions table) or a file of another kind."""
    from galmet.data.dataset import find_catalog
    from galmet.errors import ConfigError
    from galmet.io.safety import Input, check_output_file, dataset_inputs
    from galmet.io.tables import require_table_format
    from galmet.registry.resolve import model_input

    inputs = [model_input(args.model)]
    if args.input is not None:
        source = Path(args.input)
        if source.is_dir():
            inputs += dataset_inputs(source, "the input dataset")
            if args.split and find_catalog(source) is None:
                raise ConfigError(
                    f"--split: {source} is a plain image folder: it has no catalogue and so no split; "
                    f"predict it whole (drop --split)"
                )
        else:
            inputs.append(Input(source, "the input table"))
    fmt = require_table_format(args.out, param="out")
    check_output_file(args.out, "--out", fmt.kind or "csv", "predictions table", inputs, overwrite=args.overwrite)


def _predict_input(model, args, device):
    """(predictions table, seconds spent predicting) for a dataset directory or image folder."""
    from galmet.cli.options import inference_options
    from galmet.columns import FILE, SPLIT
    from galmet.data.dataset import load_dataset
    from galmet.errors import DataError
    from galmet.io.tables import check_fits_out
    from galmet.predict.dataset import predict_dataset

    # one line for a set made otherwise (another survey, size or scale), before decoding
    model.check_dataset_imaging(args.input, allow_other_survey=args.allow_other_survey)
    ds = load_dataset(
        args.input,
        targets=[],
        on_error="skip" if args.skip_bad else "raise",
        size=model.image_size,
        cache=not args.no_cache,
        stretch=model.imaging.stretch,  # FITS fluxes: the model's own stretch
        progress=False if args.no_progress else None,
    )
    if args.split:
        rows = ds.split_indices(args.split)
        if len(rows) == 0:
            raise DataError(f"{args.input}: no rows in split {', '.join(args.split)}")
        ds = ds.subset(rows)
    carried = [c for c in (FILE, SPLIT) if c in ds.catalog.columns]  # (text the predictions carry)
    check_fits_out(args.out, {c: ds.catalog[c].astype(str).to_numpy() for c in carried}, str(args.input))
    if ds.skipped:
        print(f"skipped {len(ds.skipped)} bad rows (first: {ds.skipped[0]})")
    t0 = time.perf_counter()
    options = inference_options(args, device)
    table = predict_dataset(model, ds, options, allow_other_survey=args.allow_other_survey)
    return table, time.perf_counter() - t0
