"""The computations behind the training pages, one module per page.

Each returns plain data (dicts, dataclasses of ``pandas.DataFrame``) that a page
charts as is; none of them imports streamlit.
"""
