"""Chapter 3's inference: the book's trained weights on the MNIST test set.

Usage::

    python -m nn.inference --weights sample_weight.pkl --data-dir DIR --batch-size 100

The weights path comes from ``--weights`` or ``$XPNET_SAMPLE_WEIGHT``; the data
from ``--data-dir``, ``$XPNET_DATA_DIR``, the user cache or a download (see
`nn.data.mnist`). Only the test split is read. Prints the backend, the
accuracy and the time taken. Errors are one line on stderr, never a
traceback: exit code 2 for usage errors, 1 when data or weights cannot be used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import backend as B
from nn.data.book_weights import (  # noqa: F401  (re-exported for callers)
    INPUT_SIZE,
    NUM_CLASSES,
    WeightsError,
    check_weights,
    load_weights_for_cli,
)
from nn.data.download import DownloadError
from nn.data.idx import IdxFormatError
from nn.data.mnist import (
    DatasetError,
    DatasetNotFoundError,
    load_mnist_split,
    locate_files,
)
from nn.data.safe_pickle import UnsafePickleError
from nn.three_layer_net import ThreeLayerNet

WEIGHTS_ENV = "XPNET_SAMPLE_WEIGHT"
_FIX = "pass --weights the book's ch03/sample_weight.pkl"


class UsageError(Exception):
    """A flag or setting is missing or invalid (exit code 2)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nn.inference",
        description="Chapter 3: accuracy of the book's trained 3-layer network "
        "on the MNIST test set.",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=100,
        help="images per forward pass (default 100, as the book)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help=f"the book's sample_weight.pkl (default ${WEIGHTS_ENV})",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with the test IDX files (default $XPNET_DATA_DIR, "
        "then the user cache, then a download)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="backend: numpy, numba, cupy, or auto: CUDA if usable, else Numba if "
        "installed, else NumPy (default: auto, as train.py)",
    )
    parser.add_argument(
        "--no-normalize",
        dest="normalize",
        action="store_false",
        help="feed raw 0..255 pixels instead of pixel/255",
    )
    parser.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download; fail if the files are not on disk",
    )
    return parser


def _weights_path(flag: str | None) -> str:
    path = flag or os.environ.get(WEIGHTS_ENV)
    if not path:
        raise UsageError(
            f"no weights given: pass --weights PATH or set ${WEIGHTS_ENV} to the "
            "book's ch03/sample_weight.pkl"
        )
    if not os.path.isfile(path):
        origin = "--weights" if flag else f"${WEIGHTS_ENV}"
        raise UsageError(f"weights file {path} (from {origin}) does not exist")
    return path


def load_net(path, backend) -> ThreeLayerNet:
    """Chapter 3's network from a weights pickle; `WeightsError` if unusable."""
    return ThreeLayerNet(load_weights_for_cli(path, _FIX), backend=backend)


def run(args: argparse.Namespace) -> None:
    weights = _weights_path(args.weights)
    try:
        be, line = B.select(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None
    print(line)
    t0 = time.perf_counter()
    net = load_net(weights, be)  # before the data: a bad file fails at once
    x, t = load_mnist_split(
        "test",
        normalize=args.normalize,
        data_dir=args.data_dir,
        download=args.download,
    )
    images, _ = locate_files("test", "mnist", args.data_dir, download=False)
    x, t = be.asarray(x), be.asarray(t)
    B.synchronize(x)
    load_s = time.perf_counter() - t0
    print(
        f"data: MNIST test set, {len(t)} images from "
        f"{images.parent} ({'normalized' if args.normalize else 'raw 0..255'})"
    )
    print(f"weights: {weights}")
    t0 = time.perf_counter()
    accuracy = net.accuracy(x, t, batch_size=args.batch_size)
    B.synchronize(x)
    infer_s = time.perf_counter() - t0
    correct = round(accuracy * len(t))
    print(f"Accuracy:{accuracy:.4f} ({correct}/{len(t)} correct)")
    print(
        f"time: {infer_s:.3f} s inference (batch size {args.batch_size}, "
        f"{infer_s / len(t) * 1e6:.1f} us/image), {load_s:.3f} s loading"
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (UsageError, B.BackendUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DatasetNotFoundError as exc:  # the advice with --data-dir, not data_dir=
        print(f"error: {exc.cli_message}", file=sys.stderr)
        return 1
    except (
        DatasetError,
        IdxFormatError,
        UnsafePickleError,
        DownloadError,
        OSError,
        ValueError,
        TypeError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
