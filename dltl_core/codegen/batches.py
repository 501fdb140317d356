"""The /batches page as plain PyTorch: epochs vs steps, the batch-size sweep, gradient noise.

The script does what ``dltl_core.lessons.batches`` does on the CPU in the same order:
``epoch_step_counts`` (plain counts), ``batch_size_sweep`` (the default MLP, Adam at lr
0.001, one seed, once per batch size) and ``gradient_spread`` (mini-batch gradients of a
briefly trained MLP against the full-batch gradient).
"""

from __future__ import annotations

from typing import Any, Mapping

from dltl_core.codegen import _snippets as sn
from dltl_core.codegen._page_views import views
from dltl_core.codegen.script import Script, code, md
from dltl_core.query import read_query

INTRO = r"""
    ## Mini-batches

    Each optimizer **step** uses the gradient of a **mini-batch** of $b$ samples, an estimate of the
    full-batch gradient $g = \nabla_W \frac{1}{n}\sum_{i=1}^{n} L(f(x_i, W), y_i)$. One **epoch** is one pass
    over the $n$ training samples: $\lceil n/b\rceil$ steps. Small batches: many cheap, noisy steps per epoch.
    Large batches: few precise steps, each using the hardware better.
"""

EMPTY = "Choose at least one batch size."

SIZES = """
    # The batch sizes compared: the chosen ones, plus EXTRA when it is not 0.
    batch_sizes = sorted(set(SIZES) | ({EXTRA} if EXTRA else set()))
    if not batch_sizes:
        print("Choose at least one batch size.")
        raise SystemExit(1)
"""

COUNTS = """
    # Epochs vs steps: the digits' 80 % training split, n = 1,438 images.
    torch.set_num_threads(1)  # a model this small trains fastest on one thread (and as the page does)
    x_all, y_all = digits()
    tr, va = split(len(y_all), 0.2, 0)
    train, val = (x_all[tr], y_all[tr]), (x_all[va], y_all[va])
    n = len(train[1])
    for b in batch_sizes:
        steps = math.ceil(n / b)
        print(f"batch {b} steps per epoch: {steps}")
        print(f"batch {b} steps in total: {steps * EPOCHS}")
        print(f"batch {b} size of the last batch: {n - (steps - 1) * b}")
"""

MLP = """
    def mlp():
        # The default MLP: 2 hidden layers of 128 units, h(Wx + b) with ReLU, then 10 scores.
        torch.manual_seed(0)  # the same initial weights for every batch size
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                             nn.Linear(128, 10))
"""

SWEEP = """
    # Speed and accuracy: the same model, EPOCHS epochs and learning rate (Adam, lr 0.001) for every size.
    for b in batch_sizes:
        model = mlp()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
        t0 = time.perf_counter()
        history, _, _ = fit(model, optimizer, train, val, EPOCHS, b, 0, verbose=False)
        print(f"batch {b} seconds per epoch (this machine): {(time.perf_counter() - t0) / EPOCHS:.4g}")
        print(f"batch {b} val acc: {history[-1]['val_acc']:.8g}")
        print(f"batch {b} val loss: {history[-1]['val_loss']:.8g}")
        print(f"batch {b} train loss: {history[-1]['train_loss']:.8g}")
"""

SPREAD = """
    # Gradient noise: 48 mini-batch gradients g_b per size against the full-batch gradient g, after one
    # epoch of training (Adam, batches of 64).
    def flat_grad(model, x, y):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


    usable = [b for b in batch_sizes if b < n] or [32]  # a full batch has no noise to show
    model = mlp()
    fit(model, torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999)), train, val, 1, 64, 0,
        verbose=False)
    model.train()
    g = flat_grad(model, *train)
    draw = torch.Generator().manual_seed(0)
    rms = {}
    for b in usable:
        gb = torch.stack([flat_grad(model, train[0][idx], train[1][idx])
                          for idx in (torch.randperm(n, generator=draw)[:b] for _ in range(48))])
        cosine = F.cosine_similarity(gb, g[None], dim=1)
        rms[b] = ((gb - g).norm(dim=1) / g.norm()).pow(2).mean().sqrt().item()  # |g_b - g| / |g|
        print(f"batch {b} mean cosine with g: {cosine.mean().item():.6g}")
        print(f"batch {b} rms relative error: {rms[b]:.6g}")
    b0 = min(usable)
    for b in usable:
        # The 1/sqrt(b) law, with the without-replacement factor (n - b) / (n - 1), scaled to the smallest size.
        predicted = rms[b0] * math.sqrt(b0 / b) * math.sqrt(((n - b) / (n - 1)) / ((n - b0) / (n - 1)))
        print(f"batch {b} predicted relative error: {predicted:.6g}")
"""


def read(params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The page's settings from a link (``BatchesView``, as the page's binder reads them)."""
    return read_query(views().BatchesView, params)


def build(params: Mapping[str, str]) -> Script:
    """The /batches script for a link's parameters."""
    view = views().BatchesView
    values, problems = read(params)
    sizes = sorted(set(values["sizes"]) | ({values["extra"]} if values["extra"] else set()))
    settings = code("# The page's settings (from its link)\n" + sn.header_lines(view, values))
    cells = [md(INTRO), settings, code(SIZES)]  # no size: the script stops with the page's message
    if sizes:
        cells[1:1] = [code(sn.join(sn.IMPORTS, "import time", sn.DIGITS, sn.SPLIT))]
        cells += [
            md("### Epochs vs steps\nEvery row sees each of the $n$ images `EPOCHS` times; what differs is how "
               "many weight updates $W \\leftarrow W - \\eta\\, g_b$ those passes buy."),
            code(COUNTS),
            md("### Speed and accuracy\nThe same network and learning rate for every batch size; the loss is the "
               "cross-entropy, the optimizer Adam."),
            code(sn.join(sn.EVALUATE, sn.FIT, MLP)),
            code(SWEEP),
            md("### Gradient noise\nA mini-batch gradient $g_b$ is an unbiased estimate of $g$; its error shrinks "
               "like $1/\\sqrt{b}$: 4× the batch, half the noise."),
            code(SPREAD),
        ]
    return Script("batches", "Mini-batches: batch size, steps and gradient noise", sn.query_of(view, values),
                  tuple(cells), tuple(problems + ([] if sizes else [EMPTY])))


__all__ = ["build", "read"]
