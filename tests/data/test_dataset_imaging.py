"""A loaded dataset describes its imaging with the same type a bundle stores."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("size", [-1, 0, 10**9, 64.5, "64", True, float("nan")])
def test_load_dataset_refuses_a_bad_size_in_one_line(tmp_path, size):
    """Item 15: size=-1 (0, huge, not an int) is a ConfigError naming size, not a raw ValueError."""
    import galmet
    from galmet.errors import ConfigError

    ds = make_tiny_dataset(tmp_path / "ds", n=4, size=16)
    with pytest.raises(ConfigError, match="^size must be") as info:
        galmet.load_dataset(ds, size=size)
    assert info.value.param == "size" and "\n" not in str(info.value)
