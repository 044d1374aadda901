"""Decode and validate galaxy images (JPEG/PNG cutouts) into uint8 arrays.

Images are uint8 RGB, shape (H, W, 3), exactly as the SDSS cutout service returns them.

The header is read first (:func:`image_header`: the JPEG frame header or the PNG IHDR chunk,
parsed here without Pillow), so an image of the wrong size, or one too large to decode safely
(a "decompression bomb": a 2 MB JPEG of 12000 x 12000 pixels costs ~430 MB to decode), is
refused before a single pixel is decoded. Only JPEG and PNG are read.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galmet.errors import DataError
from galmet.io.inputs import special_kind

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Largest width x height galmet decodes (4096 x 4096 pixels, 48 MiB as uint8 RGB).
MAX_PIXELS = 4096 * 4096
#: Bytes read from the start of a file to find its header (a JPEG's EXIF block may precede it).
HEADER_BYTES = 1 << 16
#: Largest image file read (bytes): a 4096 x 4096 PNG stays far below it, and a file past it (an
#: image followed by gigabytes of anything) is refused without being read into memory.
MAX_IMAGE_FILE_BYTES = 64 << 20

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: A marker inside entropy-coded data: 0xFF (fill bytes allowed) then neither 0x00 nor RSTn.
_NEXT_MARKER = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class ImageHeader:
    """What the header of a JPEG or PNG says.

    Attributes
    ----------
    format : {"JPEG", "PNG"}
    width, height : int
        Pixels.
    end : int or None
        Offset just past the image's last byte (JPEG EOI marker, PNG IEND chunk) when the whole
        file was scanned and the end was found; bytes after it are not part of the image.
    """

    format: str
    width: int
    height: int
    end: int | None = None


def image_header(data: bytes, full: bool = False) -> ImageHeader:
    """Parse the header of JPEG or PNG bytes (no pixel is decoded).

    Parameters
    ----------
    data : bytes
        The file, or its first :data:`HEADER_BYTES` (enough for the size).
    full : bool
        Also scan to the end of the image (``ImageHeader.end``), to find trailing bytes.

    Raises
    ------
    ValueError
        Not a JPEG or PNG, or a header cut short (the message says which).
    """
    if data.startswith(b"\xff\xd8"):
        return _jpeg_header(data, full)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_header(data, full)
    raise ValueError("not a JPEG or PNG file")


def _jpeg_header(data: bytes, full: bool) -> ImageHeader:
    """Walk the JPEG marker segments: the frame header (SOFn) gives the size; with ``full``, the
    entropy-coded scans are skipped (0xFF00 stuffing, RSTn) up to the EOI marker."""
    n, i = len(data), 2
    size: tuple[int, int] | None = None
    while i < n:
        if data[i] != 0xFF:
            raise ValueError(f"corrupt JPEG (no marker at byte {i})")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:  # EOI
            if size is None:
                raise ValueError("corrupt JPEG (no frame header)")
            return ImageHeader("JPEG", size[0], size[1], i)
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            continue
        if i + 2 > n:
            break
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            raise ValueError(f"corrupt JPEG (segment length {length} at byte {i})")
        if marker in _JPEG_SOF:
            if i + 7 > n:
                break
            height = int.from_bytes(data[i + 3 : i + 5], "big")
            width = int.from_bytes(data[i + 5 : i + 7], "big")
            size = (width, height)
            if not full:
                return ImageHeader("JPEG", width, height)
        i += length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            if size is None:
                raise ValueError("corrupt JPEG (scan before the frame header)")
            m = _NEXT_MARKER.search(data, i)  # skips 0xFF00 stuffing and RSTn in one C call
            i = n if m is None else m.end() - 2
    if size is None:
        raise ValueError("truncated JPEG (no frame header)")
    return ImageHeader("JPEG", size[0], size[1], None)


def _png_header(data: bytes, full: bool) -> ImageHeader:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("truncated PNG (no IHDR chunk)")
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    if not full:
        return ImageHeader("PNG", width, height)
    i, end = 8, None
    while i + 8 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        i += 12 + length
        if kind == b"IEND":
            end = i if i <= len(data) else None
            break
    return ImageHeader("PNG", width, height, end)


def read_header(path: str | os.PathLike, where: str | None = None) -> ImageHeader:
    """The :class:`ImageHeader` of an image file, reading only its first bytes.

    Raises
    ------
    DataError
        The file is missing, a folder, unreadable, or not a JPEG/PNG.
    """
    path = Path(path)
    label = where or str(path)
    data = _read(path, label, HEADER_BYTES)
    try:
        return image_header(data)
    except ValueError as exc:
        if len(data) == HEADER_BYTES:  # a large block before the frame header: read it all
            try:
                return image_header(_read(path, label, None))
            except ValueError as exc2:
                raise DataError(f"{label}: cannot decode image ({exc2})") from None
        raise DataError(f"{label}: cannot decode image ({exc})") from None


def check_header(header: ImageHeader, expected_size: int | None, where: str) -> None:
    """DataError when the header's size is not ``expected_size`` square, or beyond :data:`MAX_PIXELS`."""
    w, h = header.width, header.height
    if w < 1 or h < 1:
        raise DataError(f"{where}: cannot decode image ({header.format} header says {w}x{h} pixels)")
    if expected_size is not None and (w, h) != (expected_size, expected_size):
        raise DataError(f"{where}: image is {w}x{h} pixels, expected {expected_size}x{expected_size}")
    if w * h > MAX_PIXELS:
        raise DataError(
            f"{where}: image is {w}x{h} pixels, more than galmet decodes ({MAX_PIXELS} pixels; a decompression bomb?)"
        )


def decode_image(data: bytes, expected_size: int | None = None, where: str = "image") -> np.ndarray:
    """Decode JPEG/PNG bytes into a uint8 array of shape (H, W, 3).

    The header is checked first (:func:`check_header`): an image of the wrong size or of more
    than :data:`MAX_PIXELS` pixels is refused without being decoded.

    Parameters
    ----------
    data : bytes
        The encoded file content.
    expected_size : int, optional
        Required width and height in pixels; ``None`` accepts any size up to :data:`MAX_PIXELS`.
    where : str
        Names the image in error messages (file name, objID).

    Raises
    ------
    DataError
        Not a JPEG/PNG, undecodable or truncated data, a mode other than RGB, or the wrong size.
    """
    try:
        header = image_header(data)
    except ValueError as exc:
        raise DataError(f"{where}: cannot decode image ({exc})") from None
    check_header(header, expected_size, where)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=(header.format,)) as im:
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


def _read(path: Path, label: str, limit: int | None) -> bytes:
    special = special_kind(path)
    if special is not None:  # (never opened: opening a FIFO blocks, a device never ends)
        shown = "a folder" if special == "directory" else f"a {special}"
        raise DataError(f"{label}: is {shown}, not an image file")
    try:
        with open(path, "rb") as fh:
            return fh.read() if limit is None else fh.read(limit)
    except FileNotFoundError:
        dangling = path.is_symlink()
        raise DataError(f"{label}: " + ("is a link to nothing" if dangling else "image file not found")) from None
    except IsADirectoryError:
        raise DataError(f"{label}: is a folder, not an image file") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot read image ({exc.strerror or exc})") from None


def read_image(path: str | os.PathLike, expected_size: int | None = None, where: str | None = None) -> np.ndarray:
    """Read and decode one image file into uint8 (H, W, 3); see :func:`decode_image`."""
    path = Path(path)
    label = where or str(path)
    if path.is_dir():
        raise DataError(f"{label}: is a folder, not an image file")
    data = _read(path, label, MAX_IMAGE_FILE_BYTES + 1)
    if len(data) > MAX_IMAGE_FILE_BYTES:
        raise DataError(f"{label}: image file is over {MAX_IMAGE_FILE_BYTES >> 20} MB; not an image galmet reads")
    return decode_image(data, expected_size, label)


def encode_jpeg(image: np.ndarray, quality: int = 75) -> bytes:
    """Encode a uint8 (H, W, 3) array as JPEG bytes (quality like the SDSS cutout service)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()
