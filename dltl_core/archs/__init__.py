"""CIFAR-style (32x32) architectures: ResNet, PreActResNet, DenseNet, VGG.

``create_arch(name, num_classes=10, width=1.0)`` builds one; ``ARCHS`` holds
their descriptions (block, connections, pre-activation, the problem each design
answers) and kuangliu/pytorch-cifar's reference accuracies.
"""

# Import order is registry order (the order of the pages' tables): the families
# register themselves on import.
from dltl_core.archs import resnet  # noqa: F401,I001
from dltl_core.archs import preact_resnet  # noqa: F401
from dltl_core.archs import densenet  # noqa: F401
from dltl_core.archs import vgg  # noqa: F401
from dltl_core.archs._registry import ARCHS, ArchInfo, Family, create_arch, list_archs

__all__ = ["ARCHS", "ArchInfo", "Family", "create_arch", "list_archs"]
