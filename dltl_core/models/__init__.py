"""Models of the course, by name (a small timm-style registry).

    >>> from dltl_core.models import create_model
    >>> model = create_model("mlp", in_features=64, depth=2, width=128, seed=0)
"""

from dltl_core.models.cnn import SmallCNN
from dltl_core.models.mlp import ACTIVATIONS, MLP
from dltl_core.models.registry import MODELS, count_parameters, create_model, list_models, register_model

__all__ = ["ACTIVATIONS", "MLP", "MODELS", "SmallCNN", "count_parameters", "create_model", "list_models",
           "register_model"]
