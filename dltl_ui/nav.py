"""The dashboard's page list, grouped by course section.

One multipage mechanism: Streamlit's ``pages/`` folder discovery. Its default
sidebar list is hidden (``.streamlit/config.toml``) and replaced by this grouped
one, so deep links such as ``/gd?lr=0.42`` resolve the same way on a fresh
server and on a warm one. A file's URL is its name without the numeric prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageInfo:
    """One entry of the navigation.

    Attributes:
        path: script path relative to the project root.
        title: label in the sidebar and on the home page.
        icon: an emoji or material icon.
        section: the course section it belongs to.
        teaches: one line on what the page teaches (home page, README).
    """

    path: str
    title: str
    icon: str
    section: str
    teaches: str

    @property
    def url(self) -> str:
        """The URL path Streamlit gives the page (file name less its ``NN_`` prefix)."""
        stem = Path(self.path).stem
        return stem.split("_", 1)[1] if stem[:1].isdigit() and "_" in stem else stem


HOME = PageInfo("streamlit_app.py", "Home", "🏠", "Start", "What the course covers, and classroom mode.")

PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/10_gd.py", "Gradient descent", "⛰️", "Optimization",
             "torch.optim's optimizers on 2-D loss surfaces, from a bowl to rugged landscapes."),
    PageInfo("pages/11_lr.py", "Learning rate", "🎚️", "Optimization",
             "Too small, good, too large, divergent; schedules; an LR range test on a real network."),
    PageInfo("pages/20_loss.py", "Loss & softmax", "🎯", "Training",
             "Softmax outputs, one-hot targets, cross-entropy vs MSE, confidently wrong predictions."),
    PageInfo("pages/21_layers.py", "Layers", "🧱", "Training",
             "Fully connected vs convolutional layers h(Wx + b), filters, feature maps, nonlinearity."),
    PageInfo("pages/22_batches.py", "Mini-batches", "📦", "Training",
             "Batch size vs speed and generalization; gradient noise; epochs vs steps."),
    PageInfo("pages/23_overfit.py", "Overfitting", "📈", "Training",
             "Learning curves, under/overfitting, early stopping, dropout, weight decay, batch norm."),
    PageInfo("pages/30_transfer.py", "Transfer learning", "🐦", "Transfer learning",
             "A pretrained backbone on bird species: frozen head vs fine-tuning vs from scratch."),
    PageInfo("pages/40_arch.py", "Architectures", "🏛️", "Assignment",
             "ResNet, PreActResNet, DenseNet, VGG: blocks, size, FLOPs, throughput."),
    PageInfo("pages/41_results.py", "Results & search", "🏆", "Assignment",
             "Hyperparameter search and the size / accuracy / training-time trade-off."),
)


def available_pages() -> list[PageInfo]:
    """The pages whose script exists, in course order."""
    return [p for p in PAGES if (ROOT / p.path).exists()]


def sections() -> dict[str, list[PageInfo]]:
    """Available pages grouped by section, in course order."""
    grouped: dict[str, list[PageInfo]] = {}
    for page in available_pages():
        grouped.setdefault(page.section, []).append(page)
    return grouped
