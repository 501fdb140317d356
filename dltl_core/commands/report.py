"""``report``: the talk about one architecture of a study, as an editable PowerPoint deck."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dltl_core.commands._common import check_range, writable_file

NAME = "report"
HELP = "a slide deck (.pptx) about one architecture of a study: charts, search, conclusions, provenance"
TIMES = ("auto", "cpu_seconds", "wall_seconds")
SCORES = ("val_acc", "test_acc", "test_acc_tta")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``report``."""
    parser.add_argument("--results", required=True, metavar="FILE",
                        help="a results file written by `search --results FILE`")
    parser.add_argument("--arch", required=True, metavar="NAME",
                        help="the architecture the talk is about (it must have runs in the study)")
    parser.add_argument("--out", required=True, metavar="FILE.pptx",
                        help="where to write the deck (its folder must exist and be writable)")
    parser.add_argument("--score", choices=SCORES, default="val_acc",
                        help="accuracy to compare (validation when the study has no test accuracy)")
    parser.add_argument("--time", choices=TIMES, default="auto",
                        help="seconds of the time axes; auto: CPU seconds for a shared or CPU-only study")
    parser.add_argument("--target", type=float, default=None, metavar="PCT",
                        help="accuracy (%%, 1-100) of 'fastest to'; default: one every architecture reaches")


def _out_path(path: str) -> Path:
    out = writable_file("--out", path)
    assert out is not None
    if out.suffix.lower() != ".pptx":
        raise ValueError(f"--out {path}: the deck is a .pptx file; name it e.g. talk.pptx")
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the deck and write it to ``--out`` (checked before any work)."""
    out = _out_path(args.out)
    check_range("--target", args.target, 1, 100)
    from dltl_core import cache
    from dltl_core.report.deck import build_talk
    from dltl_core.report.talk import gather
    from dltl_core.runs import load_results

    res = load_results(args.results)
    talk = gather(res.provenance, res.runs, args.arch, source=f"results file {Path(args.results).name}",
                  score=args.score, time=args.time, target=args.target)
    data = build_talk(talk)

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)

    cache.atomic_write(out, write)
    from pptx import Presentation

    slides = [s.shapes.title.text for s in Presentation(str(out)).slides]
    return {"out": str(out), "bytes": len(data), "slides": slides, "conclusions": talk.conclusions,
            "time_axis": talk.basis.unit, "score": talk.score}


def format_text(result: dict[str, Any]) -> str:
    """The written file and its slide titles."""
    lines = [f"wrote {result['out']} ({result['bytes'] / 1e6:.1f} MB, {len(result['slides'])} slides)"]
    lines += [f"  {i}. {t}" for i, t in enumerate(result["slides"], start=1)]
    return "\n".join(lines)
