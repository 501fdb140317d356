"""The talk a student gives from a study: computed conclusions, chart images and a slide deck.

``study`` reads a study's records into labelled tables and provenance, ``findings`` turns
them into sentences (the Results page's captions), ``charts`` builds the Altair charts the
page shows and renders them to PNG/SVG, and ``deck`` writes the PowerPoint file
(``python -m dltl_core report``). Nothing here imports Streamlit.
"""
