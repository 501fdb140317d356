"""The progress helpers: when a bar is drawn, what it shows, and that it counts what fit does."""

from __future__ import annotations

import io
import time

import torch

from dltl_core.models import create_model
from dltl_core.progress import Progress, bar_wanted
from dltl_core.train import TrainConfig, fit


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_when_a_bar_is_drawn():
    assert bar_wanted(stream=_Tty()) is True
    assert bar_wanted(stream=io.StringIO()) is False  # a pipe or a file: no bar ...
    assert bar_wanted(force=True, stream=io.StringIO()) is True  # ... unless --progress
    assert bar_wanted(quiet=True, force=True, stream=_Tty()) is False  # --quiet always wins


def test_fraction_and_count_bars_show_phase_and_counts():
    out = io.StringIO()
    p = Progress(enabled=True, stream=out)
    frac = p.fraction_fn()
    frac(0.5, "finetune: epoch 2/4")
    frac.close()
    count = p.count_fn("decoding images", unit="img")
    count(5, 10)
    count.close()
    text = out.getvalue()
    assert "finetune: epoch 2/4" in text and "50%" in text
    assert "decoding images" in text and "5/10" in text


def test_disabled_bars_write_nothing():
    out = io.StringIO()
    p = Progress(enabled=False, stream=out)
    p.fraction_fn()(0.5, "x")
    p.count_fn("y")(1, 2)
    with p.phases(["a", "b"]) as ph:
        ph.next()
    assert out.getvalue() == ""


def test_a_long_phase_keeps_its_clock_moving():
    out = io.StringIO()
    with Progress(enabled=True, stream=out).phases(["measuring"], desc="resnet18", tick=0.2):
        time.sleep(1.3)
    assert "resnet18: measuring" in out.getvalue() and "00:01" in out.getvalue()


def test_fit_bar_counts_every_training_image():
    out = io.StringIO()
    cb = Progress(enabled=True, stream=out).fit_callback("train")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 4, generator=g), torch.randint(0, 3, (100,), generator=g)
    model = create_model("mlp", in_features=4, num_classes=3, depth=1, width=8, seed=0)
    result = fit(model, (x[:80], y[:80]), (x[80:], y[80:]), TrainConfig(epochs=3, batch_size=20), callbacks=[cb])
    text = out.getvalue()
    assert "240/240" in text  # 3 epochs x 4 steps x 20 images
    assert "epoch 3/3" in text and f"val_acc={result.history[-1].val_acc:.3f}" in text
