"""The Architectures and Results & search pages, driven through Streamlit's AppTest."""

from __future__ import annotations

import json
import os
import math
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dltl_core.profile import count_params, meta_arch
from dltl_core.runs import RunRecord, append_runs, load_results

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assets" / "results_cpu.json"


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_arch_page_describes_and_sizes_the_chosen_network():
    at = _open("pages/40_arch.py")
    assert not at.error, [e.value for e in at.error]
    assert _metrics(at)["Parameters"] == "11.17 M"  # ResNet-18 by default
    at.selectbox(key="arch").set_value("densenet121").run()
    at.select_slider(key="width").set_value(0.5).run()
    assert not at.exception and not at.error
    params = count_params(meta_arch("densenet121", 0.5))
    assert _metrics(at)["Parameters"] == f"{params / 1e6:.2f} M"
    text = " ".join(m.value for m in at.markdown)
    assert "Dense connections" in text and "concatenat" in text
    # Layer table and comparison table: one row per block, one row per architecture.
    layer_rows, compare = at.dataframe[0].value, at.dataframe[1].value
    assert layer_rows["params"].sum() == params
    assert len(compare) == 7 and "reference acc. (%)" in compare.columns


def test_arch_page_measures_throughput_on_request():
    at = _open("pages/40_arch.py")
    at.selectbox(key="arch").set_value("vgg11_bn").run()
    at.select_slider(key="width").set_value(0.125).run()
    assert _metrics(at)["Training (cpu)"] == "—"
    at.button(key="measure").click().run()
    # The measurement runs in a worker process (progress, ETA, Stop): rerun until it reports.
    deadline = time.time() + 150
    while not _metrics(at)["Training (cpu)"].endswith("img/s") and time.time() < deadline:
        assert not at.exception and not at.error, [e.value for e in at.error]
        time.sleep(0.5)
        at.run()
    assert not at.exception and not at.error
    assert _metrics(at)["Training (cpu)"].endswith("img/s")


def test_arch_page_survives_a_bad_link():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/40_arch.py")
    at.query_params["arch"] = "resnet9000"
    at.query_params["width"] = "banana"
    at.run()
    assert not at.exception
    assert at.warning and "ignored" in at.warning[0].value
    assert at.selectbox(key="arch").value == "resnet18"


def test_results_page_opens_on_the_shipped_study():
    shipped = load_results(SHIPPED)
    assert shipped.runs, "assets/results_cpu.json must hold the CPU study"
    at = _open("pages/41_results.py")
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert len(table) == len(shipped.runs)
    assert set(table["run_id"]) == {r["run_id"] for r in shipped.runs}
    # Provenance is on the page: device, torch version, epochs.
    text = " ".join(m.value for m in at.markdown)
    assert "Device:" in text and shipped.runs[0]["versions"]["torch"] in text
    assert any(b.label == "Download CSV" for b in at.get("download_button"))
    # The reference table lists kuangliu's numbers beside ours.
    ref = at.dataframe[-1].value
    assert {float(v) for v in ref["kuangliu test (%)"] if v != "—"} == {92.64, 93.02, 95.04, 95.11}


def test_results_page_filters():
    at = _open("pages/41_results.py")
    full = len(at.dataframe[0].value)
    at.multiselect(key="f_arch").set_value(["resnet18"]).run()
    table = at.dataframe[0].value
    assert 0 < len(table) < full and set(table["arch"]) == {"resnet18"}
    at.multiselect(key="f_arch").set_value([]).run()
    assert not at.exception and len(at.dataframe[0].value) == 0
    assert any("No run matches" in i.value for i in at.info)


def test_results_page_reads_only_what_the_operator_configured(tmp_path, monkeypatch):
    path = tmp_path / "mine.json"
    rec = RunRecord(arch="vgg16_bn", width=0.5, config={"epochs": 2, "lr": 0.1}, seed=1,
                    data={"n_train": 100}, device="cpu", versions={"torch": "x"},
                    history=[{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1, "train_acc": 0.2, "val_acc": 0.25},
                             {"epoch": 2, "train_loss": 1.5, "val_loss": 1.9, "train_acc": 0.4, "val_acc": 0.35}],
                    val_acc=0.35, best_val_acc=0.35, best_epoch=2, params=100, flops=1000, wall_seconds=3.0)
    append_runs(path, [rec])
    (tmp_path / "junk.json").write_text(json.dumps({"hello": 1}))
    monkeypatch.setenv("DLTL_RESULTS", f"{path}{os.pathsep}{tmp_path / 'junk.json'}")
    at = _open("pages/41_results.py")
    # A visitor picks among the configured sources; there is no box to type a path or URL into.
    assert not at.text_input
    at.selectbox(key="rs_source").set_value("file1").run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["run_id"]) == [rec.run_id]
    at.selectbox(key="rs_source").set_value("file2").run()
    assert not at.exception
    assert "not a DLTL results file" in at.error[0].value
    # A URL naming any other file is refused with a warning, and the page stays on a shipped study.
    at2 = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at2.run()
    at2.switch_page("pages/41_results.py")
    at2.query_params["source"] = "/etc/passwd"
    at2.run()
    assert not at2.exception and at2.warning
    assert len(at2.dataframe[0].value) == len(load_results(SHIPPED).runs)


@pytest.mark.slow
def test_results_page_reads_an_optuna_study(tmp_path, cifar_dir):
    from dltl_core.search import DataSpec, SearchConfig, SearchSpace, run_search

    db = tmp_path / "study.db"
    space = SearchSpace(optimizers=("momentum",), schedules=("constant",), batch_sizes=(8,), widths=(0.125,))
    run_search(SearchConfig(arch="vgg11_bn", trials=2, storage=str(db), epochs=1, pruner="none", sampler_seed=0,
                            space=space, data=DataSpec(str(cifar_dir), max_per_class=3, val_fraction=0.34)))
    os.environ["DLTL_STORAGE"] = f"sqlite:///{db}"
    try:
        at = _open("pages/41_results.py")
        at.selectbox(key="rs_source").set_value("study").run()
    finally:
        del os.environ["DLTL_STORAGE"]
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert sorted(table["trial"]) == [0, 1] and set(table["kind"]) == {"trial"}
    assert all(math.isfinite(v) for v in table["val_acc"])
