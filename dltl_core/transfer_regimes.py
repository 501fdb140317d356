"""When fine-tuning pays: the shipped measurement of frozen vs fine-tuned vs from scratch.

``scripts/transfer_regimes.py`` measures validation accuracy against training photos per
species over seeds and writes ``assets/transfer_regimes.json``; this module checks that
file, summarises it (mean and spread over seeds) and states what it shows. Every sentence
is computed from the numbers, so a change of data changes the caption.
"""

from __future__ import annotations

import functools
import json
import statistics
from pathlib import Path

SCHEMA_VERSION = 1
ASSET = Path(__file__).resolve().parents[1] / "assets" / "transfer_regimes.json"
# A fine-tuning job's fixed cost beyond its epochs: a fresh process loads the backbone and reads
# the cached activations, then trains the linear probe (seconds, measured on 2 cores).
JOB_OVERHEAD_SECONDS = 8.0
_MODES = ("linear", "finetune", "scratch")


def check(data: dict) -> None:
    """Raise ValueError when ``data`` is not a well-formed measurement."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"not a transfer-regimes measurement (schema {SCHEMA_VERSION})")
    for key in ("runs", "seeds", "device", "versions", "started", "command", "split", "finetune"):
        if key not in data:
            raise ValueError(f"the measurement has no {key!r}")
    for r in data["runs"]:
        if r.get("mode") not in _MODES:
            raise ValueError(f"unknown mode {r.get('mode')!r} in the measurement")
        acc = r.get("val_accuracy")
        if not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
            raise ValueError(f"a run's validation accuracy is not in [0, 1]: {acc!r}")


def summarize(data: dict) -> list[dict]:
    """One row per (species, training photos per species, mode): mean, spread and seconds over seeds.

    ``photos`` is the mean number of training photos per species (``"all"`` becomes the count).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in _shown(data):
        groups.setdefault((r["species"], str(r["train_per_species"]), r["mode"]), []).append(r)
    rows = []
    for (k, n, mode), runs in groups.items():
        acc = [r["val_accuracy"] for r in runs]
        rows.append({"species": k, "train_per_species": n, "photos": sum(r["n_train"] for r in runs) / len(runs) / k,
                     "mode": mode, "mean": _mean(acc), "sd": _sd(acc), "low": min(acc), "high": max(acc),
                     "seeds": len(runs), "seconds": _mean([r["seconds"] for r in runs]),
                     "n_val": runs[0]["n_val"]})
    return sorted(rows, key=lambda r: (r["species"], r["photos"], _MODES.index(r["mode"])))


def gains(data: dict) -> list[dict]:
    """Fine-tuning minus the linear probe, paired by seed, per (species, photos per species).

    ``verdict``: ``"wins"`` when fine-tuning is ahead on every seed (two at least) and the mean
    gain exceeds twice its standard error (``_standard_error``); ``"loses"`` when it is behind
    likewise; else ``"ties"`` (within noise).
    """
    paired: dict[tuple, dict[int, dict]] = {}
    for r in _shown(data):
        if r["mode"] in ("linear", "finetune"):
            paired.setdefault((r["species"], str(r["train_per_species"])), {}).setdefault(r["seed"], {})[r["mode"]] = r
    out = []
    for (k, n), by_seed in paired.items():
        both = [s for s in by_seed.values() if "linear" in s and "finetune" in s]
        if not both:
            continue
        d = [s["finetune"]["val_accuracy"] - s["linear"]["val_accuracy"] for s in both]
        mean, se = _mean(d), _standard_error(d, both)
        verdict = "ties"  # one seed cannot tell a gain from noise
        if len(d) >= 2:
            verdict = ("wins" if min(d) > 0 and mean > 2 * se else "loses" if max(d) < 0 and -mean > 2 * se
                       else "ties")
        out.append({"species": k, "train_per_species": n,
                    "photos": _mean([s["linear"]["n_train"] for s in both]) / k, "gain": mean, "low": min(d),
                    "high": max(d), "seeds": len(d), "verdict": verdict,
                    "linear": _mean([s["linear"]["val_accuracy"] for s in both]),
                    "finetune": _mean([s["finetune"]["val_accuracy"] for s in both]),
                    "finetune_seconds": _mean([s["finetune"]["seconds"] for s in both])})
    return sorted(out, key=lambda g: (g["species"], g["photos"]))


def _photos(g: dict) -> str:
    return f"{g['photos']:.0f}" if g["train_per_species"] != "all" else f"all {g['photos']:.0f}"


def caption(data: dict) -> str:
    """What the measurement shows, computed from it: where fine-tuning wins, ties and loses
    against the frozen backbone (mean gain over seeds, in points of validation accuracy)."""
    all_gains = gains(data)
    by_k: dict[int, list[dict]] = {}
    for g in all_gains:
        by_k.setdefault(g["species"], []).append(g)
    seeds = len(data["seeds"])
    parts = []
    for k, gs in sorted(by_k.items()):
        words = []
        for verdict, text in (("wins", "beats the frozen backbone beyond noise"),
                              ("ties", "is as good as the frozen backbone within noise"),
                              ("loses", "is worse than the frozen backbone beyond noise")):
            hit = [g for g in gs if g["verdict"] == verdict]
            if hit:
                words.append(f"{text} with {_list([_photos(g) for g in hit])} training photos per species "
                             f"({_list([_points(g) for g in hit])} points)")
        parts.append(f"With {k} species, fine-tuning " + "; it ".join(words) + ".")
    if not any(g["verdict"] == "wins" for g in all_gains):
        parts.append("Nowhere in this measurement does fine-tuning beat the frozen backbone by more than noise.")
    return (f"Over {seeds} seed{'s' * (seeds != 1)} (noise: a mean gain within twice its standard error, "
            "or not the same sign on every seed): " + " ".join(parts))


def _standard_error(d: list[float], runs: list[dict]) -> float:
    """Standard error of the mean gain over seeds: the seeds' spread of the gain, but never less
    than the binomial error of an accuracy on the validation photos (sqrt(p(1-p)/n)), which two
    or three seeds cannot estimate by themselves."""
    p = _mean([s["linear"]["val_accuracy"] for s in runs])
    binomial = (max(p * (1 - p), 1e-4) / runs[0]["linear"]["n_val"]) ** 0.5
    return max(_sd(d), binomial) / len(d) ** 0.5


def _shown(data: dict) -> list[dict]:
    """The runs a chart or sentence may use: a diverged run is left out, never shown as an accuracy."""
    return [r for r in data["runs"] if r.get("diverged_at") is None]


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _sd(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


def _points(g: dict) -> str:
    return f"{g['gain'] * 100:+.1f}".replace("-", "−")


def load(path: str | Path = ASSET) -> dict:
    """The measurement at ``path``, checked (ValueError or OSError when it is unusable)."""
    data = json.loads(Path(path).read_text())
    check(data)
    return data


def tail_cost(data: dict) -> float | None:
    """Seconds of one fine-tuning photo-epoch in units of one full forward pass of a photo
    (``calibration.full_forward_photos_per_second``, measured in the same run, so the ratio
    holds on a faster or slower machine). The median over the measured fine-tuning runs; a
    validation photo counts as a third of a training photo (forward only)."""
    rate = data.get("calibration", {}).get("full_forward_photos_per_second")
    lin = {(r["species"], str(r["train_per_species"]), r["seed"]): r["seconds"] for r in data["runs"]
           if r["mode"] == "linear"}
    costs = [(r["seconds"] - lin.get((r["species"], str(r["train_per_species"]), r["seed"]), 0.0)) * rate
             / (r["epochs"] * (r["n_train"] + r["n_val"] / 3)) for r in data["runs"]
             if r["mode"] == "finetune" and r.get("epochs") and rate]
    return statistics.median(costs) if costs else None


@functools.lru_cache(maxsize=1)
def _shipped_cost() -> float | None:
    try:
        return tail_cost(load())
    except (OSError, ValueError):
        return None


def finetune_seconds(n_train: int, n_val: int, epochs: int, rate: float, uncached: int = 0,
                     cost: float | None = None) -> float | None:
    """Expected seconds of the default fine-tuning on cached activations, on a server whose
    full forward pass runs at ``rate`` photos per second.

    Args:
        n_train, n_val: training and validation photos.
        epochs: fine-tuning epochs.
        rate: this server's measured extraction rate (photos per second).
        uncached: photos whose frozen-stage activations are not cached yet (one pass each).
        cost: a photo-epoch in full forward passes (default: the shipped measurement's).

    Returns:
        None when no calibration is available.
    """
    cost = cost if cost is not None else _shipped_cost()
    if cost is None or not rate > 0:
        return None
    # After the epochs, the page's run embeds every photo once more (forward only) for its
    # predictions and feature maps: a third of a photo-epoch each.
    work = epochs * (n_train + n_val / 3) + (n_train + n_val) / 3
    return JOB_OVERHEAD_SECONDS + (uncached + cost * work) / rate
