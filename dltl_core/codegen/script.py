"""One exported script: cells of markdown and plain PyTorch code, as a ``.py`` or a notebook.

A page's exporter (``dltl_core/codegen/<page>.py``) returns a ``Script``; ``source()``
gives the ``.py`` a student runs with ``python``, ``notebook()`` the ``.ipynb`` for
Jupyter or Colab with the same code in the same order and the page's explanation as
markdown cells. The code imports only what the lab installs (torch, torchvision, timm,
numpy, scikit-learn, optionally matplotlib), never this project.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Cell:
    """One notebook cell: ``markdown`` (the lecture's words, formulas in ``$…$``) or ``code``."""

    kind: Literal["markdown", "code"]
    text: str


def md(text: str) -> Cell:
    """A markdown cell (dedented, so exporters can write it indented)."""
    return Cell("markdown", textwrap.dedent(text).strip("\n"))


def code(text: str) -> Cell:
    """A code cell (dedented)."""
    return Cell("code", textwrap.dedent(text).strip("\n"))


WIDTH = 88  # the .py's comment lines are wrapped to this width (the panel shows ~90 columns at 1280 px)


def _comment(text: str) -> str:
    """A markdown cell as a comment block: headings underlined, paragraphs re-wrapped."""
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.extend("# " + part for part in textwrap.wrap(" ".join(para), WIDTH - 2, break_long_words=False,
                                                               break_on_hyphens=False))
            para.clear()

    for line in text.splitlines():
        heading = line.lstrip("#")
        if line.startswith("#") and heading.startswith(" "):
            flush()
            out += [f"# {heading.strip()}", "# " + "-" * len(heading.strip())]
        elif not line.strip() or line.lstrip().startswith(("-", "*", "|", "$$", "```")):
            flush()  # blank lines, lists, tables and display maths keep their own lines
            out.append(("# " + line).rstrip())
        else:
            para.append(line.strip())
    flush()
    return "\n".join(out)


@dataclass(frozen=True)
class Script:
    """The plain PyTorch code for one page at one set of settings.

    Attributes:
        page: the page's URL name (``"gd"``).
        title: a heading for the script and the notebook.
        query: the canonical query string of the settings it was built for (``lr=0.1&steps=40``).
        cells: markdown and code, in the order of the lecture.
        problems: what was wrong with the link (the page shows the same warnings); the code
            is built for the values actually used.
    """

    page: str
    title: str
    query: str
    cells: tuple[Cell, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def stem(self) -> str:
        """The file name the downloads use, without extension (``dltl_lab_scratch``)."""
        return "dltl_" + self.page.replace("-", "_")

    def source(self) -> str:
        """The ``.py``: a header, markdown cells as comment blocks, code cells in order."""
        settings = "".join(f"\n    {line}" for line in self.query_lines())
        head = f"Plain PyTorch for the DLTL page /{self.page}" + (f", at the settings of its link:{settings}" if settings
                                                                  else ".")
        parts = [f'"""{self.title}\n\n{head}\n\nRun: python {self.stem}.py\n"""']
        for cell in self.cells:
            parts.append(_comment(cell.text) if cell.kind == "markdown" else cell.text)
        return "\n\n".join(parts) + "\n"

    def query_lines(self, width: int = WIDTH - 8) -> list[str]:
        """The link's query string cut at ``&`` into lines of at most ``width`` characters."""
        lines: list[str] = []
        for item in self.query.split("&") if self.query else []:
            if lines and len(lines[-1]) + 1 + len(item) <= width:
                lines[-1] += "&" + item
            else:
                lines.append(("&" if lines else "?") + item)
        return lines

    def notebook(self) -> Any:
        """The ``.ipynb`` as an ``nbformat`` v4 notebook (``nbformat.writes`` gives its text)."""
        import nbformat
        from nbformat import v4

        settings = "\n".join(self.query_lines())
        head = f"# {self.title}\n\nPlain PyTorch for the DLTL page `/{self.page}`"
        head += f", at the settings of its link:\n\n```\n{settings}\n```" if settings else "."
        cells = [v4.new_markdown_cell(head)]
        for cell in self.cells:
            make = v4.new_markdown_cell if cell.kind == "markdown" else v4.new_code_cell
            cells.append(make(cell.text))
        nb = v4.new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}})
        nbformat.validate(nb)
        return nb

    def notebook_text(self) -> str:
        """The notebook as JSON text (what the download button and ``--notebook`` write)."""
        import nbformat

        return nbformat.writes(self.notebook())


__all__ = ["Cell", "Script", "code", "md"]
