"""Datasets and files: MNIST-format IDX reading, the MNIST and Fashion-MNIST
sources, download with checksums, the parsed-array cache, the book's weights
(through a pickle reader that runs no code) and atomic file writes.

Host-side I/O: these modules may use NumPy directly. A new dataset in MNIST's
format is one entry in `nn.data.sources.DATASETS`.
"""

from nn.data.book_weights import WeightsError, load_weights
from nn.data.errors import DatasetError, DatasetFormatError, DatasetNotFoundError
from nn.data.idx import IdxFormatError, read_idx
from nn.data.mnist import PIXEL_SCALE, load_mnist, load_mnist_split
from nn.data.safe_pickle import UnsafePickleError, load_array_dict

__all__ = [
    "PIXEL_SCALE",
    "DatasetError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "IdxFormatError",
    "UnsafePickleError",
    "WeightsError",
    "load_array_dict",
    "load_mnist",
    "load_mnist_split",
    "load_weights",
    "read_idx",
]
