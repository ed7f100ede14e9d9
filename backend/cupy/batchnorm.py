"""Launch Batch Normalization's kernels (``batchnorm.cu``) on CuPy arrays.

Bound to an array module ``xp`` as ``fused.py`` is; never imports CuPy and
never waits for the device.
"""

from __future__ import annotations

import numpy as np

from backend.constants import BN_EPS
from backend.cupy.sources import DTYPE_SUFFIX, launch_shape, module_source

SOURCE = "batchnorm.cu"


class FusedBatchNorm:
    """Forward and backward in one launch each, or None where the arrays are
    not C-contiguous 2-D/1-D device arrays of one float32/float64 dtype."""

    def __init__(self, xp):
        self.xp = xp
        self._module = None
        self._functions: dict[str, object] = {}
        #: Kernel launches queued so far (bookkeeping for tests).
        self.launches = 0

    def _launch(self, name: str, columns: int, *args) -> None:
        if name not in self._functions:
            if self._module is None:
                self._module = self.xp.RawModule(code=module_source(SOURCE))
            self._functions[name] = self._module.get_function(name)
        grid, block = launch_shape(columns)
        self._functions[name](grid, block, args)
        self.launches += 1

    @staticmethod
    def _suffix(x, *vectors) -> str | None:
        if x.dtype.name not in DTYPE_SUFFIX or x.ndim != 2 or x.shape[0] == 0:
            return None
        for a in (x, *vectors):
            if a.dtype != x.dtype or not a.flags.c_contiguous:
                return None
        if any(v.shape != (x.shape[1],) for v in vectors):
            return None
        return DTYPE_SUFFIX[x.dtype.name]

    def forward(self, x, gamma, beta):
        """As ``Backend.batchnorm_forward``: (out, xc, xn, std, mu, var)."""
        suffix = self._suffix(x, gamma, beta)
        if suffix is None:
            return None
        xp = self.xp
        n, d = x.shape
        out, xc, xn = (xp.empty_like(x) for _ in range(3))
        std, mu, var = (xp.empty(d, dtype=x.dtype) for _ in range(3))
        eps = x.dtype.type(BN_EPS)
        self._launch(
            f"batchnorm_forward_{suffix}",
            d,
            *(x, gamma, beta, out, xc, xn, std, mu, var),
            np.int64(n),
            np.int64(d),
            eps,
        )
        return out, xc, xn, std, mu, var

    def backward(self, dout, gamma, xn, std):
        """As ``Backend.batchnorm_backward``: (dx, dgamma, dbeta)."""
        suffix = self._suffix(dout, gamma, std)
        if suffix is None or xn.shape != dout.shape or xn.dtype != dout.dtype:
            return None
        if not xn.flags.c_contiguous:
            return None
        xp = self.xp
        n, d = dout.shape
        dx = xp.empty_like(dout)
        dgamma, dbeta = xp.empty_like(gamma), xp.empty_like(gamma)
        self._launch(
            f"batchnorm_backward_{suffix}",
            d,
            *(dout, gamma, xn, std, dx, dgamma, dbeta),
            np.int64(n),
            np.int64(d),
        )
        return dx, dgamma, dbeta
