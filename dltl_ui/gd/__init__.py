"""/gd: the gradient-descent page's state (slots, presets, URL), view sections and charts."""
