"""The fused SGD step's launch plan: everything but the batch built once.

``FusedTwoLayer.sgd_step`` (``backend/cupy/fused.py``) keeps one
``StepPlan`` per shape of its inputs: the
products prepared on the cached cuBLAS handle (``backend/cupy/blas.py``) and
the two kernels' argument tuples, so that a step only checks its batch and
makes four calls (``two_layer_step.cu`` has the kernels).
"""

from __future__ import annotations

import numpy as np

from backend.cupy.sources import DTYPE_SUFFIX, launch_shape


def float_dtype(params) -> np.dtype | None:
    """The params' common float32/float64 dtype, if all four are C-contiguous
    2-D/1-D arrays of it; else None (the layer-by-layer path takes them)."""
    W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
    dtype = W1.dtype
    if dtype.name not in DTYPE_SUFFIX:
        return None
    for p, ndim in ((W1, 2), (b1, 1), (W2, 2), (b2, 1)):
        if p.dtype != dtype or p.ndim != ndim or not p.flags.c_contiguous:
            return None
    d, m = W1.shape
    if b1.shape != (m,) or W2.shape[0] != m or b2.shape != (W2.shape[1],):
        return None
    return dtype


class StepPlan:
    """One shape of ``FusedTwoLayer.sgd_step`` with its fixed arguments built:
    the products prepared on the cuBLAS handle, the kernels' argument tuples
    but for the batch's labels and the loss."""

    @classmethod
    def build(cls, fused, params, x, t, lr, activation):
        """The plan for these inputs, or None where the fused step does not apply."""
        dtype = float_dtype(params)
        if dtype is None or activation not in ("relu", "sigmoid") or x.ndim < 1:
            return None
        W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
        n = x.shape[0]
        (d, m), c = W1.shape, W2.shape[1]
        if n == 0 or x.size != n * d:
            return None
        if t.shape == (n,) and t.dtype.kind in "iu":
            onehot = False
        elif t.shape == (n, c) and t.dtype.kind == "f":
            onehot = True
        else:
            return None
        return cls(fused, (W1, b1, W2, b2), (n, d, m, c), dtype, onehot, lr, activation)

    def __init__(self, fused, params, sizes, dtype, onehot, lr, activation):
        W1, b1, W2, b2 = params
        n, d, m, c = sizes
        # Held, so that their ids (the plan's key) stay theirs.
        self.params = params
        self.fused, self.xp = fused, fused.xp
        self.dtype, self.shape, self.onehot = dtype, (n, d), onehot
        ws = fused._scratch(
            ("step", n, d, m, c, dtype.name),
            {
                "h": ((n, m), dtype),
                "da1": ((n, m), dtype),
                "dy": ((n, c), dtype),
                "loss_rows": ((n,), np.float64),
            },
        )
        h, da1, dy, loss_rows = ws["h"], ws["da1"], ws["dy"], ws["loss_rows"]
        suffix, T = DTYPE_SUFFIX[dtype.name], dtype.type
        size = (np.int64(n), np.int64(m), np.int64(c))
        # The kernel reads labels or one-hot rows; the other pointer is unused.
        self.placeholder = fused._placeholder(np.int64 if onehot else dtype)
        self.rows = fused._function("two_layer_step.cu", f"step_rows_{suffix}")
        self.rows_shape = launch_shape(n)
        self.rows_head = (h, b1, W2, b2)
        self.rows_tail = (dy, da1, loss_rows, *size, np.int64(onehot),
                          np.int64(activation == "sigmoid"), T(1.0 / n))  # fmt: skip
        self.update = fused._function("two_layer_step.cu", f"step_update_{suffix}")
        self.update_shape = launch_shape(m * c + m + c + 1)
        self.update_head = (h, dy, da1, loss_rows, W2, b1, b2)
        self.update_tail = (*size, T(lr))
        blas = fused.blas
        self.forward = blas.prepared("N", "N", (n, d), W1, h)
        # W1 <- W1 - lr * x.T @ da1 in one product (cuBLAS's beta = 1).
        self.backward = blas.prepared("T", "N", (n, d), da1, W1, -float(lr), 1.0)

    def run(self, x, t, out):
        """One step on x (the plan's shape) and t; -> the 0-d loss, or None."""
        xp, dtype = self.xp, self.dtype
        if x.ndim != 2:
            x = x.reshape(self.shape)
        if x.dtype != dtype or not x.flags.c_contiguous:
            x = xp.ascontiguousarray(x, dtype=dtype)
        want = dtype if self.onehot else np.int64
        if t.dtype != want or not t.flags.c_contiguous:
            t = xp.ascontiguousarray(t, dtype=want)
        if out is None:
            loss = xp.empty((), dtype=dtype)
        elif out.size == 1 and out.dtype == dtype and out.flags.c_contiguous:
            loss = out
        else:
            return None
        targets = (self.placeholder, t) if self.onehot else (t, self.placeholder)
        self.forward(x)
        grid, block = self.rows_shape
        self.rows(grid, block, self.rows_head + targets + self.rows_tail)
        self.backward(x)
        grid, block = self.update_shape
        self.update(grid, block, self.update_head + (loss,) + self.update_tail)
        self.fused.launches += 2
        self.fused.products += 2
        return loss
