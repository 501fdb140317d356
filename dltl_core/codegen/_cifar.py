"""Code text shared by the CIFAR exporters (/arch, /results): the network, its size, its work.

The network's definition is the core's own (``dltl_core/archs/``), copied into the script
with ``inspect.getsource``: what the student reads is what the page measured, and a change
of an architecture reaches its exported code. Only torch and torchvision are imported.
"""

from __future__ import annotations

import functools
import inspect
from urllib.parse import urlencode

from dltl_core.archs import ARCHS
from dltl_core.archs import densenet, preact_resnet, resnet, vgg
from dltl_core.archs._registry import scaled

# Registry name -> (module, class, constructor arguments as code; `width` is a variable of the
# script). Every registered architecture must be here: tests/test_codegen_arch.py checks it.
BUILDERS: dict[str, tuple[object, str, str]] = {
    "resnet18": (resnet, "CifarResNet", "[2, 2, 2, 2], num_classes=10, width=width"),
    "resnet34": (resnet, "CifarResNet", "[3, 4, 6, 3], num_classes=10, width=width"),
    "preact_resnet18": (preact_resnet, "PreActResNet", "[2, 2, 2, 2], num_classes=10, width=width"),
    "densenet121": (densenet, "CifarDenseNet", "(6, 12, 24, 16), max(2, int(round(32 * width))), num_classes=10"),
    "densenet_cifar": (densenet, "CifarDenseNet", "(6, 12, 24, 16), max(2, int(round(12 * width))), num_classes=10"),
    "vgg11_bn": (vgg, "CifarVGG", "CFG['vgg11'], num_classes=10, width=width"),
    "vgg16_bn": (vgg, "CifarVGG", "CFG['vgg16'], num_classes=10, width=width"),
}

# What each family's definition needs from torch/torchvision (the script's imports).
_IMPORTS = {
    resnet: "from torchvision.models.resnet import BasicBlock  # the same basic block as torchvision's ResNet",
    preact_resnet: "",
    densenet: "from collections import OrderedDict\n"
              "from torchvision.models.densenet import _DenseBlock, _Transition  # torchvision's dense blocks",
    vgg: "from torchvision.models.vgg import make_layers  # torchvision's VGG stages (conv-BN-ReLU, max-pool)",
}


def query_string(params: dict[str, str]) -> str:
    """A canonical query string from encoded parameters."""
    return urlencode(params, safe=",")


@functools.lru_cache(maxsize=None)
def _source(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def arch_imports(name: str) -> str:
    """The import lines the architecture's definition needs."""
    module = BUILDERS[name][0]
    base = "import os\nimport time\n\nimport torch\nfrom torch import Tensor, nn\nfrom torch.utils.flop_counter import FlopCounterMode"
    extra = _IMPORTS[module]
    return base + ("\n" + extra if extra else "")


def arch_definition(name: str) -> str:
    """The architecture's classes (and the width rounding), as the core defines them."""
    module, cls, _ = BUILDERS[name]
    parts = [_source(scaled)]
    if module is vgg:
        parts.append("CFG = " + repr(vgg.CFG))
    if module is preact_resnet:
        parts.append(_source(preact_resnet.PreActBlock))
    parts.append(_source(getattr(module, cls)))
    return "\n\n".join(p.strip("\n") for p in parts)


def arch_build(name: str, width: float, *, seed: int = 0) -> str:
    """Code making ``model``: the architecture at ``width`` with seeded initial weights."""
    _, cls, args = BUILDERS[name]
    return (f"width = {width!r}  # the width multiplier: every layer's channels x {width:g}\n"
            f"torch.manual_seed({seed})  # the initial weights depend only on the seed\n"
            f"model = {cls}({args})  # {ARCHS[name].label}")


def size_and_work() -> str:
    """Code printing ``model``'s parameter count and forward FLOPs for one 32x32 image."""
    return '''\
# Size: every weight and bias is a parameter.
params = sum(p.numel() for p in model.parameters())
# Work: FlopCounterMode counts the convolutions and matrix products of one forward pass of
# one 32x32 image in eval mode (2 FLOPs per multiply-add; BN, ReLU and pooling not counted).
model.eval()
with torch.no_grad(), FlopCounterMode(display=False) as counter:
    model(torch.zeros(1, 3, 32, 32))
flops = counter.get_total_flops()
model.train()
print(f"parameters: {params}")
print(f"FLOPs per image: {flops}")'''




def cifar_data(max_per_class: int | None, val_fraction: float, split_seed: int) -> str:
    """Code loading CIFAR-10's training images as uint8 tensors and splitting off validation.

    As ``dltl_core.data.cifar``: a folder ``DATA_DIR/train/<class>/*.jpg`` (classes and files
    sorted by name), else torchvision's download; a seeded random split.
    """
    from dltl_core.data.cifar import MEAN, STD
    from dltl_core.images import IMAGE_EXTENSIONS

    return f'''\
        # CIFAR-10: a folder DATA_DIR/train/<class>/*.jpg, or torchvision downloads it into DATA_DIR.
        DATA_DIR = Path(os.environ.get("CIFAR_DIR", "cifar10")).expanduser()
        MAX_PER_CLASS = int(os.environ.get("MAX_PER_CLASS", "0")) or {max_per_class!r}  # try a few first
        VAL_FRACTION, SPLIT_SEED = {val_fraction!r}, {split_seed!r}
        MEAN, STD = {MEAN!r}, {STD!r}  # per-channel statistics of the training images


        def load_cifar10() -> tuple[torch.Tensor, torch.Tensor]:
            """Training images as uint8 (N, 3, 32, 32) and their labels."""
            folder = DATA_DIR / "train"
            if folder.is_dir():
                xs, ys = [], []
                classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
                for label, name in enumerate(classes):
                    files = sorted(p for p in (folder / name).iterdir()
                                   if p.is_file() and not p.name.startswith(".")
                                   and p.name.lower().endswith({IMAGE_EXTENSIONS!r}))
                    for p in files[:MAX_PER_CLASS]:
                        xs.append(np.array(Image.open(p).convert("RGB"), dtype=np.uint8))
                        ys.append(label)
                x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
                return x, torch.tensor(ys)
            try:
                ds = torchvision.datasets.CIFAR10(str(DATA_DIR), train=True, download=True)
            except Exception as err:  # offline and no folder
                sys.exit(f"CIFAR-10 is not in {{DATA_DIR}} and could not be downloaded ({{err}}). "
                         "Put the images in DATA_DIR/train/<class>/*.jpg or set CIFAR_DIR.")
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            y = torch.tensor(ds.targets)
            if MAX_PER_CLASS:
                keep = torch.cat([torch.nonzero(y == c).flatten()[:MAX_PER_CLASS] for c in range(10)]).sort().values
                x, y = x[keep], y[keep]
            return x, y


        x_all, y_all = load_cifar10()
        # A seeded random split: validation comes out of the training images (the test set is for the end).
        perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_val = int(round(len(y_all) * VAL_FRACTION))
        x_train, y_train = x_all[perm[n_val:]], y_all[perm[n_val:]]
        x_val, y_val = x_all[perm[:n_val]], y_all[perm[:n_val]]
        print(f"training images: {{len(y_train)}}")
        print(f"validation images: {{len(y_val)}}")'''


def augment() -> str:
    """Code of the on-batch augmentation and normalisation (``dltl_core.data.cifar.CifarAugment``)."""
    return '''\
        def normalize(x: torch.Tensor) -> torch.Tensor:
            """uint8 -> float in [0, 1], standardised per channel."""
            mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
            return (x.float() / 255.0 - mean) / std


        def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            """Random crop after zero padding by 4, and a random horizontal flip: one draw per image."""
            n, c, h, w = x.shape
            xp = F.pad(x, (4, 4, 4, 4))
            dy = torch.randint(0, 9, (n,), device=x.device, generator=gen)
            dx = torch.randint(0, 9, (n,), device=x.device, generator=gen)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
            x = xp[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
            flip = torch.rand(n, device=x.device, generator=gen) < 0.5
            return torch.where(flip[:, None, None, None], x.flip(3), x)'''


def _optimizer(cfg) -> str:
    if cfg.optimizer in ("sgd", "momentum", "nesterov"):
        momentum = 0.0 if cfg.optimizer == "sgd" else cfg.momentum
        extra = ", nesterov=True" if cfg.optimizer == "nesterov" else ""
        return f"torch.optim.SGD(groups, lr=LR, momentum={momentum!r}, weight_decay=WEIGHT_DECAY{extra})"
    if cfg.optimizer in ("adam", "adamw"):
        cls = "Adam" if cfg.optimizer == "adam" else "AdamW"
        return f"torch.optim.{cls}(groups, lr=LR, betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY)"
    if cfg.optimizer == "rmsprop":
        return "torch.optim.RMSprop(groups, lr=LR, alpha=0.99, momentum=0.0, weight_decay=WEIGHT_DECAY)"
    return "torch.optim.Adagrad(groups, lr=LR, weight_decay=WEIGHT_DECAY)"


def _scheduler(cfg) -> str:
    """The ``torch.optim.lr_scheduler`` line of ``dltl_core.optim.create_scheduler`` for the recipe."""
    total = "EPOCHS * steps_per_epoch"
    if cfg.schedule == "onecycle":
        cycle = cfg.optimizer != "sgd" and cfg.optimizer not in ("adagrad",) and not (
            cfg.optimizer == "rmsprop")
        return (f"torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g['lr'] for g in optimizer.param_groups], "
                f"total_steps={total} + 1, pct_start={max(cfg.warmup, 1e-3)!r}, cycle_momentum={cycle})")
    if cfg.schedule == "cosine":
        return f"torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max={total}, eta_min=LR * 0.01)"
    if cfg.schedule == "step":
        return f"torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, round(0.3 * {total})), gamma=0.1)"
    if cfg.schedule == "exponential":
        return f"torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.01 ** (1.0 / ({total})))"
    if cfg.schedule == "warmup_cosine":
        return ("torch.optim.lr_scheduler.SequentialLR(optimizer, [\n"
                f"    torch.optim.lr_scheduler.LinearLR(optimizer, 0.01, 1.0, total_iters=max(1, round({cfg.warmup!r} * {total}))),\n"
                f"    torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, {total} - max(1, round({cfg.warmup!r} * {total}))), eta_min=LR * 0.01)],\n"
                f"    milestones=[max(1, round({cfg.warmup!r} * {total}))])")
    return "None  # a constant learning rate"


def training(cfg, seed: int) -> str:
    """Code of the recipe's training loop (``dltl_core.train.fit`` with ``CifarAugment``), in plain PyTorch."""
    ema = cfg.ema_epochs
    decay = "groups = [{'params': [p for p in model.parameters() if p.requires_grad], 'weight_decay': WEIGHT_DECAY}]" \
        if cfg.decay_1d or cfg.weight_decay == 0 else (
        "# Weight decay on weights and kernels only, not on biases and BatchNorm (1-D tensors).\n"
        "        groups = [{'params': [p for p in model.parameters() if p.ndim > 1], 'weight_decay': WEIGHT_DECAY},\n"
        "                  {'params': [p for p in model.parameters() if p.ndim <= 1], 'weight_decay': 0.0}]")
    ema_setup = (f"ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(1.0 - 1.0 / max(1.0, {ema!r} * "
                 "steps_per_epoch)), use_buffers=True)  # an average of the recent weights\n"
                 f"        ema_start = round({cfg.warmup!r} * EPOCHS * steps_per_epoch)") if ema else "ema = None"
    ema_step = ("                if global_step >= ema_start:\n"
                "                    ema.update_parameters(model)\n") if ema else ""
    return f'''\
        EPOCHS = int(os.environ.get("EPOCHS", "0")) or {cfg.epochs}
        BATCH, LR, WEIGHT_DECAY, LABEL_SMOOTHING = {cfg.batch_size}, {cfg.lr!r}, {cfg.weight_decay!r}, {cfg.label_smoothing!r}
        SEED = {seed}
        # A GPU when there is one (DEVICE=cpu forces the CPU, e.g. to compare numbers with a CPU run).
        device = os.environ.get("DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(SEED)  # dropout (if any) draws from the global generator
        batch_order = torch.Generator().manual_seed(SEED)  # the order of the mini-batches
        crops = torch.Generator(device=device).manual_seed(SEED)  # the augmentation's draws
        model = model.to(device)
        x_train, y_train, x_val, y_val = x_train.to(device), y_train.to(device), x_val.to(device), y_val.to(device)
        if BATCH > len(y_train):
            sys.exit(f"the batch size ({{BATCH}}) is larger than the training set ({{len(y_train)}} samples)")
        {decay}
        optimizer = {_optimizer(cfg)}
        n = len(y_train)
        n_used = n - 1 if (n % BATCH == 1 and n > 1) else n  # no last batch of one image (BatchNorm)
        steps_per_epoch = math.ceil(n_used / BATCH)
        scheduler = {_scheduler(cfg)}
        {ema_setup}
        global_step, first_loss = 0, None
        for epoch in range(1, EPOCHS + 1):
            model.train()
            order = torch.randperm(n, generator=batch_order).to(device)
            loss_sum = 0.0
            for start in range(0, n_used, BATCH):
                idx = order[start:start + BATCH]
                xb = normalize(augment(x_train[idx], crops))
                # Forward, the cross-entropy loss, its gradient, one step of the optimizer.
                loss = F.cross_entropy(model(xb).float(), y_train[idx], label_smoothing=LABEL_SMOOTHING)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                global_step += 1
{ema_step}                first_loss = loss.item() if first_loss is None else first_loss
                loss_sum += loss.item() * len(idx)
            train_loss = loss_sum / n_used
            # Evaluation on the validation images: eval mode (BatchNorm's running statistics), no gradients.
            scored = ema.module if ema is not None else model
            scored.eval()
            val_loss = correct = 0.0
            with torch.no_grad():
                for start in range(0, len(y_val), max(2 * BATCH, 256)):
                    xb, yb = normalize(x_val[start:start + max(2 * BATCH, 256)]), y_val[start:start + max(2 * BATCH, 256)]
                    logits = scored(xb).float()
                    val_loss += F.cross_entropy(logits, yb, reduction="sum").item()
                    correct += (logits.argmax(1) == yb).sum().item()
            print(f"epoch {{epoch}} training loss: {{train_loss:.8f}}")
            if len(y_val):
                print(f"epoch {{epoch}} validation loss: {{val_loss / len(y_val):.8f}}")
                print(f"epoch {{epoch}} validation accuracy: {{correct / len(y_val):.6f}}")
            if not math.isfinite(train_loss) or train_loss > 10 * max(first_loss, 0.1):
                print(f"diverged: the training loss reached {{train_loss:.3g}} (from {{first_loss:.3g}})")
                break'''


__all__ = ["BUILDERS", "arch_build", "arch_definition", "arch_imports", "augment", "cifar_data", "query_string",
           "size_and_work", "training"]
