"""TwoLayerNet accuracy in chunks: BLAS products, compiled everything else.

Imported only by the Numba backend (it imports numba at module level).

The layer-by-layer ``predict`` over a whole evaluation set (60,000 x 784)
makes four temporaries the size of the set's hidden activations (12 MB each
in float32) and walks them in separate NumPy passes. Here the rows go in
chunks of `CHUNK`: ``x[chunk] @ W1`` and ``h @ W2`` by BLAS into scratch
arrays that stay in cache, and the bias, activation, arg-max and comparison
with the labels in two compiled calls.

Measured on the 2-core machine, 784-50-10 float32, chapter 5's run on
Fashion-MNIST (10,000 steps, 17 evaluations of 60,000 + 10,000 images),
alternating the two paths in one process: the evaluations took 0.79-0.82 s
this way against 1.29-1.32 s layer by layer (3.14-3.23 s against 3.69-3.73 s
for the whole run), with the same accuracies. Chunks of 256 to 8,192 rows
all took 39-43 ms per 60,000 images.

The products are the same BLAS calls as the layers', and the bias and
activation the same formulas, so the scores and hence the arg-max agree with
``predict`` (ties go to the first class, a NaN score counts as the maximum,
as with ``numpy.argmax``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backend.numba.step import activate_row

#: Rows per chunk: the (CHUNK, H) activations stay in the 1 MiB L2 cache.
CHUNK = 1024


@njit(cache=True)
def _bias_activate(h, b1, sigmoid, zero, one):
    """h = act(h + b1) in place; h: (n, H). Row by row as in the SGD step.

    Returns whether some ReLU input was not <= 0 (the Relu layer's mask has a
    False), i.e. some hidden unit fired; always True for sigmoid.
    """
    fired = sigmoid
    for i in range(h.shape[0]):
        hi = h[i]
        activate_row(hi, b1, sigmoid, zero, one)
        if not fired:
            for j in range(hi.shape[0]):
                if hi[j] != 0:  # a > 0 or NaN: kept by the ReLU
                    fired = True
    return fired


@njit(cache=True)
def _count_correct(s, b2, labels):
    """How many rows of s + b2 have their arg-max at the row's label.

    s: (n, C) scores before the bias; b2: (C,); labels: (n,) int64.
    """
    n, c_size = s.shape
    correct = 0
    for i in range(n):
        best = s[i, 0] + b2[0]
        arg = 0
        if not np.isnan(best):
            for c in range(1, c_size):
                v = s[i, c] + b2[c]
                if np.isnan(v):
                    arg = c
                    break
                if v > best:
                    best = v
                    arg = c
        if arg == labels[i]:
            correct += 1
    return correct


def count_correct(x, labels, W1, b1, W2, b2, sigmoid: bool) -> tuple[int, bool]:
    """Rows of x that TwoLayerNet's arg-max score classifies as ``labels``.

    x: (N, D) C-contiguous, the params' dtype; labels: (N,) int64;
    W1 (D, H), b1 (H,), W2 (H, C), b2 (C,) of one float dtype.
    -> (how many rows, whether some hidden unit fired on some row).
    """
    n = x.shape[0]
    rows = min(n, CHUNK)
    h = np.empty((rows, W1.shape[1]), W1.dtype)
    s = np.empty((rows, W2.shape[1]), W1.dtype)
    zero, one = W1.dtype.type(0), W1.dtype.type(1)
    correct, fired = 0, False
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        hc, sc = h[: stop - start], s[: stop - start]
        np.matmul(x[start:stop], W1, out=hc)
        fired |= _bias_activate(hc, b1, sigmoid, zero, one)
        np.matmul(hc, W2, out=sc)
        correct += _count_correct(sc, b2, labels[start:stop])
    return int(correct), bool(fired)
