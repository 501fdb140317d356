"""/layers: the layers page's charts."""
