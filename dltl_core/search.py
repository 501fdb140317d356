"""Hyperparameter search over the CIFAR architectures with Optuna.

One Optuna study per question ("which learning rate, weight decay, optimizer,
schedule, batch size and width make ResNet-18 best?"), stored in a relational
database: SQLite by default (one file, one machine, several worker processes),
or any SQLAlchemy URL such as ``postgresql://user@host/db`` so several GPU
machines work on one study at once — each worker simply runs the same command.

Every trial trains through the core's ``fit``; a callback reports the
validation accuracy after each epoch so the pruner (median or successive
halving) can stop hopeless trials early. Each trial's full run record
(``dltl_core.runs.RunRecord``) is kept in its ``user_attrs["record"]`` and,
when a results file is given, appended to it.

Reading the studies back (the results page, the deck) is ``dltl_core.studies``; the
command line's comma-separated space options are parsed in ``dltl_core.commands.search``.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import optuna
import torch

from dltl_core.archs import ARCHS, create_arch
from dltl_core.archs._registry import WIDTH
from dltl_core.data.cifar import CifarAugment, cifar_splits, load_cifar10
from dltl_core.device import DevicePolicy, get_policy
from dltl_core.profile import count_flops, count_params
from dltl_core.runs import RunRecord, append_runs, versions
from dltl_core.storage import storage_url
from dltl_core.limits import PER_CLASS
from dltl_core.optim import OPTIMIZERS, SCHEDULES
from dltl_core.recipes import RECIPES, get_recipe
from dltl_core.settings import check, field_from, like, seed_field, setting, settings_of
from dltl_core.studies import make_storage
from dltl_core.train import Callback, FitResult, TrainConfig, evaluate, fit

Data = tuple[torch.Tensor, torch.Tensor]
PRUNERS = ("median", "halving", "none")
# 10,000 trials of one study is far past where TPE stops improving; 30 days of a worker.
MAX_TRIALS, MAX_TIMEOUT = 10_000, 30 * 86_400
RATE_HI = 1e6  # a learning-rate or weight-decay range end (it diverges long before)
_LOAD: Any = object()  # "load the test set from the data spec"


@dataclass(frozen=True)
class SearchSpace:
    """What a trial samples. A one-element tuple fixes that choice.

    Attributes:
        lr: (low, high) of the learning rate, sampled on a log scale.
        weight_decay: (low, high), log scale.
        optimizers: names from ``dltl_core.optim.OPTIMIZERS``.
        schedules: names from ``dltl_core.optim.SCHEDULES``.
        batch_sizes: candidate batch sizes.
        widths: candidate width multipliers.
    """

    lr: tuple[float, float] = setting((3e-3, 0.3), label="learning-rate range", lo=0.0, hi=RATE_HI, positive=True)
    weight_decay: tuple[float, float] = setting((1e-5, 1e-2), label="weight-decay range", lo=0.0, hi=RATE_HI,
                                                positive=True)
    optimizers: tuple[str, ...] = setting(("momentum", "nesterov", "adamw"), label="optimizers",
                                          choices=lambda: list(OPTIMIZERS), noun="optimizer")
    schedules: tuple[str, ...] = setting(("cosine", "onecycle", "constant"), label="schedules",
                                         choices=lambda: list(SCHEDULES), noun="schedule")
    batch_sizes: tuple[int, ...] = field_from(settings_of(TrainConfig)["batch_size"], (64, 128, 256),
                                              label="batch sizes", step=1)
    widths: tuple[float, ...] = field_from(WIDTH, (0.25, 0.5, 1.0), label="width multipliers")

    def __post_init__(self) -> None:
        check(self, _space_rules)

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one configuration from the space through ``trial``."""
        return {
            "lr": trial.suggest_float("lr", *self.lr, log=True),
            "weight_decay": trial.suggest_float("weight_decay", *self.weight_decay, log=True),
            "optimizer": trial.suggest_categorical("optimizer", list(self.optimizers)),
            "schedule": trial.suggest_categorical("schedule", list(self.schedules)),
            "batch_size": trial.suggest_categorical("batch_size", list(self.batch_sizes)),
            "width": trial.suggest_categorical("width", list(self.widths)),
        }


def _space_rules(sp: "SearchSpace") -> dict[str, str]:
    """Ranges are LOW,HIGH with LOW <= HIGH; every list has a candidate."""
    found = {}
    for name in ("lr", "weight_decay"):
        pair = getattr(sp, name)
        if len(pair) != 2 or pair[0] > pair[1]:
            found[name] = f"the {settings_of(sp)[name].label} needs LOW,HIGH with LOW <= HIGH, got {pair}"
    for name in ("optimizers", "schedules", "batch_sizes", "widths"):
        if not getattr(sp, name):
            found[name] = f"the search space needs at least one of the {settings_of(sp)[name].label}"
    return found


@dataclass(frozen=True)
class DataSpec:
    """Which CIFAR-10 images a run trains on.

    Attributes:
        data_dir: folder with ``train/<class>/*.jpg`` or torchvision's files (None: default).
        max_per_class: first this many images per class (None: all 5,000).
        val_fraction: share held out for validation (0.1 gives 45,000/5,000).
        split_seed: seed of the train/validation split.
    """

    data_dir: str | None = setting(None, label="CIFAR-10 folder", optional=True, kind=str)
    max_per_class: int | None = field_from(PER_CLASS, None, optional=True, kind=int,
                                           help="Use the first N training images of each class (small CPU demos).")
    val_fraction: float = setting(0.1, label="validation share", lo=0.0, hi=1.0, positive=True, below=True)
    split_seed: int = seed_field(label="split seed", help="Seeds the train/validation split.")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class SearchConfig:
    """One worker's share of a study.

    Attributes:
        arch: architecture name.
        trials: trials this worker runs (every worker of a study adds its own).
        storage: SQLAlchemy URL or a path to a SQLite file.
        study_name: defaults to ``<arch>-cifar10``.
        data: the images.
        epochs: epochs per trial (the pruner's resource).
        label_smoothing: cross-entropy label smoothing.
        seed: seed of every trial's weights, batch order and augmentation (so trials
            differ only by their hyperparameters).
        sampler_seed: seed of the TPE sampler (None: random, which is what parallel
            workers need so that they do not propose the same points).
        pruner: ``median``, ``halving`` (successive halving) or ``none``.
        space: the search space.
        results: a JSON results file to append each trial's record to (optional).
        timeout: stop starting new trials after this many seconds (optional).
        recipe: a ``dltl_core.recipes`` name: the settings a trial does not sample (warm-up,
            weight averaging, decay of 1-D parameters, momentum) come from it; None: the
            ``TrainConfig`` defaults.
    """

    arch: str = setting("resnet18", label="architecture", choices=ARCHS.names, noun="architecture")
    trials: int = setting(20, label="trials", lo=1, hi=MAX_TRIALS, noun="number of trials",
                          help="Trials this worker runs.")
    storage: str = setting("sqlite:///runs.db", label="storage",
                           help="Optuna storage: a SQLAlchemy URL (sqlite:///runs.db, postgresql://user:pw@host/db) "
                                "or a SQLite file path.")
    study_name: str | None = setting(None, label="study name", optional=True, kind=str)
    data: DataSpec = DataSpec()
    epochs: int = like(TrainConfig, "epochs", 10, help="Epochs per trial (the pruner's resource).")
    label_smoothing: float = like(TrainConfig, "label_smoothing", 0.1)
    seed: int = seed_field(help="Seeds every trial's weights, batch order and augmentation.")
    sampler_seed: int | None = seed_field(None, label="sampler seed", optional=True, kind=int,
                                          help="Seeds the TPE sampler (default: random, as parallel workers need).")
    pruner: str = setting("median", label="pruner", choices=PRUNERS)
    space: SearchSpace = field(default_factory=SearchSpace)
    results: str | None = setting(None, label="results file", optional=True, kind=str)
    timeout: float | None = setting(None, label="seconds", lo=0.0, hi=MAX_TIMEOUT, positive=True, optional=True,
                                    kind=float, noun="timeout", help="Start no trial after this many seconds.")
    recipe: str | None = setting(None, label="recipe", choices=RECIPES.names, optional=True, kind=str)

    def __post_init__(self) -> None:
        check(self)

    @property
    def name(self) -> str:
        """The study name."""
        return self.study_name or f"{self.arch}-cifar10"


def load_data(spec: DataSpec) -> tuple[Data, Data, dict[str, Any]]:
    """The train/validation tensors of ``spec`` and a description for the run records."""
    train, val, classes = cifar_splits(spec.data_dir, max_per_class=spec.max_per_class,
                                       val_fraction=spec.val_fraction, seed=spec.split_seed)
    info = {"dataset": "CIFAR-10", "source": str(spec.data_dir or "default"),
            "max_per_class": spec.max_per_class, "val_fraction": spec.val_fraction,
            "split_seed": spec.split_seed, "n_train": len(train[1]), "n_val": len(val[1]),
            "classes": len(classes), "class_names": list(classes),
            "augment": "random crop (pad 4) + horizontal flip"}
    return train, val, info


def load_test(spec: DataSpec, classes: Sequence[str] | None = None) -> Data | None:
    """The official CIFAR-10 test images of ``spec``'s folder, or None when they are not there.

    Read from ``<data_dir>/test/<class>/*.jpg`` or torchvision's ``test_batch``; never
    downloaded here (a search must not start a download behind the user's back). The
    test set is scored once after training and never used to choose anything: search,
    pruning and early stopping see only the validation split.

    Raises:
        ValueError: the test folder's classes differ from the training classes.
    """
    try:
        test = load_cifar10(spec.data_dir, split="test", download=False)
    except RuntimeError:
        return None
    if classes is not None and list(test.classes) != list(classes):
        raise ValueError(f"the test folder's classes {test.classes} differ from the training classes "
                         f"{list(classes)}")
    return test.x, test.y


def score_test(model: torch.nn.Module, test: Data, transform: Callable, policy: DevicePolicy
               ) -> dict[str, float]:
    """Test accuracy without and with flip test-time augmentation (once, after training)."""
    _, acc = evaluate(model, test, 512, policy, transform)
    _, acc_tta = evaluate(model, test, 512, policy, transform, tta=True)
    return {"test_acc": acc, "test_acc_tta": acc_tta}


def train_run(arch: str, width: float, config: TrainConfig, train: Data, val: Data,
              data_info: dict[str, Any], *, callbacks: Sequence[Callback] = (),
              policy: DevicePolicy | None = None, test: Data | None = None,
              **record_fields: Any) -> tuple[FitResult, RunRecord]:
    """Train one architecture with ``fit`` and describe the run as a ``RunRecord``.

    Args:
        arch: architecture name; width: its width multiplier; config: hyperparameters.
        train, val: uint8 images and labels; data_info: goes into the record.
        callbacks: extra ``fit`` callbacks (progress, pruning).
        policy: device policy (default: ``get_policy()``).
        test: the official test set (``load_test``): scored once after training, with and
            without flip TTA, into ``test_acc``/``test_acc_tta``; never used for selection.
        **record_fields: extra record fields (``kind``, ``study``, ``trial``, ``recipe``...).
    """
    policy = policy or get_policy()
    model = create_arch(arch, num_classes=int(data_info.get("classes", 10)), width=width, seed=config.seed)
    params, flops = count_params(model), count_flops(model)
    augment = CifarAugment(seed=config.seed)
    cpu0 = time.process_time()
    result = fit(model, train, val, config, callbacks=callbacks, policy=policy, batch_transform=augment)
    cpu_seconds = time.process_time() - cpu0
    last = result.history[-1] if result.history else None
    scores = score_test(model, test, augment, policy) if test is not None and result.history else {}
    record = RunRecord(
        arch=arch, width=width, config=config.as_dict(), seed=config.seed, data=data_info,
        device=policy.name, versions=versions(), history=result.history_dicts(),
        val_acc=last.val_acc if last else math.nan, best_val_acc=result.best_val_acc,
        best_epoch=result.best_epoch, params=params, flops=flops, wall_seconds=result.seconds,
        cpu_seconds=cpu_seconds, threads=torch.get_num_threads(),
        state="diverged" if result.diverged_at else "complete", diverged_reason=result.diverged_reason,
        **scores, **record_fields)
    return result, record


class _PruningReport(Callback):
    """Reports each epoch's validation accuracy to the trial; stops the fit when pruned."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer: Any, record: Any) -> None:
        if math.isfinite(record.val_acc):
            self.trial.report(record.val_acc, record.epoch)
            # Pruning after the last epoch would save nothing: only stop unfinished trials.
            if record.epoch < trainer.config.epochs and self.trial.should_prune():
                self.pruned_at = record.epoch
                trainer.should_stop = True


def _retry(fn: Callable[[], Any], attempts: int = 8) -> Any:
    # Two workers that start at once race to create the tables or the study: retry.
    for i in range(attempts):
        try:
            return fn()
        except Exception:  # noqa: BLE001 - sqlalchemy/optuna races; re-raised on the last try
            if i == attempts - 1:
                raise
            time.sleep(0.2 + random.random() * (i + 1))
    return None


def open_study(storage: str, name: str, *, pruner: str = "median", sampler_seed: int | None = None,
               create: bool = True) -> optuna.Study:
    """Create (or join) the maximising study ``name`` in ``storage``."""
    if pruner not in PRUNERS:
        raise ValueError(f"unknown pruner {pruner!r}; choose from {', '.join(PRUNERS)}")
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2),
               "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
               "none": optuna.pruners.NopPruner}
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=5)
    st = _retry(lambda: make_storage(storage))
    if not create:
        return optuna.load_study(study_name=name, storage=st, sampler=sampler, pruner=pruners[pruner]())
    return _retry(lambda: optuna.create_study(study_name=name, storage=st, direction="maximize",
                                              sampler=sampler, pruner=pruners[pruner](), load_if_exists=True))


def run_search(cfg: SearchConfig, *, on_trial: Callable[[dict[str, Any]], None] | None = None,
               data: tuple[Data, Data, dict[str, Any]] | None = None, test: Any = _LOAD) -> dict[str, Any]:
    """Run ``cfg.trials`` trials of the study (joining it if other workers created it).

    Args:
        cfg: the search.
        on_trial: called with each finished trial's summary (progress).
        data: preloaded ``load_data(cfg.data)`` output (tests, several searches).
        test: the official test set, or None for none; by default ``load_test(cfg.data)``.
            Each trial's record gets its test accuracy; the objective stays validation.

    Returns:
        a summary: study, storage, this worker's trials, the study's best trial so far.
    """
    train, val, info = data or load_data(cfg.data)
    test = load_test(cfg.data, info.get("class_names")) if test is _LOAD else test
    if len(val[1]) == 0:
        raise ValueError("the validation split is empty: the search needs validation accuracy "
                         "(raise --val-fraction or --max-per-class)")
    if max(cfg.space.batch_sizes) > len(train[1]):
        raise ValueError(f"batch size {max(cfg.space.batch_sizes)} is larger than the training subset "
                         f"({len(train[1])} images)")
    study = open_study(cfg.storage, cfg.name, pruner=cfg.pruner, sampler_seed=cfg.sampler_seed)
    study.set_user_attr("arch", cfg.arch)
    study.set_user_attr("data", info)
    mine: list[dict[str, Any]] = []

    base = get_recipe(cfg.recipe).config if cfg.recipe else TrainConfig()

    def objective(trial: optuna.Trial) -> float:
        hp = cfg.space.sample(trial)
        config = replace(base, epochs=cfg.epochs, batch_size=hp["batch_size"], optimizer=hp["optimizer"],
                         lr=hp["lr"], weight_decay=hp["weight_decay"], schedule=hp["schedule"],
                         label_smoothing=cfg.label_smoothing, seed=cfg.seed)
        report = _PruningReport(trial)
        dists = {k: optuna.distributions.distribution_to_json(d) for k, d in trial.distributions.items()}
        _, record = train_run(cfg.arch, hp["width"], config, train, val, info, callbacks=[report],
                              test=test, kind="trial", study=cfg.name, trial=trial.number,
                              distributions=dists, params_sampled=hp, recipe=cfg.recipe)
        if report.pruned_at is not None:
            record.state = "pruned"
        trial.set_user_attr("record", record.as_dict())
        if cfg.results:
            append_runs(cfg.results, [record], {"commands": [record.command]})
        summary = {"trial": trial.number, "state": record.state, "val_acc": record.val_acc,
                   "params": hp, "wall_seconds": record.wall_seconds}
        mine.append(summary)
        if on_trial:
            on_trial(summary)
        if record.state == "pruned":
            raise optuna.TrialPruned(f"pruned after epoch {report.pruned_at}")
        if record.state == "diverged":
            raise optuna.TrialPruned("the loss diverged (inf/NaN)")
        return float(record.val_acc)

    study.optimize(objective, n_trials=cfg.trials, timeout=cfg.timeout, gc_after_trial=True,
                   catch=(torch.OutOfMemoryError,))
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return {"study": cfg.name, "storage": storage_url(cfg.storage), "arch": cfg.arch,
            "trials_run": len(mine), "trials": mine, "study_trials": len(study.trials),
            "best": None if best is None else {"trial": best.number, "val_acc": best.value,
                                               "params": best.params},
            "data": info, "results": cfg.results}


def run_fixed(archs: Sequence[str], widths: Sequence[float], config: TrainConfig, data_spec: DataSpec, *,
              results: str | None = None, on_run: Callable[[dict[str, Any]], None] | None = None,
              data: tuple[Data, Data, dict[str, Any]] | None = None, test: Any = _LOAD,
              callbacks: Callable[[str, float], Sequence[Callback]] | None = None,
              on_result: Callable[[FitResult, RunRecord], None] | None = None,
              **record_fields: Any) -> list[RunRecord]:
    """Train each architecture at each width once with one configuration (no search).

    The baseline behind a size / accuracy / time comparison: same data, same
    hyperparameters, same seed, only the network changes.

    Args:
        archs, widths: what to train; config: the hyperparameters (e.g. a recipe's).
        data_spec: the images; results: a results file to append each record to.
        on_run: called with a short summary after each run (progress).
        data: preloaded ``load_data(data_spec)`` output.
        test: the official test set, or None; by default ``load_test(data_spec)``.
        callbacks: ``callbacks(arch, width)`` -> extra ``fit`` callbacks (progress bars).
        on_result: called with each run's ``FitResult`` and record (saving the model...).
        **record_fields: extra record fields (``recipe``...).
    """
    for a in archs:
        if a not in ARCHS:
            raise ValueError(f"unknown architecture {a!r}; choose from {', '.join(ARCHS)}")
    train, val, info = data or load_data(data_spec)
    test = load_test(data_spec, info.get("class_names")) if test is _LOAD else test
    out = []
    for arch in archs:
        for width in widths:
            extra = callbacks(arch, width) if callbacks else ()
            result, record = train_run(arch, width, config, train, val, info, callbacks=extra, test=test,
                                       **record_fields)
            if results:
                append_runs(results, [record], {"commands": [record.command]})
            if on_result:
                on_result(result, record)
            out.append(record)
            if on_run:
                on_run({"arch": arch, "width": width, "val_acc": record.val_acc, "test_acc": record.test_acc,
                        "wall_seconds": record.wall_seconds, "params": record.params, "state": record.state})
    return out
