"""Torch augmentation: normalisation, dihedral views vs the numpy reference, random dihedral."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galmet.data.transforms import dihedral
from galmet.nn.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    dihedral_view,
    dihedral_views,
    random_dihedral,
    to_model_input,
)


@pytest.fixture
def batch():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)


def test_to_model_input_values_layout(batch):
    out = to_model_input(torch.from_numpy(batch))
    assert out.shape == (5, 3, 8, 8) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    ref = (batch.astype(np.float64) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)
    nchw = to_model_input(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous())
    assert torch.equal(nchw, out)


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "channels_last"])
def test_dihedral_views_match_numpy_reference(batch, layout):
    x = torch.from_numpy(batch)
    if layout != "nhwc":
        x = x.permute(0, 3, 1, 2)
        x = x.contiguous() if layout == "nchw" else x.contiguous(memory_format=torch.channels_last)
    views = dihedral_views(x)
    assert views.shape == (8, *x.shape)
    for i in range(8):
        got = views[i] if layout == "nhwc" else views[i].permute(0, 2, 3, 1)
        np.testing.assert_array_equal(got.numpy(), dihedral(batch, i))
    assert len({views[i].numpy().tobytes() for i in range(8)}) == 8  # all 8 elements distinct
    if layout == "channels_last":
        assert dihedral_view(x, 5).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "channels_last"])
def test_random_dihedral_applies_the_chosen_element(layout):
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (64, 6, 6, 3), dtype=np.uint8)
    x = torch.from_numpy(imgs)
    if layout != "nhwc":
        x = x.permute(0, 3, 1, 2)
        x = x.contiguous() if layout == "nchw" else x.contiguous(memory_format=torch.channels_last)
        x = x.float()
    out, index = random_dihedral(x, generator=torch.Generator().manual_seed(0), return_index=True)
    assert out.shape == x.shape and out.dtype == x.dtype
    views = dihedral_views(x)
    for n in range(len(x)):
        assert torch.equal(out[n], views[index[n], n])
    assert set(index.tolist()) == set(range(8))  # 64 draws of 8 elements: all appear (seeded)


def test_random_dihedral_is_seeded_and_varies():
    x = torch.arange(2 * 4 * 4 * 3, dtype=torch.float32).view(2, 4, 4, 3).repeat(50, 1, 1, 1)
    a = random_dihedral(x, generator=torch.Generator().manual_seed(3))
    b = random_dihedral(x, generator=torch.Generator().manual_seed(3))
    c = random_dihedral(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_dihedral_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        random_dihedral(torch.zeros(2, 4, 6, 3))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8))
    xc = x.cuda()
    assert torch.allclose(to_model_input(xc).cpu(), to_model_input(x))
    assert torch.equal(dihedral_views(xc).cpu(), dihedral_views(x))
    out, index = random_dihedral(xc, generator=torch.Generator("cuda").manual_seed(0), return_index=True)
    views = dihedral_views(x)
    for n in range(16):
        assert torch.equal(out[n].cpu(), views[index[n].item(), n])
    # Once warm (constants and permutations cached), a training step's augmentation never syncs.
    gen = torch.Generator("cuda").manual_seed(1)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            x_in = to_model_input(random_dihedral(xc, generator=gen))
            dihedral_view(x_in, 6)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_center_crop_numpy_and_torch_both_layouts():
    from galmet.nn.augment import center_crop

    x = np.arange(2 * 7 * 7 * 3, dtype=np.uint8).reshape(2, 7, 7, 3)
    np.testing.assert_array_equal(center_crop(x, 3), x[:, 2:5, 2:5])
    assert center_crop(x, None) is x and center_crop(x, 7).shape == x.shape
    t = torch.from_numpy(x)
    assert torch.equal(center_crop(t, 4), t[:, 1:5, 1:5])  # odd margin: extra pixel bottom/right
    nchw = t.permute(0, 3, 1, 2)
    assert torch.equal(center_crop(nchw, 3), nchw[:, :, 2:5, 2:5])
    with pytest.raises(ValueError, match="cannot crop 8x8 pixels out of 7x7"):
        center_crop(x, 8)
