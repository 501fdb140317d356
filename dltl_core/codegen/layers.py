"""The /layers page as plain PyTorch: weights of FC vs conv layers, and the same-budget comparison.

The script counts the parameters of real ``nn.Linear``/``nn.Conv2d`` layers (on the meta
device, so a 10^11-weight layer costs no memory), then does what
``dltl_core.lessons.layers.compare_layers`` does on the CPU in the same order: per seed, the
digits' 80/20 split, an MLP, a small CNN and a deep linear MLP trained with Adam and a
cosine schedule, and a linear map trained to convergence with L-BFGS.
"""

from __future__ import annotations

from typing import Mapping

from dltl_core.codegen import _snippets as sn
from dltl_core.codegen._page_views import views
from dltl_core.codegen.script import Script, code, md
from dltl_core.query import read_query

INTRO = r"""
    ## Layers: fully connected vs convolutional

    Every layer computes $h(Wx + b)$: a linear map, then a **nonlinearity** $h$. A **fully connected**
    layer has one weight for every (input, output) pair. A **convolutional** layer slides one small kernel
    over the image: the same few weights at every position, so its size does not depend on the image's.
    Without $h$, stacked layers collapse into a single linear map: $W_3 W_2 W_1 x$ is one matrix times $x$.
"""

COUNT = """
    # How many weights? A fully connected layer with as many outputs as a same-padded 3x3 convolution
    # with CHANNELS output channels (CHANNELS x H x W outputs), built on the meta device (no memory).
    INPUTS = {"digits 8x8": (1, 8, 8), "MNIST 28x28": (1, 28, 28), "CIFAR-10 32x32": (3, 32, 32),
              "ImageNet photo 224x224": (3, 224, 224)}
    for name, (c, h, w) in INPUTS.items():
        fc = nn.Linear(c * h * w, CHANNELS * h * w, device="meta")
        conv = nn.Conv2d(c, CHANNELS, kernel_size=3, padding=1, device="meta")
        n_fc = sum(p.numel() for p in fc.parameters())
        n_conv = sum(p.numel() for p in conv.parameters())
        print(f"{name} fully connected parameters: {n_fc}")
        print(f"{name} convolutional parameters: {n_conv}")
"""

MODELS = """
    # The models: an MLP with ReLU, a small CNN, and the same MLP without its nonlinearity.
    def mlp(activation):
        layers, n_in = [nn.Flatten()], 64
        for _ in range(3):  # 3 hidden layers of 128 units: h(Wx + b)
            layers += [nn.Linear(n_in, 128), activation()]
            n_in = 128
        return nn.Sequential(*layers, nn.Linear(n_in, 10))


    def cnn():
        # conv 3x3 -> ReLU -> max-pool, twice (16 then 32 channels); average-pool to 2x2; a linear head.
        return nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)),
            nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32 * 4, 10))


    NETWORKS = {"MLP (ReLU)": lambda: mlp(nn.ReLU), "CNN (ReLU)": cnn,
                "MLP, 3 layers, no nonlinearity": lambda: mlp(nn.Identity)}
"""

LBFGS = """
    def fit_linear_map(x, y, seed, weight_decay=1e-4):
        # Multinomial logistic regression trained to convergence with full-batch L-BFGS (the digits are
        # linearly separable: a small L2 penalty gives the optimum a finite place).
        x = x.reshape(len(x), -1)
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(x.shape[1], int(y.max()) + 1))
        opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-6,
                                tolerance_change=1e-10, history_size=20, line_search_fn="strong_wolfe")
        weight = model[1].weight

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y) + weight_decay * weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return model, int(opt.state[weight].get("n_iter", 0))


    def collapse(model):
        # The single linear layer equal to the network without nonlinearity: W = W3 W2 W1 ..., b likewise.
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        w, b = linears[0].weight.detach(), linears[0].bias.detach()
        for lin in linears[1:]:
            w, b = lin.weight.detach() @ w, lin.weight.detach() @ b + lin.bias.detach()
        out = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            out.weight.copy_(w)
            out.bias.copy_(b)
        return nn.Sequential(nn.Flatten(), out)
"""

TRAIN = """
    # The same budget for every network: EPOCHS epochs of Adam (lr 0.003, cosine decay to 1 %),
    # mini-batches of 64; one run per seed SEED, SEED + 1, ... (each its own split and initial weights).
    torch.set_num_threads(1)  # models this small train fastest on one thread (and as the page does)
    x_all, y_all = digits()
    accuracies, first = {}, {}
    for s in range(SEED, SEED + SEEDS):
        tr, va = split(len(y_all), 0.2, s)
        train, val = (x_all[tr], y_all[tr]), (x_all[va], y_all[va])
        for name, make in NETWORKS.items():
            torch.manual_seed(s)  # the initial weights depend only on the seed
            model = make()
            optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.999))
            steps = math.ceil(len(train[1]) / 64)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * steps, eta_min=3e-5)
            history, _, _ = fit(model, optimizer, train, val, EPOCHS, 64, s, scheduler=scheduler, verbose=False)
            accuracies.setdefault(name, []).append(history[-1]["val_acc"])
            print(f"{name} parameters: {sum(p.numel() for p in model.parameters())}")
            print(f"{name} seed {s} val acc: {history[-1]['val_acc']:.8g}")
            print(f"{name} seed {s} val loss: {history[-1]['val_loss']:.8g}")
            if s == SEED:
                first[name] = model  # the first seed's networks are inspected below
        linear, iterations = fit_linear_map(*train, s)
        loss, acc = evaluate(linear, *val)
        accuracies.setdefault("linear map (L-BFGS)", []).append(acc)
        print(f"linear map (L-BFGS) seed {s} iterations: {iterations}")
        print(f"linear map (L-BFGS) seed {s} val acc: {acc:.8g}")
        if s == SEED:
            first_val = val
    for name, accs in accuracies.items():
        print(f"{name} mean val acc: {sum(accs) / len(accs):.8g}")
"""

COLLAPSE = """
    # No nonlinearity = one linear map: the product of the deep linear network's weights does the same.
    deep = first["MLP, 3 layers, no nonlinearity"]
    print(f"deep linear network val acc: {evaluate(deep, *first_val)[1]:.8g}")
    print(f"its product W3 W2 W1 as one layer val acc: {evaluate(collapse(deep), *first_val)[1]:.8g}")
"""

INSIDE = """
    # Inside the trained CNN (first seed): the first-layer feature maps of a validation DIGIT.
    net = first["CNN (ReLU)"]
    x_val, y_val = first_val
    image = x_val[int((y_val == DIGIT).nonzero()[0])][None]
    with torch.no_grad():
        maps = net[0][1](net[0][0](image))[0]  # after the first convolution and its ReLU
    for c, m in enumerate(maps):
        print(f"digit {DIGIT} feature map {c} mean: {m.mean().item():.6g}")
"""


def build(params: Mapping[str, str]) -> Script:
    """The /layers script for a link's parameters."""
    view = views().LayersView
    values, problems = read_query(view, params)
    settings = code("# The page's settings (from its link)\n" + sn.header_lines(view, values))
    cells = (
        md(INTRO),
        code(sn.join(sn.IMPORTS, sn.DIGITS, sn.SPLIT)),
        settings,
        md("### How many weights?\nA fully connected layer from $C \\times H \\times W$ inputs to $C_{out} "
           "\\times H \\times W$ outputs has $(CHW)(C_{out}HW) + C_{out}HW$ parameters; a $3\\times 3$ "
           "convolution has $9\\,C\\,C_{out} + C_{out}$, whatever the image size."),
        code(COUNT),
        md("### Depth, nonlinearity and the same training budget\nThe networks minimise the cross-entropy "
           "$J(W) = \\frac{1}{n}\\sum_i L(f(x_i, W), y_i)$ with Adam; the linear map (multinomial logistic "
           "regression) is trained to convergence with L-BFGS."),
        code(sn.join(sn.EVALUATE, sn.FIT)),
        code(sn.join(MODELS, LBFGS)),
        code(TRAIN),
        code(COLLAPSE),
        md("### Inside the trained CNN\nEach first-layer filter slides over the digit; after ReLU, its map "
           "lights up where the filter finds its pattern."),
        code(INSIDE),
    )
    return Script("layers", "Layers: fully connected vs convolutional", sn.query_of(view, values), cells,
                  tuple(problems))


__all__ = ["build"]
