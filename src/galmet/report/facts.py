"""What the report says about one run, as data: where its data came from, its dataset, the headline
comparison with bootstrap intervals, the largest residuals and the training settings that matter.

No HTML here (:mod:`galmet.report.sections` draws it); every function takes the
``found`` dict of :func:`galmet.report.build.collect` for one run.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galmet.errors import DataError
from galmet.layout import CATALOG_JSON, CONSTANT_PREDICTIONS, ORACLE_PREDICTIONS, SYNTH_CONFIG, rf_predictions

log = logging.getLogger(__name__)

#: Every SDSS photometric objID since DR8 starts with 1237 (skyVersion 2, rerun 301); galmet's
#: synthetic objIDs lie below (:data:`galmet.synthetic.render.OBJID_BASE`).
SDSS_OBJID_MIN = 1_237_000_000_000_000_000
#: Bootstrap settings of the headline intervals (seeded: a report is reproducible).
N_BOOT, LEVEL, BOOT_SEED = 2000, 0.95, 0
#: The headline's name of the run's own network.
CNN_LABEL = "CNN (galmet)"
#: What the noise floor of a synthetic set is.
FLOOR_NOTE = "the RMS of the part of Z that no image shows (the catalogue's oh_unexplained): no model can do better"
#: Rows of the table of largest residuals.
N_OUTLIERS = 10
#: Galaxies in a mosaic drawn from the dataset (four rows of four, spanning the label range).
N_MOSAIC = 16
#: Training settings shown in the report's configuration table, in order, with their labels.
CONFIG_SETTINGS = (
    ("targets", "targets"),
    ("recipe", "recipe"),
    ("arch", "network"),
    ("weights", "initial weights"),
    ("epochs", "epochs"),
    ("batch_size", "batch size"),
    ("lr", "learning rate(s)"),
    ("optimizer", "optimizer"),
    ("weight_decay", "weight decay"),
    ("loss", "loss"),
    ("size", "resize to (px)"),
    ("crop", "crop (px)"),
    ("dihedral", "dihedral augmentation"),
    ("max_zoom", "max zoom"),
    ("seed", "seed"),
)
RUN_SETTINGS = (
    ("n_train", "training galaxies"),
    ("n_valid", "validation galaxies"),
    ("image_size", "image size (px)"),
    ("device", "trained on"),
    ("world_size", "processes"),
    ("torch", "torch"),
)


# --- where the data came from -------------------------------------------------------------


@dataclass
class DataKind:
    """``kind`` is "sdss", "synthetic" or "unknown"; ``why`` says what decided it (one phrase)."""

    kind: str
    why: str


def objid_kind(objids) -> str | None:
    """ "sdss" when every objID is a real SDSS one, "synthetic" when every one is galmet's synthetic
    kind, None otherwise (mixed, empty, or objIDs of neither kind such as row numbers)."""
    from galmet.synthetic.render import OBJID_BASE

    ids = pd.to_numeric(pd.Series(objids), errors="coerce").dropna().to_numpy(dtype=np.float64)
    if ids.size == 0:
        return None
    if (ids >= float(SDSS_OBJID_MIN)).all():
        return "sdss"
    if ((ids >= float(OBJID_BASE)) & (ids < float(SDSS_OBJID_MIN))).all():
        return "synthetic"
    return None


def is_sdss_objid(objid) -> bool:
    """True when ``objid`` is a real SDSS photometric objID (the ones SkyServer can show)."""
    try:
        return int(objid) >= SDSS_OBJID_MIN
    except (TypeError, ValueError, OverflowError):
        return False


def data_kind(found: dict, dataset: DatasetFacts | None, cnn: pd.DataFrame | None) -> DataKind:
    """Decide whether a run scored SDSS galaxies or synthetic ones, from its metadata.

    In order: the dataset's synthesis marker (``synth_config.yaml`` or the catalogue's
    ``galmet_synthetic`` metadata), a noise floor recorded by ``galmet baseline`` or
    ``resolution-study`` (only synthetic sets have one), then the objIDs of the predictions or the
    catalogue (real SDSS objIDs start with 1237). Without any of these the kind is "unknown" and the
    report compares nothing with the paper.
    """
    if dataset is not None and dataset.synthetic:
        return DataKind("synthetic", f"its dataset ({dataset.name}) is a galmet synthesis")
    for _path, b in found["baselines"]:
        if b.get("noise_floor") is not None or "oracle" in b:
            return DataKind("synthetic", "its baselines record a synthetic noise floor")
    if found["resolution"] is not None and found["resolution"][1].get("noise_floor") is not None:
        return DataKind("synthetic", "its resolution study records a synthetic noise floor")
    for ids, what in ((cnn, "predictions"), (dataset.catalog if dataset is not None else None, "catalogue")):
        if ids is not None and "objID" in ids.columns:
            kind = objid_kind(ids["objID"])
            if kind == "sdss":
                return DataKind("sdss", f"the objIDs of its {what} are SDSS photometric objIDs")
            if kind == "synthetic":
                return DataKind("synthetic", f"the objIDs of its {what} are galmet's synthetic ones")
    return DataKind("unknown", "no dataset, objIDs or synthesis settings were found with it")


# --- the dataset ----------------------------------------------------------------------------


@dataclass
class DatasetFacts:
    """A run's dataset as the report shows it.

    Attributes
    ----------
    name : str
        The dataset folder's name (never an absolute path: the report may travel).
    path : Path or None
        The folder, when it is on this machine.
    catalog : DataFrame
        One row per usable galaxy (objID, split, labels, ...).
    image_paths : list of Path
        Image file of each catalogue row (empty when unknown).
    image_size : int or None
        Pixels per side.
    synthetic : bool
        A galmet synthesis (``synth_config.yaml`` or the catalogue's metadata).
    settings : dict
        The synthesis settings (``synth_config.yaml``) or the catalogue settings (``catalog.json``).
    """

    name: str
    path: Path | None
    catalog: pd.DataFrame
    image_paths: list[Path] = field(default_factory=list)
    image_size: int | None = None
    synthetic: bool = False
    settings: dict = field(default_factory=dict)

    def split_counts(self) -> dict[str, int]:
        """Galaxies per split, train / valid / test first."""
        if "split" not in self.catalog.columns:
            return {}
        counts = self.catalog["split"].astype(str).value_counts()
        order = [s for s in ("train", "valid", "test") if s in counts.index]
        order += sorted(s for s in counts.index if s not in order)
        return {s: int(counts[s]) for s in order}

    def data_release(self) -> str | None:
        """SDSS data release of the catalogue query (``catalog.json``), e.g. "DR16"; None when unknown."""
        from galmet.sdss.skyserver import DATA_RELEASES

        release = self.settings.get("data_release")
        if isinstance(release, str) and release.upper() in DATA_RELEASES:
            return release.upper()
        m = re.search(r"/dr(\d+)", str(self.settings.get("base_url", "")).lower())
        if m and f"DR{m.group(1)}" in DATA_RELEASES:
            return f"DR{m.group(1)}"
        return None


def _dataset_candidates(found: dict) -> list[Path]:
    """Dataset folders a run names: one inside the run, then those its config and JSON files record."""
    out = list(found.get("dataset_dirs", []))
    cfg = found.get("config_dict") or {}
    recorded = [(cfg.get("run") or {}).get("dataset") if isinstance(cfg.get("run"), dict) else None]
    recorded += [b.get("dataset") for _, b in found["baselines"]]
    recorded += [m.get("dataset") for _, m in found["metrics"]]
    for r in recorded:
        if isinstance(r, str) and r:
            p = Path(r)
            if p.is_dir() and p not in out:
                out.append(p)
    return out


def load_dataset_facts(found: dict) -> DatasetFacts | None:
    """The run's dataset (see :func:`_dataset_candidates`), or None when none can be read."""
    from galmet.data.dataset import load_dataset

    for path in _dataset_candidates(found):
        try:
            ds = load_dataset(path, targets=[], load_images=False, on_error="skip", progress=False)
        except DataError as exc:
            log.warning("report: dataset %s not read (%s)", path, exc)
            continue
        settings: dict[str, Any] = {}
        synthetic = (path / SYNTH_CONFIG).is_file() or "galmet_synthetic" in ds.catalog.attrs
        if (path / SYNTH_CONFIG).is_file():
            settings = _read_yaml(path / SYNTH_CONFIG)
        elif (path / CATALOG_JSON).is_file():
            try:
                settings = json.loads((path / CATALOG_JSON).read_text())
            except (OSError, ValueError):
                settings = {}
        return DatasetFacts(
            name=path.resolve().name,
            path=path,
            catalog=ds.catalog,
            image_paths=list(ds.paths),
            image_size=ds.image_size,
            synthetic=bool(synthetic),
            settings=settings if isinstance(settings, dict) else {},
        )
    return None


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def label_range(values) -> dict | None:
    """``n``, ``min``, ``p16``, ``median``, ``p84``, ``max`` of the finite ``values``; None when there are none."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    p16, med, p84 = np.percentile(v, [16, 50, 84])
    return {"n": int(v.size), "min": float(v.min()), "p16": p16, "median": med, "p84": p84, "max": float(v.max())}


def mosaic_png(dataset: DatasetFacts, target: str) -> bytes | None:
    """A mosaic of :data:`N_MOSAIC` galaxies of the dataset spanning its ``target`` range, as PNG
    bytes (each thumbnail labelled with its value); None when the images cannot be read."""
    from galmet.io.images import read_image
    from galmet.science.plots.mosaic import plot_mosaic
    from galmet.science.plots.style import figure_bytes

    cat = dataset.catalog
    if not dataset.image_paths or len(dataset.image_paths) != len(cat):
        return None
    if target in cat.columns:
        values = pd.to_numeric(cat[target], errors="coerce").to_numpy(dtype=float)
        order = np.argsort(np.where(np.isfinite(values), values, np.inf), kind="stable")
        order = order[np.isfinite(values[order])]
    else:
        values, order = None, np.arange(len(cat))
    if order.size == 0:
        return None
    pick = order[np.unique(np.linspace(0, order.size - 1, min(N_MOSAIC, order.size)).round().astype(int))]
    try:
        images = np.stack([read_image(dataset.image_paths[i]) for i in pick])
    except (DataError, ValueError) as exc:
        log.warning("report: no mosaic of %s (%s)", dataset.name, exc)
        return None
    labels = [f"Z={values[i]:.2f}" if values is not None else str(i) for i in pick]
    title = f"{len(pick)} galaxies of {dataset.name}" + (f", lowest to highest {target}" if values is not None else "")
    # four columns: thumbnails stay large enough to see on a phone, where the figure shrinks to the screen
    return figure_bytes(plot_mosaic(images, labels, ncols=4, title=title, thumb_inches=1.2), "png", dpi=90)


# --- the headline ---------------------------------------------------------------------------


def cnn_rows(found: dict) -> tuple[pd.DataFrame | None, str | None, str]:
    """The scored rows of the run's predictions table: (rows with ``objID`` when present, ``dz``,
    ``<target>``, ``<target>_pred``; target; split), or (None, None, "") without a usable table."""
    from galmet.science.metrics import select_split, usable_rows
    from galmet.science.predictions import load_predictions

    if found["predictions"] is None:
        return None, None, ""
    try:
        df, target = load_predictions(found["predictions"])
        split = "test" if "split" in df.columns and (df["split"].astype(str) == "test").any() else "all"
        df, _ = usable_rows(select_split(df, split), [target])
    except DataError as exc:
        log.warning("report: predictions %s not scored (%s)", found["predictions"], exc)
        return None, None, ""
    pred = pd.to_numeric(df[f"{target}_pred"], errors="coerce")
    df = df[np.isfinite(pred.to_numpy(dtype=float))].reset_index(drop=True)
    if df.empty:
        return None, None, ""
    df["dz"] = df[f"{target}_pred"].astype(float) - df[target].astype(float)
    return df, target, split


def _baseline_rows(found: dict, target: str) -> list[tuple[str, pd.DataFrame]]:
    """(label, test rows with objID and dz) of each baseline with a predictions file beside its JSON
    (rows whose truth or prediction is not a label left out, :func:`galmet.data.labels.usable_rows`)."""
    from galmet.data.labels import usable_rows
    from galmet.io.tables import read_table

    out = []
    for path, b in found["baselines"]:
        if b.get("target", target) != target:
            continue
        bands = b.get("bands", "gri")
        for name, label in (
            (rf_predictions(bands), f"random forest ({bands})"),
            (CONSTANT_PREDICTIONS, "constant mean"),
            (ORACLE_PREDICTIONS, "observable oracle"),
        ):
            f = Path(path).parent / name
            if not f.is_file():
                continue
            try:
                df = read_table(f)
            except (DataError, OSError, ValueError) as exc:
                log.warning("report: skipping %s (%s)", f, exc)
                continue
            if {"objID", target, f"{target}_pred"} - set(df.columns):
                continue
            if "split" in df.columns:
                df = df[df["split"].astype(str) == "test"]
            try:  # the label rules for truths and predictions, as for the CNN's rows
                df, _ = usable_rows(df, [target], str(f))
            except DataError as exc:
                log.warning("report: skipping %s (%s)", f, exc)
                continue
            df = df.assign(dz=df[f"{target}_pred"].astype(float) - df[target].astype(float))
            out.append((label, df[["objID", "dz"]].drop_duplicates("objID")))
    return out


def headline(found: dict, kind: DataKind, dataset: DatasetFacts | None, cnn: pd.DataFrame | None, target) -> dict:
    """The CNN against its baselines and the noise floor (or the paper), with paired bootstrap intervals.

    Every predictor with per-galaxy residuals is scored on the galaxies it shares with the CNN
    (matched by objID) and resampled together with it (:func:`galmet.science.metrics.bootstrap_rmse`),
    so ``diff`` (CNN RMSE minus the predictor's) carries the interval of the paired difference.

    Returns
    -------
    dict
        ``rows``: list of ``{"label", "n", "rmse", "lo", "hi", "diff", "diff_lo", "diff_hi", "note"}``
        (missing values None), the CNN first; ``reference``: the paper's rows (SDSS data only);
        ``settings`` of the bootstrap; ``split``.
    """
    from galmet.science.metrics import bootstrap_rmse

    rows: list[dict] = []
    out: dict[str, Any] = {"rows": rows, "reference": [], "settings": {}}
    if cnn is not None and target is not None:
        sets: dict[str, np.ndarray] = {CNN_LABEL: cnn["dz"].to_numpy(dtype=float)}
        notes: dict[str, str] = {}
        ids = cnn["objID"] if "objID" in cnn.columns else None
        for label, b in _baseline_rows(found, target) if ids is not None else []:
            assert ids is not None
            aligned = pd.Series(b["dz"].to_numpy(), index=b["objID"].to_numpy()).reindex(ids.to_numpy())
            if aligned.notna().all():
                sets[label] = aligned.to_numpy(dtype=float)
            else:
                notes[label] = "other galaxies than the CNN's"
        floor = _floor_residuals(dataset, ids) if target == "oh_p50" else None
        if floor is not None:
            sets["noise floor"] = floor
        boot = bootstrap_rmse(sets, N_BOOT, LEVEL, BOOT_SEED)
        out["settings"] = boot.pop("settings")
        rows += [{"label": k, **v, "note": notes.get(k, "")} for k, v in boot.items()]
    elif found["metrics"]:
        m = found["metrics"][0][1]
        rows.append({"label": CNN_LABEL, "n": m.get("n"), "rmse": m.get("rmse"), "note": "no per-galaxy table"})
    elif found["resolution"] is not None and len(found["resolution"][0]):
        tab = found["resolution"][0].sort_values("size")
        top = tab.iloc[-1]
        n = int(top["n"]) if "n" in tab.columns and np.isfinite(top["n"]) else None
        note = f"at {int(top['size'])} px, resolution study"
        rows.append({"label": CNN_LABEL, "n": n, "rmse": float(top["rmse"]), "note": note})
    _add_unpaired_baselines(found, rows)
    if kind.kind == "synthetic" and target in (None, "oh_p50") and not any(r["label"] == "noise floor" for r in rows):
        floor_value = _recorded_floor(found)
        if floor_value is not None:
            rows.append({"label": "noise floor", "rmse": floor_value, "note": "as recorded; no interval"})
    if kind.kind == "sdss" and (target or found["metrics"] and found["metrics"][0][1].get("target")) == "oh_p50":
        from galmet.paper import PAPER_METRICS, PAPER_RF_GRI_RMSE, PAPER_SIZES

        out["reference"] = [
            {"label": "Wu & Boada (2019) CNN", "n": PAPER_SIZES["test_images"], "rmse": PAPER_METRICS["rmse"]},
            {"label": "Wu & Boada (2019) random forest (gri)", "rmse": PAPER_RF_GRI_RMSE},
        ]
    return out


def _add_unpaired_baselines(found: dict, rows: list[dict]) -> None:
    """Baselines known only from their JSON (no predictions file beside it): point values, no interval."""
    have = {r["label"] for r in rows}
    for _path, b in found["baselines"]:
        for key, label in (
            ("rf", f"random forest ({b.get('bands', 'gri')})"),
            ("constant", "constant mean"),
            ("oracle", "observable oracle"),
        ):
            s = b.get(key)
            if isinstance(s, dict) and label not in have and s.get("rmse") is not None:
                rows.append({"label": label, "n": s.get("n"), "rmse": s["rmse"], "note": "no per-galaxy table"})
                have.add(label)


def _floor_residuals(dataset: DatasetFacts | None, ids) -> np.ndarray | None:
    """``oh_unexplained`` of the CNN's galaxies (its RMS is the noise floor), or None."""
    from galmet.science.baseline import UNEXPLAINED

    if dataset is None or ids is None or UNEXPLAINED not in dataset.catalog or "objID" not in dataset.catalog:
        return None
    cat = dataset.catalog.drop_duplicates("objID")
    u = pd.Series(cat[UNEXPLAINED].to_numpy(dtype=float), index=cat["objID"].to_numpy()).reindex(ids.to_numpy())
    return u.to_numpy(dtype=float) if u.notna().all() else None


def _recorded_floor(found: dict) -> float | None:
    for _path, b in found["baselines"]:
        if b.get("noise_floor") is not None:
            return float(b["noise_floor"])
    if found["resolution"] is not None and found["resolution"][1].get("noise_floor") is not None:
        return float(found["resolution"][1]["noise_floor"])
    return None


# --- outliers and configuration -------------------------------------------------------------


def largest_residuals(cnn: pd.DataFrame, target: str, n: int = N_OUTLIERS) -> pd.DataFrame:
    """The ``n`` rows of the CNN's table with the largest |dZ|, largest first."""
    order = np.argsort(-np.abs(cnn["dz"].to_numpy(dtype=float)), kind="stable")[:n]
    return cnn.iloc[order].reset_index(drop=True)


def config_settings(cfg: dict) -> list[tuple[str, str]]:
    """(label, value) of the training settings that matter (:data:`CONFIG_SETTINGS`, :data:`RUN_SETTINGS`)."""
    rows = []
    for key, label in CONFIG_SETTINGS:
        if key in cfg and cfg[key] is not None:
            rows.append((label, _setting(cfg[key])))
    run: dict = cfg["run"] if isinstance(cfg.get("run"), dict) else {}
    for key, label in RUN_SETTINGS:
        if run.get(key) is not None:
            rows.append((label, _setting(run[key])))
    if run.get("dataset"):
        rows.append(("dataset", Path(str(run["dataset"])).name))
    return rows


def _setting(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        uniq = list(dict.fromkeys(_setting(v) for v in value))
        return uniq[0] if len(uniq) == 1 else ", ".join(_setting(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
