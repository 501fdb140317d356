"""The /arch captions, computed from the layer table and the comparison the page shows.

"The first blocks cost FLOPs, the last ones parameters" is true of ResNets; the sentence
names the shares it measured, so it stays true for every network and width.
"""

from __future__ import annotations

import re

import pandas as pd

_MAP = re.compile(r"^\d+x(\d+)x(\d+)$")  # "CxHxW"


def _map_size(output: str) -> int | None:
    """The spatial size H·W of a block's output, or None for a flat output (pool, fc)."""
    m = _MAP.match(str(output))
    return int(m.group(1)) * int(m.group(2)) if m else None


def _pct(share: float) -> str:
    """A share with enough digits to be told from zero (28%, 4.8%, <0.1%)."""
    if share >= 0.095:
        return f"{share:.0%}"
    return f"{share:.1%}" if share >= 0.001 else "<0.1%"


def layer_claim(layers: pd.DataFrame) -> str:
    """Share of parameters and FLOPs of the blocks on the largest maps and of those holding most parameters.

    Args:
        layers: ``profile.layer_table``: name, output ("CxHxW"), params, flops per block.
    """
    t = layers.assign(size=[_map_size(o) for o in layers["output"]]).dropna(subset=["size"])
    p_all, f_all = layers["params"].sum(), layers["flops"].sum()
    if t.empty or p_all <= 0 or f_all <= 0:
        return ""
    g = t.groupby("size")[["params", "flops"]].sum().sort_index(ascending=False)
    g["p"], g["f"] = g.params / p_all, g.flops / f_all
    first, heavy = g.index[0], g.p.idxmax()
    side = lambda s: f"{int(round(s ** 0.5))}×{int(round(s ** 0.5))}"  # noqa: E731 (square maps)
    head = (f"What to notice: the blocks on {side(first)} maps do {_pct(g.f[first])} of the FLOPs with "
            f"{_pct(g.p[first])} of the parameters")
    if heavy == first:
        return head + "."
    tail = (f"; those on {side(heavy)} maps hold {_pct(g.p[heavy])} of the parameters and do {_pct(g.f[heavy])} "
            "of the FLOPs")
    if g.f[first] > g.p[first] and g.p[heavy] > g.f[heavy]:
        tail += ". A weight on a large map is used at many positions: FLOPs follow the map, parameters the channels."
    return head + tail + ("" if tail.endswith(".") else ".")


def size_claim(table: pd.DataFrame) -> str:
    """Which networks do the most and the least work per parameter (FLOPs per image / parameters)."""
    t = table[(table["params"] > 0) & (table["flops"] > 0)]
    if len(t) < 2:
        return ""
    ratio = t["flops"] / t["params"]
    hi, lo = t.loc[ratio.idxmax()], t.loc[ratio.idxmin()]
    return (f"What to notice: parameters and FLOPs are different costs. {hi['label']} does the most work for its "
            f"size ({ratio.max():.0f} FLOPs per parameter per image), {lo['label']} the least "
            f"({ratio.min():.0f}): its parameters sit on small maps, so it is cheap to run for its size.")


__all__ = ["layer_claim", "size_claim"]
