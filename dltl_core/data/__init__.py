"""Data sets of the course, all as in-memory tensors.

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (offline, 1,797 images).
- ``synthetic``: two-dimensional toy sets (moons, circles, spirals, XOR).
- ``folder``: image folders in ImageFolder layout, decoded once and cached as uint8.
- ``downloads``: torchvision's MNIST, Fashion-MNIST and CIFAR-10, when online.
- ``split``: the seeded train/validation split.
"""

from dltl_core.data.digits import DIGIT_CLASSES, load_digits
from dltl_core.data.downloads import DOWNLOADS, load_download
from dltl_core.data.folder import ImageSet, load_image_folder
from dltl_core.data.sources import DATASETS, Dataset, load_dataset, noisy_labels
from dltl_core.data.split import split_tensors, train_val_split
from dltl_core.data.synthetic import SYNTHETIC, make_2d

__all__ = [
    "DIGIT_CLASSES", "DOWNLOADS", "ImageSet", "SYNTHETIC", "load_digits", "load_download", "load_image_folder", "make_2d",
    "split_tensors", "train_val_split", "DATASETS", "Dataset", "load_dataset", "noisy_labels",
]
