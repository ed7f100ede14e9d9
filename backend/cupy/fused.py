"""Launch the fused two-layer kernels (the ``.cu`` files beside this module).

`FusedTwoLayer` fills the CuPy backend's optional slots: the SGD step,
the evaluation and the fast numerical gradient of ``TwoLayerNet``, plus the
uint8 batch gather. Products go to cuBLAS through one cached handle
(``backend/cupy/blas.py``: one binding call each, with the ``alpha``/``beta``
form doing the W1 update); everything between them is our kernels. Like
``kernels.py`` it is bound to an array module ``xp`` (CuPy, or a stand-in in
tests), never imports CuPy, and never waits for the device except where a
method says so.

Launches per call (chapter 5: 784-50-10, batch 100, float32, int64 labels):

- ``sgd_step``: 4 (product, row kernel, product with the W1 update, update
  kernel); no copy, no synchronisation (captured into graphs by the
  trainer's step loop: ``nn/training/graphs.py``);
- ``scaled_rows``: 1 (the gather and the division by the scale);
- ``count_correct``: 1 to zero the counters, then 2 per chunk of
  `EVAL_CHUNK` rows (product, kernel), then one device-to-host copy;
  from the second evaluation of the same arrays on, with the backend's
  ``capture``: one graph launch and the copy;
- ``numerical_gradient``: 4 in float64 (zeroing the label check, product,
  forward kernel, gradient kernel) plus a cast per float32 input and one
  device-to-host copy (the label check, so bad labels raise as on the CPU).
"""

from __future__ import annotations

import threading

import numpy as np

from backend.cupy import numgrad
from backend.cupy.blas import Blas
from backend.cupy.sources import DTYPE_SUFFIX, EVAL_CHUNK, launch_shape, module_source
from backend.cupy.step import StepPlan, float_dtype


class FusedTwoLayer:
    """The fused TwoLayerNet kernels on ``xp`` arrays (one instance per backend).

    Each method returns None where it does not apply (another dtype, layout or
    activation), and the caller takes the layer-by-layer path. The modules
    are compiled by NVRTC (``xp.RawModule``) on first use.
    """

    def __init__(self, xp, blas: Blas | None = None):
        self.xp = xp
        # Per thread (and its stream): scratch arrays, step and gather plans.
        self._modules: dict[str, object] = {}
        self._functions: dict[str, object] = {}
        self._local = threading.local()  # scratch per thread (and its stream)
        self._dummy: dict[str, object] = {}
        #: The cuBLAS handle and its products (``backend/cupy/blas.py``).
        self.blas = blas or Blas(xp)
        #: Kernel launches and cuBLAS products queued so far (bookkeeping).
        self.launches = 0
        self.products = 0

    # -- plumbing ---------------------------------------------------------
    def _function(self, filename: str, name: str):
        if name not in self._functions:
            if filename not in self._modules:
                self._modules[filename] = self.xp.RawModule(
                    code=module_source(filename)
                )
            self._functions[name] = self._modules[filename].get_function(name)
        return self._functions[name]

    def _launch(self, filename: str, name: str, items: int, *args) -> None:
        grid, block = launch_shape(items)
        self._function(filename, name)(grid, block, args)
        self.launches += 1

    def _gemm(self, transa, transb, a, b, out, alpha=1.0, beta=0.0) -> None:
        # One cuBLAS call: out = alpha * op(a) @ op(b) + beta * out, all
        # C-contiguous; host scalars alpha, beta in host pointer mode, no copy.
        self.blas.gemm(transa, transb, a, b, out, alpha=alpha, beta=beta)
        self.products += 1

    def _placeholder(self, dtype):
        """A one-element array for a pointer argument a kernel will not read."""
        key = np.dtype(dtype).name
        if key not in self._dummy:
            self._dummy[key] = self.xp.empty(1, dtype=dtype)  # no launch
        return self._dummy[key]

    def _scratch(self, key: tuple, shapes: dict) -> dict:
        """Scratch arrays per shape and thread, reused across calls.

        ``key[0]`` names the user ("step", "eval"): a new shape replaces that
        user's old scratch only, so the step's survives an evaluation.
        """
        ws = getattr(self._local, "workspace", None)
        if ws is None:
            ws = self._local.workspace = {}
        if ws.get(key[0], (None,))[0] != key:
            arrays = {
                name: self.xp.empty(shape, dtype=dt)
                for name, (shape, dt) in shapes.items()
            }
            ws[key[0]] = (key, arrays)
        return ws[key[0]][1]

    # -- the batch gather -------------------------------------------------
    def scaled_rows(self, images, rows, scale, dtype, out=None):
        """``images[rows] / scale`` in one launch, or None.

        images: (N, D) uint8 C-contiguous; rows: (B,) integer device indices
        (wrapped into [0, N) as CuPy's indexing does); dtype float32/float64;
        out: a (B, D) C-contiguous array of dtype to write into, or None (a
        new one). -> (B, D) of dtype, the division in float32 as in
        ``Backend.scaled_rows``.
        """
        xp = self.xp
        if isinstance(rows, slice) or type(rows).__module__.split(".")[0] == "numpy":
            return None
        # What does not change between batches is checked and built once.
        key = (id(images), getattr(rows, "shape", None), getattr(rows, "dtype", None))
        key += (scale, dtype)
        gathers = getattr(self._local, "gathers", None)
        if gathers is None:
            gathers = self._local.gathers = {}
        gather = gathers.get(key, False)
        if gather is False:
            gather = self._gather_plan(images, rows, scale, dtype)
            if len(gathers) >= 8:
                gathers.clear()
            gathers[key] = gather
        if gather is None:
            return None
        function, grid, block, tail, shape, dtype, _ = gather
        if rows.dtype != np.int64 or not rows.flags.c_contiguous:
            rows = xp.ascontiguousarray(rows, dtype=np.int64)
        if out is None:
            out = xp.empty(shape, dtype=dtype)
        elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
            return None
        if grid is not None:
            function(grid, block, (images, rows, out) + tail)
            self.launches += 1
        return out

    def _gather_plan(self, images, rows, scale, dtype):
        """(function, grid, block, fixed arguments, out shape, dtype) of the
        gather, or None where it does not apply. Holds ``images``."""
        dtype = np.dtype(dtype)
        if (
            dtype.name not in DTYPE_SUFFIX
            or images.dtype != np.uint8
            or images.ndim != 2
            or not images.flags.c_contiguous
            or images.shape[0] == 0
            or getattr(rows, "ndim", None) != 1
            or rows.dtype.kind not in "iu"
        ):
            return None
        b, d = rows.shape[0], images.shape[1]
        name = f"gather_scaled_u8_{DTYPE_SUFFIX[dtype.name]}"
        function = self._function("gather.cu", name)
        grid, block = launch_shape(b * d) if b and d else (None, None)
        tail = (np.int64(b), np.int64(d), np.int64(images.shape[0]), np.float32(scale))
        # ``images`` rides along so that its id (the plan's key) stays its own.
        return function, grid, block, tail, (b, d), dtype, images

    # -- the SGD step -----------------------------------------------------
    def sgd_step(self, params, x, t, lr, activation, out=None):
        """One SGD step of TwoLayerNet, params updated in place, or None.

        params: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), C-contiguous,
        float32 or float64; x: (N, ...) flattened to (N, D) (cast to the
        params' dtype if it is not already: one more launch); t: (N,)
        integer labels or (N, C) one-hot. -> the mean loss before the
        update, a 0-d device array of the params' dtype (written into
        ``out``, a one-element C-contiguous array of that dtype, when given:
        a captured step allocates nothing). A label outside [-C, C) makes
        the loss NaN and its row adds nothing to the update (a kernel cannot
        raise; the trainer stops on the NaN loss).
        """
        # The arguments that do not change between steps (sizes, scratch,
        # parameters, coefficients) are prepared once per shape: a step then
        # checks its inputs and makes four calls.
        key = (
            *(id(params[k]) for k in ("W1", "b1", "W2", "b2")),
            x.shape,
            x.dtype,
            t.shape,
            t.dtype,
            lr,
            activation,
        )
        plans = self._plans()
        plan = plans.get(key)
        if plan is None:
            plan = StepPlan.build(self, params, x, t, lr, activation)
            if plan is None:
                return None
            if len(plans) >= 8:
                plans.clear()  # the plans hold their arrays: keep a few
            plans[key] = plan
        return plan.run(x, t, out)

    def _plans(self) -> dict:
        plans = getattr(self._local, "plans", None)
        if plans is None:
            plans = self._local.plans = {}
        return plans

    def _targets(self, t, n: int, c: int, dtype):
        """(int64 labels (N,) or None, one-hot (N, C) of dtype or None)."""
        xp = self.xp
        if t.shape == (n,) and t.dtype.kind in "iu":
            if t.dtype != np.int64 or not t.flags.c_contiguous:
                t = xp.ascontiguousarray(t, dtype=np.int64)
            return t, None
        if t.shape == (n, c) and t.dtype.kind == "f":
            if t.dtype != dtype or not t.flags.c_contiguous:
                t = xp.ascontiguousarray(t, dtype=dtype)
            return None, t
        return None, None

    # -- the evaluation ---------------------------------------------------
    def count_correct(
        self, params, x, t, activation, chunk: int = EVAL_CHUNK, capture=None
    ):
        """Rows of x classified as t, and whether some hidden unit fired; or None.

        x: (N, D) of the params' dtype, C-contiguous; t: (N,) integer labels
        or (N, C) one-hot (its arg-max, one more launch). -> ``(int, bool)``
        after one device-to-host copy. Always True for sigmoid.

        ``capture``: the backend's ``capture`` (or None). With it, the second
        evaluation of the same arrays (a trainer's train and test sets) is
        captured into a graph on buffers of its own, and it and every later
        one are that graph's replay and the copy: one launch instead of 1 + 2
        per chunk.
        """
        xp = self.xp
        dtype = float_dtype(params)
        if (
            dtype is None
            or activation not in ("relu", "sigmoid")
            or x.dtype != dtype
            or x.ndim != 2
            or not x.flags.c_contiguous
            or x.shape[0] == 0
            or x.shape[1] != params["W1"].shape[0]
        ):
            return None
        W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
        n, m, c = x.shape[0], W1.shape[1], W2.shape[1]
        if t.shape == (n,) and t.dtype.kind in "iu":
            labels = t
        elif t.shape == (n, c):
            labels = xp.argmax(t, axis=1)
        else:
            return None
        if labels.dtype != np.int64 or not labels.flags.c_contiguous:
            labels = xp.ascontiguousarray(labels, dtype=np.int64)
        rows = min(n, chunk)
        args = (x, labels, (W1, b1, W2, b2), activation, chunk)
        replay = None
        if capture is not None and labels is t:
            replay = self._eval_graph(args, rows, dtype, capture)
        if replay is not None:
            replay.graph.launch()
            counts = replay.counts
        else:
            key = ("eval", rows, m, dtype.name)
            h = self._scratch(key, {"h": ((rows, m), dtype)})["h"]
            counts = xp.empty(2, dtype=np.uint64)
            self._count(*args, h, counts)
        correct, fired = (int(v) for v in xp.asnumpy(counts))  # the one copy
        return correct, activation == "sigmoid" or fired > 0

    def _count(self, x, labels, params, activation, chunk, h, counts) -> None:
        """Queue the evaluation: zero ``counts``, then per chunk a product
        into ``h`` and the kernel adding into ``counts``."""
        W1, b1, W2, b2 = params
        n, m, c = x.shape[0], W1.shape[1], W2.shape[1]
        name = f"count_correct_{DTYPE_SUFFIX[x.dtype.name]}"
        counts.fill(0)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            hc = h[: stop - start]
            self._gemm("N", "N", x[start:stop], W1, hc)
            self._launch(
                "two_layer_eval.cu",
                name,
                stop - start,
                hc,
                b1,
                W2,
                b2,
                labels[start:stop],
                counts,
                np.int64(stop - start),
                np.int64(m),
                np.int64(c),
                np.int64(activation == "sigmoid"),
            )

    def _eval_graph(self, args, rows, dtype, capture):
        """The evaluation graph of these arrays once they come a second time
        (captured then), or None (first time, no graphs, or capture failed)."""
        x, labels, params, activation, chunk = args
        key = (id(x), id(labels), *(id(p) for p in params), activation, chunk)
        graphs = getattr(self._local, "eval_graphs", None)
        if graphs is None:
            graphs = self._local.eval_graphs = {}
        entry = graphs.get(key)
        if entry is None:
            if len(graphs) >= 4:
                graphs.clear()  # the entries hold their arrays: keep a few
            # Seen once; the arrays ride along so that their ids stay theirs.
            graphs[key] = _EvalGraph(args)
            return None
        if entry.graph is None:
            xp = self.xp
            entry.h = xp.empty((rows, params[0].shape[1]), dtype=dtype)
            entry.counts = xp.empty(2, dtype=np.uint64)
            graph = capture(lambda: self._count(*args, entry.h, entry.counts))
            entry.graph = graph if graph is not None else False
        return entry if entry.graph else None

    def numerical_gradient(self, params, x, t, activation) -> dict | None:
        """Central-difference gradients of TwoLayerNet's loss, or None: see
        `backend.cupy.numgrad.numerical_gradient`."""
        return numgrad.numerical_gradient(self, params, x, t, activation)


class _EvalGraph:
    """A captured evaluation: its arrays, buffers and graph (False: none)."""

    def __init__(self, args):
        self.args, self.graph, self.h, self.counts = args, None, None, None
