"""The ``xp`` backend shim: the one place where the array library is chosen.

A backend is an object with ``name``, ``xp`` (the array module), host
conversions (``asarray``, ``asnumpy``) and the kernels ``matmul``, ``softmax``
and ``numerical_gradient``. ``nn`` is written only against this module::

    import backend as B
    xp = B.get_array_module(x)
    y = B.matmul(x, W)

Selection order: [`use`][backend.use] (the CLI's ``--device``), then the environment
variable ``XPNET_BACKEND``, then ``"numpy"``. The GPU is never chosen just
because CuPy imports: only an explicit ``"cupy"`` or ``"auto"`` does.
"""

from __future__ import annotations

import importlib
import os
import warnings

# The one place this default is set. Numba's OpenMP workers spin after each
# parallel region by default; on a small or busy machine they then steal the
# cores from OpenBLAS and make later NumPy matmuls up to ~100x slower. Passive
# waiting must be set before libgomp starts (at Numba's first parallel call);
# the user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from backend.base import Backend, BackendUnavailableError  # noqa: E402
from backend.constants import CE_DELTA, H  # noqa: E402

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "CE_DELTA",
    "DEFAULT_DTYPE",
    "H",
    "NAMES",
    "backend_for",
    "canonical_name",
    "choose_auto",
    "current",
    "default_rng",
    "get_array_module",
    "get_backend",
    "matmul",
    "numerical_gradient",
    "select",
    "softmax",
    "synchronize",
    "to_numpy",
    "use",
]

#: The library's default floating dtype, as in the book (gradient checks need it).
DEFAULT_DTYPE = "float64"


_ALIASES = {"cpu": "numpy", "cuda": "cupy", "gpu": "cupy"}
_instances: dict[str, Backend] = {}
_current: Backend | None = None


#: The registry: each backend name and the module (one folder) that defines it
#: as ``BACKEND``. Adding a backend is a new folder and one entry here.
_REGISTRY = {
    "numpy": "backend.numpy",
    "numba": "backend.numba",
    "cupy": "backend.cupy",
}

#: Backend names accepted by `get_backend` and `use`.
NAMES = (*_REGISTRY, "auto")
#: What ``auto`` tries, fastest first.
_AUTO_ORDER = ("cupy", "numba", "numpy")

#: Modules whose ``auto_skip_reason()`` says, without importing the backend's
#: library, that ``auto`` need not try it here (None: worth a try).
_AUTO_PROBES = {"cupy": "backend.cupy.detect"}

#: The pip extra that provides each optional backend's library.
_EXTRAS = {"numba": '"xpnet[numba]"', "cupy": '"xpnet[cuda13]" (or "xpnet[cuda12]")'}


def _load(name: str) -> Backend:
    """Instantiate a concrete backend; import its library lazily."""
    if name not in _instances:
        try:
            module = importlib.import_module(_REGISTRY[name])
            cls = module.BACKEND
        except ImportError as exc:
            # A backend module that imports its library at the top fails here,
            # before its own friendlier check runs: name the extra all the same.
            raise BackendUnavailableError(
                f"the {name} backend cannot be imported ({exc}); "
                f"pip install {_EXTRAS.get(name, 'xpnet')}"
            ) from exc
        _instances[name] = cls()
    return _instances[name]


def choose_auto() -> tuple[Backend, str]:
    """The backend ``auto`` picks, and in a few words why (``""``: the fastest).

    CUDA if CuPy and a GPU are usable, else Numba if installed, else NumPy.
    A backend whose module says it cannot apply here (``auto_skip_reason``:
    CuPy on a machine without an NVIDIA driver) is not even imported.
    """
    chosen, skipped, failed = _choose_auto()
    return chosen, "; ".join(skipped + failed)


def _choose_auto() -> tuple[Backend, list, list]:
    """-> (backend, reasons for backends skipped, for backends that failed)."""
    skipped, failed = [], []
    for name in _AUTO_ORDER:
        probe = _AUTO_PROBES.get(name)
        if probe is not None and name not in _instances:
            reason = importlib.import_module(probe).auto_skip_reason()
            if reason is not None:
                skipped.append(reason)
                continue
        try:
            return _load(name), skipped, failed
        except BackendUnavailableError as exc:
            failed.append(f"{name}: {exc}")
    raise AssertionError("unreachable: the numpy backend always loads")


def _auto() -> Backend:
    """[`choose_auto`][backend.choose_auto]'s backend. Passing over a faster
    backend that could run here warns once, naming why (a machine without an
    NVIDIA GPU is no reason to warn)."""
    chosen, _, failed = _choose_auto()
    if failed:
        warnings.warn(
            f"--device auto chose {chosen.name} ({'; '.join(failed)})",
            RuntimeWarning,
            stacklevel=3,
        )
    return chosen


def select(name: str) -> tuple[Backend, str]:
    """[`use`][backend.use] ``name`` and return it with the line a command line
    prints once: ``backend: numba (...; --device auto: no NVIDIA GPU found)``.

    For ``auto`` the line says why a faster backend was not chosen, in the
    words of [`choose_auto`][backend.choose_auto]; never a warning.
    """
    if canonical_name(name) == "auto":
        chosen, why = choose_auto()
        use(chosen)
        note = f"--device auto: {why}" if why else "--device auto"
        text = chosen.describe()
        text = f"{text[:-1]}; {note})" if text.endswith(")") else f"{text} ({note})"
        return chosen, f"backend: {text}"
    chosen = use(name)
    return chosen, f"backend: {chosen.describe()}"


def canonical_name(name: str) -> str:
    """Map a device or backend name (``cpu``, ``cuda``, ...) to a backend name."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in NAMES:
        valid = ", ".join(NAMES + tuple(_ALIASES))
        raise ValueError(f"unknown backend {name!r}; valid names are: {valid}")
    return key


def get_backend(name: str | Backend | None = None) -> Backend:
    """Return the backend called ``name`` (``None``: the current one).

    Raises ``ValueError`` for an unknown name and
    [`BackendUnavailableError`][backend.BackendUnavailableError] (naming the extra
    to install) when the backend's library or device is missing.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        return current()
    key = canonical_name(name)
    return _auto() if key == "auto" else _load(key)


def use(name: str | Backend) -> Backend:
    """Make ``name`` the process-wide default backend and return it."""
    global _current
    _current = get_backend(name)
    return _current


def current() -> Backend:
    """The process default: set by [`use`][backend.use], else ``$XPNET_BACKEND``,
    else numpy."""
    global _current
    if _current is None:
        name = os.environ.get("XPNET_BACKEND", "").strip() or "numpy"
        try:
            _current = get_backend(name)
        except ValueError as exc:
            raise ValueError(f"XPNET_BACKEND={name!r}: {exc}") from None
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(f"XPNET_BACKEND={name!r}: {exc}") from exc
    return _current


def _is_cupy_array(a) -> bool:
    # Detect CuPy arrays by their type's module so that CuPy is never imported
    # just to look at an argument.
    return type(a).__module__.split(".")[0] == "cupy"


def _is_numpy_array(a) -> bool:
    return type(a).__module__.split(".")[0] == "numpy"


def backend_for(*arrays) -> Backend:
    """The backend whose kernels should process ``arrays``.

    CuPy arrays go to the CuPy backend. NumPy arrays go to the current backend
    when it works on host arrays (numpy, numba), else to the NumPy backend.
    Python scalars are ignored. Mixing NumPy and CuPy arrays is a ``TypeError``.
    """
    has_cupy = any(_is_cupy_array(a) for a in arrays)
    has_numpy = any(_is_numpy_array(a) for a in arrays)
    if has_cupy and has_numpy:
        kinds = ", ".join(
            sorted(
                {
                    type(a).__module__ + "." + type(a).__name__
                    for a in arrays
                    if _is_cupy_array(a) or _is_numpy_array(a)
                }
            )
        )
        raise TypeError(
            f"arrays from two libraries met in one call ({kinds}); move them to "
            "one device first with backend.get_backend(name).asarray(a) or "
            "backend.to_numpy(a)"
        )
    if has_cupy:
        return _load("cupy")
    cur = current()
    return cur if cur.on_host else _load("numpy")


def get_array_module(*arrays):
    """The array module (``numpy`` or ``cupy``) of ``arrays``.

    See [`backend_for`][backend.backend_for] for the rules; mixed NumPy and CuPy
    is a ``TypeError``.
    """
    return backend_for(*arrays).xp


def to_numpy(a):
    """A host NumPy array from an array of any backend (or a scalar)."""
    if _is_cupy_array(a):
        return a.get()
    return _load("numpy").asnumpy(a)


def matmul(a, b):
    """``a @ b`` with the kernel of the arrays' backend.

    a: (N, K) or (K,), b: (K, M) -> (N, M) or (M,), in the inputs' result dtype.
    """
    return backend_for(a, b).matmul(a, b)


def softmax(x):
    """Overflow-safe softmax of a vector (D,) or of each row of (N, D)."""
    return backend_for(x).softmax(x)


def numerical_gradient(f, x):
    """Central-difference gradient of ``f`` at ``x`` (any shape, floating).

    ``x`` is perturbed in place and restored exactly; -> array of x's shape.
    """
    return backend_for(x).numerical_gradient(f, x)


def default_rng(seed=None):
    """A host ``numpy.random.Generator`` from a seed (or the generator itself)."""
    import numpy as np

    return (
        seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    )


def synchronize(a=None) -> None:
    """Wait for the device that holds ``a`` (the current backend's if ``None``)."""
    (current() if a is None else backend_for(a)).synchronize()
