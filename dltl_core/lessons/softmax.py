"""Softmax, cross-entropy and MSE on a handful of logits (no training, just the formulas).

Everything is computed with ``torch.nn.functional`` and autograd, so the numbers
the page shows are the ones PyTorch would use.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
import torch
import torch.nn.functional as F


def softmax_losses(logits: Sequence[float], target: int, temperature: float = 1.0) -> dict:
    """Softmax probabilities, losses against a one-hot target, and their gradients.

    Args:
        logits: the network's raw outputs z (2 to 10 of them).
        target: index of the true class.
        temperature: T in softmax(z / T); T > 0 (small: sharper, large: flatter).

    Returns:
        dict with ``probs`` (list), ``cross_entropy`` = -log p_target, ``mse`` = mean over
        classes of (p - onehot)^2, ``grad_ce`` and ``grad_mse`` (d loss / d z, lists) and
        ``table`` (a DataFrame with one row per class: class, logit, prob, target, grad_ce, grad_mse).

    Raises:
        ValueError: fewer than 2 logits, target out of range, non-positive temperature.
    """
    if len(logits) < 2:
        raise ValueError("need at least two classes")
    if not 0 <= target < len(logits):
        raise ValueError(f"the target class must be between 0 and {len(logits) - 1}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"the temperature must be a positive number, got {temperature}")
    z = torch.tensor([float(v) for v in logits], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([target])
    onehot = F.one_hot(y, len(logits)).double()[0]
    ce = F.cross_entropy((z / temperature)[None], y)  # log-softmax inside: stable for big logits
    (grad_ce,) = torch.autograd.grad(ce, z)
    probs = F.softmax(z / temperature, dim=0)
    mse = F.mse_loss(probs, onehot)
    (grad_mse,) = torch.autograd.grad(mse, z)
    p = probs.detach()
    table = pd.DataFrame({
        "class": [str(i) for i in range(len(logits))], "logit": [float(v) for v in logits],
        "prob": p.tolist(), "target": onehot.tolist(), "grad_ce": grad_ce.tolist(), "grad_mse": grad_mse.tolist(),
    })
    return {"probs": p.tolist(), "cross_entropy": ce.item(), "mse": mse.item(),
            "grad_ce": grad_ce.tolist(), "grad_mse": grad_mse.tolist(), "table": table}


def gradient_story(out: dict, target: int, temperature: float) -> str:
    """The "what to notice" sentence under the gradient bars, from these gradients.

    Cross-entropy's gradient is (p - t) / T, negative on the true class unless p_true rounds
    to 1; MSE's is compared by the largest magnitude of each.
    """
    ce, mse = out["grad_ce"], out["grad_mse"]
    form = "p − t" if temperature == 1 else f"(p − t)/T, with T = {temperature:g}"
    parts = [f"cross-entropy's gradient is {form}"]
    if ce[target] < 0:
        parts[0] += " (negative on the true class: gradient descent raises that logit)"
    big_ce, big_mse = max(abs(g) for g in ce), max(abs(g) for g in mse)
    if big_ce < 1e-3 and big_mse < 1e-3:
        parts.append("both are about zero: a confident, correct prediction teaches nothing")
    elif big_ce >= 100 * big_mse:
        parts.append("MSE's is more than 100× smaller at its largest")
    elif big_ce >= 2 * big_mse:
        parts.append(f"MSE's is {big_ce / big_mse:.1f}× smaller at its largest")
    elif big_ce > 0 and big_mse >= 2 * big_ce:
        parts.append(f"here MSE's is {big_mse / big_ce:.1f}× larger at its largest")
    else:
        parts.append("MSE's is of a similar size here")
    return "What to notice: " + "; ".join(parts) + "."


def losses_of_probs(probs: Sequence[float], target: Sequence[float]) -> dict[str, float]:
    """Cross-entropy -sum t log p and MSE mean (p - t)^2 for given probabilities.

    The lecture's example: target [0, 1], output [0.2, 0.8] gives cross-entropy
    -ln 0.8 = 0.223 and MSE ((0.2)^2 + (0.2)^2) / 2 = 0.04.

    Raises:
        ValueError: shapes differ, probabilities not in (0, 1] or not summing to 1.
    """
    p = torch.tensor([float(v) for v in probs], dtype=torch.float64)
    t = torch.tensor([float(v) for v in target], dtype=torch.float64)
    if p.shape != t.shape or len(p) < 2:
        raise ValueError("output and target need the same number (>= 2) of classes")
    if (p < 0).any() or abs(p.sum().item() - 1) > 1e-6:
        raise ValueError("the output must be probabilities that sum to 1")
    # Soft-target cross-entropy, as F.cross_entropy computes it from log-probabilities.
    ce = F.cross_entropy(p.clamp_min(1e-300).log()[None], t[None])
    return {"cross_entropy": ce.item(), "mse": F.mse_loss(p, t).item()}


def confidence_sweep(num_classes: int = 2, points: int = 200, max_logit_gap: float = 10.0) -> pd.DataFrame:
    """Loss and gradient as the prediction goes from confidently right to confidently wrong.

    The true class is 0; its logit is ``gap`` and the others 0, for gap from
    ``+max_logit_gap`` (confidently right) to ``-max_logit_gap`` (confidently wrong).

    Returns:
        long DataFrame: p_true (softmax probability of the true class), gap, loss
        ("cross-entropy" or "MSE"), value (the loss) and grad (|d loss / d z_true|).
        Cross-entropy's gradient tends to 1 when confidently wrong; MSE's goes to 0
        (a saturated softmax barely learns from its worst mistakes).
    """
    if num_classes < 2:
        raise ValueError("need at least two classes")
    gaps = torch.linspace(max_logit_gap, -max_logit_gap, points, dtype=torch.float64)
    z = torch.zeros(points, num_classes, dtype=torch.float64)
    z[:, 0] = gaps
    z.requires_grad_(True)
    y = torch.zeros(points, dtype=torch.long)
    ce = F.cross_entropy(z, y, reduction="none")
    (g_ce,) = torch.autograd.grad(ce.sum(), z)
    p = F.softmax(z, dim=1)
    mse = ((p - F.one_hot(y, num_classes).double()) ** 2).mean(1)
    (g_mse,) = torch.autograd.grad(mse.sum(), z)
    p_true = p[:, 0].detach().numpy()
    frames = []
    for name, loss, grad in (("cross-entropy", ce, g_ce), ("MSE", mse, g_mse)):
        frames.append(pd.DataFrame({"p_true": p_true, "gap": gaps.numpy(), "loss": name,
                                    "value": loss.detach().numpy(), "grad": grad[:, 0].abs().numpy()}))
    return pd.concat(frames, ignore_index=True)
