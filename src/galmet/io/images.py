"""Decode and validate galaxy images (JPEG/PNG cutouts) into uint8 arrays.

Images are uint8 RGB, shape (H, W, 3), exactly as the SDSS cutout service returns them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from galmet.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def decode_image(data: bytes, expected_size: int | None = None, where: str = "image") -> np.ndarray:
    """Decode JPEG/PNG bytes into a uint8 array of shape (H, W, 3).

    Parameters
    ----------
    data : bytes
        The encoded file content.
    expected_size : int, optional
        Required width and height in pixels; ``None`` accepts any square-or-not size.
    where : str
        Names the image in error messages (file name, objID).

    Raises
    ------
    DataError
        Undecodable or truncated data, a mode other than RGB, or the wrong size.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # full decode: catches truncated files that open() alone accepts
            mode, size = im.mode, im.size
            if mode != "RGB":
                raise DataError(f"{where}: image mode is {mode}, expected RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad data
        raise DataError(f"{where}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    if expected_size is not None and size != (expected_size, expected_size):
        raise DataError(f"{where}: image is {size[0]}x{size[1]} pixels, expected {expected_size}x{expected_size}")
    return arr


def read_image(path: str | os.PathLike, expected_size: int | None = None, where: str | None = None) -> np.ndarray:
    """Read and decode one image file into uint8 (H, W, 3); see :func:`decode_image`."""
    path = Path(path)
    label = where or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{label}: image file not found") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot read image ({exc})") from exc
    return decode_image(data, expected_size, label)


def encode_jpeg(image: np.ndarray, quality: int = 75) -> bytes:
    """Encode a uint8 (H, W, 3) array as JPEG bytes (quality like the SDSS cutout service)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()
