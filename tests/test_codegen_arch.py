"""The /arch page's exported code: the same network, parameter count and FLOPs as the core.

The script runs in a fresh process without this project; what it prints must equal what
``dltl_core.profile`` (the page's numbers) computes for the same link. Both counts are
deterministic, so the comparison is exact. Throughput is printed but machine-dependent.
"""

from __future__ import annotations

import pytest

from dltl_core import profile
from dltl_core.archs import ARCHS
from dltl_core.codegen import _cifar, export, parse_link
from dltl_core.query import read_query
from dltl_core.settings import settings_of
from dltl_ui.views import ARCH_WIDTHS, ArchView
from tests.codegen_util import printed, run_script

LINKS = ["", "arch=densenet_cifar&width=0.25"]


def core_numbers(query: str) -> tuple[int, int]:
    values, _ = read_query(ArchView, parse_link(query))
    model = profile.meta_arch(values["arch"], values["width"])  # what the page's summary shows
    return profile.count_params(model), profile.count_flops(model)


@pytest.mark.slow
@pytest.mark.parametrize("query", LINKS)
def test_script_prints_the_pages_params_and_flops(query: str) -> None:
    out = printed(run_script(export("arch", query).source()))
    params, flops = core_numbers(query)
    assert out["parameters"] == params
    assert out["FLOPs per image"] == flops
    speed = [v for k, v in out.items() if k.startswith("training images per second")]
    assert speed and speed[0] > 0  # printed (cpu or cuda), never compared


def test_every_architecture_has_its_code_and_the_same_size() -> None:
    assert set(_cifar.BUILDERS) == set(ARCHS)
    for name in ARCHS:  # the definition and builder the script uses, run here on meta tensors
        script = export("arch", f"arch={name}&width=0.5")
        text = "\n".join(c.text for c in script.cells if c.kind == "code" and "FlopCounterMode(display" not in c.text
                         and "Speed" not in c.text)
        scope: dict = {}
        import torch

        with torch.device("meta"):
            exec(compile(text, f"<{name}>", "exec"), scope)  # noqa: S102 - our own generated code
        want = profile.count_params(profile.meta_arch(name, 0.5))
        assert sum(p.numel() for p in scope["model"].parameters()) == want, name


def _body(script) -> str:
    return "\n".join(c.text for c in script.cells)


def test_every_setting_changes_the_code() -> None:
    base = _body(export("arch", ""))  # the cells, not the header that quotes the link
    other = {"arch": "vgg16_bn", "width": str(ARCH_WIDTHS[1])}
    for name, s in settings_of(ArchView).items():
        param = s.url or name
        assert param in other, f"a new setting {param!r}: give it another value here"
        assert _body(export("arch", {param: other[param]})) != base, param


def test_bad_link_exports_the_defaults_with_the_pages_message() -> None:
    script = export("arch", "arch=nope&width=99")
    values, problems = read_query(ArchView, {"arch": "nope", "width": "99"})
    assert list(script.problems) == problems and problems
    assert script.query == f"arch={values['arch']}&width={values['width']:g}"


@pytest.mark.parametrize("page", ["arch", "transfer", "results", "lab-transfer"])
def test_junk_links_still_export_code(page: str) -> None:
    junk = {"arch": "../../etc", "width": "nan", "k": "-3", "cap": "1e99", "seed": "x", "bb": "<script>",
            "talk": "", "score": "1", "source": "/etc/passwd", "time": "0", "target": "-1"}
    script = export(page, junk)
    assert script.problems  # each bad value is named, as the page names it
    compile(script.source(), page, "exec")  # still a valid Python script
    assert "/etc/passwd" not in script.source() and "<script>" not in script.source()
