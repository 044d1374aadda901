"""Torch-side image transforms for training and prediction, on any device, without host syncs.

- :func:`to_model_input`: uint8 images -> float NCHW (channels_last), ImageNet-normalised.
- :func:`center_crop`: the central square of each image.
- :func:`random_dihedral`: a random element of the dihedral group D4 per sample (augmentation).
- :func:`dihedral_view` / :func:`dihedral_views`: the 8 fixed D4 views (test-time augmentation).
- :func:`random_zoom`: fastai's random zoom (``max_zoom``) on a float batch.
- :func:`random_rotate`: fastai 0.7's ``RandomRotate(10)``: a random small rotation (p = 0.75).
- :func:`random_lighting`: fastai 0.7's ``RandomLighting(0.05, 0.05)``: random brightness and contrast.
- :func:`augment_batch`: the whole training chain (what training and fastai-style TTA feed the net).

The numpy references of the rotation and the lighting are in ``tests/nn/test_augment.py``.

Element ``i`` (0-7) is the same transform as the numpy reference :func:`galmet.data.transforms.dihedral`:
0-3 rotate by 0/90/180/270 degrees, 4-7 flip left-right and then rotate.

Layout: a tensor whose last dimension is 3 (and whose dimension 1 is not) is read as NHWC;
otherwise as NCHW. Images must be square for the 90-degree rotations to keep their shape.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from galmet.data.transforms import DIHEDRAL, dihedral

#: ImageNet channel statistics (RGB, on the 0-1 scale) used by torchvision's pretrained weights.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Probability that fastai's RandomScale zooms an image (the rest are left at scale 1).
ZOOM_PROBABILITY = 0.75
#: Probability that fastai 0.7's RandomRotate rotates an image.
ROTATE_PROBABILITY = 0.75

_PERM_CACHE: dict[tuple[int, str], torch.Tensor] = {}
_NORM_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def is_nhwc(x: torch.Tensor) -> bool:
    """True when a 4-d image batch is laid out (N, H, W, 3), False for (N, 3, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"expected a 4-d image batch, got shape {tuple(x.shape)}")
    return x.shape[-1] == 3 and x.shape[1] != 3


def center_crop(x, size: int | None):
    """The central ``size`` x ``size`` pixels of a batch (N, H, W, 3) or (N, 3, H, W): a view, no copy.

    Works on torch tensors and numpy arrays alike. ``size=None`` (or the full size) returns ``x``.
    An odd margin puts the extra pixel at the bottom/right, the same for every image.
    """
    if size is None:
        return x
    nhwc = is_nhwc(x)
    h = x.shape[1] if nhwc else x.shape[2]
    if size > h:
        raise ValueError(f"cannot crop {size}x{size} pixels out of {h}x{h} images")
    lo = (h - size) // 2
    if nhwc:
        return x[:, lo : lo + size, lo : lo + size, :]
    return x[:, :, lo : lo + size, lo : lo + size]


def to_model_input(
    x: torch.Tensor,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> torch.Tensor:
    """Convert uint8 images to the model's float input: ``(x / 255 - mean) / std``.

    Parameters
    ----------
    x : torch.Tensor
        uint8 (N, H, W, 3) or (N, 3, H, W), on any device.
    mean, std : tuple of 3 float
        Per-channel statistics on the 0-1 scale (ImageNet by default).

    Returns
    -------
    torch.Tensor
        float32 (N, 3, H, W) in channels_last memory format, on ``x``'s device.
    """
    if is_nhwc(x):
        x = x.permute(0, 3, 1, 2)  # a contiguous NHWC tensor viewed as NCHW *is* channels_last
    x = x.contiguous(memory_format=torch.channels_last)
    scale, shift = _norm_constants(tuple(mean), tuple(std), x.device)
    out = x.to(torch.float32).mul_(scale).sub_(shift)
    return out.contiguous(memory_format=torch.channels_last)


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W, 3) or (N, 3, H, W) as float32 (N, 3, H, W) in [0, 1], channels_last."""
    if is_nhwc(x):
        x = x.permute(0, 3, 1, 2)
    x = x.contiguous(memory_format=torch.channels_last)
    return x.to(torch.float32).div_(255.0).contiguous(memory_format=torch.channels_last)


def normalize_unit(
    x: torch.Tensor,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> torch.Tensor:
    """Float images (N, 3, H, W) in [0, 1] to the model's input ``(x - mean) / std``."""
    scale, shift = _norm_constants(tuple(mean), tuple(std), x.device)
    return (x * (scale * 255.0) - shift).contiguous(memory_format=torch.channels_last)


def _norm_constants(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of shape (1, 3, 1, 1) with (x/255 - m)/s = x * scale - shift, cached per device.

    Cached because building a small tensor on a GPU from Python numbers is a blocking copy:
    once per batch it would be a host synchronisation per training step.
    """
    key = (mean, std, str(device))
    consts = _NORM_CACHE.get(key)
    if consts is None:
        scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32).view(1, 3, 1, 1)
        shift = torch.tensor([m / s for m, s in zip(mean, std, strict=True)], dtype=torch.float32).view(1, 3, 1, 1)
        consts = _NORM_CACHE[key] = (scale.to(device), shift.to(device))
    return consts


def _spatial_dims(x: torch.Tensor) -> tuple[int, int]:
    return (1, 2) if is_nhwc(x) else (2, 3)


def dihedral_view(x: torch.Tensor, index: int) -> torch.Tensor:
    """Apply dihedral element ``index`` (0-7) to a whole batch (N, H, W, 3) or (N, 3, H, W).

    Matches :func:`galmet.data.transforms.dihedral` element by element. The result keeps the
    input's memory format (channels_last stays channels_last).
    """
    h, w = _spatial_dims(x)
    k, flip = DIHEDRAL[index % 8]
    keep_cl = h == 2 and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if keep_cl else torch.contiguous_format
    out = x.flip(w) if flip else x
    if k:
        out = torch.rot90(out, k, dims=(h, w))
    return out.contiguous(memory_format=fmt)


def dihedral_views(x: torch.Tensor) -> torch.Tensor:
    """All 8 dihedral views of a batch, stacked: shape (8, *x.shape); view ``i`` is element ``i``."""
    return torch.stack([dihedral_view(x, i) for i in range(8)])


def _permutations(size: int, device: torch.device) -> torch.Tensor:
    """int64 (8, size*size): flat source pixel of each output pixel, for each dihedral element.

    Built by applying the numpy reference to a grid of pixel numbers, so the two cannot disagree.
    """
    key = (size, str(device))
    perm = _PERM_CACHE.get(key)
    if perm is None:
        grid = np.arange(size * size, dtype=np.int64).reshape(1, size, size, 1)
        table = np.stack([dihedral(grid, i).reshape(-1) for i in range(8)])
        perm = torch.from_numpy(np.ascontiguousarray(table)).to(device)
        _PERM_CACHE[key] = perm
    return perm


def random_dihedral(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    return_index: bool = False,
):
    """Apply an independent, uniformly random dihedral element to every image of a batch.

    One gather over precomputed pixel permutations: no per-sample Python loop and no
    device-to-host synchronisation, so it runs asynchronously on a GPU.

    Parameters
    ----------
    x : torch.Tensor
        (N, H, W, C) or (N, 3, H, W) images of any dtype (uint8 or float), square (H == W).
    generator : torch.Generator, optional
        Random source on ``x``'s device (for reproducible augmentation).
    return_index : bool
        Also return the int64 (N,) element chosen for each image (on ``x``'s device).

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        Same shape, dtype, device and memory format as ``x``.
    """
    nhwc = is_nhwc(x)
    n = x.shape[0]
    size = x.shape[1] if nhwc else x.shape[2]
    if (x.shape[2] if nhwc else x.shape[3]) != size:
        raise ValueError(f"random_dihedral needs square images, got shape {tuple(x.shape)}")
    index = torch.randint(0, 8, (n,), device=x.device, generator=generator)
    idx = _permutations(size, x.device)[index]  # (N, H*W)
    channels_last = (not nhwc) and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if nhwc or channels_last:
        src = x if nhwc else x.permute(0, 2, 3, 1)  # NHWC view; free for channels_last tensors
        c = src.shape[-1]
        flat = src.reshape(n, size * size, c)
        out = torch.gather(flat, 1, idx.unsqueeze(-1).expand(n, size * size, c)).view(n, size, size, c)
        if not nhwc:
            out = out.permute(0, 3, 1, 2)
    else:
        c = x.shape[1]
        flat = x.reshape(n, c, size * size)
        out = torch.gather(flat, 2, idx.unsqueeze(1).expand(n, c, size * size)).view(n, c, size, size)
    return (out, index) if return_index else out


def random_zoom(
    x: torch.Tensor, max_zoom: float, generator: torch.Generator | None = None, p: float = ZOOM_PROBABILITY
) -> torch.Tensor:
    """fastai's ``RandomScale`` + ``RandomCrop`` on a float batch (N, C, H, W), on its device.

    Each image is, with probability ``p``, magnified by a factor uniform in [1, max_zoom]
    (bilinear, about a random centre that keeps the view inside the image) and cropped back
    to H x W; the rest pass through unchanged. No host synchronisation.
    """
    n = x.shape[0]
    u = torch.rand((n, 4), device=x.device, generator=generator)
    zoom = torch.where(u[:, 1] < p, 1 + (max_zoom - 1) * u[:, 0], torch.ones_like(u[:, 0]))
    inv = 1.0 / zoom
    theta = torch.zeros((n, 2, 3), device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = inv
    theta[:, 1, 1] = inv
    theta[:, :, 2] = (1 - inv).unsqueeze(1) * (2 * u[:, 2:] - 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.contiguous(memory_format=torch.channels_last)


def rotation_angles(n: int, max_deg: float, generator: torch.Generator | None, device, p: float = ROTATE_PROBABILITY):
    """The angles (degrees, float32 (N,)) :func:`random_rotate` draws: uniform in
    [-max_deg, max_deg] with probability ``p``, else 0 (one (N, 2) uniform draw)."""
    u = torch.rand((n, 2), device=device, generator=generator)
    deg = (2 * u[:, 0] - 1) * max_deg
    return torch.where(u[:, 1] < p, deg, torch.zeros_like(deg))


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image of a float batch (N, C, H, W), H = W, by ``degrees[n]`` about its centre.

    Bilinear interpolation; outside the image the border is mirrored (fastai 0.7 and OpenCV's
    ``BORDER_REFLECT``: ``...cba|abc...``). Pixel (row i, column j) of the output takes the input
    at column ``c + cos(a) (j - c) - sin(a) (i - c)``, row ``c + sin(a) (j - c) + cos(a) (i - c)``,
    ``c = (H - 1) / 2``: positive angles turn the picture counter-clockwise as displayed (rows
    down), as OpenCV's ``getRotationMatrix2D`` that fastai used.
    Images with angle 0 are returned unchanged, bit for bit.
    """
    n, _, h, w = x.shape
    if h != w:
        raise ValueError(f"rotate needs square images, got shape {tuple(x.shape)}")
    a = torch.deg2rad(degrees.to(x.dtype))
    c, s = torch.cos(a), torch.sin(a)
    theta = torch.zeros((n, 2, 3), device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = c, -s
    theta[:, 1, 0], theta[:, 1, 1] = s, c
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    keep = (degrees == 0).view(n, 1, 1, 1)
    return torch.where(keep, x, out).contiguous(memory_format=torch.channels_last)


def random_rotate(
    x: torch.Tensor, max_deg: float, generator: torch.Generator | None = None, p: float = ROTATE_PROBABILITY
) -> torch.Tensor:
    """fastai 0.7's ``RandomRotate(max_deg, p=0.75)`` on a float batch (N, C, H, W), on its device.

    Each image is, with probability ``p``, rotated by an angle uniform in [-max_deg, max_deg]
    degrees about its centre (:func:`rotate`); the rest pass through unchanged. One (N, 2)
    uniform draw from ``generator``; no host synchronisation. (fastai rotated about pixel
    (W // 2, H // 2), half a pixel off the centre for even sizes; galmet uses the true centre.)
    """
    return rotate(x, rotation_angles(x.shape[0], max_deg, generator, x.device, p))


def lighting_factors(n: int, max_change: float, generator: torch.Generator | None, device):
    """(brightness b, contrast c) of :func:`random_lighting`, float32 (N,) each: b uniform in
    [-max_change, max_change]; c from r uniform in the same range as fastai 0.7 maps it,
    ``1 + r`` for r >= 0 and ``1 / (1 - r)`` for r < 0 (one (N, 2) uniform draw)."""
    u = torch.rand((n, 2), device=device, generator=generator)
    b = (2 * u[:, 0] - 1) * max_change
    r = (2 * u[:, 1] - 1) * max_change
    c = torch.where(r < 0, 1.0 / (1.0 - r), 1.0 + r)
    return b, c


def lighting(x: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """fastai 0.7's ``lighting``: ``clip((x - mu) c + mu + b, 0, 1)`` per image, ``mu`` the mean of
    the image over all its pixels and channels; ``x`` float (N, C, H, W) in [0, 1]."""
    mu = x.mean(dim=(1, 2, 3), keepdim=True)
    out = (x - mu) * c.view(-1, 1, 1, 1) + mu + b.view(-1, 1, 1, 1)
    return out.clamp_(0.0, 1.0).contiguous(memory_format=torch.channels_last)


def random_lighting(x: torch.Tensor, max_change: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """fastai 0.7's ``RandomLighting(max_change, max_change)`` on a float batch in [0, 1]: a random
    brightness and contrast change per image (every image, as fastai; :func:`lighting_factors`)."""
    b, c = lighting_factors(x.shape[0], max_change, generator, x.device)
    return lighting(x, b, c)


def augment_batch(
    xb: torch.Tensor,
    generator: torch.Generator | None,
    *,
    crop: int | None = None,
    dihedral: bool = True,
    max_zoom: float = 1.0,
    rotate_deg: float = 0.0,
    lighting_change: float = 0.0,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> torch.Tensor:
    """A uint8 batch (N, H, W, 3) as training feeds it to the network: float NCHW, channels_last.

    The central ``crop``, a random dihedral element, then (fastai 0.7's order) the random zoom,
    rotation and lighting, then the normalisation. Without rotation and lighting the zoom runs on
    the normalised batch, as galmet always did (the two are linear, so only rounding differs): a
    recipe without them draws the same random numbers and gives the same tensors as before.
    """
    xb = center_crop(xb, crop)
    if dihedral:
        xb = random_dihedral(xb, generator=generator)
    if not (rotate_deg > 0 or lighting_change > 0):
        x = to_model_input(xb, mean, std)
        return random_zoom(x, max_zoom, generator) if max_zoom > 1 else x
    x = to_unit_float(xb)
    if max_zoom > 1:
        x = random_zoom(x, max_zoom, generator)
    if rotate_deg > 0:
        x = random_rotate(x, rotate_deg, generator)
    if lighting_change > 0:
        x = random_lighting(x, lighting_change, generator)
    return normalize_unit(x, mean, std)
