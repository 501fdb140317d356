"""The /loss page as plain PyTorch: softmax, one-hot targets, cross-entropy vs MSE, gradients.

The script computes what ``dltl_core.lessons.softmax`` computes for the page (float64,
``torch.nn.functional``, gradients by autograd), in the same order, so its numbers are
the page's: the bars, the three metrics, the lecture's example and the "confidently
wrong" sweep.
"""

from __future__ import annotations

from typing import Mapping

from dltl_core.codegen.script import Script, code, md
from dltl_core.codegen.snippets import settings_lines
from dltl_core.query import encode_query, read_query
from dltl_core.views import LossView


def read_settings(params: Mapping[str, str]) -> tuple[dict, list[str]]:
    """The page's values for a link (a true class beyond the classes falls back to 0, as on the page)."""
    values, problems = read_query(LossView, params)
    if values["target"] >= values["k"]:
        values["target"] = 0
    return values, problems


def build(params: Mapping[str, str]) -> Script:
    """The /loss script for a link's parameters."""
    v, problems = read_settings(params)
    k = v["k"]
    names = ["k", "target", "T", *[f"z{i}" for i in range(k)]]
    query = "&".join(f"{a}={b}" for a, b in encode_query(LossView, {n: v[n] for n in names}).items())
    cells = (
        md(r"""
        ## Loss & softmax
        A classifier's last layer outputs one number per class, the **logits** $z$. **Softmax** turns them
        into probabilities $p_k = e^{z_k/T} / \sum_j e^{z_j/T}$ (the temperature $T$ sharpens or flattens
        them). The target is a **one-hot** vector $t$. **Cross-entropy** $L = -\sum_k t_k \log p_k =
        -\log p_{\text{true}}$ punishes a confident mistake without limit; **MSE** $\frac1K\sum_k (p_k - t_k)^2$
        never exceeds 1. Training follows the gradient $\partial L/\partial z$: for cross-entropy it is $(p - t)/T$.
        """),
        code("""
        import torch
        import torch.nn.functional as F
        """),
        md("### The settings of the page: the classes, the true class, the temperature and the logits"),
        code(settings_lines(LossView, v, names, rename={"k": "num_classes", "T": "temperature"})
             + f"\nlogits = [{', '.join(f'z{i}' for i in range(k))}]"),
        md(r"""
        ### Softmax, the one-hot target and the two losses
        `F.cross_entropy` takes the logits (it applies log-softmax itself, which stays exact for large logits);
        MSE compares the softmax probabilities with the one-hot target. Autograd gives $\partial L/\partial z$.
        """),
        code("""
        z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
        y = torch.tensor([target])
        onehot = F.one_hot(y, num_classes).double()[0]  # t: 1 for the true class, 0 elsewhere
        ce = F.cross_entropy((z / temperature)[None], y)  # -log p_true
        (grad_ce,) = torch.autograd.grad(ce, z)
        probs = F.softmax(z / temperature, dim=0)  # p
        mse = F.mse_loss(probs, onehot)  # mean of (p - t)^2
        (grad_mse,) = torch.autograd.grad(mse, z)

        print(f"p(true class {target}): {probs[target].item():.3f}")
        print(f"cross-entropy: {ce.item():.17g}")
        print(f"MSE: {mse.item():.17g}")
        for c in range(num_classes):
            print(f"class {c} p: {probs[c].item():.17g}")
            print(f"class {c} dCE/dz: {grad_ce[c].item():.17g}")
            print(f"class {c} dMSE/dz: {grad_mse[c].item():.17g}")
        """),
        md(r"""
        ### The lecture's example
        Target $t = [0, 1]$, output $p = [0.2, 0.8]$: cross-entropy $= -\log 0.8$,
        MSE $= \frac{(0.2 - 0)^2 + (0.8 - 1)^2}{2}$.
        """),
        code("""
        p = torch.tensor([0.2, 0.8], dtype=torch.float64)
        t = torch.tensor([0.0, 1.0], dtype=torch.float64)
        example_ce = F.cross_entropy(p.clamp_min(1e-300).log()[None], t[None])  # -sum t log p
        print(f"example cross-entropy: {example_ce.item():.17g}")
        print(f"example MSE: {F.mse_loss(p, t).item():.17g}")
        """),
        md(r"""
        ### Confidently wrong
        The true class (0) has logit `gap`, the others 0, for gap from +10 (confidently right) to −10
        (confidently wrong). Cross-entropy grows without bound and its gradient tends to 1; MSE saturates
        and its gradient vanishes: it barely learns from its worst mistakes.
        """),
        code("""
        gaps = torch.linspace(10.0, -10.0, 200, dtype=torch.float64)
        zs = torch.zeros(200, num_classes, dtype=torch.float64)
        zs[:, 0] = gaps
        zs.requires_grad_(True)
        ys = torch.zeros(200, dtype=torch.long)
        ce_sweep = F.cross_entropy(zs, ys, reduction="none")
        (g_ce,) = torch.autograd.grad(ce_sweep.sum(), zs)
        ps = F.softmax(zs, dim=1)
        mse_sweep = ((ps - F.one_hot(ys, num_classes).double()) ** 2).mean(1)
        (g_mse,) = torch.autograd.grad(mse_sweep.sum(), zs)
        for i, where in ((0, "confidently right"), (199, "confidently wrong")):
            print(f"{where} cross-entropy: {ce_sweep[i].item():.17g}")
            print(f"{where} MSE: {mse_sweep[i].item():.17g}")
            print(f"{where} cross-entropy gradient: {g_ce[i, 0].abs().item():.17g}")
            print(f"{where} MSE gradient: {g_mse[i, 0].abs().item():.17g}")
        """),
    )
    return Script("loss", "Loss & softmax", query, cells, tuple(problems))


__all__ = ["build", "read_settings"]
