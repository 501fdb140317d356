"""/transfer: the transfer page's training state, view sections, regime chart and charts."""
