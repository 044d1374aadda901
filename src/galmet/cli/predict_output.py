"""What ``galmet predict`` prints: the lines after a dataset or a positions table is written.

Used by :mod:`galmet.cli.commands.predict` (datasets, image folders) and
:mod:`galmet.cli.positions` (sky positions); it imports neither, so they share it without
importing each other.
"""

from __future__ import annotations


def print_dataset_done(table, model, out: str, tta: bool, tta_mode: str, device_type: str, seconds: float) -> None:
    """The lines after predicting a dataset: what was written, at what speed, the RMSE and flags."""
    mode = ("TTA x8" if tta_mode == "dihedral" else "fastai TTA, 1 + 4 views") if tta else "no TTA"
    print(
        f"wrote {len(table)} predictions of {', '.join(model.targets)} to {out} "
        f"({mode}, {device_type}, {len(table) / max(seconds, 1e-9):.0f} images/s)"
    )
    print_scores(table, model.targets)
    print_trust(table, model)


def print_positions_done(table, model, out, summary, device_type: str) -> None:
    """The lines after predicting at positions: rows written, the run's summary, RMSE and flags
    of the predicted rows."""
    from galmet.columns import STATUS_OK

    print(
        f"wrote {len(table)} rows to {out} ({summary.statuses.get(STATUS_OK, 0)} predicted, "
        f"{device_type}, {summary.rows / max(summary.seconds, 1e-9):.1f} rows/s)"
    )
    print(summary.line())
    print_positions_tables(table, model)


def print_positions_interrupted(summary, work) -> None:
    """The line after Ctrl-C: how many rows are safe in the work folder."""
    print(
        f"positions: interrupted; {summary.resumed + summary.predicted} rows are in finished shards in {work}; "
        "rerun the same command to resume",
        flush=True,
    )


def print_positions_tables(table, model) -> None:
    """The RMSE and flag lines of ``galmet predict``, on the predicted rows of a positions QTable."""
    import numpy as np
    import pandas as pd

    from galmet.columns import STATUS, STATUS_OK

    ok = np.asarray(table[STATUS]) == STATUS_OK
    plain = pd.DataFrame(
        {
            name: np.asarray(getattr(table[name], "value", table[name]))[ok]
            for name in table.colnames
            if getattr(table[name], "ndim", 1) == 1 and type(table[name]).__name__ != "SkyCoord"
        }
    )
    plain.attrs["flag_checks"] = [c for c in str(table.meta.get("flag_checks", "")).split(",") if c]
    print_scores(plain, model.targets)
    print_trust(plain, model)


def print_trust(table, model) -> None:
    """Which error bars the table has, and how many rows each flag raised."""
    from galmet.columns import FLAGS, Flag, err_column

    missing = [t for t in model.targets if err_column(t) not in table.columns]
    if missing and model.calibrations:  # a calibrated model with no row predicted: no column to fill
        print(f"no error bars for {', '.join(missing)}: no row was predicted")
    elif missing:
        print(
            f"no calibrated error bars for {', '.join(missing)}: the bundle has no calibration "
            "(galmet calibrate MODEL HELD_OUT_PRED --out MODEL2, or train with --folds)"
        )
    if FLAGS in table.columns:
        flags = table[FLAGS].to_numpy()
        raised = [f"{f.name} {int((flags & f.value).astype(bool).sum())}" for f in Flag if (flags & f.value).any()]
        checked = table.attrs.get("flag_checks", [])
        skipped = [f.name for f in Flag if f.name not in checked]
        line = f"flags: {int((flags != 0).sum())} of {len(table)} rows flagged"
        line += f" ({', '.join(raised)})" if raised else ""
        if skipped:
            line += f"; not checked: {', '.join(n for n in skipped if n)}"
        print(line)
    print_truth_flags(table)


def print_truth_flags(table) -> None:
    """How many rows' truth raised each :class:`galmet.columns.TruthFlag` bit (none: no line)."""
    from galmet.columns import TRUTH_FLAGS, TruthFlag

    if TRUTH_FLAGS not in table.columns:
        return
    bits = table[TRUTH_FLAGS].to_numpy()
    raised = [f"{f.name} {int((bits & f.value).astype(bool).sum())}" for f in TruthFlag]
    print(f"truth_flags (from the catalogue's truth, not prediction flags): {', '.join(raised)}")


def print_scores(table, targets) -> None:
    """RMSE per split for each target whose truth is in the table (a quick sanity check)."""
    import numpy as np

    from galmet.columns import pred_column
    from galmet.science.metrics import rmse

    for t in targets:
        if t not in table.columns:
            continue
        groups = table.groupby("split") if "split" in table.columns else [("all", table)]
        parts = []
        for split, g in groups:
            ok = np.isfinite(g[t].to_numpy(dtype=float))
            if ok.any():
                parts.append(
                    f"{split} {rmse(g[pred_column(t)].to_numpy()[ok] - g[t].to_numpy(dtype=float)[ok]):.4f}"
                    f" (n={int(ok.sum())})"
                )
        if parts:
            print(f"RMSE of {t}: " + ", ".join(parts))
