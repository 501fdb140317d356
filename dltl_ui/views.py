"""The pages' settings declarations: they live in ``dltl_core.views`` (no Streamlit), so the
code export reads a link with the same declarations as the widgets. Re-exported here."""

from dltl_core.views import *  # noqa: F401,F403
from dltl_core.views import __all__  # noqa: F401
