"""The numbers and maps of a transfer run's report: confusion matrix, per-species accuracy,
the mistakes and the 2-D feature map (plain data the page draws).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from torch import Tensor

from dltl_core.birds import pretty_name


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], k: int) -> list[list[int]]:
    """``m[i][j]`` = photos of species i predicted as species j."""
    m = np.zeros((k, k), dtype=int)
    for t, p in zip(y_true, y_pred):
        m[int(t), int(p)] += 1
    return m.tolist()


def per_species_accuracy(confusion: list[list[int]], species: Sequence[str]) -> list[dict[str, Any]]:
    """Accuracy and count of each species, from the confusion matrix."""
    out = []
    for i, row in enumerate(confusion):
        n = sum(row)
        out.append({"species": pretty_name(species[i]), "accuracy": row[i] / n if n else float("nan"), "n": n})
    return out


def feature_map(features: Tensor, labels: Sequence[int], species: Sequence[str], files: Sequence[str],
                method: str = "pca", stage: str = "before", seed: int = 0) -> list[dict[str, Any]]:
    """A 2-D map of feature vectors (PCA or t-SNE from scikit-learn), one row per photo."""
    if method == "none" or len(features) < 3:
        return []
    x = features.double().numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE
        xy = TSNE(2, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)), init="pca",
                  random_state=seed).fit_transform(x)
    else:
        from sklearn.decomposition import PCA
        xy = PCA(2, random_state=seed).fit_transform(x)
    return [{"x": float(a), "y": float(b), "species": pretty_name(species[int(t)]), "file": str(f),
             "stage": stage} for (a, b), t, f in zip(xy, labels, files)]


def _mistakes(probs: Tensor, y: Tensor, files: Sequence[str], species: Sequence[str], limit: int = 24
              ) -> list[dict[str, Any]]:
    conf, pred = probs.max(1)
    wrong = (pred != y).nonzero().flatten().tolist()
    wrong.sort(key=lambda i: -float(conf[i]))  # the most confident mistakes first
    return [{"file": str(files[i]), "true": pretty_name(species[int(y[i])]),
             "predicted": pretty_name(species[int(pred[i])]), "confidence": float(conf[i])}
            for i in wrong[:limit]]


def _before_after_map(config, birds, before, after, y, files) -> list[dict[str, Any]]:
    if config.feature_map == "none":
        return []
    return (feature_map(before, y.tolist(), birds.species, files, config.feature_map, "before", config.seed)
            + feature_map(after, y.tolist(), birds.species, files, config.feature_map, "after", config.seed))
