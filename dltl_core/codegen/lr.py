"""The /lr page as plain PyTorch: the learning-rate sweep and its four regimes, the schedules
(``torch.optim.lr_scheduler``) and the LR range test of an MLP on the digits.

The script does what ``dltl_core.descend`` (``lr_sweep``, ``regime_examples``,
``compare_schedules``), ``dltl_core.optim.create_scheduler`` and ``dltl_core.lr_range``
do for the page's settings, in the same order, so it prints the page's numbers.
"""

from __future__ import annotations

from typing import Mapping

from dltl_core.codegen.script import Script, code, md
from dltl_core.codegen.snippets import optimizer_call, py, settings_lines, surface_code
from dltl_core.lr_range import RangeTestConfig
from dltl_core.optim import OPTIMIZERS, SCHEDULES
from dltl_core.query import encode_query, read_query
from dltl_core.surfaces import create_surface
from dltl_core.views import LrView

SWEEP = (1e-5, 10.0, 25)  # the page's learning-rate grid (dltl_ui.lr.view.SWEEP)

# Each schedule as create_scheduler builds it with its defaults (warm-up/step share 0.3,
# decay γ 0.1, decay to 1% of the base rate), stepped once per step.
_SCHEDULERS = {
    "step": "lr_scheduler.StepLR(optimizer, max(1, round(0.3 * steps)), gamma=0.1)",
    "exponential": "lr_scheduler.ExponentialLR(optimizer, gamma=0.01 ** (1.0 / steps))",
    "cosine": "lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * 0.01)",
    "onecycle": ("lr_scheduler.OneCycleLR(\n"
                 "            optimizer, max_lr=[lr], total_steps=steps + 1, pct_start=0.3, cycle_momentum={cycle})"),
    "warmup_cosine": ("lr_scheduler.SequentialLR(optimizer, [\n"
                      "            lr_scheduler.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warm),\n"
                      "            lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps - warm), eta_min=lr * 0.01)],\n"
                      "            milestones=[warm])"),
}


def read_settings(params: Mapping[str, str]) -> tuple[dict, list[str]]:
    """The page's values for a link (``LrView``, widget keys ``lr_*``, URL names bare)."""
    return read_query(LrView, params)


def _schedulers_code(names: tuple[str, ...], optimizer: str) -> str:
    d = OPTIMIZERS[optimizer]
    cycle = d.hyper.get("momentum", 0) > 0 or "beta1" in d.hyper  # OneCycleLR cycles momentum only if there is one
    lines = ["def make_scheduler(name, optimizer, lr, steps):",
             '    """The schedule, stepped once per step (None: a constant rate)."""']
    if "warmup_cosine" in names:
        lines.append("    warm = max(1, round(0.3 * steps))  # warm-up steps")
    lines.append("    return {")
    for n in names:
        if n != "constant":
            lines.append(f"        {n!r}: lambda: {_SCHEDULERS[n].format(cycle=cycle)},")
    lines.append("    }.get(name, lambda: None)()")
    return "\n".join(lines)


def build(params: Mapping[str, str]) -> Script:
    """The /lr script for a link's parameters."""
    v, problems = read_settings(params)
    names = tuple(v["scheds"])
    surface = create_surface(v["surface"])
    query = "&".join(f"{a}={b}" for a, b in encode_query(LrView, v).items())
    rt = RangeTestConfig(optimizer=v["rt_opt"], batch_size=int(v["bs"]))
    settings = settings_lines(LrView, v, list(v), rename={"opt": "optimizer_name", "scheds": "schedules",
                                                          "rt_opt": "range_test_optimizer", "bs": "batch_size"})
    cells = [
        md(r"""
        ## Learning rate
        The learning rate $\eta$ sets the size of every step $w \leftarrow w - \eta\,\nabla f(w)$.
        **Too small**: the descent barely moves. **Good**: it reaches the minimum in the steps it has.
        **Too large**: it overshoots and bounces. **Divergent**: every bounce lands higher and the loss
        explodes. A **schedule** changes $\eta$ during training; the **LR range test** finds a good $\eta$
        for a real network in one pass.
        """),
        code("""
        import math

        import numpy as np
        import torch
        from torch import nn
        from torch.optim import lr_scheduler
        """),
        md("### The settings of the page"),
        code(settings + f"\nstart = {py(surface.start)}  # the surface's start point"),
        md(r"### The loss $f(w)$ on two weights, and its lowest value $f^*$"),
        code(surface_code(surface.name) + f"\n\n\nMINIMA = {py(surface.minima)}\n"
             "f_star = float(f(torch.tensor(MINIMA, dtype=torch.float64)).min())"),
        md(r"""
        ### One descent with torch.optim (and, optionally, a schedule and gradient noise)
        Forward, backward, optional noise on the gradient, `optimizer.step()`, then `scheduler.step()`.
        A run has **diverged** at the first step whose loss is inf/NaN or whose point left the box.
        """),
        code(_schedulers_code(names, v["opt"])),
        code(f"""
        def descend(lr, steps, noise=0.0, schedule="constant", seed=0):
            \"\"\"Final loss (inf when diverged), where it diverged, and η at every step.\"\"\"
            w = torch.tensor(start, requires_grad=True)  # the two weights (float32)
            optimizer = {optimizer_call(v["opt"], "[w]", "lr", {})}
            scheduler = make_scheduler(schedule, optimizer, lr, steps)
            kicks = torch.randn(steps, 2, generator=torch.Generator().manual_seed(seed)) * noise
            path, lrs = [w.detach().clone()], []
            for k in range(steps):
                optimizer.zero_grad()
                f(w).backward()  # forward and backward: w.grad = ∇f(w)
                if noise > 0:
                    w.grad += kicks[k]
                lrs.append(optimizer.param_groups[0]["lr"])
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                path.append(w.detach().clone())
            path = torch.stack(path).double()
            losses = f(path)
            bad = ~(torch.isfinite(losses) & inside(path))
            k = int(bad.to(torch.uint8).argmax()) if bool(bad.any()) else None
            final = float(losses[-1]) if k is None else math.inf
            return {{"lr": lr, "final_loss": final, "diverged_at": k, "lrs": lrs,
                    "start_loss": float(losses[0])}}
        """),
        md(r"""
        ### Too small, good, too large, divergent
        The final loss for 25 learning rates on a log grid, then a bisection of the cliff between the largest
        rate that did not diverge and the smallest that did. **Good**: the gap above $f^*$ shrank by at least
        3/4 as many powers of ten as with the best rate; otherwise too small (below the best) or too large.
        """),
        code(f"""
        if steps == 0:
            print("Zero steps: nothing moves. Choose at least ten steps to compare learning rates.")
        else:
            runs = [descend(lr, steps) for lr in sorted(float(r) for r in np.geomspace({SWEEP[0]!r}, {SWEEP[1]!r}, {SWEEP[2]}))]
            ok = [r["lr"] for r in runs if r["diverged_at"] is None]
            bad = [r["lr"] for r in runs if r["diverged_at"] is not None and (not ok or r["lr"] > max(ok))]
            if ok and bad:
                lo, hi = max(ok), min(bad)
                for _ in range(6):  # bisect the cliff on a log axis
                    mid = math.sqrt(lo * hi)
                    run = descend(mid, steps)
                    runs.append(run)
                    lo, hi = (mid, hi) if run["diverged_at"] is None else (lo, mid)
                runs.sort(key=lambda r: r["lr"])
            start_gap = runs[0]["start_loss"] - f_star
            gaps = [max(r["final_loss"] - f_star, 0.0) for r in runs]
            finite = [(g, r["lr"]) for g, r in zip(gaps, runs) if math.isfinite(g)]
            best_gap, best_lr = min(finite) if finite else (math.inf, math.nan)
            floor = 1e-12 * max(start_gap, 1e-12)  # gaps below this are rounding noise

            def decades(g):  # how many powers of ten the gap above f* shrank
                return math.log10(max(start_gap, floor) / max(g, floor))

            best_decades = decades(best_gap) if finite else 0.0
            for g, r in zip(gaps, runs):
                if not math.isfinite(g):
                    r["regime"] = "divergent"
                elif best_decades > 0 and decades(g) >= 0.75 * best_decades:
                    r["regime"] = "good"
                else:
                    r["regime"] = "too small" if r["lr"] < best_lr else "too large"
                r["gap"] = g

            # One rate per regime: a 30th of the best for "too small", the best, the largest non-diverging,
            # the smallest diverging.
            regimes = ("too small", "good", "too large", "divergent")
            by = {{name: [r for r in runs if r["regime"] == name] for name in regimes}}
            examples = {{}}
            best = min(by["good"], key=lambda r: r["gap"])["lr"] if by["good"] else None
            if by["too small"]:
                target = math.log(best / 30) if best else -math.inf
                nearest = min(by["too small"], key=lambda r: abs(math.log(r["lr"]) - target))
                examples["too small"] = nearest["lr"]
            if best is not None:
                examples["good"] = best
            if by["too large"]:
                examples["too large"] = max(r["lr"] for r in by["too large"])
            if by["divergent"]:
                examples["divergent"] = min(r["lr"] for r in by["divergent"])
            for regime, rate in examples.items():
                run = next(r for r in runs if r["lr"] == rate)
                print(f"{{regime}} lr: {{rate:.17g}}")
                if run["diverged_at"] is None:
                    print(f"{{regime}} final loss: {{run['final_loss']:.17g}}")
                else:
                    print(f"{{regime}} diverged at step: {{run['diverged_at']}}")
        """),
        md(r"""
        ### Schedules
        The same descent (base rate, gradient noise) under each schedule from `torch.optim.lr_scheduler`:
        warm-up starts small while the optimizer state settles; decay damps the final bouncing.
        """),
        code(f"""
        schedule_steps = max(1, steps)  # the page runs the schedules even at zero steps
        if not schedules:
            print("Pick at least one schedule.")
        for name in schedules:
            run = descend(lr, schedule_steps, noise=noise, schedule=name)
            print(f"{{name}} last lr: {{run['lrs'][-1]:.17g}}")
            if run["diverged_at"] is None:
                print(f"{{name}} final loss: {{run['final_loss']:.17g}}")
            else:
                print(f"{{name}} diverged at step: {{run['diverged_at']}}")
        """),
        md(r"""
        ### The LR range test on a real network
        A small MLP (64 → 128 → 128 → 10) learns scikit-learn's 8×8 digits for one pass of mini-batches while
        $\eta$ grows exponentially, batch by batch, from $10^{-4}$ to 10 (`ExponentialLR`). Where the smoothed
        loss falls fastest is a good $\eta$; where it shoots up, $\eta$ is too large.
        """),
        code(f"""
        from sklearn.datasets import load_digits

        lr_min, lr_max, smoothing, stop_factor, seed = {rt.lr_min!r}, {rt.lr_max!r}, {rt.smoothing!r}, {rt.stop_factor!r}, {rt.seed!r}
        g = torch.Generator().manual_seed(seed)  # the batch order
        digits = load_digits()  # 1,797 images, 8x8 pixels, grey levels 0..16
        x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
        y = torch.from_numpy(digits.target.astype(np.int64))

        # The model: flatten, two hidden layers of {rt.width} ReLU units, a linear classifier.
        # Its initial weights come from the seed.
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, {rt.width}), nn.ReLU(), nn.Linear({rt.width}, {rt.width}), nn.ReLU(),
                              nn.Linear({rt.width}, 10))
        model.train()
        batches = math.ceil(len(x) / batch_size)
        optimizer = {optimizer_call(rt.optimizer, "model.parameters()", "lr_min", {})}
        gamma = (lr_max / lr_min) ** (1.0 / max(batches - 1, 1))  # lr_min -> lr_max over one pass
        scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
        loss_fn = nn.CrossEntropyLoss()
        order = torch.randperm(len(x), generator=g)

        lrs, smooth, avg, best, stopped = [], [], 0.0, math.inf, None
        for k in range(batches):
            idx = order[k * batch_size:(k + 1) * batch_size]
            lr_now = optimizer.param_groups[0]["lr"]
            loss = loss_fn(model(x[idx]), y[idx])  # forward
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # backward
            optimizer.step()  # update
            scheduler.step()  # η grows
            value = float(loss.detach())
            if not math.isfinite(value):
                stopped = k
                break
            lrs.append(lr_now)
            avg = smoothing * avg + (1 - smoothing) * value
            smooth.append(avg / (1 - smoothing ** (k + 1)))  # bias-corrected moving average, as in Adam
            best = min(best, smooth[-1])
            if k > 5 and smooth[-1] > stop_factor * best:  # the loss blew up: stop
                stopped = k
                break
        lrs, smooth = np.asarray(lrs), np.asarray(smooth)
        lowest = int(np.argmin(smooth))
        suggested = None  # η where the smoothed loss falls fastest against log η, before its minimum
        if lowest >= 2:
            slope = np.gradient(smooth, np.log10(lrs))
            k = 1 + int(np.argmin(slope[1:lowest]))
            suggested = float(lrs[k]) if slope[k] < 0 else None
        print(f"range test batches: {{len(lrs)}}")
        print(f"lowest loss at lr: {{lrs[lowest]:.17g}}")
        if suggested is None:
            print("The loss never clearly fell: try another optimizer or batch size.")
        else:
            print(f"suggested lr: {{suggested:.17g}}")
        if stopped is not None:
            print(f"stopped at batch: {{stopped}}")
        """),
    ]
    return Script("lr", "Learning rate", query, tuple(cells), tuple(problems))


__all__ = ["build", "read_settings"]
