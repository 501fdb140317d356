"""The dashboard's page list, grouped by course section: the one place that names a page.

Each entry says a page's script, title, icon, section and URL path. The entry script
(``streamlit_app.py``) hands the list to ``st.navigation`` as ``st.Page`` objects, which
draws the sidebar menu with its sections and answers every URL, a first request to a
fresh server (``/gd?lr=0.42``) included; ``page_setup`` reads the running page's title
and icon from here. A page script still runs on its own (``AppTest.from_file``), without
the menu.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager

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
        url: the URL path (``/gd``); the home page's is empty (the site's root).
    """

    path: str
    title: str
    icon: str
    section: str
    teaches: str
    url: str


HOME = PageInfo("pages/00_home.py", "Home", "🏠", "", "What the course covers, and classroom mode.", "")

PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/10_gd.py", "Gradient descent", "⛰️", "Optimization",
             "torch.optim's optimizers on 2-D loss surfaces, from a bowl to rugged landscapes.", "gd"),
    PageInfo("pages/11_lr.py", "Learning rate", "🎚️", "Optimization",
             "Too small, good, too large, divergent; schedules; an LR range test on a real network.", "lr"),
    PageInfo("pages/20_loss.py", "Loss & softmax", "🎯", "Training",
             "Softmax outputs, one-hot targets, cross-entropy vs MSE, confidently wrong predictions.", "loss"),
    PageInfo("pages/21_layers.py", "Layers", "🧱", "Training",
             "Fully connected vs convolutional layers h(Wx + b), filters, feature maps, nonlinearity.", "layers"),
    PageInfo("pages/22_batches.py", "Mini-batches", "📦", "Training",
             "Batch size vs speed and accuracy after a fixed budget of epochs; gradient noise; epochs vs steps.", "batches"),
    PageInfo("pages/23_overfit.py", "Overfitting", "📈", "Training",
             "Learning curves, under/overfitting, early stopping, dropout, weight decay, batch norm.", "overfit"),
    PageInfo("pages/30_transfer.py", "Transfer learning", "🐦", "Transfer learning",
             "A pretrained backbone on bird species: frozen head vs fine-tuning vs from scratch.", "transfer"),
    PageInfo("pages/40_arch.py", "Architectures", "🏛️", "Assignment",
             "ResNet, PreActResNet, DenseNet, VGG: blocks, size, FLOPs, throughput.", "arch"),
    PageInfo("pages/41_results.py", "Results & search", "🏆", "Assignment",
             "Hyperparameter search and the size / accuracy / training-time trade-off.", "results"),
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


def page_of(script: str | Path) -> PageInfo:
    """The entry of a page script (its ``__file__``).

    Raises:
        KeyError: the script is not in the list (a page must be declared here to be served).
    """
    path = Path(script).resolve()
    for page in (HOME, *PAGES):
        if ROOT / page.path == path:
            return page
    raise KeyError(f"{path.name} is not declared in dltl_ui/nav.py")


_SEEN = "_dltl_session_ran"


def leave_pages_folder_mode(rerun: bool) -> None:
    """Make a fresh server's first run go through ``st.navigation`` too.

    A ``pages/`` folder beside the entry script puts a new Streamlit process in the old
    folder mode until the entry script first calls ``st.navigation``: its first request
    (a deep link such as ``/gd``) would run the page straight from the folder, with
    Streamlit's flat file list as the menu. The folder keeps its name (every page opens on
    its own as ``pages/NN_name.py``). Instead the entry script leaves the mode before its
    navigation (``rerun=False``: that navigation then answers), and a page that folder mode
    ran directly leaves it and reruns (``rerun=True``), so that the rerun takes the entry
    script's navigation to the same page (a page's identity is its URL path in both modes).
    Only a session's first run reruns: Streamlit's AppTest enters folder mode again at every
    run, and a rerun there would drop the click that started it.
    """
    first = _SEEN not in st.session_state  # a session's first run: no click can be lost to a rerun
    st.session_state[_SEEN] = True
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if rerun and first:
            st.rerun()


def navigation() -> StreamlitPage:
    """Streamlit's navigation over the available pages: Home on top, then one group per section.

    Returns the page to run (``.run()``): the one the URL names, else Home. ``expanded``:
    every page is listed, none hidden behind "View more".
    """
    leave_pages_folder_mode(rerun=False)
    home = st.Page(HOME.path, title=HOME.title, icon=HOME.icon, default=True)
    menu: dict[str, list] = {HOME.section: [home]}
    for section, pages in sections().items():
        menu[section] = [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url) for p in pages]
    return st.navigation(menu, position="sidebar", expanded=True)
