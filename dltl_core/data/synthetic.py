"""Two-dimensional toy sets, as in TensorFlow Playground: moons, circles, spirals, XOR.

Every set has two classes, ``noise`` (Gaussian jitter of the points, in units of
the set's scale) and ``label_noise`` (the share of labels flipped at random), and
is fully determined by its seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dltl_core.settings import Setting, problem

SYNTHETIC: dict[str, str] = {
    "moons": "Two moons",
    "circles": "Circles",
    "spirals": "Spirals",
    "xor": "XOR (four blobs)",
}

# How many points a 2-D set may have, declared once (make_2d and the command line read it).
# A million points are 8 MB and train in seconds per epoch; 10^9 took 23 GB before the OOM killer.
POINTS = Setting("points", lo=4, hi=1_000_000, noun="number of points")
NOISE = Setting("jitter", lo=0.0, noun="noise")  # std of the Gaussian jitter of the points
FLIPPED = Setting("flipped labels", lo=0.0, hi=0.5, noun="label noise")  # past half, the classes swap


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Two interleaved arms of 1.75 turns each; arm k is arm 0 rotated by π.
    y = np.arange(n) % 2
    t = np.sqrt(rng.uniform(0, 1, n)) * 1.75 * 2 * math.pi  # sqrt: even density along the arm
    r = t / (1.75 * 2 * math.pi) * 2.0
    angle = t + math.pi * y
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return x + rng.normal(0, noise, x.shape), y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1, 1, (n, 2))
    x = x + np.sign(x) * 0.1  # a small margin around the axes, like TensorFlow Playground
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    return x + rng.normal(0, noise, x.shape), y


def make_2d(
    name: str = "moons", n: int = 400, noise: float = 0.2, label_noise: float = 0.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded two-class 2-D data set.

    Args:
        name: a key of ``SYNTHETIC``.
        n: number of points (``POINTS``: 4 to 1,000,000).
        noise: standard deviation of the jitter (0 for perfectly clean shapes).
        label_noise: share of labels flipped, in [0, 0.5].
        seed: the random seed; same arguments give the same points.

    Returns:
        ``(x, y)``: ``x`` float32 (n, 2); ``y`` int64 (n,) in {0, 1}.

    Raises:
        ValueError: unknown name or out-of-range arguments.
    """
    from sklearn import datasets

    if name not in SYNTHETIC:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(SYNTHETIC)}")
    msg = problem("n", POINTS, n, int)
    if msg:
        raise ValueError(msg)
    msg = problem("label_noise", FLIPPED, label_noise, float) or problem("noise", NOISE, noise, float)
    if msg:
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    if name == "moons":
        x, y = datasets.make_moons(n, noise=noise, random_state=seed)
        x = (x - [0.5, 0.25]) * 1.2  # centre the moons on the origin
    elif name == "circles":
        x, y = datasets.make_circles(n, noise=noise * 0.5, factor=0.5, random_state=seed)
        x = x * 1.5
    elif name == "spirals":
        x, y = _spirals(n, noise * 0.5, rng)
    else:
        x, y = _xor(n, noise * 0.5, rng)
    y = np.asarray(y, dtype=np.int64)
    if label_noise > 0:
        flip = rng.permutation(n)[: int(round(label_noise * n))]
        y[flip] = 1 - y[flip]
    return torch.tensor(x, dtype=torch.float32), torch.from_numpy(y)
