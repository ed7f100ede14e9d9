"""Loading a pickle of a dict of NumPy arrays without running code from the file.

A pickle names the callables it needs to rebuild its objects, and the standard
``pickle.load`` imports and calls whatever it names (``os.system``, ...). Here
`ArrayDictUnpickler` resolves only the few NumPy and ``collections``
names that arrays in a dict need, and refuses every other name before anything
is imported or called. Object arrays (which could hold arbitrary objects) are
refused too.
"""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
import pickletools

import numpy as np

try:  # NumPy >= 2 moved the pickle helpers to numpy._core
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

__all__ = ["ArrayDictUnpickler", "UnsafePickleError", "load_array_dict"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something other than NumPy arrays in a dict."""


_MAX_SHELL = 1 << 16


def _dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec, align, copy)
    _check_layout(dtype)
    return dtype


def _check_layout(dtype: np.dtype) -> None:
    """Refuse object dtypes and fields outside the item.

    A pickle can BUILD a dtype from any state, e.g. a field 1 GiB past the end
    of a 16-byte item, which NumPy accepts and which crashes the interpreter
    when the field is read.
    """
    if dtype.hasobject:
        raise UnsafePickleError(
            f"an object array (dtype {dtype}) refused: only arrays of numbers load, "
            "never Python objects"
        )
    if dtype.subdtype is not None:
        _check_layout(dtype.subdtype[0])
    for name, (field, offset, *_) in (dtype.fields or {}).items():
        if offset < 0 or offset + field.itemsize > dtype.itemsize:
            raise UnsafePickleError(
                f"dtype field {name!r} at offset {offset} lies outside the "
                f"{dtype.itemsize}-byte item: forged dtype refused"
            )
        _check_layout(field)


def _ArrayType(*args, **kwargs):
    """Stands for ``numpy.ndarray`` in a pickle (as ``_reconstruct``'s subtype).

    Calling it is refused: ``ndarray(shape)`` allocates any size the file asks.
    """
    raise UnsafePickleError("calling numpy.ndarray refused")


def _reconstruct(subtype, shape, dtype):
    if subtype is not _ArrayType:
        raise UnsafePickleError(f"array subclass {subtype!r} refused")
    # NumPy always pickles an empty shell here and fills it from the file's
    # bytes; a large shell would be an allocation the file's size cannot justify.
    if int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize > _MAX_SHELL:
        raise UnsafePickleError(f"array shell of shape {shape} refused")
    return _multiarray._reconstruct(np.ndarray, shape, dtype)


def _frombuffer(buf, dtype, shape, order):
    return _numeric._frombuffer(buf, _dtype(dtype), shape, order)


def _scalar(dtype, data=None):
    return _multiarray.scalar(_dtype(dtype), *(() if data is None else (data,)))


def _latin1_bytes(text, encoding="latin1"):
    # Protocols 0-2 store bytes as codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"codecs.encode with {encoding!r} refused")
    return codecs.encode(text, "latin1")


def _empty_bytes(*args):
    # Protocols 0-2 store b"" as bytes(); bytes(n) would allocate n bytes.
    if args:
        raise UnsafePickleError("bytes() with arguments refused")
    return b""


# Every (module, name) a pickle of a dict of arrays can mention, NumPy 1 and 2
# spellings, mapped to guarded versions of the real functions.
_ALLOWED = {}
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[_mod + ".multiarray", "_reconstruct"] = _reconstruct
    _ALLOWED[_mod + ".multiarray", "scalar"] = _scalar
    _ALLOWED[_mod + ".numeric", "_frombuffer"] = _frombuffer
_ALLOWED["numpy", "ndarray"] = _ArrayType
_ALLOWED["numpy", "dtype"] = _dtype
_ALLOWED["collections", "OrderedDict"] = collections.OrderedDict
_ALLOWED["_codecs", "encode"] = _latin1_bytes
_ALLOWED["__builtin__", "bytes"] = _ALLOWED["builtins", "bytes"] = _empty_bytes


#: Opcodes a pickle of arrays never needs. EXT* resolve through copyreg's
#: process-wide cache, which can hand out a callable without find_class.
_REFUSED_OPCODES = {"EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "INST", "OBJ"}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _check_opcodes(data: bytes) -> None:
    """Scan the opcodes (nothing is built or called) and refuse dangerous ones.

    Also refuses memo indices past the opcodes seen so far: ``LONG_BINPUT
    2**31`` would make the unpickler allocate (and zero) 16 GiB of memo.
    """
    refused = None
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(data), 1):
            if op.name in _REFUSED_OPCODES:
                refused = refused or f"pickle opcode {op.name} refused"
            if op.name in _MEMO_PUTS and int(arg) > count:
                refused = refused or f"memo index {arg} refused"
    except Exception as exc:  # pickletools' own parse errors
        raise UnsafePickleError(f"not a readable pickle ({exc})") from None
    if refused:
        raise UnsafePickleError(refused)


class ArrayDictUnpickler(pickle.Unpickler):
    """An Unpickler that can build NumPy arrays, dicts and plain values only."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load {module}.{name}: only NumPy arrays in a dict are "
                "allowed (loading it could run code from the file)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError("persistent ids are not allowed")


def load_array_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a pickle of ``{name: ndarray}`` (e.g. the book's sample_weight.pkl).

    Never executes code from the file. Raises
    [`UnsafePickleError`][nn.UnsafePickleError] naming the file when it holds
    anything else, or is not a pickle.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        _check_opcodes(data)
        # From memory: a length field cannot make the reader allocate past the data.
        obj = ArrayDictUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise UnsafePickleError(f"{path}: not a readable pickle ({exc})") from None
    except MemoryError:
        raise UnsafePickleError(
            f"{path}: asks for more memory than a weights file can need"
        ) from None
    if not isinstance(obj, dict):
        raise UnsafePickleError(
            f"{path}: holds a {type(obj).__name__}, expected a dict of NumPy arrays"
        )
    for key, value in obj.items():
        if not isinstance(key, str):
            # Only plain values are shown: repr() of a forged NumPy object can crash.
            shown = repr(key) if type(key) in (int, float, bytes) else "a key"
            raise UnsafePickleError(
                f"{path}: entry {shown} has a {type(key).__name__} key, expected "
                "str -> numpy.ndarray"
            )
        if type(value) is not np.ndarray:
            raise UnsafePickleError(
                f"{path}: entry {key!r} is a {type(value).__name__}, expected "
                "str -> numpy.ndarray"
            )
        if value.dtype.hasobject:
            raise UnsafePickleError(f"{path}: entry {key!r} is an object array")
        try:
            _check_layout(value.dtype)
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"{path}: entry {key!r}: {exc}") from None
    return dict(obj)
