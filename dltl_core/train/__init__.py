"""The shared training core: a frozen config, ``fit`` with named callbacks, evaluation.

    >>> from dltl_core.train import TrainConfig, fit
    >>> result = fit(model, (x_tr, y_tr), (x_va, y_va), TrainConfig(epochs=30, patience=5))
    >>> result.best_epoch, result.best_val_acc, result.history[-1].as_dict()
"""

from dltl_core.train.callbacks import Callback, History, LambdaCallback, StopFlag, TimeLimit, YieldWhile
from dltl_core.train.config import EpochRecord, FitResult, TrainConfig
from dltl_core.train.fit import Trainer, cpu_threads_for, evaluate, fit, predict

__all__ = [
    "Callback", "EpochRecord", "FitResult", "History", "LambdaCallback", "StopFlag", "TimeLimit", "YieldWhile",
    "TrainConfig", "Trainer", "cpu_threads_for", "evaluate", "fit", "predict",
]
