"""A CuPy stand-in for tests: CuPy's documented behaviour on host memory.

The shim takes it for CuPy, so the CuPy backend, ``nn`` and the CLIs run
their GPU code paths without a GPU. What it keeps from CuPy (each checked
against CuPy 14's source or its "Differences between CuPy and NumPy" page):

* `ndarray` wraps a NumPy array (no subclass); its type's module is
  ``cupy``, which is how ``backend._is_cupy_array`` recognises device arrays.
* No implicit conversion: ``np.asarray(a)`` / ``a.__array__()`` raise
  ``TypeError``. ``.get()``, ``.item()``, ``.tolist()``, ``float()``,
  ``int()``, ``bool()``, ``repr()`` and `asnumpy` copy to the host and
  wait (``float()`` of a non-0-d array then fails as NumPy's does: CuPy calls
  ``float(self.get())``).
* Ufuncs and kernels accept device arrays and scalars only: a host
  ``numpy.ndarray`` operand is a ``TypeError`` ("Unsupported type").
* Integer array indices out of range wrap around (scalar indices still raise
  ``IndexError``); reductions and element access give 0-d device arrays.
* ``add.at``, ``add.reduceat`` (add only, as in CuPy), ``RawModule`` /
  ``RawKernel`` (the real CUDA source compiled for the host, see
  `cupy_standin.hostcc`; scalar arguments must have the parameter's exact
  type: Python int is int64 and float is float64, as CuPy passes them),
  ``cuda.runtime``, ``cuda.nvrtc``, ``cuda.cublas``, ``cuda.Device``,
  ``cuda.Stream`` and ``cuda.get_current_stream()``.

It counts, in `counters`: ``launches`` (one per array operation that
writes new device memory: an elementwise op, a reduction, a gather, a
``matmul``, a ``RawKernel`` call; views and ``empty`` are free; CuPy itself
may split one operation into several kernels, so this is a lower bound),
``h2d`` (host data made a device array, including host index arrays),
``d2h`` and ``syncs`` (every wait for the device, including the hidden one
of boolean-mask indexing and ``flatnonzero``, whose output size CuPy must
read back). Use::

    with cupy_standin.counting() as c:
        net.train_step(x, t, lr)
    assert c.syncs == 0

Only the functions in `FUNCTIONS` exist (each is in CuPy 14's namespace;
``tests/backend/test_cupy_standin.py`` checks that against real CuPy), so code
that calls something CuPy lacks fails here too. Failures for detection tests:
`failing` (e.g. ``failing("cublas", ImportError(...))``).
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import sys
import types

import numpy as np

__version__ = "14.2.0"  # the CuPy release whose API this imitates
#: Marks the stand-in (real CuPy has no such attribute).
STANDIN = True


class Counters:
    """Launches, host-to-device / device-to-host copies and synchronisations.

    A graph launch counts as one launch (what the host pays); the work it
    replays is not counted again.
    """

    FIELDS = ("launches", "h2d", "d2h", "syncs")

    def __init__(self):
        self._launches = 0
        self.reset()

    @property
    def launches(self) -> int:
        return self._launches

    @launches.setter
    def launches(self, value: int) -> None:
        # Every eager operation counts its launch here: during a capture, one
        # that the stand-in does not record would run now instead of at replay.
        if value > self._launches:
            _refuse_in_capture("this operation")
        self._launches = value

    def reset(self) -> None:
        self.launches = self.h2d = self.d2h = self.syncs = 0

    def snapshot(self) -> dict:
        return {f: getattr(self, f) for f in self.FIELDS}

    def __repr__(self) -> str:
        return (
            "Counters("
            + ", ".join(f"{k}={v}" for k, v in self.snapshot().items())
            + ")"
        )


#: The process-wide counters.
counters = Counters()


class _Delta:
    """What happened inside a `counting` block (live until it ends)."""

    def __init__(self):
        self._start = counters.snapshot()
        self._end = None

    def __getattr__(self, name):
        if name not in Counters.FIELDS:
            raise AttributeError(name)
        now = self._end or counters.snapshot()
        return now[name] - self._start[name]

    def snapshot(self) -> dict:
        return {f: getattr(self, f) for f in Counters.FIELDS}

    def __repr__(self) -> str:
        return (
            "Delta(" + ", ".join(f"{k}={v}" for k, v in self.snapshot().items()) + ")"
        )


@contextlib.contextmanager
def counting():
    """Yield the counts of the operations run inside the ``with`` block."""
    delta = _Delta()
    try:
        yield delta
    finally:
        delta._end = counters.snapshot()


#: While True (see ``dry_run``), kernels and products are counted and
#: their arguments checked, but their work is skipped.
_DRY = False


@contextlib.contextmanager
def dry_run():
    """Skip the work of kernels, cuBLAS products and graph replays inside the
    block (their launches are still counted and checked): what is left is the
    host's own time, for ``bench/gpu_host_time.py``. Results are garbage."""
    global _DRY
    _DRY = True
    try:
        yield
    finally:
        _DRY = False


def _sync() -> None:
    stream = cuda._stream
    if stream._recording is not None:
        # cudaStreamSynchronize on a capturing stream: an error that also
        # invalidates the capture (end_capture then fails too).
        stream._invalidate(CUDARuntimeError(900))
    counters.syncs += 1


def _to_host(a: np.ndarray) -> np.ndarray:
    _refuse_copy("D2H")
    counters.d2h += 1
    _sync()
    return a.copy()


# -- the array ----------------------------------------------------------------
class ndarray:  # noqa: N801 (CuPy's name)
    """A device array: a NumPy array that only the stand-in's functions read."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, *, _data=None):
        self._a = np.empty(shape, dtype) if _data is None else _data

    # attributes that need no device access
    shape = property(lambda s: s._a.shape)
    dtype = property(lambda s: s._a.dtype)
    ndim = property(lambda s: s._a.ndim)
    size = property(lambda s: s._a.size)
    itemsize = property(lambda s: s._a.itemsize)
    nbytes = property(lambda s: s._a.nbytes)
    strides = property(lambda s: s._a.strides)
    flags = property(lambda s: s._a.flags)
    T = property(lambda s: _wrap(s._a.T))
    data = property(lambda s: types.SimpleNamespace(ptr=s._a.ctypes.data))
    device = property(lambda s: cuda.Device(0))

    # explicit transfers
    def get(self, stream=None, order="C", out=None, blocking=True):
        host = _to_host(self._a)
        if out is not None:
            out[...] = host
            return out
        return host

    def set(self, arr, stream=None):
        _refuse_copy("H2D")
        counters.h2d += 1
        self._a[...] = arr

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return _to_host(self._a).item()

    def tolist(self):
        return _to_host(self._a).tolist()

    # implicit conversion: refused, or a hidden copy and wait (as in CuPy)
    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly."
        )

    def __float__(self):
        return float(self.get())

    def __int__(self):
        return int(self.get())

    def __complex__(self):
        return complex(self.get())

    def __bool__(self):
        if self.size == 0:
            return False
        if self.size == 1:
            return bool(self.get())
        raise ValueError(
            "The truth value of an array with more than one element is "
            "ambiguous. Use a.any() or a.all()"
        )

    def __repr__(self):
        return repr(self.get())

    def __str__(self):
        return str(self.get())

    def __format__(self, spec):
        return format(self.get(), spec)

    def __reduce__(self):
        return array, (self.get(),)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # indexing
    def __getitem__(self, key):
        key, gather = _index(key, self.shape)
        out = self._a[key]
        if gather:
            counters.launches += 1
        return _wrap(out)

    def __setitem__(self, key, value):
        key, _ = _index(key, self.shape)
        if isinstance(value, np.ndarray):
            _refuse_copy("H2D")
            counters.h2d += 1
        target, source = self._a, _operand(value, allow_host=True)
        if _record(lambda: target.__setitem__(key, source)):
            return
        target[key] = source
        counters.launches += 1

    # methods
    def copy(self, order="C"):
        counters.launches += 1
        return _wrap(self._a.copy(order=order))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        out = self._a.astype(dtype, order=order, copy=copy)
        if out is not self._a:
            counters.launches += 1
        return _wrap(out)

    def fill(self, value):
        if _record(lambda: self._a.fill(value)):
            return
        counters.launches += 1
        self._a.fill(value)

    def argsort(self, axis=-1, kind=None):
        return argsort(self, axis=axis, kind=kind)

    def sort(self, axis=-1, kind=None):
        """In place, as ``numpy.ndarray.sort``; stable as CuPy's."""
        _stable("sort", method=True)(self, axis=axis, kind=kind)

    def __getattr__(self, name):
        if name not in METHODS:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        method = getattr(self._a, name)
        return lambda *args, **kwargs: _call(method, args, kwargs, (self._a,))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # numpy.exp(device_array) and numpy scalar <op> device array run here.
        mine = globals().get(ufunc.__name__)
        if method != "__call__" or not isinstance(mine, _Ufunc):
            return NotImplemented
        return mine(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        mine = FUNCTIONS.get(func.__name__) and globals()[func.__name__]
        return mine(*args, **kwargs) if mine else NotImplemented


# This is what makes the shim (and error messages) take it for cupy.ndarray.
ndarray.__module__ = "cupy"

#: Array methods that compute (each one launch unless the result is a view).
METHODS = frozenset(
    "sum mean max min argmax argmin cumsum prod any all std var clip take "
    "reshape ravel flatten transpose squeeze swapaxes view nonzero round dot".split()
)

_BINARY = "add sub mul truediv floordiv mod pow matmul and or xor lt le eq ne gt ge"
for _name in _BINARY.split():
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if not hasattr(np.ndarray, _form):
            continue

        def _binop(self, other, _form=_form):
            result = getattr(self._a, _form)(_operand(other))
            if result is NotImplemented:
                return NotImplemented
            counters.launches += 1
            return self if _form.startswith("__i") else _wrap(result)

        setattr(ndarray, _form, _binop)
for _form in ("__neg__", "__pos__", "__abs__", "__invert__"):

    def _unop(self, _form=_form):
        counters.launches += 1
        return _wrap(getattr(self._a, _form)())

    setattr(ndarray, _form, _unop)


def _wrap(out):
    """Device arrays from NumPy results; NumPy scalars become 0-d arrays."""
    if isinstance(out, np.ndarray):
        return ndarray(out.shape, out.dtype, _data=out)
    if isinstance(out, np.generic):
        return ndarray((), out.dtype, _data=np.asarray(out))
    if isinstance(out, tuple):
        return tuple(_wrap(o) for o in out)
    return out


def _operand(x, allow_host=False):
    """The NumPy array behind a device array; scalars pass; host arrays fail."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray) and not allow_host:
        raise TypeError(f"Unsupported type {type(x)}")
    return x


def _index(key, shape):
    """NumPy's index for ``key``, integer arrays wrapped around as CuPy does,
    and whether it gathers (advanced indexing: a kernel launch)."""
    key = key if isinstance(key, tuple) else (key,)
    used = builtins.sum(
        getattr(k, "ndim", 1) if _is_bool(k) else 1
        for k in key
        if k is not None and k is not Ellipsis
    )
    out, axis, gather = [], 0, False
    for k in key:
        if k is None or k is Ellipsis:
            axis += (len(shape) - used) if k is Ellipsis else 0
            out.append(k)
            continue
        if isinstance(k, (list, np.ndarray)):
            k = np.asarray(k)
            counters.h2d += 1  # CuPy copies a host index array to the device
        elif isinstance(k, ndarray):
            k = k._a
        if isinstance(k, np.ndarray) and k.dtype.kind == "b":
            _sync()  # the number of selected elements is read back
            counters.d2h += 1
            gather, axis = True, axis + k.ndim
        elif isinstance(k, np.ndarray):
            gather = True
            if k.dtype.kind in "iu" and axis < len(shape) and shape[axis] > 0:
                k = k % shape[axis]
            axis += 1
        else:
            axis += 1
        out.append(k)
    return tuple(out), gather


def _is_bool(k) -> bool:
    data = k._a if isinstance(k, ndarray) else k
    return isinstance(data, np.ndarray) and data.dtype.kind == "b"


def _shares(out, inputs) -> bool:
    return isinstance(out, np.ndarray) and builtins.any(
        isinstance(a, np.ndarray) and np.may_share_memory(out, a) for a in inputs
    )


def _call(fn, args, kwargs, inputs=()):
    """Run a NumPy function on device operands; count a launch unless it only
    made a view of an input (``out=`` always counts). During a capture, a
    call with ``out=`` is recorded for the replay; any other that is not a
    view refuses (it would allocate)."""
    args = [_operand(a) for a in args]
    if "out" in kwargs and kwargs["out"] is not None:
        kwargs["out"] = _operand(kwargs["out"])
        if _record(lambda: fn(*args, **kwargs)):
            return _wrap(kwargs["out"])
    result = fn(*args, **kwargs)
    operands = [a for a in (*inputs, *args) if isinstance(a, np.ndarray)]
    first = result[0] if isinstance(result, tuple) and result else result
    if "out" in kwargs or not _shares(first, operands):
        counters.launches += 1
    return _wrap(result)


# -- ufuncs -------------------------------------------------------------------
class _Ufunc:
    """A CuPy ufunc: call, ``reduce``/``accumulate`` (add, multiply), ``at``
    and ``reduceat`` (add only, as CuPy 14 implements them)."""

    def __init__(self, name):
        self._np = getattr(np, name)
        self.__name__ = name
        self.nin, self.nout = self._np.nin, self._np.nout

    def __repr__(self):
        return f"<ufunc 'cupy_{self.__name__}'>"

    def __call__(self, *args, **kwargs):
        for a in args:
            if isinstance(a, (list, tuple)):
                raise TypeError(f"Unsupported type {type(a)}")  # as CuPy's ufuncs
        return _call(self._np, args, kwargs)

    def _only(self, names, method):
        if self.__name__ not in names:
            raise NotImplementedError(
                f"`{self.__name__}.{method}` is not supported yet"
            )

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        self._only(("add", "multiply"), "reduce")
        return _call(
            self._np.reduce, (array,), dict(axis=axis, dtype=dtype, keepdims=keepdims)
        )

    def accumulate(self, array, axis=0, dtype=None, out=None):
        self._only(("add", "multiply"), "accumulate")
        return _call(self._np.accumulate, (array,), dict(axis=axis, dtype=dtype))

    def reduceat(self, array, indices, axis=0, dtype=None, out=None):
        """CuPy's algorithm (``_routines_indexing.pyx: _add_reduceat``): a
        cumulative sum with a zero prepended, differenced at the indices, so
        its rounding is CuPy's, not NumPy's direct sums."""
        self._only(("add",), "reduceat")
        a = array._a
        idx = _operand(indices) if isinstance(indices, ndarray) else np.asarray(indices)
        axis = axis % a.ndim
        bounds = np.append(idx, a.shape[axis])
        acc = np.cumsum(a, axis=axis, dtype=dtype)
        zero = np.zeros(
            [1 if i == axis else n for i, n in enumerate(a.shape)], acc.dtype
        )
        acc = np.concatenate([zero, acc], axis=axis)
        mask = (bounds[:-1] >= bounds[1:]).reshape(-1, *([1] * (a.ndim - axis - 1)))
        sums = np.take(acc, bounds[1:], axis) - np.take(acc, bounds[:-1], axis)
        counters.launches += 6  # append, cumsum, append, compare, takes, where
        return _wrap(np.where(mask, np.take(a, bounds[:-1], axis), sums))

    def at(self, a, indices, b=None):
        self._only(("add", "subtract", "maximum", "minimum"), "at")
        key, _ = _index(indices, a.shape)
        args = (a._a, key) if b is None else (a._a, key, _operand(b))
        self._np.at(*args)
        counters.launches += 1


UFUNCS = (
    "add subtract multiply divide true_divide floor_divide power negative "
    "absolute maximum minimum exp log sqrt square tanh greater greater_equal "
    "less less_equal equal not_equal logical_and logical_or logical_not isfinite "
    "isnan isinf sign"
).split()
for _name in UFUNCS:
    globals()[_name] = _Ufunc(_name)
abs = absolute  # noqa: A001, F821 (CuPy's alias)

# -- functions ------------------------------------------------------------------
#: Creation functions: no device operands; ``empty*`` allocates without a launch.
_CREATE = "zeros ones full arange eye linspace empty".split()
_CREATE_LIKE = "zeros_like ones_like full_like empty_like".split()
#: Functions whose output size depends on the data: CuPy reads it back (a sync).
_SYNCING = {"flatnonzero", "nonzero", "unique", "argwhere"}
#: Functions taking a sequence of device arrays first.
_SEQUENCE = {"concatenate", "stack", "vstack", "hstack"}
_PLAIN = (
    "matmul dot sum mean max min amax amin argmax argmin cumsum prod any all std "
    "var clip where argsort sort take take_along_axis broadcast_to reshape ravel "
    "transpose squeeze expand_dims swapaxes moveaxis atleast_1d atleast_2d "
    "isclose allclose array_equal log1p expm1 round rint floor ceil outer"
).split()

#: Every function and ufunc the stand-in provides -> its kind.
FUNCTIONS = {
    **{n: "create" for n in _CREATE + _CREATE_LIKE},
    **{n: "plain" for n in _PLAIN},
    **{n: "syncing" for n in _SYNCING},
    **{n: "sequence" for n in _SEQUENCE},
    **{n: "ufunc" for n in UFUNCS},
    **{n: "meta" for n in ("shape", "ndim", "size")},
}


def _make(name, kind):
    fn = getattr(np, name)

    def create(*args, **kwargs):
        _refuse_in_capture(f"cupy.{name} (an allocation)")
        if name.endswith("_like"):
            args = (_operand(args[0]),) + args[1:]
        out = fn(*args, **kwargs)
        if not name.startswith("empty"):
            counters.launches += 1
        return _wrap(out)

    def plain(*args, **kwargs):
        return _call(fn, args, kwargs)

    def syncing(*args, **kwargs):
        out = _call(fn, args, kwargs)
        counters.d2h += 1
        _sync()
        return out

    def sequence(arrays, *args, **kwargs):
        counters.launches += 1
        return _wrap(fn([_operand(a) for a in arrays], *args, **kwargs))

    def meta(*args, **kwargs):  # shape, ndim, size: metadata, no device work
        return fn(*[_operand(a) for a in args], **kwargs)

    impl = {"create": create, "plain": plain, "syncing": syncing, "sequence": sequence}
    impl["meta"] = meta
    impl[kind].__name__ = name
    return impl[kind]


for _name, _kind in FUNCTIONS.items():
    if _kind != "ufunc":
        globals()[_name] = _make(_name, _kind)


def _stable(name, method=False):
    """CuPy's sort/argsort: always stable; ``kind`` other than None/'stable'
    is refused (cupy/_sorting/sort.py)."""

    def sort(a, axis=-1, kind=None):
        if kind not in (None, "stable"):
            raise ValueError(f"kind {kind!r} is not supported: CuPy's sort is stable")
        fn = getattr(_operand(a), name) if method else getattr(np, name)
        args = () if method else (_operand(a),)
        out = fn(*args, axis=axis, kind="stable")
        counters.launches += 1
        return _wrap(out if out is not None else a)

    return sort


argsort = _stable("argsort")
sort = _stable("sort")


# Scalar types and constants are NumPy's own in CuPy too (cupy.float32 is
# numpy.float32).
for _name in (
    "float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 "
    "bool_ complex64 complex128 dtype newaxis inf nan pi e intp finfo iinfo "
    "result_type can_cast promote_types"
).split():
    globals()[_name] = getattr(np, _name)


def asarray(a, dtype=None, order=None, *, blocking=False):
    """A device array: device input kept (cast if asked), host data copied once."""
    if isinstance(a, ndarray):
        return a.astype(dtype, copy=False) if dtype is not None else a
    if isinstance(a, (list, tuple)) and builtins.any(isinstance(v, ndarray) for v in a):
        stacked = stack(a)  # noqa: F821 (defined by the loop above)
        return stacked if dtype is None else stacked.astype(dtype, copy=False)
    _refuse_copy("H2D")
    counters.h2d += 1
    return _wrap(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(
    obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False
):
    if isinstance(obj, ndarray):
        out = obj._a.astype(dtype or obj.dtype, copy=copy)
        if out is not obj._a:
            counters.launches += 1
        return _wrap(out)
    _refuse_copy("H2D")
    counters.h2d += 1
    return _wrap(np.array(obj, dtype=dtype, order=order, ndmin=ndmin, copy=True))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}")
    return _call(np.ascontiguousarray, (a,), {"dtype": dtype})


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A host copy of a device array (a wait); host input passes through."""
    if isinstance(a, ndarray):
        return a.get(out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return _THIS if builtins.any(isinstance(a, ndarray) for a in args) else np


def is_available() -> bool:
    return cuda.runtime.getDeviceCount() > 0


# -- cuda ---------------------------------------------------------------------
class CUDARuntimeError(RuntimeError):
    """``cupy_backends.cuda.api.runtime.CUDARuntimeError``: has ``status``."""

    #: status -> (cudaGetErrorName, cudaGetErrorString), as CuPy formats them.
    NAMES = {
        2: ("cudaErrorMemoryAllocation", "out of memory"),
        3: ("cudaErrorInitializationError", "initialization error"),
        35: (
            "cudaErrorInsufficientDriver",
            "CUDA driver version is insufficient for CUDA runtime version",
        ),
        100: ("cudaErrorNoDevice", "no CUDA-capable device is detected"),
        101: ("cudaErrorInvalidDevice", "invalid device ordinal"),
        700: ("cudaErrorIllegalAddress", "an illegal memory access was encountered"),
        900: (
            "cudaErrorStreamCaptureUnsupported",
            "operation not permitted when stream is capturing",
        ),
        901: (
            "cudaErrorStreamCaptureInvalidated",
            "operation failed due to a previous error during capture",
        ),
    }

    def __init__(self, status: int, message: str | None = None):
        self.status = status
        name, text = self.NAMES.get(status, ("cudaErrorUnknown", "unknown error"))
        super().__init__(f"{name}: {message or text}")


_failures: dict[str, BaseException] = {}


@contextlib.contextmanager
def failing(what: str, exc: BaseException):
    """Make one part of CUDA fail inside the block, for detection tests.

    what: ``"runtime"`` (getDeviceCount raises ``exc``), ``"nvrtc"``
    (nvrtc.getVersion raises), ``"cublas"`` (``cuda.cublas`` raises, as CuPy 14's
    lazy loader does when libcublas is missing), ``"matmul"``, ``"kernel"``
    (RawModule compile/launch), ``"sync"`` (stream synchronisation),
    ``"capture"`` (``Stream.begin_capture``) or ``"graph"`` (``Graph.launch``).
    """
    _failures[what] = exc
    try:
        yield
    finally:
        _failures.pop(what, None)


def _maybe_fail(what: str) -> None:
    if what in _failures:
        raise _failures[what]


class _Runtime:
    CUDARuntimeError = CUDARuntimeError
    #: What the fake driver and runtime report (CUDA 13.0; tests may change them).
    driver_version = 13000
    runtime_version = 13000
    device_count = 1
    properties = {"name": b"xpnet CuPy stand-in (host)", "major": 9, "minor": 0}

    def getDeviceCount(self):  # noqa: N802 (CuPy's names)
        _maybe_fail("runtime")
        return self.device_count

    def driverGetVersion(self):  # noqa: N802
        return self.driver_version

    def runtimeGetVersion(self):  # noqa: N802
        return self.runtime_version

    def getDeviceProperties(self, device):  # noqa: N802
        if not 0 <= device < self.device_count:
            raise CUDARuntimeError(101, "invalid device ordinal")
        return dict(self.properties)

    def deviceSynchronize(self):  # noqa: N802
        _maybe_fail("sync")
        _sync()

    def streamIsCapturing(self, stream):  # noqa: N802
        return _STREAMS[int(stream)]._recording is not None


class _Nvrtc:
    def getVersion(self):  # noqa: N802
        _maybe_fail("nvrtc")
        return (13, 0)


class Stream:
    """``cupy.cuda.Stream``: ``synchronize()``, ``use()``, ``with stream:`` and
    stream capture into a ``Graph`` (CuPy 14's ``cupy/cuda/stream.pyx``).

    ``begin_capture`` refuses the legacy default stream, as CuPy does. While
    the current stream captures, the stand-in records what CUDA would record
    (RawKernel launches, cuBLAS calls, writes into existing arrays) and runs
    none of it; ``Graph.launch`` replays it. What CUDA or CuPy refuses
    during a capture raises as they do: a synchronisation is CUDA's
    ``cudaErrorStreamCaptureUnsupported`` and invalidates the capture
    (``end_capture`` then raises ``cudaErrorStreamCaptureInvalidated``); a
    host copy is CuPy's ``RuntimeError`` ("the current stream is capturing,
    so D2H/H2D transfers are disallowed"); a cuBLAS call through CuPy's
    binding is its ``NotImplementedError``. Stricter than CuPy: an allocation
    (or any operation the stand-in cannot record) raises ``RuntimeError``.
    CuPy's pool allows it in its default relaxed capture mode, but the graph
    would then keep using memory that the pool may hand out again once the
    array is freed; xpnet's captured code must use buffers allocated before.
    """

    _next_ptr = 16

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.null = null
        self.non_blocking = non_blocking
        self._previous = []
        self._recording = None
        self._error = None
        if null:
            self.ptr = 0
        else:
            self.ptr, Stream._next_ptr = Stream._next_ptr, Stream._next_ptr + 16
        _STREAMS[self.ptr] = self

    def synchronize(self):
        _maybe_fail("sync")
        if self._recording is not None:
            self._invalidate(CUDARuntimeError(900))
        _sync()

    def use(self):
        cuda._stream = self
        return self

    def __enter__(self):
        self._previous.append(cuda._stream)
        return self.use()

    def __exit__(self, *exc):
        cuda._stream = self._previous.pop()

    def begin_capture(self, mode=None):
        if self.ptr in (0, 1):
            raise RuntimeError("cannot capture on the default (legacy) stream")
        _maybe_fail("capture")
        self._recording, self._error = [], None

    def end_capture(self):
        nodes, error = self._recording, self._error
        self._recording = self._error = None
        if nodes is None:
            raise CUDARuntimeError(400, "the stream is not capturing")
        if error is not None:
            raise CUDARuntimeError(901) from error
        return Graph(nodes)

    def is_capturing(self):
        return self._recording is not None

    def _invalidate(self, exc):
        self._error = exc
        raise exc


#: Streams by ``ptr`` (``runtime.streamIsCapturing`` looks them up).
_STREAMS: dict = {}


class Graph:
    """``cupy.cuda.graph.Graph``: what a capture recorded; ``launch`` replays
    it (one launch for the host), ``upload`` does nothing here."""

    def __init__(self, nodes):
        self._nodes = list(nodes)

    def launch(self, stream=None):
        _maybe_fail("graph")
        _refuse_in_capture("a graph launch")
        counters.launches += 1
        for node in self._nodes:
            node()

    def upload(self, stream=None):
        pass


def _capturing():
    """The current stream's recording list, or None."""
    return cuda._stream._recording


def _record(node) -> bool:
    """Record ``node`` if the current stream captures; True if it did."""
    nodes = _capturing()
    if nodes is None:
        return False
    nodes.append(node)
    return True


def _refuse_in_capture(what: str) -> None:
    stream = cuda._stream if "cuda" in globals() else None
    if stream is not None and stream._recording is not None:
        exc = RuntimeError(
            f"{what} during stream capture: the stand-in records only kernel "
            "launches, cuBLAS calls and writes into existing arrays (allocate "
            "buffers before the capture)"
        )
        stream._error = stream._error or exc
        raise exc


def _refuse_copy(direction: str) -> None:
    # CuPy's check in cupy/cuda/memory.pyx (MemoryPointer.copy_from_host_async,
    # copy_to_host_async): it raises before calling CUDA.
    if "cuda" in globals() and _capturing() is not None:
        raise RuntimeError(
            f"the current stream is capturing, so {direction} transfers are disallowed"
        )


class Device:
    """``cupy.cuda.Device(id)``: ``use()``, ``synchronize()``, compute capability."""

    def __init__(self, device=0):
        self.id = device

    def use(self):
        cuda.runtime.getDeviceProperties(self.id)

    def synchronize(self):
        _maybe_fail("sync")
        _sync()

    @property
    def compute_capability(self):
        p = cuda.runtime.properties
        return f"{p['major']}{p['minor']}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class _Cuda:
    """The ``cupy.cuda`` namespace (the part xpnet uses)."""

    Stream, Device = Stream, Device
    graph = types.SimpleNamespace(Graph=Graph)
    CUDARuntimeError = CUDARuntimeError

    def __init__(self):
        self.runtime = _Runtime()
        self.nvrtc = _Nvrtc()
        self._stream = Stream(null=True)

    @property
    def cublas(self):
        # CuPy 14 loads libcublas on first access of cupy.cuda.cublas (the
        # low-level binding, cupy_backends.cuda.libs.cublas).
        _maybe_fail("cublas")
        return _cublas_binding

    def get_current_stream(self, device_id=-1):
        return self._stream


cuda = _Cuda()
Stream.null = cuda._stream


def _matmul(a, b, out=None, **kwargs):
    _maybe_fail("matmul")
    return _call(np.matmul, (a, b), {} if out is None else {"out": out})


matmul = _matmul
matmul.__name__ = "matmul"


class RawKernel:
    """``cupy.RawKernel(code, name)``; call as ``kernel(grid, block, args)``."""

    def __init__(self, code, name, options=(), backend="nvrtc", *, jitify=False, **_):
        self._module = RawModule(code=code, options=options)
        self.name = name
        self._fn = None

    def __call__(self, grid, block, args, *, shared_mem=0):
        if self._fn is None:
            self._fn = self._module.get_function(self.name)
        self._fn(grid, block, args, shared_mem=shared_mem)


#: Host builds by source: each is compiled (and cached on disk) once per process.
_HOST_MODULES: dict = {}


class RawModule:
    """``cupy.RawModule(code=...)``: the CUDA source compiled for the host on first
    ``get_function`` (NVRTC too compiles lazily and caches)."""

    def __init__(self, *, code=None, path=None, options=(), backend="nvrtc", **_):
        if (code is None) == (path is None):
            raise TypeError("One of code and path must be given")
        self.code = code if code is not None else open(path).read()
        self.options = tuple(options)
        self._host = None

    def get_function(self, name):
        _maybe_fail("kernel")
        if self._host is None:
            if self.code not in _HOST_MODULES:
                from cupy_standin.hostcc import HostModule

                _HOST_MODULES[self.code] = HostModule(self.code)
            self._host = _HOST_MODULES[self.code]
        if name not in self._host.kernels:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found ({name})")
        return _Function(self._host, name)


class _Function:
    def __init__(self, host, name):
        self.name = name
        self.params = host.kernels[name]
        self._fn = host.function(name, self.params)

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        _maybe_fail("kernel")
        if len(args) != len(self.params):
            raise TypeError(
                f"{self.name} takes {len(self.params)} arguments, got {len(args)}"
            )
        grid3 = _dim3(grid)
        block3 = _dim3(block)
        converted = [
            _argument(p, a, self.name, i)
            for i, (p, a) in enumerate(zip(self.params, args, strict=True))
        ]
        fn = self._fn
        if _record(lambda: _DRY or fn(grid3, block3, *converted)):
            return  # pointers and scalars as they are now, as CUDA records them
        counters.launches += 1
        if not _DRY:
            fn(grid3, block3, *converted)


def _dim3(shape):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return (ctypes.c_uint * 3)(*(tuple(int(s) for s in shape) + (1, 1, 1))[:3])


def _argument(param, value, kernel, i):
    where = f"argument {i} ({param.decl}) of {kernel}"
    if param.pointer:
        if isinstance(value, np.ndarray):
            raise TypeError(
                f"{where}: a numpy.ndarray passed where the kernel reads device memory"
            )
        if not isinstance(value, ndarray):
            raise TypeError(
                f"{where}: expected a cupy.ndarray, got {type(value).__name__}"
            )
        if not value._a.flags.c_contiguous:
            raise ValueError(f"{where}: the kernel assumes a C-contiguous array")
        if value.dtype != np.dtype(param.dtype):
            raise TypeError(
                f"{where}: array of {value.dtype}, kernel reads {param.dtype}"
            )
        return value._a.ctypes.data
    # CuPy passes a scalar by its own type: Python int as int64, float as float64.
    kind = {int: "int64", float: "float64", bool: "bool"}.get(type(value))
    if kind is None and isinstance(value, np.generic):
        kind = value.dtype.name
    if kind != param.dtype:
        raise TypeError(
            f"{where}: got {type(value).__name__} ({kind}); the kernel would misread it"
        )
    return value.item() if isinstance(value, np.generic) else value


# ``cupy.cublas`` (gemm, for the fused step): in CuPy a submodule that ``import
# cupy`` does not load (the backend imports it by name); bound here because the
# stand-in is never importable as ``cupy.cublas``.
from cupy_standin import cublas as cublas  # noqa: E402
from cupy_standin import cublas_binding as _cublas_binding  # noqa: E402

_THIS = sys.modules[__name__]
# Last, so that the functions above keep this module's name (pickles of device
# arrays refer to cupy_standin.array): code that reads ``xp.__name__``, as the
# backend and the tests do, sees what real CuPy says.
__name__ = "cupy"  # noqa: A001
