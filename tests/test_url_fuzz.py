"""Every parameter a page binds, times bad values: no exception, one clear warning each.

Also: the binder round-trips every config (config -> URL -> config), and classroom mode
lives in the link (``?classroom=1``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dltl_core.descend import DescentConfig
from dltl_core.lessons.overfit import OverfitConfig
from dltl_core.settings import SettingsError, field_kind, settings_of
from dltl_ui.urlstate import UrlState
from dltl_ui.gd.state import SLOTS, GdView, SlotConfig, sfx
from dltl_ui.views import ALL_VIEWS, ArchView, BatchesView, ClassroomView, CompareView, LayersView, LossView, LrView

ROOT = Path(__file__).resolve().parent.parent
OVERFIT_FIELDS = ("data", "noise", "label_noise", "train_size", "depth", "width", "dropout", "weight_decay",
                  "batchnorm", "early_stopping", "patience", "epochs", "lr", "seed")


def _params(cls: type, suffix: str = "", only: tuple[str, ...] | None = None) -> list[str]:
    return [(s.url or n) + suffix for n, s in settings_of(cls).items() if s.url_state and (only is None or n in only)]


PAGES = {
    "streamlit_app.py": _params(ClassroomView),  # every page binds it; the session's first page reports it
    "pages/10_gd.py": _params(GdView) + [p for i in range(SLOTS) for p in _params(SlotConfig, sfx(i))],
    "pages/11_lr.py": _params(LrView),
    "pages/20_loss.py": _params(LossView),
    "pages/21_layers.py": _params(LayersView),
    "pages/22_batches.py": _params(BatchesView),
    "pages/23_overfit.py": _params(OverfitConfig, only=OVERFIT_FIELDS) + _params(CompareView),
    "pages/40_arch.py": _params(ArchView),
}
# value -> whether it is bad for every parameter (a negative number is fine for a start point).
VALUES = {"garbage": ("abc", True), "nan": ("nan", True), "inf": ("inf", True), "-inf": ("-inf", True),
          "negative": ("-5", False), "huge": ("1e300", True), "empty": ("", True), "long": ("9" * 5000, True)}
# A multiselect's empty value is a valid (empty) selection.
EMPTY_OK = {"scheds", "sizes"}


def _open(page: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    for k, v in params.items():  # the session's first run sees the link (as a fresh tab does)
        at.query_params[k] = v
    at.run()
    if page != "streamlit_app.py":
        at.switch_page(page)
        for k, v in params.items():
            at.query_params[k] = v
        at.run()
    return at


@pytest.mark.slow
@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("kind", list(VALUES))
def test_query_string_fuzz(page, kind):
    value, always_bad = VALUES[kind]
    params = PAGES[page]
    at = _open(page, {p: value for p in params})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    warnings = [w.value for w in at.warning]
    for p in params:
        mine = [w for w in warnings if f"`{p}=" in w]
        assert len(mine) <= 1, (p, mine)
        if always_bad and not (kind == "empty" and p in EMPTY_OK):
            assert len(mine) == 1, (p, warnings)
            assert "ignored in the link" in mine[0] and len(mine[0]) < 400, mine[0]
    assert at.title, "the page still draws"


@pytest.mark.parametrize("url, expect", [
    ({"noise": "30"}, "outside [0.0, 10.0]"), ({"noise": "99999999"}, "outside")])
def test_lr_noise_links_that_used_to_crash(url, expect):
    at = _open("pages/11_lr.py", url)
    assert not at.exception and not at.error
    assert [w.value for w in at.warning if expect in w.value]
    assert at.slider(key="lr_noise").value == 10.0


def test_gd_negative_steps_is_one_message_and_matches_the_slider():
    at = _open("pages/10_gd.py", {"steps": "-5"})
    assert not at.exception and not at.error
    assert len(at.warning) == 1 and "steps=-5" in at.warning[0].value
    assert at.slider(key="steps").max == settings_of(DescentConfig)["steps"].hi  # one bound everywhere


def test_classroom_mode_lives_in_the_link():
    at = _open("pages/20_loss.py", {"classroom": "1"})
    assert at.session_state["classroom"] is True and at.query_params["classroom"] in ("1", ["1"])
    at.sidebar.toggle[0].set_value(False).run()
    assert at.session_state["classroom"] is False and "classroom" not in at.query_params
    at.switch_page("pages/10_gd.py").run()  # a page switch keeps the mode
    at.sidebar.toggle[0].set_value(True).run()
    at.switch_page("pages/21_layers.py").run()
    assert at.session_state["classroom"] is True and at.query_params["classroom"] in ("1", ["1"])


# ----------------------------------------------------------------------------- round trip

def _sample(cls: type) -> object:
    """A valid non-default config: each field moved to another allowed value."""
    values = {}
    for name, s in settings_of(cls).items():
        kind, default = field_kind(cls, name), getattr(cls, name)
        offered = list(s.ticks or s.options())
        if kind is bool:
            values[name] = not default
        elif kind is tuple:
            values[name] = tuple(offered[:2])
        elif offered:
            values[name] = next(o for o in reversed(offered) if o != default)
        elif kind in (int, float):
            lo, hi = s.widget_range
            mid = (lo + hi) / 2 if lo is not None and hi is not None else default + 1
            values[name] = kind(round(mid, 3)) if kind(round(mid, 3)) != default else kind(lo)
        else:
            values[name] = default
    try:
        return cls(**values)
    except SettingsError as err:  # a cross-field rule: move back the fields it names
        return cls(**{**values, **{n: getattr(cls, n) for n in err.problems}})


@pytest.mark.parametrize("cls", [DescentConfig, OverfitConfig, GdView, SlotConfig, *ALL_VIEWS],
                         ids=lambda c: c.__name__)
def test_binder_round_trips_every_config(cls):
    from dltl_ui.binder import Binder

    cfg = _sample(cls)
    b = Binder(cls)
    url = {b.param(n): UrlState.encode(getattr(cfg, n)) for n, s in b.settings.items() if s.url_state}
    kept = [n for n, s in b.settings.items() if s.url_state]
    back = {n: b.parse(n, url[b.param(n)]) for n in kept}
    assert not b.url.problems, b.url.problems
    rebuilt = cls(**{**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)}, **back})
    for n in kept:
        a, r = getattr(cfg, n), getattr(rebuilt, n)
        assert (math.isclose(a, r, rel_tol=1e-5) if isinstance(a, float) else a == r), (n, a, r)
    assert all(getattr(cfg, n) != getattr(cls, n) for n in kept if n != "start"), "every field moved"


def test_one_learning_curve_chart_takes_epoch_records_by_epoch_or_time():
    from dltl_core.train.config import EpochRecord
    from dltl_ui.charts.curves import learning_curves

    fields = {f.name for f in dataclasses.fields(EpochRecord)}
    rows = []
    for e in (1, 2, 3):
        values = dict(epoch=e, train_loss=1.0 / e, val_loss=1.2 / e, train_acc=0.5 + e / 10, val_acc=0.4 + e / 10,
                      lr=0.01, seconds=0.5, samples_per_second=1e4, elapsed=0.5 * e)
        rows.append(EpochRecord(**{k: v for k, v in values.items() if k in fields}).as_dict())
    import pandas as pd

    for x in ("epoch", "elapsed"):
        loss, acc = learning_curves(pd.DataFrame(rows), epochs=3, best_epoch=2, x=x)
        spec = loss.to_dict(validate=True)
        assert spec["layer"][0]["encoding"]["x"]["field"] == x
        assert acc.to_dict(validate=True)
