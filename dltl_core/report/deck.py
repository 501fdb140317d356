"""The talk as a PowerPoint deck (python-pptx): one architecture of a study against the others.

Every slide is plain, editable PowerPoint (titles are real title placeholders, tables real
tables, charts PNG images rendered from the Results page's own chart specs), so it opens in
PowerPoint, Keynote, Google Slides and LibreOffice. A slide whose data is missing says why
instead of showing an empty chart.
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable, Sequence

import pandas as pd
from PIL import Image
from pptx import Presentation
from pptx.enum.text import MSO_AUTO_SIZE
from pptx.util import Emu, Inches, Pt

from dltl_core.archs import ARCHS
from dltl_core.recipes import RECIPES
from dltl_core.report import charts as C
from dltl_core.report import findings as F
from dltl_core.report import study as S
from dltl_core.report.talk import Talk, gather, layer_rows

WIDE, HIGH = Inches(13.333), Inches(7.5)  # 16:9
MARGIN = Inches(0.5)
BODY_TOP = Inches(1.25)
_TITLE_ONLY = 5


def _slide(prs: Presentation, title: str, notes: str = "") -> Any:
    slide = prs.slides.add_slide(prs.slide_layouts[_TITLE_ONLY])
    t = slide.shapes.title
    t.left, t.top, t.width, t.height = MARGIN, Inches(0.3), WIDE - 2 * MARGIN, Inches(0.85)
    t.text = title
    for p in t.text_frame.paragraphs:
        p.font.size = Pt(32)
        p.font.bold = True
    t.text_frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
    if notes:
        slide.notes_slide.notes_text_frame.text = notes
    return slide


def _text(slide: Any, paragraphs: Sequence[str], box: tuple[int, int, int, int], size: int = 18,
          mono: bool = False) -> Any:
    """A text box of paragraphs (``• `` starts a bullet line), shrunk by the viewer if it overflows."""
    shape = slide.shapes.add_textbox(*box)
    tf = shape.text_frame
    tf.word_wrap = True
    tf.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
    for i, text in enumerate(paragraphs):
        p = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
        p.text = text
        p.font.size = Pt(size)
        p.space_after = Pt(size * 0.5)
        if mono:
            p.font.name = "DejaVu Sans Mono"
    return shape


def _picture(slide: Any, png: bytes, box: tuple[int, int, int, int]) -> Any:
    """The PNG as large as fits ``box``, keeping its aspect ratio, centred horizontally."""
    left, top, width, height = box
    w, h = Image.open(io.BytesIO(png)).size
    scale = min(width / w, height / h)
    pw, ph = int(w * scale), int(h * scale)
    return slide.shapes.add_picture(io.BytesIO(png), Emu(left + (width - pw) // 2), Emu(top), Emu(pw), Emu(ph))


def _table(slide: Any, frame: pd.DataFrame, box: tuple[int, int, int, int], size: int = 12) -> Any:
    rows, cols = len(frame) + 1, len(frame.columns)
    shape = slide.shapes.add_table(rows, cols, *box)
    table = shape.table
    for j, col in enumerate(frame.columns):
        table.cell(0, j).text = str(col)
    for i, row in enumerate(frame.itertuples(index=False), start=1):
        for j, value in enumerate(row):
            table.cell(i, j).text = _cell(value)
    for i in range(rows):
        table.rows[i].height = Emu(min(int(Inches(0.4)), box[3] // rows))
        for j in range(cols):
            for p in table.cell(i, j).text_frame.paragraphs:
                p.font.size = Pt(size)
    return shape


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _why(slide: Any, text: str) -> None:
    """The message of a slide that cannot be made."""
    _text(slide, [text], (MARGIN, Inches(2.5), WIDE - 2 * MARGIN, Inches(2.5)), size=24)


def _chart_slide(prs: Presentation, title: str, chart: Callable[[], Any] | None, caption: str | None,
                 missing: str, extra: str = "") -> None:
    """A chart (rendered to PNG at export size) with its computed caption, or the reason it is missing."""
    slide = _slide(prs, title, notes=" ".join(x for x in (caption, extra) if x))
    if chart is None:
        _why(slide, missing)
        return
    png = C.to_png(chart(), width=1100, height=380)
    _picture(slide, png, (MARGIN, BODY_TOP, WIDE - 2 * MARGIN, Inches(4.55)))
    lines = [x for x in (caption, extra) if x]
    _text(slide, lines, (MARGIN, Inches(5.9), WIDE - 2 * MARGIN, Inches(1.45)), size=15)


def _title_slide(prs: Presentation, talk: Talk) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[0])
    title, sub = slide.shapes.title, slide.placeholders[1]
    title.text = f"{talk.label}: size, accuracy and training time"
    # The default template is 4:3: place both boxes on the 16:9 slide explicitly.
    title.left, title.top, title.width, title.height = MARGIN, Inches(1.6), WIDE - 2 * MARGIN, Inches(1.8)
    sub.left, sub.top, sub.width, sub.height = MARGIN, Inches(3.8), WIDE - 2 * MARGIN, Inches(2.4)
    for para in title.text_frame.paragraphs:
        para.font.size = Pt(44)
        para.font.bold = True
    p = talk.provenance
    sub.text = (f"CIFAR-10 · {p.source} · {p.runs}\n{p.images} images · recipe {p.recipe} · {p.dates}\n"
                "Made with DLTL (python -m dltl_core report)")
    for para in sub.text_frame.paragraphs:
        para.font.size = Pt(20)
    sub.text_frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE


def _arch_slide(prs: Presentation, talk: Talk) -> None:
    slide = _slide(prs, f"The architecture: {talk.label} (width ×{talk.width:g})")
    info = ARCHS[talk.arch] if talk.arch in ARCHS else None
    rows = layer_rows(talk.arch, talk.width)
    if info is None:
        _why(slide, f"{talk.arch} is not in this version's architecture registry, so it cannot be described.")
        return
    fam = info.family
    params = sum(r["params"] for r in rows)
    flops = sum(r["flops"] for r in rows)
    text = [f"{fam.name}, {info.depth} weighted layers · {params:,} parameters · {flops / 1e6:,.1f} M FLOPs "
            f"per image (32×32)",
            f"Block: {fam.block}", f"Connections: {fam.connections}", f"Activation order: {fam.preactivation}",
            f"Why: {fam.problem.replace('*', '')}", f"Paper: {fam.paper}"]
    _text(slide, text, (MARGIN, BODY_TOP, Inches(6.0), Inches(5.9)), size=14)
    table = pd.DataFrame(rows)[["name", "layer", "output", "params"]]
    shape = _table(slide, table, (Inches(6.8), BODY_TOP, Inches(6.0), Inches(0.36) * (len(table) + 1)), size=11)
    for col, width in zip(shape.table.columns, (1.25, 2.75, 1.0, 1.0)):
        col.width = Inches(width)


def _recipe_slide(prs: Presentation, talk: Talk) -> None:
    slide = _slide(prs, "The recipe and the search space")
    lines = []
    for name in sorted(talk.df["recipe"].dropna().unique()):
        if name in RECIPES:
            lines.append(f"Recipe {name}: {RECIPES[name].about}")
    row = talk.chosen
    if row is not None and row["recipe"] in RECIPES:
        changed = _changed(RECIPES[row["recipe"]].config, row)
        if changed:
            lines.append(f"Changed from recipe {row['recipe']} for {row['label']}: {changed}.")
    if row is not None:
        lines.append(f"{row['label']}: {row['optimizer']} lr {row['lr']:g}, batch {int(row['batch_size'])}, "
                     f"{int(row['epochs'])} epochs, {row['schedule']} schedule, weight decay {row['weight_decay']:g}, "
                     f"label smoothing {row['label_smoothing']:g}, seed {int(row['seed'])}.")
    lines.append(f"Data: {talk.provenance.images} CIFAR-10 images; validation accuracy after every epoch.")
    _text(slide, lines, (MARGIN, BODY_TOP, Inches(6.3), Inches(5.9)), size=15)
    space = _space(talk.trials)
    if space.empty:
        _text(slide, ["No hyperparameter search in this study, so there is no search space to show."],
              (Inches(7.1), BODY_TOP, Inches(5.7), Inches(2)), size=16)
    else:
        n = len(talk.trials)
        _text(slide, [f"Search space of study {talk.study_name} ({n} trial{'' if n == 1 else 's'}):"],
              (Inches(7.1), BODY_TOP, Inches(5.7), Inches(0.5)), size=15)
        _table(slide, space, (Inches(7.1), Inches(1.85), Inches(5.7), Inches(0.42) * (len(space) + 1)), size=13)


def _changed(config: Any, row: pd.Series) -> str:
    """The fields a run changed from its recipe (``epochs 8 → 5``), among those the runs table keeps."""
    out = []
    for name in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "label_smoothing"):
        ours, theirs = row.get(name), getattr(config, name, None)
        if ours is None or (isinstance(ours, float) and math.isnan(ours)) or theirs is None:
            continue
        same = math.isclose(float(ours), float(theirs)) if isinstance(theirs, (int, float)) else ours == theirs
        if not same:
            out.append(f"{name} {_cell(theirs)} → {_cell(ours)}")
    return ", ".join(out)


def _space(trials: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per searched hyperparameter: its distribution, read from the trials' records."""
    import json

    seen: dict[str, str] = {}
    for r in trials:
        for name, spec in (r.get("distributions") or {}).items():
            if name in seen:
                continue
            try:
                d = json.loads(spec) if isinstance(spec, str) else spec
                attrs = d.get("attributes", {})
                if "choices" in attrs:
                    seen[name] = "one of " + ", ".join(map(str, attrs["choices"]))
                else:
                    scale = "log scale" if attrs.get("log") else "linear"
                    seen[name] = f"{attrs.get('low'):g} to {attrs.get('high'):g} ({scale})"
            except (ValueError, TypeError, AttributeError):
                seen[name] = str(spec)[:60]
    return pd.DataFrame([{"hyperparameter": k, "sampled from": v} for k, v in seen.items()])


def _search_slide(prs: Presentation, talk: Talk) -> None:
    title = "The hyperparameter search" + (f" ({talk.study_name})" if talk.study_name else "")
    slide = _slide(prs, title)
    if talk.history is None or talk.history.empty:
        _why(slide, talk.importance_note or "This study has no hyperparameter search.")
        return
    hist = talk.history[talk.history["study"] == talk.study_name]
    searched = sorted({S.arch_label(r.get("arch")) for r in talk.trials})
    whose = "" if talk.label in searched else f"This search is of {', '.join(searched)}, not {talk.label}. "
    summary = whose + (F.search_sentence(hist) or "")
    left_w = Inches(7.4) if talk.importances else WIDE - 2 * MARGIN
    _picture(slide, C.to_png(C.search_history(hist), width=640 if talk.importances else 1000, height=340),
             (MARGIN, BODY_TOP, left_w, Inches(4.6)))
    if talk.importances:
        _picture(slide, C.to_png(C.importances(talk.importances), width=380),
                 (Inches(8.1), BODY_TOP, Inches(4.7), Inches(4.6)))
        summary += " " + (F.importance_sentence(talk.importances) or "")
    else:
        summary += " " + talk.importance_note
    _text(slide, [summary], (MARGIN, Inches(6.0), WIDE - 2 * MARGIN, Inches(1.3)), size=15)


def _cost_slide(prs: Presentation, talk: Talk, cost: str, title: str, extra: str = "") -> None:
    done = F.completed(talk.df, talk.score).dropna(subset=[cost])
    chart = (lambda: C.pareto(talk.df, cost, talk.score, highlight=talk.arch)) if len(done) else None
    caption = F.pareto_sentence(talk.df, cost, talk.score)
    if chart is not None and caption is None:
        caption = "Only one completed run has this measure: there is no front to compare."
    _chart_slide(prs, title, chart, caption, f"No completed run records {C.AXES.get(cost, cost)}, so this chart "
                                            "cannot be drawn.", extra)


def _tta_slide(prs: Presentation, talk: Talk) -> None:
    have = talk.curves.dropna(subset=[talk.basis.curve, "val_acc"])
    chart = (lambda: C.time_to_accuracy(talk.curves, talk.basis.curve, talk.basis.unit, talk.target,
                                        highlight=talk.arch)) \
        if len(have) else None
    missing = ("No run records a per-epoch history with its time, so there are no curves to draw."
               if talk.curves.empty else f"No run records {talk.basis.unit} per epoch, so these curves cannot be "
                                         "drawn.")
    _chart_slide(prs, "Time to accuracy", chart, talk.conclusions.get("time to accuracy"), missing,
                 f"One line per architecture (its best run; {talk.label} drawn thicker); dotted line: the target. "
                 f"Time axis: {talk.basis.why}")


def _reference_slide(prs: Presentation, talk: Talk) -> None:
    slide = _slide(prs, "Reference: kuangliu/pytorch-cifar beside ours")
    ref = S.reference_display(S.reference_table(talk.df)).drop(columns=["its test, TTA (%)"], errors="ignore")
    _table(slide, ref, (MARGIN, BODY_TOP, WIDE - 2 * MARGIN, Inches(0.45) * (len(ref) + 1)), size=13)
    _text(slide, ["kuangliu/pytorch-cifar: width 1, 200 epochs on all 50,000 training images, accuracy on the "
                  "10,000 official test images. Ours: the budget in the table (— where a network has no completed "
                  "run or no test images were available)."],
          (MARGIN, Inches(5.3), WIDE - 2 * MARGIN, Inches(1.6)), size=15)


def _conclusions_slide(prs: Presentation, talk: Talk) -> None:
    slide = _slide(prs, "What the study shows")
    lines = []
    if talk.chosen is not None:
        rank = talk.rank()
        what = S.SCORES[talk.score].split(" (")[0]
        lines.append(f"{talk.chosen['label']}: {talk.chosen[talk.score]:.1f}% {what} accuracy"
                     f"{f', rank {rank}' if rank else ''}, {talk.chosen['params']:,.0f} parameters.")
    else:
        lines.append(f"{talk.label} has no completed run in this study (see the runs table: diverged, pruned "
                     "or failed), so it is not ranked.")
    names = {"accuracy": "Accuracy", "time to accuracy": "Speed", "size": "Size (parameters)",
             "training time": f"Training time ({talk.basis.unit})", "work (FLOPs)": "Work (FLOPs)"}
    lines += [f"{names.get(topic, topic)} — {text}" for topic, text in talk.conclusions.items()]
    if talk.score_note:
        lines.append(talk.score_note)
    _text(slide, lines, (MARGIN, BODY_TOP, WIDE - 2 * MARGIN, Inches(6.0)), size=15)


def _provenance_slide(prs: Presentation, talk: Talk) -> None:
    p = talk.provenance
    slide = _slide(prs, "Provenance: how these numbers were made")
    facts = [f"Source: {p.source} · {p.runs}", f"Device: {p.device} · dates {p.dates}",
             f"Recipe {p.recipe} · epochs {p.epochs} · images {p.images}", f"Versions: {p.versions}",
             f"Time axes: {talk.basis.why}"]
    if p.note:
        facts.append(p.note.replace("`", ""))
    _text(slide, facts, (MARGIN, BODY_TOP, WIDE - 2 * MARGIN, Inches(2.9)), size=13)
    cmds = list(p.commands) or ["(no commands recorded)"]
    _text(slide, cmds[:8] + ([f"… and {len(cmds) - 8} more"] if len(cmds) > 8 else []),
          (MARGIN, Inches(4.3), WIDE - 2 * MARGIN, Inches(3.0)), size=10, mono=True)


def build_talk(talk: Talk) -> bytes:
    """The deck of ``talk`` as .pptx bytes."""
    prs = Presentation()
    prs.slide_width, prs.slide_height = WIDE, HIGH
    _title_slide(prs, talk)
    _arch_slide(prs, talk)
    _recipe_slide(prs, talk)
    _search_slide(prs, talk)
    _cost_slide(prs, talk, "params", "Size against accuracy")
    _cost_slide(prs, talk, talk.basis.column, "Training time against accuracy", f"Time axis: {talk.basis.why}")
    _cost_slide(prs, talk, "flops", "Work (FLOPs per image) against accuracy")
    _tta_slide(prs, talk)
    _reference_slide(prs, talk)
    _conclusions_slide(prs, talk)
    _provenance_slide(prs, talk)
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def build_deck(prov: dict[str, Any], records: Sequence[dict[str, Any]], arch: str, **kwargs: Any) -> bytes:
    """The talk about ``arch`` from a study's provenance and records, as .pptx bytes (see ``talk.gather``)."""
    return build_talk(gather(prov, records, arch, **kwargs))
