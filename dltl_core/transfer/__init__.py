"""Transfer learning on bird species: a frozen backbone's features vs fine-tuning vs from scratch.

Three modes, one data split, one report:

- ``linear``: the pretrained backbone stays frozen; its pooled features are
  extracted once (disk cache) and only a linear head is trained, in about a second.
- ``finetune``: a *copy* of the pretrained network gets a new head and trains
  its last stages (or, slowly, all of them), the backbone with a smaller learning
  rate than the head. When only the last stages train (``unfreeze_blocks``), the
  frozen early stages run once per photo and their activations are cached on
  disk like the features; the epochs then run only the last stages, and the new
  head starts from the linear probe (LP-FT, Kumar et al., ICLR 2022), so a few
  epochs suffice. The shared backbone is never trained, moved or switched to
  train mode.
- ``scratch``: the same architecture from random weights.

Every run reports learning curves with wall-clock time, validation accuracy, a
confusion matrix, per-species accuracy, the mistakes, and a 2-D map of the
features (before and, for the modes that change it, after training).

One concept per module; this package re-exports their public names, so callers import
from ``dltl_core.transfer``:

- ``config``: the run's settings (``TransferConfig``), modes and defaults (``FINETUNE``);
- ``result``: what a run reports (``TransferResult``);
- ``surgery``: which stages of a copy freeze, train or are replaced;
- ``metrics``: confusion matrix, per-species accuracy, mistakes, feature map;
- ``progress``: learning curve, progress bar and job reports;
- ``split``: the photos and their train/validation split;
- ``linear``, ``cached``, ``images``: the modes' runners;
- ``run``: ``run_transfer``, the jobs and the page's feature extraction;
- ``predict``: one photo through a trained result.
"""

from __future__ import annotations

from dltl_core.transfer.cached import eval_transform, finetune_tail, pretrained_tail_features, probe_head
from dltl_core.transfer.config import (_DEFAULTS, DEFAULT_CAP, DEFAULT_SPECIES, DEFAULT_UNFREEZE, FEATURE_MAP_LABELS,
                                       FEATURE_MAPS, FINETUNE, IMAGE_SIZES, MODES, SPECIES_COUNT, FinetuneDefaults,
                                       TransferConfig, finetune_default_config, finetune_settings)
from dltl_core.transfer.metrics import confusion_matrix, feature_map, per_species_accuracy
from dltl_core.transfer.predict import IMAGENET_BIRDS, UNKNOWN_BELOW, imagenet_labels_index, predict_photo
from dltl_core.transfer.progress import ProgressFn
from dltl_core.transfer.result import TransferResult
from dltl_core.transfer.run import compare_modes, ensure_features, features_job, run_transfer, transfer_job
from dltl_core.transfer.split import load_split
from dltl_core.transfer.surgery import (PartlyFrozen, TailNet, cut_index, feature_stages, finetune_model, frozen_part,
                                        scratch_model, stage_names)

__all__ = [
    "DEFAULT_CAP", "DEFAULT_SPECIES", "DEFAULT_UNFREEZE", "FEATURE_MAPS", "FEATURE_MAP_LABELS", "FINETUNE",
    "IMAGENET_BIRDS", "IMAGE_SIZES", "MODES", "SPECIES_COUNT", "UNKNOWN_BELOW", "_DEFAULTS",
    "FinetuneDefaults", "PartlyFrozen", "ProgressFn", "TailNet", "TransferConfig", "TransferResult",
    "compare_modes", "confusion_matrix", "cut_index", "ensure_features", "eval_transform", "feature_map",
    "feature_stages", "features_job", "finetune_default_config", "finetune_model", "finetune_settings",
    "finetune_tail", "frozen_part", "imagenet_labels_index", "load_split", "per_species_accuracy",
    "predict_photo", "pretrained_tail_features", "probe_head", "run_transfer", "scratch_model", "stage_names",
    "transfer_job",
]
