"""The talk export: computed conclusions, chart images and the slide deck (``python -m dltl_core report``).

The studies here are hand-built run records with the structure ``search`` writes (history with
elapsed time, CPU seconds, split sizes, search trials with their Optuna distributions), with
parameters and FLOPs counted on the real networks.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import optuna
import pytest
from PIL import Image
from pptx import Presentation
from streamlit.testing.v1 import AppTest

from dltl_core.cli import main
from dltl_core.profile import count_flops, count_params, meta_arch
from dltl_core.report import charts as C
from dltl_core.report import findings as F
from dltl_core.report import study as S
from dltl_core.runs import RunRecord, append_runs, load_results

ROOT = Path(__file__).resolve().parent.parent
TITLES = ["ResNet-18: size, accuracy and training time", "The architecture: ResNet-18 (width ×0.125)",
          "The recipe and the search space", "The hyperparameter search (r18-study)", "Size against accuracy",
          "Training time against accuracy", "Work (FLOPs per image) against accuracy", "Time to accuracy",
          "Reference: kuangliu/pytorch-cifar beside ours", "What the study shows",
          "Provenance: how these numbers were made"]
SPACE = {"lr": optuna.distributions.FloatDistribution(0.01, 0.3, log=True),
         "batch_size": optuna.distributions.CategoricalDistribution([64, 128])}


def _record(arch: str, accs: list[float], *, width: float = 0.125, epoch_s: float = 10.0, n_val: int = 5000,
            kind: str = "run", trial: int | None = None, state: str = "complete", device: str = "cpu",
            sampled: dict | None = None, history: bool = True) -> RunRecord:
    model = meta_arch(arch, width)
    hist = [{"epoch": i + 1, "train_loss": 2.0 - 0.1 * i, "val_loss": 2.1 - 0.1 * i, "train_acc": a * 0.9,
             "val_acc": a, "lr": 0.1, "seconds": epoch_s, "elapsed": epoch_s * (i + 1)}
            for i, a in enumerate(accs)] if history else []
    wall = epoch_s * len(accs)
    return RunRecord(
        arch=arch, width=width, config={"epochs": len(accs), "batch_size": 128, "optimizer": "nesterov", "lr": 0.1,
                                        "weight_decay": 5e-4, "schedule": "onecycle", "label_smoothing": 0.1},
        seed=0, data={"dataset": "CIFAR-10", "n_train": 45000, "n_val": n_val}, device=device,
        versions={"torch": "2.14.1", "python": "3.11"}, history=hist, val_acc=accs[-1], best_val_acc=max(accs),
        best_epoch=accs.index(max(accs)) + 1, params=count_params(model), flops=count_flops(model),
        wall_seconds=wall, cpu_seconds=1.6 * wall, threads=2, state=state, recipe="cpu", kind=kind,
        study="r18-study" if kind == "trial" else None, trial=trial,
        distributions={k: optuna.distributions.distribution_to_json(d) for k, d in SPACE.items()} if sampled else {},
        params_sampled=sampled or {},
        command=f"python -m dltl_core search --fixed recipe=cpu --arch {arch} --results runs.json")


def _study(path: Path, **changes) -> Path:
    """Three architectures, a wider VGG, and a 4-trial search of ResNet-18: a small real study."""
    records = [
        _record("resnet18", [0.40, 0.55, 0.66, 0.72], epoch_s=40.0),
        _record("vgg11_bn", [0.45, 0.58, 0.64, 0.68], epoch_s=8.0),
        _record("vgg11_bn", [0.48, 0.62, 0.70, 0.74], width=0.25, epoch_s=20.0),
        _record("densenet_cifar", [0.30, 0.45, 0.55, 0.60], epoch_s=30.0),
    ] + [_record("resnet18", accs, kind="trial", trial=i, sampled={"lr": lr, "batch_size": bs}, epoch_s=30.0)
         for i, (accs, lr, bs) in enumerate([([0.3, 0.5], 0.02, 64), ([0.4, 0.62], 0.1, 128),
                                              ([0.35, 0.58], 0.05, 64), ([0.2, 0.3], 0.25, 128)])]
    for key, value in changes.items():
        records = value(records) if key == "edit" else records
    append_runs(path, records, {"commands": ["bash scripts/cpu_study.sh"], "shared_machine": True})
    return path


def _deck(path: Path) -> list[dict]:
    """Each slide's title, text, tables and pictures, read back with python-pptx."""
    out = []
    for slide in Presentation(str(path)).slides:
        texts, tables, pictures = [], [], []
        for shape in slide.shapes:
            if shape.has_text_frame and shape != slide.shapes.title:
                texts.append(shape.text_frame.text)
            if shape.has_table:
                tables.append([[c.text for c in row.cells] for row in shape.table.rows])
            if shape.shape_type == 13:  # picture
                pictures.append(Image.open(io.BytesIO(shape.image.blob)).size)
        out.append({"title": slide.shapes.title.text, "text": "\n".join(texts), "tables": tables,
                    "pictures": pictures})
    return out


def test_deck_for_resnet18_has_every_slide_and_its_content(tmp_path, capsys):
    results = _study(tmp_path / "runs.json")
    out = tmp_path / "talk.pptx"
    assert main(["report", "--results", str(results), "--arch", "resnet18", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["slides"] == TITLES and printed["time_axis"] == "CPU seconds"
    slides = _deck(out)
    assert [s["title"] for s in slides] == TITLES
    title, arch, recipe, search, size, time_s, flops, tta, ref, concl, prov = slides
    assert "45,000 training, 5,000 validation" in title["text"]
    # The architecture: its description, parameters and a folded layer table of the real network.
    params = count_params(meta_arch("resnet18", 0.125))
    assert f"{params:,} parameters" in arch["text"] and "Identity skip connections" in arch["text"]
    layers = arch["tables"][0]
    assert layers[0] == ["name", "layer", "output", "params"] and any("2 × BasicBlock" in r[1] for r in layers)
    assert sum(int(r[3].replace(",", "")) for r in layers[1:]) == params
    # Recipe and search space from the trials' distributions.
    assert "Recipe cpu" in recipe["text"]
    space = {r[0]: r[1] for r in recipe["tables"][0][1:]}
    assert space["lr"] == "0.01 to 0.3 (log scale)" and space["batch_size"] == "one of 64, 128"
    # The search: history and importances as images, and a sentence with the real best trial.
    assert len(search["pictures"]) == 2 and "the best, 62.0% validation accuracy, came at trial 1" in search["text"]
    # Chart slides: an image wide enough for a projector and the computed caption beneath.
    df = S.runs_frame(load_results(results).runs)
    for slide, cost in ((size, "params"), (time_s, "cpu_seconds"), (flops, "flops")):
        (w, h), = slide["pictures"]
        assert w >= 1800 and h >= 600
        assert F.pareto_sentence(df, cost) in slide["text"]
    assert "Time axis: CPU seconds" in time_s["text"] and "shared" in time_s["text"]
    assert tta["pictures"] and "Fastest to 60% validation accuracy: VGG-11 (BN) ×0.25" in tta["text"]
    ref_rows = {r[0]: r for r in ref["tables"][0][1:]}
    assert ref_rows["ResNet-18"][1:4] == ["93.02", "72.0", "×0.125"]
    assert ref_rows["ResNet-34"][2] == "—"  # no run: a dash, never "None"
    assert F.most_accurate(df) in concl["text"] and "rank 2 of 3 architectures" in concl["text"]
    assert "bash scripts/cpu_study.sh" in prov["text"] and "--arch densenet_cifar" in prov["text"]


def test_captions_are_computed_from_the_records(tmp_path):
    df = S.runs_frame(load_results(_study(tmp_path / "a.json")).runs)
    best = F.most_accurate(df)
    assert best.startswith("Most accurate: VGG-11 (BN) ×0.25 at 74.0% validation accuracy, 2.0 points ahead of "
                           "ResNet-18 ×0.125 (72.0%)")
    # 2 points on 5,000 images: se ≈ 0.62 each, gap/se_diff ≈ 2.3 > 2.
    assert "larger than the noise" in best
    # Change the records: ResNet-18 now leads, and on 250 images the gap is within the noise.
    def edit(records):
        for r in records:
            r.data["n_val"] = 250
            if r.arch == "resnet18" and r.kind == "run":
                r.val_acc, r.history[-1]["val_acc"] = 0.76, 0.76
        return records
    df2 = S.runs_frame(load_results(_study(tmp_path / "b.json", edit=edit)).runs)
    best2 = F.most_accurate(df2)
    assert best2.startswith("Most accurate: ResNet-18 ×0.125 at 76.0%") and "within the noise" in best2
    assert F.pareto_sentence(df, "params") != F.pareto_sentence(df2, "params")
    # Time to accuracy: the first epoch reaching the target, in the seconds asked for.
    curves = S.curves_frame(load_results(tmp_path / "a.json").runs, S.best_per_arch(df)["run_id"])
    assert F.default_target(curves) == 60.0
    assert F.fastest_to(curves, 70.0, "wall seconds", "elapsed").startswith(
        "Fastest to 70% validation accuracy: VGG-11 (BN) ×0.25 after 60 wall seconds (end of epoch 3)")
    assert "1 of 3 runs never reach it" in F.fastest_to(curves, 70.0, "CPU seconds", "cpu_elapsed")
    assert "96 CPU seconds" in F.fastest_to(curves, 70.0, "CPU seconds", "cpu_elapsed")  # 1.6 x 60 s
    assert F.fastest_to(curves, 99.0).startswith("No run shown reaches 99%")
    # Missing data: no caption rather than a wrong one.
    assert F.fastest_to(curves.iloc[0:0], 50.0) is None and F.most_accurate(df.iloc[0:0]) is None
    assert F.pareto_sentence(df.iloc[:1], "params") is None


def test_time_axis_follows_the_provenance():
    df = S.runs_frame([_record("resnet18", [0.5]).as_dict()])
    assert S.time_basis({"shared_machine": True}, df).column == "cpu_seconds"
    assert S.time_basis({}, df).column == "cpu_seconds"  # CPU-only runs
    assert S.time_basis({"shared_machine": False}, df).column == "wall_seconds"
    assert S.time_basis({"shared_machine": True}, df, "wall_seconds").column == "wall_seconds"
    gpu = S.runs_frame([_record("resnet18", [0.5], device="cuda").as_dict()])
    assert S.time_basis({}, gpu).column == "wall_seconds"


def test_a_pareto_front_of_one_run_is_said_so_and_drawn_without_a_line(tmp_path):
    df = S.runs_frame([_record("vgg11_bn", [0.7]).as_dict(), _record("resnet34", [0.6]).as_dict()])
    assert F.pareto_sentence(df, "params").startswith("One run dominates all 1 others: VGG-11 (BN) ×0.125")
    layers = C.export_spec(C.pareto(df, "params"))["layer"]
    assert "line" not in [(ly["mark"]["type"] if isinstance(ly["mark"], dict) else ly["mark"]) for ly in layers]
    png, svg = C.to_png(C.pareto(df, "params")), C.to_svg(C.pareto(df, "params"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and "<svg" in svg and "VGG-11 (BN)" in svg


@pytest.mark.parametrize("case", ["no history", "diverged", "single architecture", "no test accuracy"])
def test_bad_studies_still_make_a_deck_that_says_why(tmp_path, case):
    if case == "no history":
        records = [_record("resnet18", [0.5, 0.6], history=False), _record("vgg11_bn", [0.55], history=False)]
    elif case == "diverged":
        records = [_record("resnet18", [0.1, 0.1], state="diverged"), _record("vgg11_bn", [0.4, 0.5])]
    elif case == "single architecture":
        records = [_record("resnet18", [0.5, 0.6])]
    else:
        records = [_record("resnet18", [0.5, 0.6]), _record("vgg11_bn", [0.4, 0.65])]
    results = append_runs(tmp_path / "r.json", records)
    out = tmp_path / "talk.pptx"
    args = ["report", "--results", str(results), "--arch", "resnet18", "--out", str(out)]
    assert main(args + (["--score", "test_acc"] if case == "no test accuracy" else [])) == 0
    slides = {s["title"]: s for s in _deck(out)}
    assert len(slides) == 11
    search = slides["The hyperparameter search"]
    assert not search["pictures"] and "This study has no hyperparameter search" in search["text"]
    tta, concl = slides["Time to accuracy"], slides["What the study shows"]
    if case == "no history":
        assert not tta["pictures"] and "No run records a per-epoch history" in tta["text"]
    if case == "diverged":
        assert "ResNet-18 has no completed run in this study" in concl["text"]
        assert "Only one completed run" in slides["Size against accuracy"]["text"]
    if case == "single architecture":
        assert "Only one completed run: ResNet-18 ×0.125" in concl["text"]
    if case == "no test accuracy":
        assert "so the talk compares validation accuracy" in concl["text"]


def test_report_refuses_bad_paths_before_any_work(tmp_path, capsys):
    results = _study(tmp_path / "runs.json")
    base = ["report", "--results", str(results), "--arch", "resnet18", "--json"]
    cases = {
        "missing folder": ["--out", str(tmp_path / "nope" / "talk.pptx")],
        "a folder": ["--out", str(tmp_path)],
        "not a deck": ["--out", str(tmp_path / "runs2.json")],
        "target": ["--out", str(tmp_path / "t.pptx"), "--target", "500"],
    }
    before = sorted(os.listdir(tmp_path))
    for name, extra in cases.items():
        assert main(base + extra) == 2, name
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1 and "error" in json.loads(lines[0]), name
    assert main(["report", "--results", str(results), "--arch", "resnet50", "--out", str(tmp_path / "x.pptx")]) == 2
    assert "'resnet50' has no runs in this study; it has resnet18, vgg11_bn, densenet_cifar" in capsys.readouterr().err
    assert main(["report", "--results", str(tmp_path / "none.json"), "--arch", "resnet18",
                 "--out", str(tmp_path / "x.pptx")]) == 2
    assert sorted(os.listdir(tmp_path)) == before  # nothing written anywhere


def _page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/41_results.py")
    at.run()
    return at


def test_results_page_captions_and_deck_follow_the_loaded_study(tmp_path, monkeypatch):
    results = _study(tmp_path / "runs.json")
    monkeypatch.setenv("DLTL_RESULTS", str(results))
    at = _page()
    at.selectbox(key="rs_source").set_value("file1").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    df = S.runs_frame(load_results(results).runs)
    captions = " ".join(c.value for c in at.caption)
    markdown = " ".join(m.value for m in at.markdown)
    assert F.most_accurate(df) in markdown
    assert F.pareto_sentence(df, "params") in captions and F.pareto_sentence(df, "cpu_seconds") in captions
    assert "200 epochs is not always" not in captions and "CPU seconds of the training process" in markdown
    at.button(key="talk_make").click().run()
    assert not at.exception and not at.error
    assert any(b.label == "Download the slides (.pptx)" for b in at.get("download_button"))


def test_results_page_never_shows_the_storage_url_or_a_server_path(tmp_path, monkeypatch):
    monkeypatch.setenv("DLTL_STORAGE", "postgresql://alice:secret@127.0.0.1:1/dltl_prod")
    monkeypatch.setenv("DLTL_RESULTS", str(tmp_path / "gone" / "runs.json"))
    at = _page()
    for source in ("study", "file1"):
        at.selectbox(key="rs_source").set_value(source).run()
        assert not at.exception
        shown = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
        assert "Could not read these results" in shown
        for secret in ("127.0.0.1", "postgresql", "alice", "secret", "dltl_prod", str(tmp_path), "gone"):
            assert secret not in shown, (source, secret)
        assert len(at.dataframe[0].value) == len(load_results(ROOT / "assets" / "results_cpu.json").runs)
