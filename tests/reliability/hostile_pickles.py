"""A corpus of hostile pickles, written opcode by opcode.

Every pickle opcode that can import or call (GLOBAL, STACK_GLOBAL, REDUCE,
BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4, PERSID, BINPERSID) is aimed at
dangerous callables, alone and nested inside allowed ones; plus memory bombs
that ask for huge allocations from a few bytes, and attacks on the NumPy
names the safe loader must allow. A payload that ran would create the marker
file, delete the victim file or leave an audit event (see hostile_child.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A dangerous callable and its string arguments (with {marker}/{victim})."""

    module: str
    name: str
    args: tuple[str, ...]


TARGETS = {
    "os.system": Target("os", "system", ("touch {marker}",)),
    "posix.system": Target("posix", "system", ("touch {marker}",)),
    "subprocess.getoutput": Target("subprocess", "getoutput", ("touch {marker}",)),
    "eval": Target("builtins", "eval", ("open({marker!r}, 'w')",)),
    "exec": Target("builtins", "exec", ("open({marker!r}, 'w')",)),
    "py2-eval": Target("__builtin__", "eval", ("open({marker!r}, 'w')",)),
    "open": Target("builtins", "open", ("{marker}", "w")),
    "os.remove": Target("os", "remove", ("{victim}",)),
    "shutil.rmtree": Target("shutil", "rmtree", ("{victim_dir}",)),
    "helper": Target("reliability_support", "touch_marker", ("{marker}",)),
    "missing-module": Target("no_such_module_xpnet", "boom", ("{marker}",)),
    "numpy.load": Target("numpy", "load", ("{victim}",)),
}
#: Opcode routes by which a pickle calls (or fetches) a target.
ROUTES = (
    "GLOBAL+REDUCE",
    "STACK_GLOBAL+REDUCE",
    "INST",
    "OBJ",
    "NEWOBJ",
    "NEWOBJ_EX",
    "BUILD",
    "EXT1",
    "EXT2",
    "EXT4",
)
#: Width of the extension code of each EXT opcode (one code per target fits all).
EXT_FORMATS = {
    "EXT1": (b"\x82", "<B"),
    "EXT2": (b"\x83", "<H"),
    "EXT4": (b"\x84", "<i"),
}


def unicode(text: str) -> bytes:
    """BINUNICODE: a str argument, any protocol >= 1."""
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def cat(*parts: bytes) -> bytes:
    return b"".join(parts)


def global_op(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_global(module: str, name: str) -> bytes:
    return unicode(module) + unicode(name) + b"\x93"


def ext_op(route: str, code: int) -> bytes:
    opcode, fmt = EXT_FORMATS[route]
    return opcode + struct.pack(fmt, code)


def args_tuple(args: tuple[str, ...]) -> bytes:
    return b"(" + b"".join(unicode(a) for a in args) + b"t"


def call(route: str, target: Target, args: bytes, ext_code: int = 0) -> bytes:
    """Opcodes that leave ``target(*args)`` (or the target itself) on the stack.

    ``args`` are the opcodes of the arguments: a MARK followed by the items.
    """
    items = args[1:-1]  # without MARK and TUPLE
    if route == "GLOBAL+REDUCE":
        return global_op(target.module, target.name) + args + b"R"
    if route == "STACK_GLOBAL+REDUCE":
        return stack_global(target.module, target.name) + args + b"R"
    if route == "INST":
        return cat(b"(", items, b"i", global_op(target.module, target.name)[1:])
    if route == "OBJ":
        return b"(" + global_op(target.module, target.name) + items + b"o"
    if route == "NEWOBJ":
        return global_op(target.module, target.name) + args + b"\x81"
    if route == "NEWOBJ_EX":
        return global_op(target.module, target.name) + args + b"}\x92"
    if route == "BUILD":
        # BUILD calls the object's __setstate__ (or updates its __dict__).
        return (
            global_op(target.module, target.name) + b"}" + unicode("x") + args + b"sb"
        )
    return ext_op(route, ext_code) + args + b"R"


def in_dict(value: bytes, proto: int = 4) -> bytes:
    """A protocol ``proto`` pickle of ``{"W1": value}``."""
    return bytes([0x80, proto]) + b"}" + unicode("W1") + value + b"s."


def fill(template: str, paths: dict) -> str:
    return template.format(**paths)


def build_corpus(paths: dict) -> dict[str, bytes]:
    """{case id: pickle bytes}; ``paths`` has marker, victim and victim_dir."""
    corpus = {}
    for t_index, (tname, target) in enumerate(sorted(TARGETS.items())):
        args = args_tuple(tuple(fill(a, paths) for a in target.args))
        for route in ROUTES:
            code = ext_code(t_index)
            corpus[f"{route}:{tname}"] = in_dict(call(route, target, args, code))
    corpus.update(nested_cases(paths))
    corpus.update(bomb_cases())
    corpus.update(numpy_abuse_cases())
    return corpus


def ext_code(t_index: int) -> int:
    return 200 + t_index


def ext_registrations() -> list[tuple[str, str, int]]:
    """(module, name, code) for copyreg.add_extension in the child."""
    return [
        (target.module, target.name, ext_code(i))
        for i, (_, target) in enumerate(sorted(TARGETS.items()))
    ]


def nested_cases(paths: dict) -> dict[str, bytes]:
    """Forbidden calls hidden inside allowed callables and containers."""
    touch = args_tuple((fill("touch {marker}", paths),))
    system = call("GLOBAL+REDUCE", TARGETS["os.system"], touch)
    import_os = cat(global_op("builtins", "__import__"), args_tuple(("os",)), b"R")
    getattr_chain = cat(
        global_op("builtins", "getattr"), b"(", import_os, unicode("system"), b"tR"
    )
    inner = b"\x80\x02" + system + b"."
    loads = cat(global_op("pickle", "loads"), b"(C", bytes([len(inner)]), inner, b"tR")
    pairs = cat(b"(]((", unicode("W1"), system, b"tetR")  # [(key, call)]
    reconstruct_matrix = cat(
        global_op("numpy.core.multiarray", "_reconstruct"),
        b"(",
        global_op("numpy", "matrix"),
        b"(K\x00t",
        unicode("b"),
        b"tR",
    )
    deep = system
    for _ in range(50):
        deep = b"(" + deep + b"t"  # the call nested in 50 tuples
    return {
        "nested:getattr(__import__('os'),'system')": in_dict(
            getattr_chain + touch + b"R"
        ),
        "nested:pickle.loads(inner pickle)": in_dict(loads),
        "nested:OrderedDict([(k, os.system(...))])": cat(
            b"\x80\x02", global_op("collections", "OrderedDict"), pairs, b"."
        ),
        "nested:numpy.dtype(os.system(...))": in_dict(
            cat(global_op("numpy", "dtype"), b"(", system, b"tR")
        ),
        "nested:_reconstruct(numpy.matrix, ...)": in_dict(reconstruct_matrix),
        "nested:50 tuples deep": in_dict(deep),
        "nested:as dict key": cat(b"\x80\x04}", system, dtype_op("f8"), b"s."),
        "PERSID": b"(dp0\nVW1\nPpayload\ns.",
        "BINPERSID": in_dict(unicode("payload") + b"Q"),
    }


def huge(n: int) -> bytes:
    """LONG1 opcode of the integer ``n``."""
    data = n.to_bytes((n.bit_length() + 8) // 8, "little")
    return b"\x8a" + bytes([len(data)]) + data


def bomb_cases() -> dict[str, bytes]:
    """A few bytes asking for gigabytes: memo, lengths, frames, shells, calls."""
    q40 = struct.pack("<Q", 2**40)
    i31 = struct.pack("<i", 2**31 - 1)
    shell = cat(
        global_op("numpy._core.multiarray", "_reconstruct"),
        b"(",
        global_op("numpy", "ndarray"),
        b"(" + huge(2**40) + b"t",
        unicode("b"),
        b"tR",
    )
    return {
        "bomb:LONG_BINPUT 2**31-1 (memo)": b"\x80\x02}r\xff\xff\xff\x7f.",
        "bomb:PUT 10**12 (memo)": b"(dp1000000000000\n.",
        "bomb:BINBYTES8 2**40": b"\x80\x04\x8e" + q40 + b"ab.",
        "bomb:BINUNICODE8 2**40": b"\x80\x04\x8d" + q40 + b"ab.",
        "bomb:BYTEARRAY8 2**40": b"\x80\x05\x96" + q40 + b"ab.",
        "bomb:FRAME 2**40": b"\x80\x04\x95" + q40 + b"}.",
        "bomb:LONG4 2**31": b"\x80\x02\x8b" + i31 + b"\x01.",
        "bomb:BINSTRING 2**31": b"T" + i31 + b"ab.",
        "bomb:bytes(10**12)": in_dict(
            cat(global_op("builtins", "bytes"), b"(", huge(10**12), b"tR")
        ),
        "bomb:ndarray((2**40,))": in_dict(
            cat(global_op("numpy", "ndarray"), b"((", huge(2**40), b"ttR")
        ),
        "bomb:_reconstruct shell 2**40": in_dict(shell),
        "bomb:array state larger than data": in_dict(
            array_with_state(
                cat(b"(K\x01(", huge(2**40), b"t", dtype_op("f8"), raw_bytes(8), b"t")
            )
        ),
        "bomb:10**5 nested lists": b"\x80\x02" + b"]" * 100000 + b".",
        "bomb:_codecs.encode zlib": in_dict(
            cat(global_op("_codecs", "encode"), args_tuple(("x" * 99, "zlib_codec")))
            + b"R"
        ),
    }


def dtype_op(spec: str) -> bytes:
    """Opcodes of numpy.dtype(spec, False, True), as NumPy pickles a dtype."""
    return global_op("numpy", "dtype") + b"(" + unicode(spec) + b"\x89\x88tR"


def raw_bytes(n: int) -> bytes:
    """NEWFALSE (is_fortran) then SHORT_BINBYTES of n zero bytes."""
    return b"\x89C" + bytes([n]) + bytes(n)


def array_with_state(state: bytes) -> bytes:
    """_reconstruct(ndarray, (0,), b'b') followed by BUILD with ``state``."""
    return cat(
        global_op("numpy._core.multiarray", "_reconstruct"),
        b"(",
        global_op("numpy", "ndarray"),
        b"(K\x00tC\x01btR",
        state,
        b"b",
    )


def one_element(dtype: bytes, n: int) -> bytes:
    """Array state (1, (1,), dtype, False, n zero bytes)."""
    return cat(b"(K\x01(K\x01t", dtype, raw_bytes(n), b"t")


def numpy_abuse_cases() -> dict[str, bytes]:
    """The allowed NumPy names, misused: object dtypes, forged dtype layouts."""
    field = cat(b"N(", unicode("a"), b"t}", unicode("a"), b"(", dtype_op("f8"))
    forged = (
        cat(  # a 16-byte void dtype whose field 'a' lies 1 GiB past its end
            dtype_op("V16"), b"(K\x03", unicode("|"), field, b"J\x00\x00\x00\x40ts"
        )
        + b"K\x10K\x01K\x00tb"
    )
    flags = cat(  # an 8-byte void dtype whose flags claim it holds Python objects
        dtype_op("V8"), b"(K\x03", unicode("|"), b"NNNK\x08K\x01K\x3ftb"
    )
    frombuffer = global_op("numpy._core.numeric", "_frombuffer")
    scalar = global_op("numpy._core.multiarray", "scalar")
    shape_c = b"(K\x01t" + unicode("C") + b"tR"
    return {
        "numpy:object dtype": in_dict(dtype_op("O8")),
        "numpy:structured object field": in_dict(
            cat(global_op("numpy", "dtype"), b"(](", unicode("a"), unicode("O"))
            + b"tatR"
        ),
        "numpy:object array via state": in_dict(
            array_with_state(cat(b"(K\x01(K\x01t", dtype_op("O8"), b"\x89](Net"))
        ),
        "numpy:scalar of object dtype": in_dict(
            cat(scalar, b"(", dtype_op("O8"), b"NtR")
        ),
        "numpy:frombuffer object dtype": in_dict(
            cat(frombuffer, b"(C\x08", bytes(8), dtype_op("O8"), shape_c)
        ),
        "numpy:forged field offset (array)": in_dict(
            array_with_state(one_element(forged, 16))
        ),
        "numpy:forged field offset (frombuffer)": in_dict(
            cat(frombuffer, b"(C\x10", bytes(16), forged, shape_c)
        ),
        "numpy:forged field offset (dict key)": cat(
            b"\x80\x04}",
            cat(scalar, b"(", forged, b"C\x10", bytes(16), b"tR"),
            array_with_state(one_element(dtype_op("f8"), 8)),
            b"s.",
        ),
        "numpy:forged object flags": in_dict(array_with_state(one_element(flags, 8))),
        "numpy:ndarray subclass (matrix)": in_dict(
            cat(
                global_op("numpy._core.multiarray", "_reconstruct"),
                b"(",
                global_op("numpy", "matrix"),
                b"(K\x00tC\x01btR",
            )
        ),
    }
