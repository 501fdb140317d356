"""/results: the results page's sources, loading, panels and downloads."""
