"""Datasets of FITS flux cutouts: load through a recorded stretch, cache keyed on it, bad rows
handled like bad JPEGs, imaging from the headers, and train -> predict through the CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import TINY_TRAIN, make_tiny_dataset, run_cli

pytest.importorskip("astropy")

from galmet.data.dataset import load_dataset, write_catalog  # noqa: E402
from galmet.data.stretch import Stretch, default_stretch  # noqa: E402
from galmet.errors import ConfigError, DataError  # noqa: E402
from galmet.io.fits_images import encode_fits  # noqa: E402

META = {"BANDS": "grz", "BUNIT": "nanomaggy", "SURVEY": "legacy", "LAYER": "ls-dr10", "PIXSCALE": 0.262}


def _flux_cube(rng, size: int, brightness: float) -> np.ndarray:
    """float32 (3, size, size) nanomaggies: a galaxy-like blob (redder bands brighter) on sky noise."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(xx**2 + yy**2) / (2 * (size / 6) ** 2))
    return np.stack([blob * brightness * f + rng.normal(0, 0.01, (size, size)) for f in (0.4, 0.6, 0.9)]).astype(
        np.float32
    )


def make_tiny_fits_dataset(root: Path, n: int = 12, size: int = 16, seed: int = 0, meta: dict | None = None) -> Path:
    """A dataset directory of ``images/<objID>.fits`` Legacy-like flux cutouts and a catalog whose
    oh_p50 follows the brightness (as conftest's JPEG one). Returns ``root``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    ids = 1237648700000000000 + np.arange(n, dtype=np.int64) * 7
    brightness = rng.uniform(0.2, 1.0, n)
    header = META if meta is None else meta
    for oid, b in zip(ids, brightness, strict=True):
        (root / "images" / f"{oid}.fits").write_bytes(encode_fits(_flux_cube(rng, size, b), header))
    cat = pd.DataFrame(
        {
            "objID": ids,
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-10, 60, n),
            "oh_p50": 8.4 + 0.8 * brightness,
            "lgm_tot_p50": 9.0 + 2.0 * brightness,
        }
    )
    write_catalog(root, cat)
    return root


def _fits_path(root: Path, row: int = 0) -> Path:
    oid = pd.read_parquet(root / "catalog.parquet")["objID"].iloc[row]
    return root / "images" / f"{oid}.fits"


def test_a_fits_dataset_loads_as_uint8_rgb_through_the_survey_default(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds")
    ds = load_dataset(root)
    images = np.asarray(ds.images())
    assert images.shape == (12, 16, 16, 3) and images.dtype == np.uint8
    assert ds.stretch == default_stretch("legacy")
    from galmet.io.fits_images import read_fits

    np.testing.assert_array_equal(images[0], ds.stretch.apply(read_fits(_fits_path(root))))
    im = ds.imaging
    assert (im.format, im.survey, im.layer, im.bands, im.pixel_scale, im.fetch_size) == (
        "fits",
        "legacy",
        "ls-dr10",
        "grz",
        0.262,
        16,
    )
    assert im.stretch == default_stretch("legacy").to_dict() and im.source == "FITS header"
    assert load_dataset(root, load_images=False).image_size == 16
    from galmet.data.summary import dataset_summary

    text = dataset_summary(ds)
    assert "images 16x16 from FITS grz fluxes" in text and "flux stretch: lupton scales [2.7, 1.5, 1.0]" in text
    assert "16x16 FITS fluxes" in repr(ds)


def test_the_decode_cache_is_keyed_on_the_stretch(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds")
    first = np.asarray(load_dataset(root).images())
    assert (root / "images.npy").is_file()
    other = Stretch(scales=(1.0, 1.0, 1.0), stretch=2.0, Q=1.0)
    second = load_dataset(root, stretch=other)
    assert second.stretch == other and second.imaging.stretch == other.to_dict()
    assert not np.array_equal(np.asarray(second.images()), first)  # not the stale cache
    np.testing.assert_array_equal(np.asarray(second.images())[3], other.apply(_read(root, 3)))
    again = load_dataset(root, stretch=other.to_dict())
    assert again.cache_path is not None  # the cache of that stretch, reused
    np.testing.assert_array_equal(np.asarray(again.images()), np.asarray(second.images()))
    np.testing.assert_array_equal(np.asarray(load_dataset(root).images()), first)
    back = second.with_stretch(default_stretch("legacy").to_dict())  # e.g. a model's recorded stretch
    assert back.stretch == default_stretch("legacy") and back.cache_path is None
    np.testing.assert_array_equal(np.asarray(back.images()), first)
    assert second.with_stretch(None) is second and second.with_stretch(other) is second


def _read(root: Path, row: int) -> np.ndarray:
    from galmet.io.fits_images import read_fits

    return read_fits(_fits_path(root, row))


def test_a_recorded_stretch_is_used_and_a_bad_one_named(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds")
    recorded = Stretch(scales=(3.0, 2.0, 1.0), stretch=0.5, Q=4.0)
    import yaml

    config = {"size": 16, "pixel_scale_arcsec": 0.262, "survey": "legacy", "format": "fits", "bands": "grz"}
    (root / "synth_config.yaml").write_text(yaml.safe_dump({**config, "stretch": recorded.to_dict()}))
    ds = load_dataset(root)
    assert ds.stretch == recorded and ds.imaging.source == "synth_config.yaml"
    bad = {"scales": [1, 1], "stretch": 1, "Q": 1}
    (root / "synth_config.yaml").write_text(yaml.safe_dump({**config, "stretch": bad}))
    with pytest.raises(ConfigError, match=r"^synth_config.yaml: stretch\.scales must be") as info:
        load_dataset(root)
    assert "\n" not in str(info.value)


def test_a_bad_stretch_option_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(ConfigError, match=r"^stretch\.Q must be"):
        load_dataset(tmp_path / "does-not-exist", stretch={"scales": [1, 1, 1], "stretch": 1, "Q": 0})


def test_a_corrupt_fits_row_is_one_line_or_skipped(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds")
    path = _fits_path(root, 2)
    path.write_bytes(path.read_bytes()[:3000])  # header intact, data cut short
    with pytest.raises(DataError) as info:
        load_dataset(root)
    msg = str(info.value)
    assert path.name in msg and "cannot read FITS" in msg and "\n" not in msg
    ds = load_dataset(root, on_error="skip")
    assert len(ds) == 11 and len(ds.skipped) == 1 and path.name in ds.skipped[0]
    path.write_bytes(b"not a FITS file at all" * 10)
    with pytest.raises(DataError, match=f"{path.name}.*not a FITS file"):
        load_dataset(root)


def test_a_wrong_size_or_band_count_fits_row_is_a_bad_row(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds")
    rng = np.random.default_rng(5)
    _fits_path(root, 4).write_bytes(encode_fits(_flux_cube(rng, 24, 0.5), META))
    with pytest.raises(DataError, match=r"image is 24x24 pixels, expected 16x16"):
        load_dataset(root)
    ds = load_dataset(root, on_error="skip")
    assert ds.image_size == 16 and len(ds) == 11  # the majority size, the odd row dropped
    _fits_path(root, 4).write_bytes(encode_fits(_flux_cube(rng, 16, 0.5)[:2], META))
    with pytest.raises(DataError, match=r"FITS image has 2 bands, expected 3"):
        load_dataset(root)


def test_non_finite_fluxes_load_as_zero_and_are_counted(tmp_path, caplog):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=4)
    cube = _read(root, 1)
    cube[:, :2, :2] = np.nan
    _fits_path(root, 1).write_bytes(encode_fits(cube, META))
    with caplog.at_level(logging.INFO, logger="galmet.data.dataset"):
        ds = load_dataset(root, cache=False)
    assert "12 NaN/inf flux values in 1 FITS images" in caplog.text
    clean = np.nan_to_num(cube, nan=0.0)
    np.testing.assert_array_equal(np.asarray(ds.images())[1], ds.stretch.apply(clean))


def test_a_plain_folder_of_fits_loads_and_a_mixed_folder_is_refused(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=5)
    folder = root / "images"
    ds = load_dataset(folder)
    assert len(ds) == 5 and ds.stretch == default_stretch("legacy") and ds.imaging.format == "fits"
    jpeg = make_tiny_dataset(tmp_path / "jpeg", n=1, size=16)
    (folder / "extra.jpg").write_bytes(next((jpeg / "images").iterdir()).read_bytes())
    with pytest.raises(DataError, match=r"mixes FITS and JPEG/PNG images \(5 FITS, .*1 others, e\.g\. extra\.jpg\)"):
        load_dataset(folder)


@pytest.mark.parametrize("rows, load_images", [((0, 1, 2, 3), True), ((0, 1, 2, 3), False), ((2,), True)])
def test_a_catalog_dataset_with_a_jpeg_and_a_fits_of_one_objid_is_refused(tmp_path, rows, load_images):
    """Two formats downloaded into one folder (<objID>.jpg beside <objID>.fits for every row) were
    read as the JPEGs alone while the manifest said FITS."""
    root = make_tiny_fits_dataset(tmp_path / "ds", n=4)
    for row in rows:
        Image.new("RGB", (16, 16)).save(_fits_path(root, row).with_suffix(".jpg"))
    fits = _fits_path(root, rows[0])
    with pytest.raises(DataError) as err:
        load_dataset(root, cache=False, load_images=load_images)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{root / 'images'}: objID {fits.stem} has both ")
    assert f"{fits.stem}.jpg and {fits.name}" in msg and "a dataset holds one format" in msg


def test_a_fits_dataset_without_survey_keywords_records_the_format_and_defaults(tmp_path):
    root = make_tiny_fits_dataset(tmp_path / "ds", n=3, meta={})
    ds = load_dataset(root)
    assert ds.imaging.format == "fits" and ds.imaging.survey is None and ds.imaging.pixel_scale is None
    assert ds.stretch == default_stretch(None)


def test_train_then_predict_a_fits_dataset_through_the_cli(tmp_path, capsys):
    from galmet.nn.bundle import load_model

    root = make_tiny_fits_dataset(tmp_path / "ds", n=32, size=16)
    code, _, err = run_cli(capsys, "train", root, "--out", tmp_path / "run", "--epochs", "1", *TINY_TRAIN)
    assert code == 0, err
    im = load_model(tmp_path / "run").imaging
    assert (im.format, im.survey, im.layer, im.bands) == ("fits", "legacy", "ls-dr10", "grz")
    assert im.stretch == default_stretch("legacy").to_dict()
    pred = tmp_path / "pred.csv"
    code, _, err = run_cli(capsys, "predict", tmp_path / "run", root, "--out", pred, "--device", "cpu")
    assert code == 0, err
    df = pd.read_csv(pred)
    assert len(df) == 32 and df["oh_p50_pred"].notna().all()
    # a copy that records another stretch is predicted through the model's: the same numbers
    import shutil

    import yaml

    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("images.npy", "images.json"))
    other = Stretch(scales=(1.0, 1.0, 1.0), stretch=3.0, Q=1.0).to_dict()
    (copy / "synth_config.yaml").write_text(yaml.safe_dump({"survey": "legacy", "format": "fits", "stretch": other}))
    assert load_dataset(copy).stretch != default_stretch("legacy")
    pred2 = tmp_path / "pred2.csv"
    code, _, err = run_cli(capsys, "predict", tmp_path / "run", copy, "--out", pred2, "--device", "cpu")
    assert code == 0, err
    np.testing.assert_allclose(pd.read_csv(pred2)["oh_p50_pred"], df["oh_p50_pred"], atol=1e-5)


def test_a_cutout_archive_of_fits_and_read_rgb(tmp_path):
    from galmet.data.archive import open_archive
    from galmet.data.flux_images import read_rgb

    root = make_tiny_fits_dataset(tmp_path / "ds", n=4)
    archive = open_archive(root)
    path = archive.image_path(0)
    assert path is not None and path.suffix == ".fits"
    im = archive.imaging([path])
    assert (im.format, im.survey, im.image_size, im.stretch) == (
        "fits",
        "legacy",
        16,
        default_stretch("legacy").to_dict(),
    )
    want = default_stretch("legacy").apply(_read(root, 0))
    np.testing.assert_array_equal(read_rgb(path, 16, None, "cutout"), want)
    other = Stretch(stretch=3.0, Q=1.0)
    np.testing.assert_array_equal(read_rgb(path, 16, other.to_dict(), "cutout"), other.apply(_read(root, 0)))
    with pytest.raises(DataError, match=r"^cutout: image is 16x16 pixels, expected 32x32"):
        read_rgb(path, 32, None, "cutout")


def test_a_downloaded_fits_set_records_its_manifest_and_header(tmp_path):
    """``galmet download --survey legacy --format fits`` writes images/<objID>.fits and a manifest
    with survey/layer/format: the manifest's fields are kept, the header adds the bands, and a
    row whose download failed is dropped as for JPEGs."""
    root = make_tiny_fits_dataset(tmp_path / "ds", n=5)
    ids = pd.read_parquet(root / "catalog.parquet")["objID"].to_numpy()
    _fits_path(root, 4).unlink()
    status = ["ok"] * 4 + ["failed"]
    manifest = pd.DataFrame(
        {
            "objID": ids,
            "status": status,
            "size": 16,
            "scale": 0.262,
            "survey": "legacy",
            "layer": "ls-dr9-south",
            "format": "fits",
            "last_error": ["" if s == "ok" else "outside footprint" for s in status],
        }
    )
    manifest.to_parquet(root / "manifest.parquet")
    ds = load_dataset(root)
    im = ds.imaging
    assert len(ds) == 4 and "outside footprint" in ds.skipped[0]
    assert (im.source, im.format, im.survey, im.layer, im.bands, im.pixel_scale) == (
        "manifest.parquet",
        "fits",
        "legacy",
        "ls-dr9-south",  # the manifest's, not the header's ls-dr10
        "grz",
        0.262,
    )


def test_embed_explain_and_predict_dataset_use_the_models_stretch(tmp_path, capsys):
    """A model records the stretch it was trained with: its inputs are made with it, whatever
    the dataset's own stretch (here the Legacy default)."""
    import torch

    from galmet.data.imaging import Imaging
    from galmet.nn.bundle import load_model, save_bundle
    from galmet.nn.net import build_model
    from galmet.predict.dataset import predict_dataset
    from galmet.runs.embed import embedding_table

    root = make_tiny_fits_dataset(tmp_path / "ds", n=8, size=16)
    own = Stretch(scales=(1.0, 1.0, 1.0), stretch=3.0, Q=1.0)
    imaging = Imaging(16, pixel_scale=0.262, survey="legacy", bands="grz", format="fits", stretch=own.to_dict())
    torch.manual_seed(0)
    meta = {"targets": ["oh_p50"], "image_size": 16, "imaging": imaging.to_dict()}
    bundle = save_bundle(tmp_path / "m.pt", build_model("resnet18"), meta)
    model = load_model(bundle)
    assert model.imaging.stretch == own.to_dict()
    want = own.apply(np.stack([_read(root, i) for i in range(8)]))
    direct = model.embed(want, device="cpu")[0]
    table = embedding_table(bundle, root, split=None, device="cpu")
    got = table[[c for c in table.columns if c.startswith("emb_")]].to_numpy()
    np.testing.assert_allclose(got, direct, atol=1e-4)
    ds = load_dataset(root)  # the dataset's own (default) stretch ...
    assert ds.stretch != own
    pred = predict_dataset(model, ds, tta=False, device="cpu", flags=False)
    want_pred = model.predict(want, tta=False, device="cpu")
    np.testing.assert_allclose(pred["oh_p50_pred"].to_numpy(), np.ravel(want_pred), atol=1e-4)  # ... the model's
    code, _, err = run_cli(capsys, "explain", bundle, root, "--out", tmp_path / "ex", "--n", "2", "--split", "all")
    assert code == 0, err
    shown = np.load(tmp_path / "ex" / "attribution_gradcam.npz")["images"]
    assert any(np.array_equal(shown[0], w) for w in want)  # a galaxy as the model's stretch makes it
