"""Charts compiled once (``dltl_ui.charts.compiled``): a template filled with new labels is the
chart Altair would have built with those labels, and it is not built again."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd

from dltl_ui.charts import compiled


def _chart(labels):
    line = alt.Chart(alt.NamedData(name="paths")).mark_line().encode(
        x="step:Q", y="loss:Q",
        color=alt.Color("run:N", scale=alt.Scale(domain=list(labels), range=["#1f77b4", "#ff7f0e"])))
    return line.properties(title="Loss")


def test_template_takes_new_labels_without_a_new_build(monkeypatch):
    compiled.clear()
    shown, builds = [], []
    monkeypatch.setattr(compiled, "_show", lambda text, data: shown.append(json.loads(text)))

    def build(texts):
        builds.append(list(texts))
        return _chart(texts)

    frame = pd.DataFrame({"step": [0, 1], "loss": [1.0, 0.5], "run": ["SGD, η = 0.001"] * 2})
    for labels in (["SGD, η = 0.001", 'Adam "β", η = 0.05'], ["SGD, η = 0.0013", "Adam, η = 0.05"]):
        compiled.show_template(("test", 2), build, {"paths": frame}, texts=labels)
        reference, _ = compiled.compile_chart(_chart(labels))
        assert shown[-1] == json.loads(reference)  # quotes in a label survive the substitution
    assert len(builds) == 1  # the second set of labels reused the compiled spec


def test_a_stand_in_inside_a_longer_string_falls_back_to_a_real_build(monkeypatch):
    compiled.clear()
    shown = []
    monkeypatch.setattr(compiled, "_show", lambda text, data: shown.append(json.loads(text)))
    build = lambda texts: _chart(texts).properties(title=f"{texts[0]} against {texts[1]}")  # noqa: E731
    labels = ["SGD", "Adam"]
    compiled.show_template(("test-title", 2), build, {}, texts=labels)
    assert shown[-1]["title"] == "SGD against Adam"
    assert shown[-1]["encoding"]["color"]["scale"]["domain"] == labels


def test_learning_curves_drawn_from_a_template_are_the_chart_altair_builds(monkeypatch):
    """Two runs share one compiled template per panel, and each renders (vl-convert, SVG)
    exactly as the Altair chart built from that run's own history."""
    import io

    import pyarrow as pa
    import vl_convert

    from dltl_ui.charts import curves

    def rows(scale):
        return pd.DataFrame({"epoch": [1, 2, 3, 4], "train_loss": [1.0 * scale, 0.6, 0.4, 0.3],
                             "val_loss": [1.1 * scale, 0.8, 0.7, 0.75], "train_acc": [0.5, 0.7, 0.8, 0.9],
                             "val_acc": [0.45, 0.6, 0.65, 0.66], "elapsed": [0.1, 0.2, 0.3, 0.4]})

    def inline(spec, datasets):
        def values(raw):
            return json.loads(pa.ipc.open_stream(io.BytesIO(raw)).read_pandas().to_json(orient="records"))

        def walk(node):
            if isinstance(node, dict):
                if set(node) == {"name"} and node["name"] in datasets:
                    return {"values": values(datasets[node["name"]])}
                return {k: walk(v) for k, v in node.items()}
            return [walk(v) for v in node] if isinstance(node, list) else node
        return walk(spec)

    compiled.clear()
    shown, builds, drawn = [], [], []
    monkeypatch.setattr(compiled, "_show", lambda text, data: shown.append((json.loads(text), dict(data))))
    real_panels = curves.curve_panels
    monkeypatch.setattr(curves, "curve_panels", lambda *a, **k: builds.append(1) or real_panels(*a, **k))
    monkeypatch.setattr(curves.st, "columns", lambda n: [__import__("contextlib").nullcontext()] * n)
    for scale, best in ((1.0, 3), (2.0, 2)):
        history = rows(scale)
        before = len(builds)
        curves.show_curves(history, epochs=4, best_epoch=best)
        drawn.append(len(builds) - before)
        loss, acc = curves.learning_curves(history, epochs=4, best_epoch=best)
        for (spec, data), chart in zip(shown[-2:], (loss, acc)):
            with alt.data_transformers.disable_max_rows():
                ref = chart.to_dict()
            assert vl_convert.vegalite_to_svg(inline(spec, data)) == vl_convert.vegalite_to_svg(ref)
    assert drawn == [2, 0]  # one build per panel: the second run reused both templates
