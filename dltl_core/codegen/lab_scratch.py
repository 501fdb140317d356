"""Lab notebook "Train a full model from scratch": the digits, then CIFAR-10.

Part 1 is the /overfit page's run on the digits at the link's knobs (the same code as the
page's export, so it prints the page's numbers). Part 2 trains a small CNN from scratch on
a subset of CIFAR-10's training images, with the same regularisers (dropout, weight decay,
batch norm, early stopping) and seed: from a ``DATA_DIR`` folder of ``class/*.png|jpg`` when
set, else torchvision's download (Colab). Validation comes from the training images; the
official test set is not touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from dltl_core.codegen import _snippets as sn
from dltl_core.codegen import overfit
from dltl_core.codegen.script import Script, code, md
from dltl_core.query import read_query
from dltl_core.settings import setting, settings_of

# The overfit knobs the lab uses: the 2-D data set and its point noise are the page's only.
LAB_FIELDS = tuple(f for f in overfit.FIELDS if f not in ("data", "noise"))
DIGITS_TRAIN_SIZE = 300  # the overfit page's digits default, when the link was on a 2-D set


@dataclass(frozen=True)
class CifarLab:
    """Part 2's own settings (URL ``c10_*``): how much of CIFAR-10, how long, how fast."""

    per_class: int = setting(500, label="CIFAR-10 training images per class (subset)", lo=2, hi=5000,
                             url="c10_per_class", help="500 x 10 classes trains on a CPU in minutes.")
    epochs: int = setting(10, label="CIFAR-10 epochs", lo=1, hi=200, url="c10_epochs")
    lr: float = setting(1e-3, label="CIFAR-10 learning rate (AdamW)", lo=0.0, hi=1.0, positive=True,
                        url="c10_lr")
    batch_size: int = setting(64, label="CIFAR-10 batch size", lo=1, hi=1024, url="c10_batch")


INTRO = r"""
    # Lab: train a full model from scratch

    Training a network means minimising the **empirical risk** over the $n$ training samples,

    $$J(W) = \sum_{i=1}^{n} L(f(x_i, W), y_i),$$

    where $f(x, W)$ gives one score $z_k$ per class. The **softmax** turns scores into probabilities,
    $p_k = e^{z_k} / \sum_j e^{z_j}$, and the **cross-entropy** loss is $L = -\log p_y$ for the true class $y$.
    **Stochastic gradient descent** estimates $\nabla J$ on a mini-batch $B$ and steps
    $W \leftarrow W - \eta\, \frac{1}{|B|}\sum_{i \in B} \nabla_W L(f(x_i, W), y_i)$; AdamW, used here, scales
    that step per weight and decays the weights ($\lambda$).

    **Part 1** trains an MLP on the 8×8 digits with the settings of the overfitting page. **Part 2** trains a
    small convolutional network on CIFAR-10 photos (a subset, so it runs on a CPU in minutes).
"""

PART2 = r"""
    ## Part 2: a CNN on CIFAR-10

    The images: set `DATA_DIR` to a folder with one sub-folder of images per class (`airplane/0001.png`, ...),
    or leave it empty to download CIFAR-10's training set with torchvision (Colab). We take the first
    `C10_PER_CLASS` images of each class and hold out 20 % of them for validation: the official test set is kept
    for the very end. Each convolutional block computes $h(\mathrm{BN}(W * x))$, a $3\times 3$ convolution
    shared over the image, then max-pools.
"""

CIFAR_DATA = """
    import os
    import torchvision
    from torchvision.transforms.functional import pil_to_tensor

    DATA_DIR = os.environ.get("DATA_DIR", "")  # a folder of class/*.png (or *.jpg); empty: download
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if DATA_DIR and not os.path.isdir(DATA_DIR):
        print(f"DATA_DIR={DATA_DIR!r} is not a folder: set it to a folder of class/*.png, or leave it empty.")
        raise SystemExit(1)
    if DATA_DIR:
        folder = torchvision.datasets.ImageFolder(DATA_DIR)  # one class per sub-folder, sorted by name
        classes, targets = folder.classes, folder.targets
        pick = [i for c in range(len(classes)) for i in [j for j, t in enumerate(targets) if t == c][:C10_PER_CLASS]]
        images = torch.stack([pil_to_tensor(folder[i][0].convert("RGB").resize((32, 32))) for i in pick])
    else:
        data = torchvision.datasets.CIFAR10("data", train=True, download=True)  # the 50,000 training images
        classes, targets = data.classes, data.targets
        pick = [i for c in range(len(classes)) for i in [j for j, t in enumerate(targets) if t == c][:C10_PER_CLASS]]
        images = torch.from_numpy(data.data[pick]).permute(0, 3, 1, 2)  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    labels = torch.tensor([targets[i] for i in pick])
    tr, va = split(len(labels), 0.2, SEED)
    x = images.float() / 255
    mean, std = x[tr].mean((0, 2, 3), keepdim=True), x[tr].std((0, 2, 3), keepdim=True)
    x = (x - mean) / std  # normalise with the training images' channel statistics
    c10_train = (x[tr].to(device), labels[tr].to(device))
    c10_val = (x[va].to(device), labels[va].to(device))
    print(f"cifar training images: {len(tr)}")
    print(f"cifar validation images: {len(va)}")
"""

CIFAR_MODEL = """
    # The model: three conv blocks (32, 64, 128 channels), each halving the image, then a linear head.
    def block(c_in, c_out):
        layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not BATCHNORM)]
        if BATCHNORM:
            layers.append(nn.BatchNorm2d(c_out))
        return nn.Sequential(*layers, nn.ReLU(), nn.MaxPool2d(2))


    torch.manual_seed(SEED)
    cnn = nn.Sequential(block(3, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Dropout(DROPOUT), nn.Linear(128 * 4, len(classes))).to(device)
    print(f"cifar parameters: {sum(p.numel() for p in cnn.parameters())}")
    decay = [p for p in cnn.parameters() if p.ndim > 1]  # weight decay on kernels and matrices only
    rest = [p for p in cnn.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": rest, "weight_decay": 0.0}], lr=C10_LR)
"""

CIFAR_RUN = """
    # The loop: the same fit as in part 1 (cross-entropy, one step per mini-batch, validation per epoch).
    torch.set_num_threads(max(1, os.cpu_count() or 1))  # a CNN on 32x32 photos uses every core
    c10_history, c10_best, c10_reason = fit(cnn, optimizer, c10_train, c10_val, C10_EPOCHS,
                                            min(C10_BATCH, len(c10_train[1])), SEED,
                                            patience=PATIENCE if EARLY_STOPPING else None)
    if c10_reason:
        print(f"Diverged at epoch {len(c10_history)}: {c10_reason}.")
    kept = c10_history[c10_best - 1] if (EARLY_STOPPING and c10_best) else c10_history[-1]
    print(f"cifar first epoch training loss: {c10_history[0]['train_loss']:.6g}")
    print(f"cifar last epoch training loss: {c10_history[-1]['train_loss']:.6g}")
    print(f"cifar training accuracy: {kept['train_acc']:.6g}")
    print(f"cifar validation accuracy: {kept['val_acc']:.6g}")
"""


def read(params: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any], list[str], str]:
    """(overfit knobs on the digits, CIFAR settings, the link's problems, the knobs' error or "")."""
    from dltl_core.lessons.overfit import OverfitConfig
    from dltl_core.settings import SettingsError

    # The lab trains on the digits: a link from the page on a 2-D set keeps its knobs but takes the
    # digits' default size; the lab's own links (no data=) carry train_size for the digits.
    knobs, problems = read_query(OverfitConfig, params, fields=overfit.FIELDS,
                                 defaults={"data": "digits", "train_size": DIGITS_TRAIN_SIZE})
    if knobs["data"] != "digits":
        knobs = {**knobs, "data": "digits", "train_size": DIGITS_TRAIN_SIZE}
    error = ""
    try:
        OverfitConfig(**knobs)
    except SettingsError as err:
        error = "; ".join(err.problems.values())
    cifar, more = read_query(CifarLab, params)
    return knobs, cifar, problems + more, error


def build(params: Mapping[str, str]) -> Script:
    """The lab notebook for a link (the overfit page's knobs, plus ``c10_*``)."""
    from dltl_core.lessons.overfit import OverfitConfig

    knobs, cifar, problems, error = read(params)
    part1 = overfit.training_cells(knobs, error)
    cifar_settings = code("# Part 2's settings (from the link's c10_* parameters)\n" + "\n".join(
        f"{s.url.upper()} = {cifar[k]!r}  # {s.label}" for k, s in settings_of(CifarLab).items()))
    cells = [md(INTRO), md("## Part 1: an MLP on the digits\nThe overfitting page's run: learning curves, "
                           "the generalization gap, the regularisers."), *part1]
    if not error:
        cells += [md(PART2), cifar_settings, code(CIFAR_DATA), code(CIFAR_MODEL), code(CIFAR_RUN)]
    query = "&".join(q for q in (sn.query_of(OverfitConfig, knobs, LAB_FIELDS), sn.query_of(CifarLab, cifar)) if q)
    return Script("lab-scratch", "Lab: train a full model from scratch", query, tuple(cells),
                  tuple(problems + ([error] if error else [])))


__all__ = ["CifarLab", "LAB_FIELDS", "build", "read"]
