"""A loaded dataset describes its imaging with the same type a bundle stores."""

from __future__ import annotations

from conftest import make_tiny_dataset
from galmet.data.dataset import load_dataset
from galmet.data.imaging import Imaging


def test_dataset_imaging_is_what_its_folder_records(tmp_path):
    root = make_tiny_dataset(tmp_path / "ds", n=6, size=32)
    ds = load_dataset(root, load_images=False)
    assert ds.imaging == Imaging.unknown(32)  # nothing recorded: nothing invented
    (root / "synth_config.yaml").write_text("size: 32\npixel_scale_arcsec: 1.184\n")
    assert (ds.imaging.pixel_scale, ds.imaging.fetch_size, ds.imaging.data_release) == (1.184, 32, None)
    assert ds.imaging.source == "synth_config.yaml"
