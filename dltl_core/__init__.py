"""DLTL core: the shared, streamlit-free library behind the teaching dashboard.

Every page of the dashboard is a thin view over functions in this package; the
same functions run from the command line (``python -m dltl_core --help``), a
notebook, a GPU box or a test.
"""

__version__ = "0.1.0"
