"""The errors of `nn.data.mnist.load_mnist` (locating and parsing alike)."""

from __future__ import annotations

__all__ = ["DatasetError", "DatasetFormatError", "DatasetNotFoundError"]


class DatasetError(RuntimeError):
    """Base class of the errors of [`load_mnist`][nn.load_mnist] (messages are
    one line)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is neither on disk nor downloadable.

    The message names the library's keyword (``data_dir=``); ``cli_message``
    is the same advice for a command line, naming its ``--data-dir DIR``.
    """

    def __init__(self, message: str, cli_message: str | None = None):
        super().__init__(message)
        self.cli_message = cli_message or message


class DatasetFormatError(DatasetError, ValueError):
    """Dataset files that are well-formed IDX but do not make a valid dataset."""
