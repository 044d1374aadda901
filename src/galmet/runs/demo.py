"""The end-to-end demonstration behind ``galmet demo``.

Stages, each reading the previous stage's files, exactly as a user would chain the commands::

    synth -> info + mosaic -> train -> calibrate (valid rows) -> predict (TTA) -> baselines -> evaluate
    -> figures -> report
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from galmet.errors import ConfigError, DataError, GalmetError
from galmet.io.atomic import atomic_write_text
from galmet.io.locks import exclusive
from galmet.io.ownership import holds_only_bookkeeping, owned_by_galmet
from galmet.io.safety import check_output_dir
from galmet.layout import DEMO_MARKER, METRICS, PREDICTIONS, REPORT, RUN_LOCK
from galmet.paper import TEST_FRACTION, VALID_FRACTION
from galmet.registry.entries import shipped_entries

log = logging.getLogger(__name__)
MARKER = DEMO_MARKER
#: Most galaxies a demo makes (it is a demonstration; see the README for the default's time).
MAX_N = 100_000


def check_demo(
    out,
    n: int,
    size: int,
    epochs: int,
    arch: str,
    seed: int,
    device: str,
    batch_size: int = 32,
    overwrite: bool = False,
):
    """Check every option, the packages the stages need and the output folder before anything
    is written or computed; return the training config. ConfigError (one line) for a bad option
    (including a training too short for its schedule, e.g. ``--epochs 1`` on a small set), a
    missing extra (GalSim, scikit-learn, matplotlib), an out that is a file or sits under one,
    or a non-empty folder that is not a previous demo (its marker written by galmet) unless
    ``overwrite``."""
    # the checks that need no torch first, so a mistyped option fails at once
    from galmet.columns import ARCHS
    from galmet.synthetic.render import check_options

    if isinstance(n, bool) or not isinstance(n, int) or not 50 <= n <= MAX_N:
        raise ConfigError(f"n must be an integer from 50 (for a meaningful demo) to {MAX_N}, got {n!r}", param="n")
    check_options(n, seed, size, test=TEST_FRACTION, valid_fraction=VALID_FRACTION)
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer of at least {low}, got {value!r}", param=name)
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}", param="arch")
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}", param="device")
    out = Path(out)
    check_output_dir(out, "out")
    if out.is_dir() and not holds_only_bookkeeping(out) and not owned_by_galmet(out / MARKER) and not overwrite:
        raise ConfigError(
            f"out {out}: folder is not empty and is not a previous galmet demo; choose another out, or use "
            "overwrite to write the demo's files among its files (replacing those at the demo's names)",
            param=("out", "overwrite"),
        )

    from galmet.data.splits import split_counts
    from galmet.nn.device import resolve_device
    from galmet.science.baseline import require_sklearn
    from galmet.science.plots.style import require_matplotlib
    from galmet.synthetic.render import check_output as check_synthesis_output
    from galmet.synthetic.render import require_synthesis_packages
    from galmet.training.config import TrainConfig
    from galmet.training.data import steps_per_epoch
    from galmet.training.recipes import check_steps
    from galmet.training.rundir import check_run_output

    config = TrainConfig(
        recipe="onecycle",
        arch=arch,
        weights="none",
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        device=device,
        lr=[3e-3],
    )
    resolved = config.resolved()
    # the demo's split is fixed by n: a schedule too short for it (--epochs 1 on 50 galaxies) fails now
    n_train = split_counts(n, TEST_FRACTION, VALID_FRACTION)[0]
    check_steps(resolved, steps_per_epoch(n_train, resolved.global_batch))
    resolve_device(device)
    require_synthesis_packages()
    require_sklearn()
    require_matplotlib()
    # what the stages will replace must be theirs: a previous synthesis, a previous run
    check_synthesis_output(out / "data", overwrite=True)
    check_run_output(out / "run", resume=False, overwrite=True, option="out")
    return config


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(
    out="galmet-demo",
    n: int = 600,
    size: int = 64,
    epochs: int = 12,
    arch: str = "resnet18",
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 32,
    keep_checkpoint: bool = False,
    overwrite: bool = False,
) -> dict:
    """Run every stage into ``out``; return the test-set metrics of the CNN and the baselines.

    ``keep_checkpoint`` keeps the finished training run's ``checkpoint.pt`` (optimizer state,
    about twice the model); by default it is deleted once the run has finished.

    Every option and the folder are checked first (:func:`check_demo`). A previous demo in
    ``out`` is replaced stage by stage, each deleting or replacing only the files it wrote:
    the synthesis its own images and catalogue (by name), the training run only once the new
    one has finished; nothing else in the folder is touched. A folder that is neither empty nor
    a previous demo is refused unless ``overwrite`` (the demo then writes among its files and
    replaces those at the demo's names, deleting none).
    """
    config = check_demo(out, n, size, epochs, arch, seed, device, batch_size, overwrite=overwrite)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, RUN_LOCK, "'galmet demo'"):
        settings = {"n": n, "size": size, "epochs": epochs, "arch": arch, "seed": seed, "batch_size": batch_size}
        atomic_write_text(out / MARKER, json.dumps(settings))
        return _run_stages(out, config, n, size, epochs, arch, seed, device, keep_checkpoint)


def _run_stages(
    out: Path, config, n: int, size: int, epochs: int, arch: str, seed: int, device: str, keep_checkpoint: bool
) -> dict:
    """The six stages; each replaces only what a previous demo's same stage wrote."""
    from galmet.report.build import write_report
    from galmet.runs.baseline import run_baselines
    from galmet.runs.evaluate import evaluate_predictions
    from galmet.runs.figures import make_figures
    from galmet.science.metrics import format_metrics_table
    from galmet.training.loop import train

    t_start = time.perf_counter()
    ds = _synthesise_stage(out, n, size, seed)

    _say(f"[2/6] training a {arch} ({epochs} one-cycle epochs, from scratch) -> {out / 'run'}")
    result = train(ds, out / "run", config, overwrite=True, keep_checkpoint=keep_checkpoint)
    _say(f"best validation RMSE {result.best_valid_rmse:.3f} dex")

    pred_path = _calibrate_and_predict_stage(out, ds, result.bundle_path, device)

    _say("[4/6] baselines: constant mean and a random forest on gri magnitudes")
    baselines = run_baselines(ds, out / "run" / "baselines", bands="gri", overwrite=True)

    _say("[5/6] metrics and the paper's figures")
    summary = evaluate_predictions(pred_path, "oh_p50", "test", json_out=out / "run" / METRICS, overwrite=True)
    _say(format_metrics_table(summary))
    if "uncertainty" in summary:
        from galmet.science.calibration import format_uncertainty

        _say(format_uncertainty(summary["uncertainty"], "oh_p50"))
    figures = make_figures(pred_path, ds, out / "run" / "figures", overwrite=True)
    _say(f"figures: {out / 'run' / 'figures'} ({len(figures)} files)")

    _say("[6/6] HTML report")
    report = write_report(out, out / REPORT, title="galmet demo (synthetic galaxies)", overwrite=True)
    return _final_summary(ds, summary, baselines, report, time.perf_counter() - t_start)


def _synthesise_stage(out: Path, n: int, size: int, seed: int):
    """Stage 1: the synthetic dataset (``out/data``) and a mosaic of its first galaxies; returns the Dataset."""
    from galmet.data.dataset import load_dataset
    from galmet.data.summary import dataset_summary
    from galmet.science.plots.mosaic import plot_mosaic
    from galmet.science.plots.style import save_figure
    from galmet.synthetic.render import synthesize

    _say(f"[1/6] synthesising {n} galaxies ({size}x{size} px) with GalSim -> {out / 'data'}")
    data_dir = synthesize(
        out / "data",
        n=n,
        seed=seed,
        size=size,
        progress=True,
        overwrite=True,
        test=TEST_FRACTION,
        valid_fraction=VALID_FRACTION,
    )
    ds = load_dataset(data_dir)
    _say(dataset_summary(ds))
    pick = np.arange(min(24, len(ds)))
    labels = [f"Z={z:.2f}" for z in ds.catalog["oh_p50"].to_numpy()[pick]]
    mosaic = save_figure(
        plot_mosaic(ds.images()[pick], labels, ncols=8, title="Synthetic SDSS-like galaxies and their Z"),
        out / "mosaic",
        formats=("png",),
    )[0]
    _say(f"mosaic of example galaxies: {mosaic}")
    return ds


def _calibrate_and_predict_stage(out: Path, ds, bundle_path: Path, device: str) -> Path:
    """Stage 3: calibrate the error bars on the validation galaxies (``run/model_calibrated.pt``)
    and predict the test galaxies with 8-fold TTA; returns the predictions file."""
    from galmet.io.tables import write_table
    from galmet.nn.bundle import load_model, update_bundle
    from galmet.predict.dataset import predict_dataset
    from galmet.runs.calibration_rows import calibration_source
    from galmet.science.calibration import fit_calibration

    _say("[3/6] calibrating error bars on the validation galaxies; predicting the test galaxies with 8-fold TTA")
    model = load_model(bundle_path)
    valid = predict_dataset(model, ds.subset("valid"), tta=True, device=device, flags=False)
    try:
        source = calibration_source(valid, {"kind": "valid rows of the demo run"})  # records calibrated_on
        cal = fit_calibration(valid, "oh_p50", split="valid", source=source)
    except DataError as exc:  # a tiny demo may have too few validation galaxies: predictions without error bars
        _say(f"no calibrated error bars: {exc}")
    else:
        _say(f"calibration: {cal.describe()}")
        calibrated = update_bundle(
            bundle_path, out / "run" / "model_calibrated.pt", {"calibration": {"oh_p50": cal.to_dict()}}, overwrite=True
        )
        model = load_model(calibrated)
    pred = predict_dataset(model, ds.subset("test"), tta=True, device=device)
    return write_table(pred, out / "run" / PREDICTIONS)


def _span(scores: dict) -> str:
    """`` [lo, hi]`` of the 95% bootstrap interval of the RMSE in a summary, 3 decimals (dex);
    ``""`` without intervals."""
    boot = (scores.get("intervals") or {}).get("rmse")
    return f" [{boot['lo95']:.3f}, {boot['hi95']:.3f}]" if boot else ""


def _say_next_step() -> None:
    """Point at the model galmet ships: the step from the demo to real galaxies (nothing when the
    installation ships none or its folder is unreadable)."""
    try:
        names = [e.name for e in shipped_entries()]
    except GalmetError:
        return
    if names:
        _say(
            f"real galaxies next: 'galmet models' shows {names[0]}, the trained SDSS model galmet ships; "
            f"'galmet predict {names[0]} --ra 12h30m49.4s --dec +12d23m28s --out z.ecsv' fetches one SDSS "
            "cutout and predicts its metallicity"
        )


def _final_summary(ds, summary: dict, baselines: dict, report: Path, seconds: float) -> dict:
    """Print the closing lines (CNN vs baselines vs the noise floor, error-bar coverage) and
    return them as the demo's result."""
    cnn, const, rf = summary["rmse"], baselines["constant"]["rmse"], baselines["rf"]["rmse"]
    floor = (
        float(np.sqrt(np.mean(ds.subset("test").catalog["oh_unexplained"].to_numpy() ** 2)))
        if "oh_unexplained" in ds.catalog.columns
        else float("nan")
    )
    _say("")
    _say(
        f"test RMSE (dex): CNN {cnn:.3f}{_span(summary)} | constant mean {const:.3f}{_span(baselines['constant'])} "
        f"| random forest (gri) {rf:.3f}{_span(baselines['rf'])} | noise floor {floor:.3f}"
    )
    if _span(summary):
        _say("  [in brackets: 95% percentile bootstrap intervals over the test galaxies]")
    unc = summary.get("uncertainty")
    if unc:
        _say(
            f"calibrated error bars: err {unc['median_err']:.3f} dex; the 68% / 95% intervals cover "
            f"{100 * unc['68']['coverage']:.0f}% / {100 * unc['95']['coverage']:.0f}% of the test galaxies"
        )
    _say(f"report: {report}   (done in {seconds:.0f} s)")
    _say_next_step()
    return {
        "cnn_rmse": cnn,
        "constant_rmse": const,
        "rf_rmse": rf,
        "noise_floor": floor,
        "report": str(report),
        "coverage_68": unc["68"]["coverage"] if unc else None,
        "coverage_95": unc["95"]["coverage"] if unc else None,
    }
