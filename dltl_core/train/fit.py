"""The training loop: ``fit`` -> epochs (train, then evaluate) -> step.

Shaped like Lightning Fabric's small trainer, in one short file: data stays in
memory as tensors, each epoch draws a seeded permutation and slices mini-batches
by index, every side effect (progress bars, live charts, Stop buttons) goes
through named callbacks. On CUDA the loop uses autocast (bf16, or fp16 with a
grad scaler), channels_last for images, and keeps small data sets resident on
the GPU (larger ones are pinned and copied per batch, non-blocking).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dltl_core.device import DevicePolicy, get_policy, seed_everything, seeded
from dltl_core.optim import create_optimizer, create_scheduler, param_groups
from dltl_core.train.callbacks import Callback
from dltl_core.train.config import EpochRecord, FitResult, TrainConfig

BatchTransform = Callable[[Tensor, bool], Tensor]
Data = tuple[Tensor, Tensor]

# Keep a data set on the GPU when it takes at most this share of free GPU memory.
_RESIDENT_SHARE = 0.25
# On the CPU, models below this many parameters train on one thread: their matrix
# products are too small to split, and on a busy machine (a shared server, a class
# of laptops running other things) OpenMP threads waiting for each other made an
# epoch on the digits 15-50x slower than one thread.
SMALL_MODEL_PARAMS = 1_000_000
# A run has diverged when an epoch's training loss is inf/NaN or this many times the
# loss of the very first step (e.g. ReLU nets blown up by a huge lr, whose units then
# all die: the loss stays finite but the network is wrecked).
DIVERGENCE_FACTOR = 10.0
# The first loss the factor multiplies is at least this: a warm start (a fine-tune whose head
# starts from a fitted linear probe) begins near 0, and 0.0003 -> 0.003 is no explosion.
DIVERGENCE_FLOOR = 0.1


@contextlib.contextmanager
def cpu_threads_for(model: nn.Module, policy: DevicePolicy | None = None,
                    x: Tensor | None = None) -> Iterator[None]:
    """Run the block on one CPU thread if ``model`` is small and runs on the CPU (see
    ``SMALL_MODEL_PARAMS``); otherwise leave torch's thread count alone.

    ``x`` (a batch of the inputs) refines "small": a convolutional network on images of
    32x32 or more does enough work per parameter to use every thread (VGG-11 at width
    0.25 has 0.6 M parameters but ran 3x slower on one thread).
    """
    policy = policy or get_policy()
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
    if x is not None and x.ndim == 4 and x.shape[-1] * x.shape[-2] >= 32 * 32:
        small = False
    if policy.device.type != "cpu" or not small or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _default_transform(x: Tensor, training: bool) -> Tensor:
    # uint8 images -> float in [0, 1]; float features pass through.
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def _check_pair(name: str, data: Data) -> None:
    x, y = data
    if len(x) != len(y):
        raise ValueError(f"the {name} set has {len(x)} inputs but {len(y)} labels")


def _check_data(train: Data, val: Data | None, cfg: TrainConfig) -> Data | None:
    """Validate the sets before anything runs; returns ``val`` (None when empty)."""
    _check_pair("training", train)
    n = len(train[1])
    if n == 0:
        raise ValueError("the training set is empty")
    if cfg.batch_size > n:
        raise ValueError(f"the batch size ({cfg.batch_size}) is larger than the training set "
                         f"({n} samples); choose a batch size of at most {n}")
    if val is not None:
        _check_pair("validation", val)
        if len(val[1]) == 0:
            val = None  # an empty validation split is no validation set
    if val is None and cfg.patience is not None:
        raise ValueError("early stopping needs a validation set; the split left none "
                         "(raise the validation share or turn early stopping off)")
    return val


def _place(data: Data, policy: DevicePolicy) -> tuple[Data, bool]:
    """Put a data set where batches are cut from it: returns (data, resident_on_device)."""
    x, y = data
    dev = policy.device
    if dev.type == "cpu":
        return (x, y), True
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        if x.nbytes + y.nbytes > _RESIDENT_SHARE * free:
            return ((x.pin_memory(), y.pin_memory()) if policy.pin_memory else (x, y)), False
    return (x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)), True


def _batch(data: Data, idx: Tensor, resident: bool, policy: DevicePolicy) -> Data:
    x, y = data
    if resident:
        return x[idx], y[idx]
    xb, yb = x[idx], y[idx]
    if policy.pin_memory:
        xb, yb = xb.pin_memory(), yb.pin_memory()
    return xb.to(policy.device, non_blocking=True), yb.to(policy.device, non_blocking=True)


def _autocast(policy: DevicePolicy) -> Callable[[], contextlib.AbstractContextManager]:
    # A disabled torch.autocast still costs ~50 us to enter per step: skip it in fp32.
    return policy.autocast if policy.amp_dtype is not None else contextlib.nullcontext


def _prepare(xb: Tensor, training: bool, transform: BatchTransform | None, policy: DevicePolicy) -> Tensor:
    xb = (transform or _default_transform)(xb, training)
    if policy.channels_last and xb.ndim == 4:
        xb = xb.contiguous(memory_format=torch.channels_last)
    return xb


def _forward_tta(model: nn.Module, x: Tensor, tta: bool) -> Tensor:
    # Flip test-time augmentation: average the logits of the image and its mirror image.
    logits = model(x)
    return (logits + model(x.flip(3))) / 2 if tta and x.ndim == 4 else logits


@torch.inference_mode()
def _eval_sums(model: nn.Module, data: Data, resident: bool, batch_size: int, policy: DevicePolicy,
               transform: BatchTransform | None, tta: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (already in eval mode) on ``data``."""
    n = len(data[1])
    dev = policy.device
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    autocast = _autocast(policy)
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n), device=data[1].device)
        xb, yb = _batch(data, idx, resident, policy)
        with autocast():
            logits = _forward_tta(model, _prepare(xb, False, transform, policy), tta)
        loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    return loss_sum.item() / n, correct.item() / n


@dataclasses.dataclass
class _EpochSums:
    """Per-step results of one epoch, kept on the device and reduced once per epoch."""

    losses: list[Tensor] = dataclasses.field(default_factory=list)
    preds: list[Tensor] = dataclasses.field(default_factory=list)
    sizes: list[int] = dataclasses.field(default_factory=list)

    def add(self, loss: Tensor, logits: Tensor, n: int) -> None:
        self.losses.append(loss.detach())
        self.preds.append(logits.detach().argmax(1))
        self.sizes.append(n)


def _collapsed(record: EpochRecord, classes: int) -> bool:
    """A network stuck at chance: training loss at ln(C) and accuracy at 1/C after 3+ epochs.

    What a too-large rate does to a plain (no-skip) network: its ReLUs die, it predicts
    one class, and the loss stays finite, so without this check the run would look like
    an honest 10% result.
    """
    return (record.epoch >= 3 and classes >= 3 and record.train_loss >= 0.99 * math.log(classes)
            and record.train_acc <= 1.3 / classes)


class Trainer:
    """Runs one ``fit``; callbacks see it (``trainer.model``, ``.optimizer``, ``.epoch``...).

    Attributes:
        should_stop: set it to True from any callback to end the run after the current step.
        epoch: the current 1-based epoch.
        global_step: optimizer steps done so far.
        steps_per_epoch: optimizer steps per epoch.
        ema: the ``AveragedModel`` when ``config.ema_epochs`` is set, else None.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, *, callbacks: Sequence[Callback] = (),
                 policy: DevicePolicy | None = None, batch_transform: BatchTransform | None = None,
                 param_groups: list[dict] | None = None) -> None:
        self.model = model
        self.config = config
        self.callbacks = list(callbacks)
        self.policy = policy or get_policy()
        self.batch_transform = batch_transform
        self.param_groups = param_groups
        self.should_stop = False
        self.epoch = 0
        self.global_step = 0
        self.steps_per_epoch = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.ema: AveragedModel | None = None

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, train: Data, val: Data | None) -> FitResult:
        """Train on ``train``, validate on ``val`` after every epoch; see ``fit``."""
        val = _check_data(train, val, self.config)
        # seeded(): concurrent fits in one process (visitors of one server) take turns on
        # the global generators, so a run gives the same result alone or beside another.
        with seeded(self.config.seed), cpu_threads_for(self.model, self.policy, train[0]):
            return self._fit(train, val)

    def _setup(self, n: int) -> int:
        """Optimizer, schedule, EMA; returns the number of samples used per epoch."""
        cfg, model = self.config, self.model
        groups = self.param_groups or param_groups(model, cfg.weight_decay, decay_1d=cfg.decay_1d)
        self.optimizer = create_optimizer(cfg.optimizer, groups, cfg.lr, momentum=cfg.momentum,
                                          weight_decay=cfg.weight_decay)
        # A last batch of one sample would break BatchNorm in training mode: drop it.
        n_used = n - 1 if (n % cfg.batch_size == 1 and n > 1) else n
        self.steps_per_epoch = steps = math.ceil(n_used / cfg.batch_size)
        # "constant" needs no scheduler object: one less call per step.
        self.scheduler = (None if cfg.schedule == "constant" else
                          create_scheduler(cfg.schedule, self.optimizer, cfg.epochs * steps,
                                           warmup_fraction=cfg.warmup))
        if cfg.ema_epochs is not None:
            decay = 1.0 - 1.0 / max(1.0, cfg.ema_epochs * steps)
            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        return n_used

    def _train_epoch(self, data: Data, resident: bool, gen: torch.Generator, n_used: int,
                     forward: Callable[[Tensor], Tensor]) -> tuple[_EpochSums, Tensor, float]:
        """One pass over the training set; returns the step results, the order, the last lr."""
        cfg, policy, opt, sched = self.config, self.policy, self.optimizer, self.scheduler
        self.model.train()
        perm = torch.randperm(len(data[1]), generator=gen).to(data[1].device)
        sums, autocast = _EpochSums(), _autocast(policy)
        ema_start = round(cfg.warmup * cfg.epochs * self.steps_per_epoch)
        lr = opt.param_groups[0]["lr"]
        for start in range(0, n_used, cfg.batch_size):
            xb, yb = _batch(data, perm[start:start + cfg.batch_size], resident, policy)
            xb = _prepare(xb, True, self.batch_transform, policy)
            lr = opt.param_groups[0]["lr"]
            with autocast():
                logits = forward(xb)
            self.num_classes = logits.shape[-1]
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            self._step(loss)
            if sched is not None:
                sched.step()
            self.global_step += 1
            if self.ema is not None and self.global_step >= ema_start:
                self.ema.update_parameters(self.model)
            if self.global_step == 1:
                self.first_loss = loss.item()
            sums.add(loss, logits, len(yb))
            for cb in self._step_hooks:
                cb.on_train_batch_end(self, self.global_step, loss)
            if self.should_stop:
                break
        return sums, perm, lr

    def _step(self, loss: Tensor) -> None:
        if self._scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self._scaler.scale(loss).backward()
            self._scaler.step(self.optimizer)
            self._scaler.update()

    def _fit(self, train: Data, val: Data | None) -> FitResult:
        cfg, policy, model = self.config, self.policy, self.model
        t_fit = time.perf_counter()
        gen = seed_everything(cfg.seed)  # dropout draws from the global RNG, the batch order from gen
        model.to(policy.device)
        if policy.channels_last and train[0].ndim == 4:
            model.to(memory_format=torch.channels_last)
        train_d, train_res = _place(train, policy)
        val_d, val_res = _place(val, policy) if val is not None else (None, True)
        n_used = self._setup(len(train[1]))
        self._scaler = torch.amp.GradScaler(policy.device.type) if policy.amp_dtype == torch.float16 else None
        self._step_hooks = [cb for cb in self.callbacks
                            if type(cb).on_train_batch_end is not Callback.on_train_batch_end]
        forward = torch.compile(model) if cfg.compile and policy.device.type == "cuda" else model
        track = _Tracker(cfg)
        self.first_loss = math.nan
        self._call("on_fit_start")
        for epoch in range(1, cfg.epochs + 1):
            self.epoch = epoch
            t0 = time.perf_counter()
            sums, perm, lr = self._train_epoch(train_d, train_res, gen, n_used, forward)
            train_seconds = time.perf_counter() - t0
            seen = sum(sums.sizes)
            weights = torch.tensor(sums.sizes, device=policy.device, dtype=torch.float32)
            train_loss = (torch.stack(sums.losses).float() @ weights).item() / seen
            # The labels of the batches, in the order they were drawn: perm[:seen].
            y_seen = train_d[1][perm[:seen]] if train_res else train[1][perm[:seen].cpu()].to(policy.device)
            train_acc = (torch.cat(sums.preds) == y_seen).sum().item() / seen
            val_loss = val_acc = math.nan
            if val_d is not None:
                scored = self.ema.module if self.ema is not None else model
                scored.eval()
                val_loss, val_acc = _eval_sums(scored, val_d, val_res, max(2 * cfg.batch_size, 256), policy,
                                               self.batch_transform)
            now = time.perf_counter()
            record = EpochRecord(epoch, train_loss, val_loss, train_acc, val_acc, lr, now - t0,
                                 seen / max(train_seconds, 1e-9), now - t_fit)
            stop = track.update(record, self, val_d is not None)
            self._call("on_epoch_end", record)
            if stop or self.should_stop:
                break
        return self._finish(track, t_fit)

    def _finish(self, track: "_Tracker", t_fit: float) -> FitResult:
        model = self.model
        if self.ema is not None:
            model.load_state_dict(self.ema.module.state_dict())
        if track.best_state is not None:
            model.load_state_dict(track.best_state)
        model.eval()
        best_epoch = track.best_epoch
        if not track.has_val and track.history:
            best_epoch = track.history[-1].epoch if track.diverged_at is None else best_epoch
        best_val_acc = track.history[best_epoch - 1].val_acc if best_epoch else math.nan
        result = FitResult(track.history, best_epoch, best_val_acc, track.diverged_at, track.stopped_early,
                           interrupted=self.should_stop, seconds=time.perf_counter() - t_fit, model=model,
                           diverged_reason=track.reason)
        self._call("on_fit_end", result)
        return result


class _Tracker:
    """Best epoch, early stopping and divergence, updated after every epoch."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.history: list[EpochRecord] = []
        self.best_loss, self.best_epoch, self.best_state = math.inf, 0, None
        self.diverged_at: int | None = None
        self.reason = ""
        self.stopped_early, self.bad_epochs, self.has_val = False, 0, False

    def update(self, record: EpochRecord, trainer: Trainer, has_val: bool) -> bool:
        """Record an epoch; True when the run must end here."""
        self.history.append(record)
        self.has_val = has_val
        self.reason = _divergence(record, trainer.first_loss, trainer.num_classes, has_val)
        if self.reason:
            self.diverged_at = record.epoch
            return True
        score = record.val_loss if math.isfinite(record.val_loss) else record.train_loss
        if score < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = score, record.epoch, 0
            if self.cfg.patience is not None:
                scored = trainer.ema.module if trainer.ema is not None else trainer.model
                self.best_state = copy.deepcopy(scored.state_dict())
        else:
            self.bad_epochs += 1
        if self.cfg.patience is not None and self.bad_epochs >= self.cfg.patience:
            self.stopped_early = True
            return True
        return False


def _divergence(record: EpochRecord, first_loss: float, classes: int, has_val: bool) -> str:
    """Why this epoch counts as diverged, or "" (see ``DIVERGENCE_FACTOR`` and ``_collapsed``)."""
    if not math.isfinite(record.train_loss) or (has_val and not math.isfinite(record.val_loss)):
        return "the loss became inf/NaN"
    if record.train_loss > DIVERGENCE_FACTOR * max(first_loss, DIVERGENCE_FLOOR):
        return f"the training loss exploded to {record.train_loss:.3g} (from {first_loss:.3g})"
    if _collapsed(record, classes):
        return (f"the network collapsed to chance: training loss {record.train_loss:.3f} ≈ ln {classes}, "
                f"accuracy {100 * record.train_acc:.0f}% (learning rate too high for this network?)")
    return ""


def fit(model: nn.Module, train: Data, val: Data | None, config: TrainConfig, *,
        callbacks: Sequence[Callback] = (), policy: DevicePolicy | None = None,
        batch_transform: BatchTransform | None = None, param_groups: list[dict] | None = None) -> FitResult:
    """Train ``model`` with cross-entropy on in-memory tensors.

    Args:
        model: maps a batch of inputs to logits (N, classes); moved to the policy's device.
        train: ``(x, y)`` on the CPU: ``x`` float features or uint8 images (N, C, H, W),
            ``y`` int64 class indices.
        val: the validation pair, or None (an empty pair counts as None).
        config: the hyperparameters.
        callbacks: named hooks (live progress, Stop buttons); see ``Callback``.
        policy: the device policy (default ``dltl_core.device.get_policy()``).
        batch_transform: ``(x, training) -> float x`` run on the device on each batch
            (e.g. uint8 -> normalised float, random crop/flip when training). By default
            uint8 is scaled to [0, 1] and floats pass through.
        param_groups: optimizer parameter groups (e.g. a smaller ``lr`` for a backbone);
            default: all trainable parameters of ``model``.

    Returns:
        the ``FitResult`` (history, best epoch, divergence, the trained model).

    Raises:
        ValueError: empty training set, batch size larger than the training set,
            mismatched inputs and labels, early stopping without a validation set.
    """
    trainer = Trainer(model, config, callbacks=callbacks, policy=policy,
                      batch_transform=batch_transform, param_groups=param_groups)
    return trainer.fit(train, val)


def _model_device(model: nn.Module, policy: DevicePolicy) -> DevicePolicy:
    """The policy to run ``model`` where it already is: helpers never move a model they do not own."""
    p = next(iter(model.parameters()), None)
    if p is None or p.device == policy.device:
        return policy
    return dataclasses.replace(get_policy(p.device.type), device=p.device)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    # A shared model is already in eval mode and is left untouched; a model in training
    # mode is switched to eval for the block and switched back afterwards.
    if not model.training:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train()


def evaluate(model: nn.Module, data: Data, batch_size: int = 256, policy: DevicePolicy | None = None,
             batch_transform: BatchTransform | None = None, *, tta: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data`` (eval mode, no gradients).

    The model runs where its parameters are (it is never moved), so a shared, cached
    model can be evaluated from several threads at once.

    Args:
        model: the model; data: ``(x, y)``; batch_size: evaluation batch size.
        policy: device policy (its device is replaced by the model's own).
        batch_transform: as in ``fit`` (called with ``training=False``).
        tta: flip test-time augmentation: average the logits of each image and its
            mirror image (images only).

    Raises:
        ValueError: empty data, or mismatched inputs and labels.
    """
    _check_pair("evaluation", data)
    if len(data[1]) == 0:
        raise ValueError("cannot evaluate on an empty data set")
    policy = _model_device(model, policy or get_policy())
    with _eval_mode(model), cpu_threads_for(model, policy, data[0]):
        placed, resident = _place(data, policy)
        return _eval_sums(model, placed, resident, batch_size, policy, batch_transform, tta)


@torch.inference_mode()
def predict(model: nn.Module, x: Tensor, batch_size: int = 256, policy: DevicePolicy | None = None,
            batch_transform: BatchTransform | None = None) -> Tensor:
    """Class probabilities (N, classes), float32 on the CPU, in eval mode.

    The model runs where its parameters are (it is never moved).
    """
    policy = _model_device(model, policy or get_policy())
    out = []
    with _eval_mode(model), cpu_threads_for(model, policy, x):
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(policy.device, non_blocking=True)
            with _autocast(policy)():
                logits = model(_prepare(xb, False, batch_transform, policy))
            out.append(logits.float().softmax(1).cpu())
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)
