"""Running exported code as a student would: a fresh process, or a headless notebook.

    out = run_script(export("gd", "lr=0.1").source())   # stdout of `python script.py`
    numbers = printed(out)                               # {"final loss": 0.0123, ...}
    cells = run_notebook(export("gd").notebook())        # outputs, executed by nbclient
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# `name: number` lines of a script's output (the convention of every exporter's prints).
_LINE = re.compile(r"^\s*([^:=\n]+?)\s*[:=]\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)\s*%?\s*$",
                   re.MULTILINE)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLTL_")}
    env["PYTHONPATH"] = ""  # the script must not need this project: it is not on the path
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_script(source: str, *, timeout: float = 300, cwd: Path | None = None, args: list[str] | None = None) -> str:
    """Run ``source`` as ``python script.py`` in a fresh process in an empty folder; its stdout.

    The folder holds nothing of this project and the process does not have it on its path,
    so an import of ``dltl_core`` fails: the script is self-contained or the test fails.

    Raises:
        AssertionError: the script exited non-zero (its stderr in the message).
    """
    with tempfile.TemporaryDirectory(prefix="dltl-code-") as tmp:
        where = Path(cwd or tmp)
        path = Path(tmp) / "script.py"
        path.write_text(source, encoding="utf-8")
        proc = subprocess.run([sys.executable, "-I", str(path), *(args or [])], cwd=where, env=_env(),
                              capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout


def printed(out: str) -> dict[str, float]:
    """The ``name: number`` lines of a script's output, by name (the last of a repeated name)."""
    return {m.group(1).strip(): float(m.group(2)) for m in _LINE.finditer(out)}


def run_notebook(nb: Any, *, timeout: float = 300, cwd: Path | None = None) -> list[str]:
    """Execute a notebook headless (nbclient, a fresh python3 kernel); each code cell's text output.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed.
    """
    import copy

    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    with tempfile.TemporaryDirectory(prefix="dltl-nb-") as tmp:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd or tmp)}}).execute(env=_env())
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts.append("".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"))
    return texts


def other_value(cls: type, name: str, current: Any) -> str:
    """Another valid URL value for a declared field than ``current`` (for "every setting reaches
    the code" tests): another choice, the flipped boolean, or a number inside the widget range."""
    from dltl_core.query import QueryReader
    from dltl_core.settings import field_kind, settings_of

    s = settings_of(cls)[name]
    kind = field_kind(cls, name)
    if kind is bool:
        return QueryReader.encode(not current)
    if kind is tuple:
        options = list(s.options())
        return ",".join(str(o) for o in options if o != options[0] or len(options) == 1)
    if kind in (int, float):
        if s.ticks:
            return QueryReader.encode(next(t for t in s.ticks if t != current))
        lo, hi = s.widget_range
        candidates = [current * 0.5, hi, lo, (lo + hi) / 2 if lo is not None and hi is not None else current + 1]
        for c in candidates:
            if c is not None and kind(c) != current and not (s.positive and c <= (s.lo or 0)):
                return QueryReader.encode(kind(c))
        raise AssertionError(f"no other value for {name}")
    options = [str(o) for o in s.options()]
    return next(o for o in options if o != str(current))
