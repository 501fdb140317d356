"""The /arch page's own panels (its charts: ``dltl_ui.arch.charts``)."""

from __future__ import annotations

import streamlit as st

from dltl_core.recipes import RECIPES


def recipe_panel(arch: str, width: float) -> None:
    """Pick a named recipe: what it sets, and the command that trains ``arch`` with it."""
    names = RECIPES.names()
    pick = st.selectbox("Train it with a recipe", names, index=names.index("fast"), key="arch_recipe",
                        format_func=lambda n: RECIPES[n].label)
    recipe = RECIPES[pick]
    c = recipe.config
    st.markdown(f"{recipe.about}  \n`{c.optimizer}` lr {c.lr:g}, batch {c.batch_size}, {c.epochs} epochs, "
                f"{c.schedule} (warm-up {c.warmup:.0%}), weight decay {c.weight_decay:g}"
                f"{' on every parameter' if c.decay_1d else ' on weights only'}, label smoothing "
                f"{c.label_smoothing:g}{f', EMA over {c.ema_epochs:g} epochs' if c.ema_epochs else ''}"
                f"{', flip TTA' if recipe.tta else ''}.")
    st.code(f"python -m dltl_core search --fixed recipe={pick} --arch {arch} --widths {width:g} "
            "--data-dir DIR --results runs.json", language="bash")
