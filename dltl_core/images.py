"""Safe image decoding: anything a user can upload or point at, as RGB or a clear error.

Handles what real folders contain: CMYK and palette JPEG/PNGs, 16-bit and
grayscale images, alpha channels (composited on white), EXIF rotation,
truncated or zero-byte files, non-images, and decompression bombs (refused
before the pixels are decoded).
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
            img = Image.open(source)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(f"{name}: {width}x{height} pixels is too large (limit {max_pixels:,})")
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


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: rescale the real range to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")
