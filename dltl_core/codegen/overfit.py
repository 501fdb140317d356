"""The /overfit page as plain PyTorch: the data split, the MLP, AdamW, the learning curves.

The script does what ``dltl_core.lessons.overfit.run_overfit`` does on the CPU, in the same
order (the same split, label noise, initial weights, batch order and dropout masks), so
it prints the page's per-epoch losses and accuracies.
"""

from __future__ import annotations

from typing import Any, Mapping

from dltl_core.codegen import _snippets as sn
from dltl_core.codegen.script import Cell, Script, code, md
from dltl_core.query import read_query
from dltl_core.settings import SettingsError

# The page's knobs (pages/23_overfit.py binds exactly these of OverfitConfig).
FIELDS = ("data", "noise", "label_noise", "train_size", "depth", "width", "dropout", "weight_decay", "batchnorm",
          "early_stopping", "patience", "epochs", "lr", "seed")

INTRO = r"""
    ## Overfitting and generalization

    Training lowers the loss on the **training** samples; what we care about is the loss on samples the
    model has **not** seen (the **validation** set). Training minimises the empirical risk
    $J(W) = \frac{1}{n}\sum_{i=1}^{n} L(f(x_i, W), y_i)$ with the cross-entropy
    $L = -\log \mathrm{softmax}(f(x, W))_y$. The **generalization gap** is validation minus training loss.
    A model too simple for the data **underfits**; one with much capacity and little data **overfits**.
    **Early stopping** keeps the weights of the epoch with the lowest validation loss; **dropout**,
    **weight decay** and **more data** shrink the gap.
"""

# The data as the core makes it: a fixed validation set, the first TRAIN_SIZE of the rest.
POINTS = {
    "moons": '''
        from sklearn.datasets import make_moons


        def points(n, noise, seed):
            """Two moons, centred on the origin."""
            x, y = make_moons(n, noise=noise, random_state=seed)
            x = (x - [0.5, 0.25]) * 1.2
            return torch.tensor(x, dtype=torch.float32), torch.from_numpy(np.asarray(y, dtype=np.int64))
    ''',
    "circles": '''
        from sklearn.datasets import make_circles


        def points(n, noise, seed):
            """Two circles, one inside the other."""
            x, y = make_circles(n, noise=noise * 0.5, factor=0.5, random_state=seed)
            x = x * 1.5
            return torch.tensor(x, dtype=torch.float32), torch.from_numpy(np.asarray(y, dtype=np.int64))
    ''',
    "spirals": '''
        def points(n, noise, seed):
            """Two interleaved spiral arms of 1.75 turns; arm 1 is arm 0 rotated by pi."""
            rng = np.random.default_rng(seed)
            y = np.arange(n) % 2
            t = np.sqrt(rng.uniform(0, 1, n)) * 1.75 * 2 * math.pi
            r = t / (1.75 * 2 * math.pi) * 2.0
            angle = t + math.pi * y
            x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
            x = x + rng.normal(0, noise * 0.5, x.shape)
            return torch.tensor(x, dtype=torch.float32), torch.from_numpy(np.asarray(y, dtype=np.int64))
    ''',
    "xor": '''
        def points(n, noise, seed):
            """Four blobs: the class is the sign of x1 * x2 (XOR)."""
            rng = np.random.default_rng(seed)
            x = rng.uniform(-1, 1, (n, 2))
            x = x + np.sign(x) * 0.1
            y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
            x = x + rng.normal(0, noise * 0.5, x.shape)
            return torch.tensor(x, dtype=torch.float32), torch.from_numpy(y)
    ''',
}

LOAD_DIGITS = """
    # The data: a fixed validation set (20 % of the digits), the first TRAIN_SIZE of the rest for training.
    x_all, y_all = digits()
    tr, va = split(len(y_all), 0.2, SEED)
"""

LOAD_POINTS = """
    # The data: 1,000 points; a fixed validation set of 400, the first TRAIN_SIZE of the other 600 for training.
    x_all, y_all = points(1000, NOISE, SEED)
    tr, va = split(len(y_all), 400 / 1000, SEED)
"""

PREPARE = """
    tr = tr[:TRAIN_SIZE]
    x_train, y_train = x_all[tr], y_all[tr].clone()
    x_val, y_val = x_all[va], y_all[va]
    if LABEL_NOISE > 0:  # wrong labels in the training set only: validation measures the truth
        g = torch.Generator().manual_seed(SEED + 1)
        flip = torch.randperm(len(y_train), generator=g)[: int(round(LABEL_NOISE * len(y_train)))]
        classes = int(y_all.max()) + 1
        y_train[flip] = (y_train[flip] + torch.randint(1, classes, (len(flip),), generator=g)) % classes
    print(f"data set {DATA!r}, label noise {LABEL_NOISE:g}")
    print(f"training samples: {len(y_train)}")
    print(f"validation samples: {len(y_val)}")
"""

MODEL = """
    # The model: DEPTH hidden layers h(Wx + b) (ReLU), then a linear layer giving one score per class.
    torch.set_num_threads(1)  # a model this small runs fastest on one thread (and as the page does)
    num_classes = int(max(y_train.max(), y_val.max())) + 1
    torch.manual_seed(SEED)  # the initial weights depend only on the seed
    layers, n_in = [nn.Flatten()], x_train[0].numel()
    for _ in range(DEPTH):
        layers.append(nn.Linear(n_in, WIDTH, bias=not BATCHNORM))  # batch norm has its own shift
        if BATCHNORM:
            layers.append(nn.BatchNorm1d(WIDTH))
        layers.append(nn.ReLU())
        if DROPOUT > 0:
            layers.append(nn.Dropout(DROPOUT))
        n_in = WIDTH
    layers.append(nn.Linear(n_in, num_classes))
    model = nn.Sequential(*layers)
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")
"""

OPTIMIZER = """
    # The loss is the cross-entropy (in fit); the optimizer AdamW with decoupled weight decay,
    # which shrinks the weight matrices only (not biases or batch-norm parameters).
    if WEIGHT_DECAY == 0:
        groups = [{"params": list(model.parameters()), "weight_decay": 0.0}]
    else:
        groups = [{"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": WEIGHT_DECAY},
                  {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.999))
    batch_size = min(32, len(y_train))  # mini-batches of 32 (the whole set when it is smaller)
"""

RUN = """
    # The loop: EPOCHS passes over the training set, validating after each.
    history, best_epoch, reason = fit(model, optimizer, (x_train, y_train), (x_val, y_val), EPOCHS, batch_size,
                                      SEED, patience=PATIENCE if EARLY_STOPPING else None)
"""

REPORT = """
    # The evaluation: what the page's metrics show.
    last = history[-1]
    if reason:
        print(f"Diverged at epoch {len(history)}: {reason} (learning rate {LR:g}).")
    elif EARLY_STOPPING and len(history) < EPOCHS:
        print(f"Early stopping ended the run at epoch {len(history)}; the weights of epoch {best_epoch} were restored.")
    kept = history[best_epoch - 1] if (EARLY_STOPPING and best_epoch) else last
    print(f"epochs run: {len(history)}")
    print(f"best epoch: {best_epoch}")
    print(f"training accuracy: {kept['train_acc']:.8g}")
    print(f"validation accuracy: {kept['val_acc']:.8g}")
    print(f"training loss: {kept['train_loss']:.8g}")
    print(f"validation loss: {kept['val_loss']:.8g}")
    print(f"gap (val - train loss): {last['val_loss'] - last['train_loss']:.8g}")
"""

PLOT = """
    # Optional: the learning curves (needs matplotlib).
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is not None:
        epochs_run = [h["epoch"] for h in history]
        plt.plot(epochs_run, [h["train_loss"] for h in history], label="training loss")
        plt.plot(epochs_run, [h["val_loss"] for h in history], label="validation loss")
        if best_epoch:
            plt.axvline(best_epoch, linestyle="--", color="grey")
        plt.xlabel("epoch")
        plt.ylabel("cross-entropy")
        plt.legend()
        plt.savefig("learning_curves.png", dpi=100)
"""


def read(params: Mapping[str, str]) -> tuple[dict[str, Any], list[str], str]:
    """The page's knobs from a link: (values, the link's problems, the config's error or "")."""
    from dltl_core.lessons.overfit import OverfitConfig

    from dltl_core.lessons.overfit import pool_size

    values, problems = read_query(OverfitConfig, params, fields=FIELDS)
    # The page's size slider ends at the data set's pool (600 points of a 2-D set): a larger link
    # value is clamped there silently, as the widget does.
    values["train_size"] = min(values["train_size"], pool_size(values["data"]))
    try:
        OverfitConfig(**values)
    except SettingsError as err:  # the page shows this warning and trains nothing
        msg = "; ".join(err.problems.values())
        return values, problems, msg[:1].upper() + msg[1:] + "."
    return values, problems, ""


def settings_cell(values: Mapping[str, Any]) -> Cell:
    """The settings of the link, one variable per declared knob."""
    from dltl_core.lessons.overfit import OverfitConfig

    return code("# The page's settings (from its link)\n" + sn.header_lines(OverfitConfig, values, FIELDS))


def training_cells(values: Mapping[str, Any], error: str) -> list[Cell]:
    """Data, model, optimizer, loop and evaluation cells for the knobs (or the page's message)."""
    data = sn.DIGITS if values["data"] == "digits" else POINTS[values["data"]]
    if error:  # a config the page cannot train: the same message, and nothing runs
        return [settings_cell(values), code(f"print({error!r})\nraise SystemExit(1)")]
    cells = [code(sn.join(sn.IMPORTS, data, sn.SPLIT)), code(sn.join(sn.EVALUATE, sn.FIT)), settings_cell(values)]
    load = LOAD_DIGITS if values["data"] == "digits" else LOAD_POINTS
    return cells + [
        md("### The data\nA fixed validation set; the training set is the first `TRAIN_SIZE` samples of the rest, "
           "with `LABEL_NOISE` of its labels replaced by a wrong class."),
        code(sn.join(load, PREPARE).replace("\n\n\n", "\n")),
        md("### The model\nEach hidden layer computes $h(Wx + b)$ with $h = \\mathrm{ReLU}$; batch norm and "
           "dropout are optional regularisers."),
        code(MODEL),
        md("### The loss and the optimizer\nThe cross-entropy of the softmax, "
           "$L = -\\log \\frac{e^{z_y}}{\\sum_k e^{z_k}}$; AdamW steps $W \\leftarrow W - \\eta\\,(\\hat m / "
           "(\\sqrt{\\hat v} + \\epsilon) + \\lambda W)$ with weight decay $\\lambda$."),
        code(OPTIMIZER),
        md("### The loop and the evaluation\nEach epoch shuffles the training set, takes one step per mini-batch, "
           "then measures the validation loss and accuracy."),
        code(RUN),
        code(REPORT),
        code(PLOT),
    ]


def build(params: Mapping[str, str]) -> Script:
    """The /overfit script for a link's parameters."""
    from dltl_core.lessons.overfit import OverfitConfig

    values, problems, error = read(params)
    cells = [md(INTRO), *training_cells(values, error)]
    return Script("overfit", "Overfitting and generalization: learning curves", sn.query_of(OverfitConfig, values),
                  tuple(cells), tuple(problems + ([error] if error else [])))


__all__ = ["FIELDS", "build", "read", "training_cells"]
