"""``python -m dltl_core code PAGE``: the plain PyTorch script behind a page's chart.

The settings are the page's link: pass its query string (or the whole link) with
``--query``, so a shared link and its code always agree::

    python -m dltl_core code gd --query "surface=rosenbrock&opt=adam&lr=0.05"
    python -m dltl_core code overfit --notebook overfit.ipynb
    python -m dltl_core code lab-transfer --notebook lab_transfer.ipynb
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from dltl_core.codegen import PAGES, export, page_name
from dltl_core.commands._common import writable_file

NAME = "code"
HELP = "Print the plain PyTorch script for a page's settings (its link's query string); write a notebook"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("page", help=f"the page: {', '.join(PAGES)} (or its link, e.g. http://localhost:8501/gd?lr=0.1)")
    parser.add_argument("--query", default="", help="the link's query string, e.g. \"lr=0.1&steps=40\" "
                        "(or the whole link); missing settings take the page's defaults")
    parser.add_argument("--notebook", default=None, metavar="FILE", help="also write the notebook (.ipynb) here")
    parser.add_argument("--output", default=None, metavar="FILE", help="write the script here instead of printing it")


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader never sees half a notebook."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> dict[str, Any]:
    notebook = writable_file("--notebook", args.notebook)
    output = writable_file("--output", args.output)
    query = args.query
    if not query and ("?" in args.page):  # the whole link given as PAGE
        query = args.page
    script = export(page_name(args.page), query)
    if notebook is not None:
        _write(notebook, script.notebook_text())
    if output is not None:
        _write(output, script.source())
    return {"page": script.page, "query": script.query, "problems": list(script.problems),
            "script": None if output is not None else script.source(),
            "notebook": str(notebook) if notebook else None, "output": str(output) if output else None}


def format_text(result: dict[str, Any]) -> str:
    lines = [f"# link problem: {p}" for p in result["problems"]]
    if result["script"] is not None:
        lines.append(result["script"].rstrip("\n"))
    for what in ("output", "notebook"):
        if result[what]:
            lines.append(f"wrote {result[what]}")
    return "\n".join(lines)
