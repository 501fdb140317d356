"""Safe image decoding: anything a user can upload or point at, as RGB or a clear error.

Handles what real folders contain: CMYK and palette JPEG/PNGs, 16-bit and
grayscale images, alpha channels (composited on white), EXIF rotation,
truncated or zero-byte files, non-images, and decompression bombs (refused
before the pixels are decoded).

Every decode stays within a memory budget, judged from the header before a pixel
is decoded:

* the pixel count (``MAX_PIXELS``) and, for images deeper than 8 bits per channel,
  ``MAX_DEEP_PIXELS``;
* the real cost in bytes (``decode_cost``): the decoded image in Pillow's own storage
  (1 byte per pixel for 'L'/'P'/'1', 2 for 'I;16', 4 for every 3- or 4-channel mode,
  'LA' and 32-bit ones, plus the decoder's own buffer for WebP/TIFF), the bands the
  conversion to RGB makes and the result; over ``MAX_DECODED_BYTES`` it is refused;
* large photos are decoded at reduced size, their shorter side kept at least
  ``DECODE_SIDE`` (twice the 256 pixels the backbones resize to): JPEGs by the
  decoder itself (``Image.draft``: a 36 MP JPEG is decoded at 1/8 of its size), other
  formats by ``Image.reduce`` band by band, so a 40 MP photo never exists at full
  size in RGB (and no result has more than ``MAX_RESULT_PIXELS``);
* all decodes running at once in this process share ``DECODE_BUDGET_BYTES`` (a
  visitor whose photo does not fit waits for the others' to finish).
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import warnings
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Pillow's formats for those extensions (MPO: a camera's multi-picture JPEG).
IMAGE_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP", "TIFF")

# 40 megapixels: far above any photo a lesson needs, far below a decompression bomb.
MAX_PIXELS = 40_000_000
# More than 8 bits per channel (16-bit PNG/TIFF, 32-bit integer or float): scientific or
# scanned images, whose rescale to 8 bits works in float32.
MAX_DEEP_PIXELS = 12_000_000
# Real bytes one decode may take (see decode_cost): a 30 MP RGB PNG (120 MB in Pillow) fits,
# a 6300x6300 RGBA PNG (159 MB) does not; JPEGs are decoded reduced and always fit.
MAX_DECODED_BYTES = 128 * 1024 * 1024
# What all decodes running at once in one process may take together.
DECODE_BUDGET_BYTES = 2 * MAX_DECODED_BYTES
# Shorter side kept when a large photo is decoded at reduced size.
DECODE_SIDE = 512
MAX_RESULT_PIXELS = 4 * 2**20  # largest reduced result (what a session may keep of one photo)
_DEEP_MODES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA", "P")
# Decoders that hold the whole picture in a buffer of their own before Pillow copies it.
_DECODER_BUFFER = {"WEBP": 4, "TIFF": 4}
_BAND_PIXELS = 1 << 20  # pixels converted at a time
_BAND_BYTES_PER_PIXEL = 16  # a band's copies: crop, RGBA or float32, composite, reduce
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


class ImageError(ValueError):
    """A file that is not a usable image; the message says why, for the page or the log."""


class _Budget:
    """Bytes that decodes running at once in this process may hold together."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Wait until ``nbytes`` fit beside the decodes in flight, hold them meanwhile."""
        nbytes = min(nbytes, self.total)
        with self._cond:
            self._cond.wait_for(lambda: self.used + nbytes <= self.total)
            self.used += nbytes
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


_BUDGET = _Budget(DECODE_BUDGET_BYTES)


def is_image_name(path: str | Path) -> bool:
    """Whether the file name has an image extension (hidden files excluded)."""
    name = Path(path).name
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def is_image_content(prefix: bytes) -> bool:
    """Whether the first bytes of a file are an image signature Pillow decodes (JPEG, PNG...).

    Uses each Pillow plugin's own signature test, so a text file or zeros named ``x.jpg``
    is told apart without decoding anything.
    """
    Image.init()
    for fmt in IMAGE_FORMATS:
        entry = Image.OPEN.get(fmt)
        if entry is None:
            continue
        accept = entry[1]
        try:
            ok = accept is None or accept(prefix[:16])
        except Exception:  # noqa: BLE001 - a plugin's test must not make a file fatal
            ok = False
        if ok is True or (ok and not isinstance(ok, str)):  # a str: recognised but unsupported
            return True
    return False


def open_rgb(source: str | Path | bytes | BinaryIO, max_pixels: int = MAX_PIXELS,
             min_side: int | None = DECODE_SIDE) -> Image.Image:
    """Decode an image file or bytes to an RGB ``PIL.Image``, within the memory budget.

    Args:
        source: a path, raw bytes or a binary file object.
        max_pixels: refuse images with more pixels than this (decompression bombs).
        min_side: decode a large photo at reduced size, its shorter side at least this
            (None: full size, still within ``MAX_DECODED_BYTES``).

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
            cost = check_header(img, name, max_pixels, min_side)
            with _BUDGET.hold(cost):
                img.load()  # decode now, so truncation shows up here and not later
                return _to_rgb(img, min_side)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{name}: refused as a decompression bomb ({err})") from err
    except FileNotFoundError as err:
        raise ImageError(f"{name}: no such file") from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{name}: not an image file") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"{name}: damaged or truncated image ({_plain(err)})") from err


def _plain(err: BaseException) -> str:
    """The error's text without a file path (``[Errno 2] ...: '/srv/x'`` -> its strerror)."""
    return getattr(err, "strerror", None) or str(err)


def reduce_factor(size: tuple[int, int], min_side: int | None) -> int:
    """The integer factor that keeps the shorter side at least ``min_side`` (1: no reduction).

    A panorama is reduced further, to at most ``MAX_RESULT_PIXELS`` (its shorter side then
    ends below ``min_side``; a 20000x1000 photo would otherwise stay 20 MP).
    """
    if not min_side:
        return 1
    width, height = size
    return max(1, min(size) // min_side, math.ceil(math.sqrt(width * height / MAX_RESULT_PIXELS)))


def decode_cost(img: Image.Image, min_side: int | None = DECODE_SIDE) -> int:
    """Bytes of memory ``open_rgb`` needs at most for this opened (not yet decoded) image.

    The decoded picture in Pillow's storage of its mode (after any ``draft``), the
    decoder's own buffer where it keeps one, the bands of the conversion to RGB and
    the (reduced) RGB result.
    """
    width, height = img.size
    pixels = width * height
    mode = img.mode
    stored = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    decoded = pixels * (stored + _DECODER_BUFFER.get(img.format or "", 0))
    bands = min(pixels, _BAND_PIXELS + width * reduce_factor(img.size, min_side)) * _BAND_BYTES_PER_PIXEL
    f = reduce_factor(img.size, min_side)
    result = math.ceil(width / f) * math.ceil(height / f) * 4 * 2  # RGB, and its EXIF-rotated copy
    return decoded + bands + result


def check_header(img: Image.Image, name: str = "upload", max_pixels: int = MAX_PIXELS,
                 min_side: int | None = DECODE_SIDE) -> int:
    """Judge an opened (not yet decoded) image by its header; set a JPEG to decode reduced.

    Returns:
        The bytes its decode will take (``decode_cost``).

    Raises:
        ImageError: too many pixels, a deep (> 8-bit) image over ``MAX_DEEP_PIXELS``,
            or a decode costing more than ``MAX_DECODED_BYTES``.
    """
    width, height = img.size
    pixels = width * height
    if pixels > max_pixels:
        raise ImageError(f"{name}: {width}x{height} pixels is too large (limit {max_pixels:,})")
    deep = _DEEP_MODES.get(img.mode)
    if deep and pixels > min(MAX_DEEP_PIXELS, max_pixels):
        raise ImageError(f"{name}: a {8 * deep}-bit image of {width}x{height} pixels is too large "
                         f"(limit {MAX_DEEP_PIXELS:,} pixels for images deeper than 8 bits)")
    f = reduce_factor(img.size, min_side)
    if f > 1:
        # JPEG only (a no-op elsewhere): the decoder scales by 1/2, 1/4 or 1/8 while decoding,
        # never below the size asked for; reduce() does the rest.
        img.draft(None, (math.ceil(width / f), math.ceil(height / f)))
    cost = decode_cost(img, min_side)
    if cost > MAX_DECODED_BYTES:
        raise ImageError(f"{name}: a {width}x{height} {img.mode} image needs {cost / 2**20:,.0f} MB of memory "
                         f"to decode (limit {MAX_DECODED_BYTES // 2**20} MB per image)")
    return cost


def _band_rgb(band: Image.Image, extrema: tuple[float, float] | None) -> Image.Image:
    """One horizontal band of any mode as RGB (alpha on white, deep images rescaled)."""
    if extrema is not None:
        # 16/32-bit grayscale: rescale the image's real range to 8 bits instead of clipping.
        lo, hi = extrema
        arr = np.asarray(band, dtype=np.float32)
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if band.mode in _ALPHA_MODES:
        rgba = band.convert("RGBA")
        background = Image.new("RGB", band.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return band.convert("RGB")


def _to_rgb(img: Image.Image, min_side: int | None = DECODE_SIDE) -> Image.Image:
    """A decoded image as RGB, reduced by ``reduce_factor`` and turned by its EXIF orientation.

    Works band by band, so the conversion's copies are never of the whole picture.
    """
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    width, height = img.size
    f = reduce_factor(img.size, min_side)
    extrema = tuple(float(v) for v in img.getextrema()) if img.mode in _DEEP_MODES else None
    out = Image.new("RGB", (math.ceil(width / f), math.ceil(height / f)))
    rows = max(f, _BAND_PIXELS // max(width, 1) // f * f)  # a multiple of f: bands reduce exactly
    for top in range(0, height, rows):
        band = _band_rgb(img.crop((0, top, width, min(height, top + rows))), extrema)
        out.paste(band.reduce(f) if f > 1 else band, (0, top // f))
    method = _TRANSPOSE.get(orientation)
    return out.transpose(method) if method is not None else out
