"""``python -m nn.search``: the same command line as ``xpnet-search``."""

import sys

from nn.search.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m nn.search"))
