"""How well species separate in a feature space, before and after fine-tuning.

A 2-D map (PCA, t-SNE) shows only a projection: clusters can look tighter or looser there
than they are in the full space. These scores are computed in the full feature space on the
validation photos (the training photos are the ones fine-tuning was fitted to), so the
feature map's caption can say what actually changed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor


def separation(features: Tensor, labels: Tensor, train: Sequence[int], val: Sequence[int]) -> dict | None:
    """Silhouette of the validation photos and their nearest-centroid accuracy.

    Args:
        features: (N, D) feature vectors of all photos.
        labels: (N,) species indices.
        train, val: rows; the centroids come from ``train``, both scores are measured on ``val``.

    Returns:
        ``{"silhouette", "centroid_accuracy", "photos"}``, or None when the validation photos
        cannot be scored (fewer than two species, or no more photos than species).
    """
    from sklearn.metrics import silhouette_score

    x, y = features.double().numpy(), labels.numpy()
    val, train = list(val), list(train)
    species = np.unique(y[val]) if val else []
    if len(species) < 2 or len(val) <= len(species) or not train:
        return None
    sil = float(silhouette_score(x[val], y[val]))
    classes = np.unique(y[train])
    centroids = np.stack([x[train][y[train] == c].mean(0) for c in classes])
    dist = ((x[val][:, None, :] - centroids[None]) ** 2).sum(-1)
    acc = float((classes[dist.argmin(1)] == y[val]).mean())
    return {"silhouette": sil, "centroid_accuracy": acc, "photos": len(val)}


def separation_caption(before: dict | None, after: dict | None, method: str) -> str:
    """The feature map's caption, from the scores: what changed, and what the map can show.

    Args:
        before, after: ``separation`` of the pretrained and the fine-tuned features.
        method: the map's name ("PCA" or "t-SNE").
    """
    projection = (f"The map is a {method} projection to 2-D: it can look tighter or looser than the "
                  "clusters are in the full feature space.")
    if before is None or after is None:
        return "What to notice: compare with the left map. " + projection
    ds = after["silhouette"] - before["silhouette"]
    verdict = ("tighter and further apart" if ds > 0.02 else "less well separated" if ds < -0.02
               else "about as well separated")
    return (f"Measured in the full feature space on {after['photos']} validation photos, the species are "
            f"{verdict} after fine-tuning: silhouette {before['silhouette']:.2f} → {after['silhouette']:.2f} "
            f"(−1 to 1, higher = tighter, further-apart clusters), nearest-centroid accuracy "
            f"{before['centroid_accuracy']:.0%} → {after['centroid_accuracy']:.0%}. " + projection)
