"""Helpers of the security tests (tests/test_security_*.py): a photo zip, the /transfer page."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.conftest import open_page


def photo_zip(birds_dir: Path, species: int = 2, per: int = 3) -> bytes:
    """A zip of ``per`` real photos of each of the first ``species`` species, one folder each."""
    import io
    import zipfile

    from dltl_core import birds

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in birds.list_species(birds_dir)[:species]:
            for f in sorted((birds_dir / name).iterdir())[:per]:
                zf.write(f, f"{name}/{f.name}")
    return buf.getvalue()


def transfer_page(tmp_path: Path, monkeypatch) -> AppTest:
    """A visitor on the transfer page with an empty bird folder (it stops before any training)."""
    empty = tmp_path / "birds"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("DLTL_BIRDS_DIR", str(empty))
    monkeypatch.delenv("DLTL_DATA_ROOTS", raising=False)
    return open_page("pages/30_transfer.py", timeout=120)
