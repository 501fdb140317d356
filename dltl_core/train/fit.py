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

from dltl_core.device import DevicePolicy, get_policy, seed_everything, seeded
from dltl_core.optim import create_optimizer, create_scheduler
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


@contextlib.contextmanager
def cpu_threads_for(model: nn.Module, policy: DevicePolicy | None = None) -> Iterator[None]:
    """Run the block on one CPU thread if ``model`` is small and runs on the CPU (see
    ``SMALL_MODEL_PARAMS``); otherwise leave torch's thread count alone."""
    policy = policy or get_policy()
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
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


@torch.inference_mode()
def _eval_sums(model: nn.Module, data: Data, resident: bool, batch_size: int, policy: DevicePolicy,
               transform: BatchTransform | None) -> tuple[float, float]:
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
            logits = model(_prepare(xb, False, transform, policy))
        loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    return loss_sum.item() / n, correct.item() / n


class Trainer:
    """Runs one ``fit``; callbacks see it (``trainer.model``, ``.optimizer``, ``.epoch``...).

    Attributes:
        should_stop: set it to True from any callback to end the run after the current step.
        epoch: the current 1-based epoch.
        global_step: optimizer steps done so far.
        steps_per_epoch: optimizer steps per epoch.
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

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, train: Data, val: Data | None) -> FitResult:
        """Train on ``train``, validate on ``val`` after every epoch; see ``fit``."""
        # seeded(): concurrent fits in one process (visitors of one server) take turns on
        # the global generators, so a run gives the same result alone or beside another.
        with seeded(self.config.seed), cpu_threads_for(self.model, self.policy):
            return self._fit(train, val)

    def _fit(self, train: Data, val: Data | None) -> FitResult:
        cfg, policy, model = self.config, self.policy, self.model
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

        t_fit = time.perf_counter()
        gen = seed_everything(cfg.seed)  # dropout draws from the global RNG, the batch order from gen
        model.to(policy.device)
        if policy.channels_last and train[0].ndim == 4:
            model.to(memory_format=torch.channels_last)
        train_d, train_res = _place(train, policy)
        val_d, val_res = _place(val, policy) if val is not None else (None, True)

        params = self.param_groups or [p for p in model.parameters() if p.requires_grad]
        self.optimizer = opt = create_optimizer(cfg.optimizer, params, cfg.lr, momentum=cfg.momentum,
                                                weight_decay=cfg.weight_decay)
        # A last batch of one sample would break BatchNorm in training mode: drop it.
        last = n % cfg.batch_size
        n_used = n - 1 if (last == 1 and n > 1) else n
        self.steps_per_epoch = steps = math.ceil(n_used / cfg.batch_size)
        # "constant" needs no scheduler object: one less call per step.
        self.scheduler = sched = (None if cfg.schedule == "constant"
                                  else create_scheduler(cfg.schedule, opt, cfg.epochs * steps))
        scaler = torch.amp.GradScaler(policy.device.type) if policy.amp_dtype == torch.float16 else None
        step_hooks = [cb for cb in self.callbacks
                      if type(cb).on_train_batch_end is not Callback.on_train_batch_end]
        eval_bs = max(2 * cfg.batch_size, 256)
        autocast = _autocast(policy)

        history: list[EpochRecord] = []
        best_loss, best_epoch, best_state = math.inf, 0, None
        first_loss = math.nan
        diverged_at, stopped_early, bad_epochs = None, False, 0
        self._call("on_fit_start")

        for epoch in range(1, cfg.epochs + 1):
            self.epoch = epoch
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(n, generator=gen).to(train_d[1].device)
            # Per-step results stay on the device, appended without any kernel or sync; they
            # are reduced once per epoch (one synchronisation per epoch, not per step).
            losses: list[Tensor] = []
            preds: list[Tensor] = []
            sizes: list[int] = []
            lr = opt.param_groups[0]["lr"]
            for start in range(0, n_used, cfg.batch_size):
                xb, yb = _batch(train_d, perm[start:start + cfg.batch_size], train_res, policy)
                xb = _prepare(xb, True, self.batch_transform, policy)
                lr = opt.param_groups[0]["lr"]
                with autocast():
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    opt.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                if sched is not None:
                    sched.step()
                self.global_step += 1
                if self.global_step == 1:
                    first_loss = loss.item()
                losses.append(loss.detach())
                preds.append(logits.detach().argmax(1))
                sizes.append(len(yb))
                for cb in step_hooks:
                    cb.on_train_batch_end(self, self.global_step, loss)
                if self.should_stop:
                    break
            seen = sum(sizes)
            weights = torch.tensor(sizes, device=policy.device, dtype=torch.float32)
            train_loss = (torch.stack(losses).float() @ weights).item() / seen
            # The labels of the batches, in the order they were drawn: perm[:seen].
            y_seen = train_d[1][perm[:seen]] if train_res else train[1][perm[:seen].cpu()].to(policy.device)
            train_acc = (torch.cat(preds) == y_seen).sum().item() / seen
            train_seconds = time.perf_counter() - t0

            val_loss = val_acc = math.nan
            if val_d is not None:
                model.eval()
                val_loss, val_acc = _eval_sums(model, val_d, val_res, eval_bs, policy, self.batch_transform)
            record = EpochRecord(epoch, train_loss, val_loss, train_acc, val_acc, lr,
                                 time.perf_counter() - t0, seen / max(train_seconds, 1e-9),
                                 time.perf_counter() - t_fit)
            history.append(record)

            if (not math.isfinite(train_loss) or train_loss > DIVERGENCE_FACTOR * first_loss
                    or (val_d is not None and not math.isfinite(val_loss))):
                diverged_at = epoch
                self._call("on_epoch_end", record)
                break
            score = val_loss if val_d is not None else train_loss
            if score < best_loss:
                best_loss, best_epoch, bad_epochs = score, epoch, 0
                if cfg.patience is not None:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
            self._call("on_epoch_end", record)
            if self.should_stop:
                break
            if cfg.patience is not None and bad_epochs >= cfg.patience:
                stopped_early = True
                break

        if val_d is None and history:
            best_epoch = history[-1].epoch if diverged_at is None else best_epoch
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        best_val_acc = history[best_epoch - 1].val_acc if best_epoch else math.nan
        result = FitResult(history, best_epoch, best_val_acc, diverged_at, stopped_early,
                           interrupted=self.should_stop, seconds=time.perf_counter() - t_fit, model=model)
        self._call("on_fit_end", result)
        return result


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
             batch_transform: BatchTransform | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data`` (eval mode, no gradients).

    The model runs where its parameters are (it is never moved), so a shared, cached
    model can be evaluated from several threads at once.

    Raises:
        ValueError: empty data, or mismatched inputs and labels.
    """
    _check_pair("evaluation", data)
    if len(data[1]) == 0:
        raise ValueError("cannot evaluate on an empty data set")
    policy = _model_device(model, policy or get_policy())
    with _eval_mode(model), cpu_threads_for(model, policy):
        placed, resident = _place(data, policy)
        return _eval_sums(model, placed, resident, batch_size, policy, batch_transform)


@torch.inference_mode()
def predict(model: nn.Module, x: Tensor, batch_size: int = 256, policy: DevicePolicy | None = None,
            batch_transform: BatchTransform | None = None) -> Tensor:
    """Class probabilities (N, classes), float32 on the CPU, in eval mode.

    The model runs where its parameters are (it is never moved).
    """
    policy = _model_device(model, policy or get_policy())
    out = []
    with _eval_mode(model), cpu_threads_for(model, policy):
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(policy.device, non_blocking=True)
            with _autocast(policy)():
                logits = model(_prepare(xb, False, batch_transform, policy))
            out.append(logits.float().softmax(1).cpu())
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)
