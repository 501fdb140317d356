"""Safe image decoding: anything a user can upload or point at, as RGB or a clear error.

Handles what real folders contain: CMYK and palette JPEG/PNGs, 16-bit and
grayscale images, alpha channels (composited on white), EXIF rotation,
truncated or zero-byte files, non-images, and decompression bombs (refused
before the pixels are decoded).

The header is judged before any pixel is decoded: the pixel count (``MAX_PIXELS``),
the bit depth (images with more than 8 bits per channel, whose conversion needs more
memory per pixel, are limited to ``MAX_DEEP_PIXELS``) and the decoded size in bytes
(``MAX_DECODED_BYTES``). An 89 KB 16-bit 6300x6300 PNG is refused from its header.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# 40 megapixels: far above any photo a lesson needs, far below a decompression bomb.
MAX_PIXELS = 40_000_000
# More than 8 bits per channel (16-bit PNG/TIFF, 32-bit integer or float): scientific or
# scanned images; the rescale to 8 bits needs 4 bytes per pixel on top of the image.
MAX_DEEP_PIXELS = 12_000_000
# Decoded bytes of one image (a 40 MP RGB photo is 120 MB).
MAX_DECODED_BYTES = 160 * 1024 * 1024
_DEEP_MODES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}


class ImageError(ValueError):
    """A file that is not a usable image; the message says why, for the page or the log."""


def is_image_name(path: str | Path) -> bool:
    """Whether the file name has an image extension (hidden files excluded)."""
    name = Path(path).name
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def open_rgb(source: str | Path | bytes | BinaryIO, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image file or bytes to an RGB ``PIL.Image``.

    Args:
        source: a path, raw bytes or a binary file object.
        max_pixels: refuse images with more pixels than this (decompression bombs).

    Raises:
        ImageError: empty, truncated, not an image, too large, or undecodable.
    """
    name = str(source) if isinstance(source, (str, Path)) else "upload"
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source)  # reads the header only
            check_header(img, name, max_pixels)
            img.load()  # decode now, so truncation shows up here and not later
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{name}: refused as a decompression bomb ({err})") from err
    except FileNotFoundError as err:
        raise ImageError(f"{name}: no such file") from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{name}: not an image file") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"{name}: damaged or truncated image ({err})") from err
    return _to_rgb(img)


def check_header(img: Image.Image, name: str = "upload", max_pixels: int = MAX_PIXELS) -> None:
    """Refuse an opened (not yet decoded) image by its header: pixels, bit depth, bytes.

    Raises:
        ImageError: too many pixels, a deep (> 8-bit) image over ``MAX_DEEP_PIXELS``,
            or more than ``MAX_DECODED_BYTES`` once decoded.
    """
    width, height = img.size
    pixels = width * height
    if pixels > max_pixels:
        raise ImageError(f"{name}: {width}x{height} pixels is too large (limit {max_pixels:,})")
    deep = _DEEP_MODES.get(img.mode)
    if deep and pixels > min(MAX_DEEP_PIXELS, max_pixels):
        raise ImageError(f"{name}: a {8 * deep}-bit image of {width}x{height} pixels is too large "
                         f"(limit {MAX_DEEP_PIXELS:,} pixels for images deeper than 8 bits)")
    per_pixel = deep or max(len(img.getbands()), 1)
    if pixels * per_pixel > MAX_DECODED_BYTES:
        raise ImageError(f"{name}: {width}x{height} pixels would take {pixels * per_pixel / 2**20:,.0f} MB "
                         f"decoded (limit {MAX_DECODED_BYTES // 2**20} MB)")


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)
    if img.mode in _DEEP_MODES:
        # 16/32-bit grayscale: rescale the real range to 8 bits instead of clipping
        # (float32, in place: 4 bytes per pixel of extra memory).
        arr = np.array(img, dtype=np.float32)  # a writable copy (asarray may be a read-only view)
        lo, hi = float(arr.min()), float(arr.max())
        if hi > lo:
            arr -= lo
            arr *= 255.0 / (hi - lo)
        else:
            arr[...] = 0
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")
