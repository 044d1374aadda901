"""Dataset directories: loading, validation of bad rows, splits, decode cache."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_dataset
from galmet.cli.main import main
from galmet.data.dataset import load_dataset
from galmet.errors import DataError
from galmet.io.images import encode_jpeg


def _catalog(root):
    return pd.read_parquet(root / "catalog.parquet")


def test_load_tiny_dataset_builds_and_reuses_cache(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    assert len(ds) == 24 and ds.image_size == 16
    imgs = ds.images()
    assert imgs.shape == (24, 16, 16, 3) and imgs.dtype == np.uint8
    assert ds.cache_path == tiny_dataset / "images.npy"
    assert ds.catalog["objID"].dtype == np.int64
    # second load memory-maps the cache and gives the same pixels
    ds2 = load_dataset(tiny_dataset)
    assert isinstance(ds2.images(), np.memmap)
    np.testing.assert_array_equal(np.asarray(ds2.images()), np.asarray(imgs))


def test_cache_rebuilt_when_an_image_changes(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    first = ds.paths[0]
    new = np.full((16, 16, 3), 200, np.uint8)
    first.write_bytes(encode_jpeg(new, 95))
    ds2 = load_dataset(tiny_dataset)
    assert abs(int(ds2.images()[0].mean()) - 200) <= 3


def test_splits_are_seeded_and_cover_everything(tiny_dataset):
    a = load_dataset(tiny_dataset, split_seed=3, load_images=False).catalog["split"]
    b = load_dataset(tiny_dataset, split_seed=3, load_images=False).catalog["split"]
    c = load_dataset(tiny_dataset, split_seed=4, load_images=False).catalog["split"]
    assert (a == b).all() and not (a == c).all()
    assert set(a) == {"train", "valid", "test"}


def test_existing_split_column_is_respected(tmp_path):
    root = make_tiny_dataset(tmp_path / "d", n=40, split=True)
    cat = load_dataset(root, load_images=False).catalog
    given = _catalog(root)["split"]
    assert (cat.loc[given == "test", "split"] == "test").all()
    assert (cat.loc[given == "train", "split"] != "test").all()
    assert (cat["split"] == "valid").sum() == round(0.2 * (given == "train").sum())


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing", "not found"),
        ("corrupt", "cannot decode"),
        ("truncated", "cannot decode"),
        ("size", "expected 16x16"),
        ("mode", "mode is L"),
        ("nan", "is NaN"),
        ("range", "outside 7-10"),
    ],
)
def test_bad_rows_fail_with_one_line_naming_object(tiny_dataset, breakage, message):
    from PIL import Image

    cat = _catalog(tiny_dataset)
    oid = int(cat["objID"].iloc[5])
    path = tiny_dataset / "images" / f"{oid}.jpg"
    if breakage == "missing":
        path.unlink()
    elif breakage == "corrupt":
        path.write_bytes(b"<html>Server error</html>")
    elif breakage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif breakage == "size":
        path.write_bytes(encode_jpeg(np.zeros((20, 16, 3), np.uint8)))
    elif breakage == "mode":
        Image.new("L", (16, 16)).save(path, "JPEG")
    else:
        cat.loc[5, "oh_p50"] = np.nan if breakage == "nan" else 12.5
        cat.to_parquet(tiny_dataset / "catalog.parquet")
    with pytest.raises(DataError) as err:
        load_dataset(tiny_dataset)
    text = str(err.value)
    assert "\n" not in text and str(oid) in text and message in text
    assert not (tiny_dataset / "images.npy").exists()  # nothing written for a failed load

    ds = load_dataset(tiny_dataset, on_error="skip")
    assert len(ds) == 23 and len(ds.skipped) == 1 and oid not in set(ds.catalog["objID"])
    assert ds.images().shape[0] == 23


def test_image_folder_without_catalog(tmp_path, tiny_dataset):
    folder = tmp_path / "pics"
    folder.mkdir()
    for p in sorted((tiny_dataset / "images").iterdir())[:5]:
        (folder / p.name).write_bytes(p.read_bytes())
    ds = load_dataset(folder)
    assert len(ds) == 5 and "file" in ds.catalog.columns and ds.catalog["objID"].dtype == np.int64
    assert not (folder / "images.npy").exists()  # never writes into a user's folder


def test_missing_target_column_is_one_line_error(tiny_dataset):
    with pytest.raises(DataError, match="target column 'sfr' is not in the catalog"):
        load_dataset(tiny_dataset, targets=["sfr"])


def test_real_sample_loads_through_same_api(sdss_sample):
    ds = load_dataset(sdss_sample)
    assert len(ds) == 500
    assert ds.images().shape == (500, 128, 128, 3)
    given = pd.read_csv(sdss_sample / "catalog.csv")["split"]
    assert (given == "train").sum() == 400 and (given == "test").sum() == 100
    assert (ds.catalog["split"] == "test").sum() == 100
    assert ds.catalog["split"].isin(["train", "valid"]).sum() == 400
    assert ds.cache_path is not None and sdss_sample not in ds.cache_path.parents


def test_cli_info_ok_and_bad_input(tiny_dataset, capsys):
    assert main(["info", str(tiny_dataset)]) == 0
    assert "24 galaxies" in capsys.readouterr().out
    (tiny_dataset / "images" / f"{_catalog(tiny_dataset)['objID'].iloc[0]}.jpg").write_bytes(b"junk")
    assert main(["info", str(tiny_dataset)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot decode" in err[0]
    assert main(["info", str(tiny_dataset), "--skip-bad"]) == 0


def test_python_m_galmet_runs():
    out = subprocess.run([sys.executable, "-m", "galmet", "--help"], capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 0 and "commands" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "galmet", "info", "/no/such/dir"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no such dataset" in bad.stderr


def test_rows_the_downloader_marked_failed_are_dropped_not_fatal(tiny_dataset):
    cat = _catalog(tiny_dataset)
    oid = int(cat["objID"].iloc[3])
    (tiny_dataset / "images" / f"{oid}.jpg").unlink()
    pd.DataFrame({"objID": [oid], "status": ["failed"], "last_error": ["HTTP 404"]}).to_parquet(
        tiny_dataset / "manifest.parquet"
    )
    ds = load_dataset(tiny_dataset)
    assert len(ds) == 23 and "HTTP 404" in ds.skipped[0]
    # a missing image that the manifest does not explain still fails
    other = int(cat["objID"].iloc[7])
    (tiny_dataset / "images" / f"{other}.jpg").unlink()
    with pytest.raises(DataError, match=str(other)):
        load_dataset(tiny_dataset)
