"""/overfit: the overfitting page's view sections and charts (decision boundary)."""
