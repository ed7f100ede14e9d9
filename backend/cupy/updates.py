"""Launch chapter 6's element-wise kernels (``updates.cu``) on CuPy arrays.

The optimizers' update rules, one launch per parameter array (an update
reads each element once and writes it once, where CuPy's generic code
launches 4 to 8 kernels with a temporary each), and Dropout's mask in one
launch. Like ``fused.py`` it is bound to an array module ``xp``, never
imports CuPy and never waits for the device: every call only queues
launches, and the scalars go in as kernel arguments (no copy).
"""

from __future__ import annotations

import numpy as np

from backend.cupy.sources import DTYPE_SUFFIX, launch_shape, module_source

SOURCE = "updates.cu"


class FusedUpdates:
    """The kernels of ``updates.cu`` on ``xp`` arrays (one instance per backend).

    Each update method returns False, having done nothing, where the arrays
    are not all C-contiguous device arrays of one float32/float64 dtype (the
    caller then takes the generic code).
    """

    def __init__(self, xp):
        self.xp = xp
        self._module = None
        self._functions: dict[str, object] = {}
        #: Kernel launches queued so far (bookkeeping for tests).
        self.launches = 0

    def _launch(self, name: str, n: int, *args) -> None:
        if n == 0:
            return
        if name not in self._functions:
            if self._module is None:
                self._module = self.xp.RawModule(code=module_source(SOURCE))
            self._functions[name] = self._module.get_function(name)
        grid, block = launch_shape(n)
        self._functions[name](grid, block, args)
        self.launches += 1

    def _fits(self, params, *lists) -> str | None:
        """The dtype suffix if every array qualifies, else None."""
        if not params:
            return None
        dtype = params[0].dtype
        if dtype.name not in DTYPE_SUFFIX:
            return None
        ndarray = type(params[0])
        for arrays in (params, *lists):
            for a, p in zip(arrays, params, strict=True):
                if (
                    type(a) is not ndarray
                    or a.dtype != dtype
                    or a.shape != p.shape
                    or not a.flags.c_contiguous
                ):
                    return None
        return DTYPE_SUFFIX[dtype.name]

    def update(self, rule: str, params, lists, scalars) -> bool:
        """Apply ``rule`` ("adam", ...) to each parameter: kernel arguments
        (p, g, *state, n, *scalars), scalars cast to the params' dtype."""
        suffix = self._fits(params, *lists)
        if suffix is None:
            return False
        t = params[0].dtype.type
        typed = tuple(t(s) for s in scalars)
        for i, p in enumerate(params):
            arrays = (p, *(lst[i] for lst in lists))
            self._launch(f"{rule}_{suffix}", p.size, *arrays, np.int64(p.size), *typed)
        return True

    def dropout_mask(self, shape, keys, threshold: int):
        """Bool mask of ``shape`` (``backend.updates.dropout_mask``), one launch."""
        n = 1
        for s in shape:
            n *= s
        mask = self.xp.empty(shape, dtype=np.uint8)
        self._launch(
            "dropout_mask_u8",
            n,
            mask,
            np.int64(n),
            *(np.int64(k) for k in keys),
            np.int64(threshold),
        )
        return mask.view(np.bool_)
