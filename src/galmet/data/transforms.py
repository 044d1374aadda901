"""Image transforms on uint8 NHWC numpy arrays: the dihedral group and block-average re-binning.

Torch versions for the training loop live beside the model; these are the reference
implementations (and what CPU-side tools use).
"""

from __future__ import annotations

import numpy as np

from galmet.errors import ConfigError

#: The 8 elements of the dihedral group D4 as (quarter turns k, horizontal flip).
DIHEDRAL = tuple((k, flip) for flip in (False, True) for k in range(4))


def dihedral(images: np.ndarray, index: int) -> np.ndarray:
    """Apply dihedral element ``index`` (0-7) to images of shape (..., H, W, C).

    Elements 0-3 rotate by 0/90/180/270 degrees; 4-7 flip left-right, then rotate.
    """
    k, flip = DIHEDRAL[index % 8]
    out = images[..., :, ::-1, :] if flip else images
    return np.rot90(out, k, axes=(-3, -2))


def rebin(images: np.ndarray, size: int) -> np.ndarray:
    """Block-average images (N, H, W, C) down to (N, size, size, C), as the paper's resolution test.

    ``H`` must be a multiple of ``size``. The result keeps the input dtype (uint8 values are
    rounded), so a re-binned set can be stored and loaded like any other.
    """
    n, h, w, c = images.shape
    if h != w or h % size:
        raise ConfigError(f"cannot re-bin {h}x{w} images to {size}x{size}: size must divide {h}")
    f = h // size
    blocks = images.reshape(n, size, f, size, f, c).astype(np.float32).mean(axis=(2, 4))
    if images.dtype == np.uint8:
        return np.clip(np.rint(blocks), 0, 255).astype(np.uint8)
    return blocks.astype(images.dtype)
