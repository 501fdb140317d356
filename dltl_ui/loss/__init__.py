"""/loss: the loss & softmax page's charts."""
