#!/usr/bin/env python
"""Train the book's two-layer network: ``python train.py --help``.

A thin wrapper over `nn.training.cli.main`, which an installed xpnet
also provides as the ``xpnet-train`` command.
"""

from __future__ import annotations

import sys

from nn.training import cli


def main(argv=None) -> int:
    """``train.py``'s command line with ``argv`` -> exit code."""
    return cli.main(argv, prog="train.py")


if __name__ == "__main__":
    sys.exit(main())
