"""Torch augmentation: normalisation, dihedral views vs the numpy reference, random dihedral, and
fastai 0.7's rotation and lighting against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galmet.data.transforms import dihedral
from galmet.nn.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    augment_batch,
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
    augment_batch(xc, gen, max_zoom=1.1, rotate_deg=10.0, lighting_change=0.05)  # warm the caches
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            x_in = to_model_input(random_dihedral(xc, generator=gen))
            dihedral_view(x_in, 6)
            augment_batch(xc, gen, max_zoom=1.1, rotate_deg=10.0, lighting_change=0.05)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # the fastai chain on the GPU: the same draws as the CPU chain with the angles and factors it drew
    from galmet.nn.augment import lighting, lighting_factors, normalize_unit, rotate, rotation_angles, to_unit_float

    g = torch.Generator("cuda").manual_seed(3)
    got = augment_batch(xc, g, dihedral=False, rotate_deg=10.0, lighting_change=0.05)
    g = torch.Generator("cuda").manual_seed(3)
    angles, (bb, cc) = rotation_angles(16, 10.0, g, "cuda"), lighting_factors(16, 0.05, g, "cuda")
    ref = normalize_unit(lighting(rotate(to_unit_float(x), angles.cpu()), bb.cpu(), cc.cpu()))
    torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=1e-4)


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


# --- fastai 0.7's RandomRotate and RandomLighting against numpy references -------------------


def _reflect(coord: np.ndarray, size: int) -> np.ndarray:
    """OpenCV's BORDER_REFLECT (``...cba|abc...``: mirrored about the outer pixel edges -0.5 and
    size - 0.5), then kept inside the outer pixel centres."""
    period = 2 * size
    c = np.mod(coord + 0.5, period)
    c = np.where(c >= size, period - c, c) - 0.5
    return np.clip(c, 0, size - 1)


def _rotate_reference(img: np.ndarray, degrees: float) -> np.ndarray:
    """Bilinear rotation of one (H, W, C) image about its centre, mirrored border (numpy)."""
    h = img.shape[0]
    c = (h - 1) / 2
    a = np.deg2rad(degrees)
    i, j = np.mgrid[0:h, 0:h].astype(np.float64)
    x = _reflect(c + np.cos(a) * (j - c) - np.sin(a) * (i - c), h)  # source column
    y = _reflect(c + np.sin(a) * (j - c) + np.cos(a) * (i - c), h)  # source row
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, h - 1), np.minimum(y0 + 1, h - 1)
    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    top = img[y0, x0] * (1 - wx) + img[y0, x1] * wx
    bottom = img[y1, x0] * (1 - wx) + img[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def _lighting_reference(img: np.ndarray, b: float, r: float) -> np.ndarray:
    """fastai 0.7's RandomLighting.do_transform + lighting(), as written there."""
    c = -1 / (r - 1) if r < 0 else r + 1
    mu = np.average(img)
    return np.clip((img - mu) * c + mu + b, 0.0, 1.0)


@pytest.mark.parametrize("size", [1, 2, 5, 8])
def test_rotation_matches_numpy_reference(size):
    from galmet.nn.augment import rotate

    rng = np.random.default_rng(size)
    imgs = rng.random((6, size, size, 3))
    angles = np.array([0.0, 3.7, -9.9, 10.0, 45.0, -130.0])
    x = torch.from_numpy(imgs).float().permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    out = rotate(x, torch.tensor(angles, dtype=torch.float32)).permute(0, 2, 3, 1).numpy()
    for n, a in enumerate(angles):
        np.testing.assert_allclose(out[n], _rotate_reference(imgs[n], a), atol=2e-5)
    assert np.array_equal(out[0], imgs[0].astype(np.float32))  # angle 0: untouched, bit for bit


def test_rotation_by_90_degrees_is_the_dihedral_quarter_turn():
    from galmet.nn.augment import rotate

    x = torch.rand(3, 3, 6, 6)
    np.testing.assert_allclose(rotate(x, torch.full((3,), 90.0)), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)


def test_random_rotate_draws_fastai_angles_seeded():
    from galmet.nn.augment import ROTATE_PROBABILITY, random_rotate, rotate, rotation_angles

    n = 4000
    a = rotation_angles(n, 10.0, torch.Generator().manual_seed(0), "cpu")
    assert a.abs().max() <= 10.0 and a.abs().min() == 0
    assert float((a != 0).float().mean()) == pytest.approx(ROTATE_PROBABILITY, abs=0.03)
    assert float(a[a != 0].abs().mean()) == pytest.approx(5.0, abs=0.3)  # uniform in [-10, 10]
    x = torch.rand(16, 3, 8, 8)
    got = random_rotate(x, 10.0, torch.Generator().manual_seed(1))
    ref = rotate(x, rotation_angles(16, 10.0, torch.Generator().manual_seed(1), "cpu"))
    assert torch.equal(got, ref) and not torch.equal(got, random_rotate(x, 10.0, torch.Generator().manual_seed(2)))


def test_lighting_matches_numpy_reference():
    from galmet.nn.augment import lighting, lighting_factors, random_lighting

    rng = np.random.default_rng(3)
    imgs = rng.random((5, 7, 7, 3))
    imgs[0] = 0.99  # a saturated image: the clip at 1 matters
    x = torch.from_numpy(imgs).float().permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(4)
    u = torch.rand((5, 2), generator=torch.Generator().manual_seed(4)).double().numpy()
    b_ref, r_ref = (2 * u[:, 0] - 1) * 0.05, (2 * u[:, 1] - 1) * 0.05
    b, c = lighting_factors(5, 0.05, torch.Generator().manual_seed(4), "cpu")
    np.testing.assert_allclose(b.numpy(), b_ref, atol=1e-7)
    np.testing.assert_allclose(c.numpy(), [-1 / (r - 1) if r < 0 else r + 1 for r in r_ref], atol=1e-6)
    out = random_lighting(x, 0.05, g).permute(0, 2, 3, 1).numpy()
    for n in range(5):
        np.testing.assert_allclose(out[n], _lighting_reference(imgs[n], b_ref[n], r_ref[n]), atol=1e-5)
    torch.testing.assert_close(lighting(x, torch.zeros(5), torch.ones(5)), x, rtol=0, atol=1e-6)  # b 0, c 1: identity


def test_augment_batch_without_rotation_and_lighting_is_the_old_chain():
    """The onecycle recipe's augmentation is unchanged: same random draws, same tensors."""
    from galmet.nn.augment import augment_batch, random_zoom

    xb = torch.from_numpy(np.random.default_rng(6).integers(0, 256, (9, 12, 12, 3), dtype=np.uint8))
    got = augment_batch(xb, torch.Generator().manual_seed(7), crop=8, dihedral=True, max_zoom=1.1)
    g = torch.Generator().manual_seed(7)
    from galmet.nn.augment import center_crop

    ref = random_zoom(to_model_input(random_dihedral(center_crop(xb, 8), generator=g)), 1.1, g)
    assert torch.equal(got, ref)


def test_augment_batch_applies_fastai_chain_in_order():
    from galmet.nn.augment import (
        lighting,
        lighting_factors,
        normalize_unit,
        random_zoom,
        rotate,
        rotation_angles,
        to_unit_float,
    )

    xb = torch.from_numpy(np.random.default_rng(8).integers(0, 256, (7, 8, 8, 3), dtype=np.uint8))
    got = augment_batch(xb, torch.Generator().manual_seed(9), max_zoom=1.1, rotate_deg=10.0, lighting_change=0.05)
    g = torch.Generator().manual_seed(9)
    x = to_unit_float(random_dihedral(xb, generator=g))
    x = random_zoom(x, 1.1, g)
    x = rotate(x, rotation_angles(7, 10.0, g, "cpu"))
    x = lighting(x, *lighting_factors(7, 0.05, g, "cpu"))
    torch.testing.assert_close(got, normalize_unit(x), rtol=0, atol=1e-6)
    assert got.shape == (7, 3, 8, 8) and got.is_contiguous(memory_format=torch.channels_last)
    # no augmentation at all: exactly the model input
    plain = augment_batch(xb, None, dihedral=False)
    assert torch.equal(plain, to_model_input(xb))
    assert torch.allclose(normalize_unit(to_unit_float(xb)), to_model_input(xb), atol=1e-5)
