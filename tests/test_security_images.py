"""Issue 11, replayed: an image is judged from its header before it is decoded.

The huge-pixel 16-bit PNG sent to Predict.

The other findings of the review: tests/test_security_*.py, one file per subject.
"""

from __future__ import annotations

import numpy as np
import pytest


# ----------------------------------------------------------------------------- images

def test_huge_16bit_png_is_refused_from_its_header(monkeypatch):
    """Finding: "an 89 KB 16-bit 6300x6300 PNG sent to Predict raised peak memory 1.25 -> 1.98 GB"."""
    import io

    from PIL import Image, ImageFile

    from dltl_core.images import ImageError, open_rgb

    row = (np.arange(6300, dtype=np.uint16) // 64 * 64)[None, :]
    buf = io.BytesIO()
    Image.fromarray(np.broadcast_to(row, (6300, 6300)).copy()).save(buf, "PNG", optimize=True)
    blob = buf.getvalue()
    assert len(blob) < 200_000 and Image.open(io.BytesIO(blob)).mode == "I;16"
    del row

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded")

    with monkeypatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", no_decoding)
        with pytest.raises(ImageError, match=r"16-bit image of 6300x6300 pixels is too large"):
            open_rgb(blob)
    # A 16-bit photo of a reasonable size is still converted.
    small = io.BytesIO()
    Image.fromarray((np.arange(120 * 90, dtype=np.uint16).reshape(90, 120) * 7)).save(small, "PNG")
    assert open_rgb(small.getvalue()).size == (120, 90)
