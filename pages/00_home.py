"""Home: what the course covers, one card per page grouped by section, and classroom mode."""

import streamlit as st

import dltl_ui as ui
from dltl_ui.nav import sections

ui.page_setup(__file__)

st.title("Deep learning & transfer learning")
ui.explain(
    "An interactive companion to the course. Every page is one idea, with sliders to move "
    "and charts that answer at once. It runs on a laptop CPU, offline: the data sets and "
    "pretrained weights it needs come with the install."
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

ui.explain(
    "**Classroom mode** (sidebar) makes type and charts bigger and hides the explanatory "
    "text, for the projector. Every page keeps its settings in the address bar: copy the "
    "link to share exactly what you see."
)
