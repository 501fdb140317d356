"""Home: what the course covers, one card per page grouped by section, and classroom mode."""

import streamlit as st

import dltl_ui as ui
from dltl_ui.code_panel import lab_card
from dltl_ui.nav import sections

ui.page_setup(__file__)

st.title("Deep learning & transfer learning")
ui.explain(
    "An interactive companion to the course. Every page is one idea, with sliders to move "
    "and charts that answer as you move them; a heavier measurement starts on a click and says "
    "first how long it takes. It runs on a laptop CPU, offline: the digits and the pretrained "
    "weights come with the install. Bird photos for Transfer learning do not: that page offers "
    "a download, an upload of your own zip, or your own folder."
)

st.markdown(
    r"""
**The formalism.** A model $f_W$ maps an input $x$ to an output; a loss $L$ says how far
$f(x, W)$ is from the target $y$. Training minimises the empirical risk
$J(W) = \sum_i L(f(x_i, W), y_i)$, looking for $W^* = \arg\min_W J(W)$ by gradient descent:
start from a random $W$, compute $\partial J / \partial W$, step $W \leftarrow W - \eta\,\partial J/\partial W$, repeat.
"""
)

for section, pages in sections().items():
    st.subheader(section)
    cols = st.columns(min(3, len(pages)))
    for i, page in enumerate(pages):
        with cols[i % len(cols)]:
            with st.container(border=True):
                st.page_link(page.path, label=f"**{page.title}**", icon=page.icon)
                st.markdown(page.teaches)

st.subheader("The lab in PyTorch")
ui.explain(
    "Every page has a **PyTorch code** panel: the plain script (or notebook) that reproduces its chart "
    "for the current settings. The lab's two notebooks, ready for Jupyter or Colab:"
)
lab_left, lab_right = st.columns(2)
with lab_left:
    lab_card("lab-scratch", "Train a full model from scratch",
             "An MLP on the digits with the Overfitting page's settings (learning curves, early stopping, "
             "dropout, weight decay), then a small CNN on CIFAR-10.")
with lab_right:
    lab_card("lab-transfer", "Train a downstream model with transfer learning",
             "A pretrained EfficientNet-Lite0, frozen, with a linear head on your bird photos; then "
             "fine-tuning its last stages.")

ui.explain(
    "**Classroom mode** (sidebar) makes type and charts bigger and hides the explanatory "
    "text, for the projector. Every page keeps its settings in the address bar: copy the "
    "link to share exactly what you see."
)
