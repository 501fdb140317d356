"""/batches: the mini-batches page's charts."""
