"""Ready datasets, one file a source. Each returns NumPy arrays (features float32, labels int64).

The optional dependencies (scikit-learn, mnist1d, Pillow) are imported only when a loader is called.
MNIST / Fashion-MNIST (IDX files), CIFAR-10 (binary batches) and image folders are read from files
the user downloaded; nothing here downloads.
"""
from chainrule.data.datasets.cifar10 import CIFAR10_CLASSES, load_cifar10, read_cifar10_batch
from chainrule.data.datasets.csv import CSVData, load_csv
from chainrule.data.datasets.digits import digits, digits_split
from chainrule.data.datasets.image_folder import ImageFolder, load_image, load_image_folder
from chainrule.data.datasets.mnist import (FASHION_MNIST_CLASSES, load_fashion_mnist, load_mnist,
                                           read_idx)
from chainrule.data.datasets.mnist1d import mnist1d

__all__ = ["digits", "digits_split", "mnist1d", "load_csv", "CSVData", "load_mnist",
           "load_fashion_mnist", "read_idx", "FASHION_MNIST_CLASSES", "load_cifar10",
           "read_cifar10_batch", "CIFAR10_CLASSES", "ImageFolder", "load_image_folder", "load_image"]
