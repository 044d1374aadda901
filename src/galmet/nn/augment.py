"""Torch-side image transforms for training and prediction, on any device, without host syncs.

- :func:`to_model_input`: uint8 images -> float NCHW (channels_last), ImageNet-normalised.
- :func:`center_crop`: the central square of each image.
- :func:`random_dihedral`: a random element of the dihedral group D4 per sample (augmentation).
- :func:`dihedral_view` / :func:`dihedral_views`: the 8 fixed D4 views (test-time augmentation).
- :func:`random_zoom`: fastai's random zoom (``max_zoom``) on a float batch.

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
