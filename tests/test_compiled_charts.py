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
