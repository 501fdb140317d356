"""/arch: the architecture page's charts."""
