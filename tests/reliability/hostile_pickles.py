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
        return (
            b"("
            + items
            + b"i"
            + target.module.encode()
            + b"\n"
            + target.name.encode()
            + b"\n"
        )
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
    system = call(
        "GLOBAL+REDUCE",
        TARGETS["os.system"],
        args_tuple((fill("touch {marker}", paths),)),
    )
    getattr_chain = (
        global_op("builtins", "getattr")
        + b"("
        + global_op("builtins", "__import__")
        + args_tuple(("os",))
        + b"R"
        + unicode("system")
        + b"tR"
        + args_tuple((fill("touch {marker}", paths),))
        + b"R"
    )
    inner = b"\x80\x02" + system + b"."
    loads = global_op("pickle", "loads") + b"(C" + bytes([len(inner)]) + inner + b"tR"
    ordered = (
        global_op("collections", "OrderedDict")
        + b"(]"
        + b"("
        + b"("
        + unicode("W1")
        + system
        + b"te"
        + b"tR"
    )
    dtype_of_call = global_op("numpy", "dtype") + b"(" + system + b"tR"
    reconstruct_sub = (
        global_op("numpy.core.multiarray", "_reconstruct")
        + b"("
        + global_op("numpy", "matrix")
        + b"(K\x00t"
        + unicode("b")
        + b"tR"
    )
    deep = system
    for _ in range(50):
        deep = b"(" + deep + b"t"  # the call nested in 50 tuples
    return {
        "nested:getattr(__import__('os'),'system')": in_dict(getattr_chain),
        "nested:pickle.loads(inner pickle)": in_dict(loads),
        "nested:OrderedDict([(k, os.system(...))])": b"\x80\x02" + ordered + b".",
        "nested:numpy.dtype(os.system(...))": in_dict(dtype_of_call),
        "nested:_reconstruct(numpy.matrix, ...)": in_dict(reconstruct_sub),
        "nested:50 tuples deep": in_dict(deep),
        "nested:as dict key": b"\x80\x04}"
        + system
        + global_op("numpy", "dtype")
        + args_tuple(("f8",))
        + b"Rs.",
        "PERSID": b"(dp0\nVW1\nPpayload\ns.",
        "BINPERSID": in_dict(unicode("payload") + b"Q"),
    }


def bomb_cases() -> dict[str, bytes]:
    """A few bytes asking for gigabytes: memo, lengths, frames, shells, calls."""
    return {
        "bomb:LONG_BINPUT 2**31-1 (memo)": b"\x80\x02}r\xff\xff\xff\x7f.",
        "bomb:PUT 10**12 (memo)": b"(dp1000000000000\n.",
        "bomb:BINBYTES8 2**40": b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"ab.",
        "bomb:BINUNICODE8 2**40": b"\x80\x04\x8d" + struct.pack("<Q", 2**40) + b"ab.",
        "bomb:BYTEARRAY8 2**40": b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b"ab.",
        "bomb:FRAME 2**40": b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"}.",
        "bomb:LONG4 2**31": b"\x80\x02\x8b" + struct.pack("<i", 2**31 - 1) + b"\x01.",
        "bomb:BINSTRING 2**31": b"T" + struct.pack("<i", 2**31 - 1) + b"ab.",
        "bomb:bytes(10**12)": in_dict(
            global_op("builtins", "bytes") + b"(\x8a\x05\x00\x10\xa5\xd4\xe8tR"
        ),
        "bomb:ndarray((2**40,))": in_dict(
            global_op("numpy", "ndarray") + b"((\x8a\x06\x00\x00\x00\x00\x00\x01ttR"
        ),
        "bomb:_reconstruct shell 2**40": in_dict(
            global_op("numpy._core.multiarray", "_reconstruct")
            + b"("
            + global_op("numpy", "ndarray")
            + b"(\x8a\x06\x00\x00\x00\x00\x00\x01t"
            + unicode("b")
            + b"tR"
        ),
        "bomb:array state larger than data": in_dict(
            array_with_state(
                b"(K\x01(\x8a\x06\x00\x00\x00\x00\x00\x01t"
                + dtype_op("f8")
                + b"\x89C\x08"
                + bytes(8)
                + b"t"
            )
        ),
        "bomb:10**5 nested lists": b"\x80\x02" + b"]" * 100000 + b".",
        "bomb:_codecs.encode zlib": in_dict(
            global_op("_codecs", "encode")
            + args_tuple(("x" * 100, "zlib_codec"))
            + b"R"
        ),
    }


def dtype_op(spec: str) -> bytes:
    """Opcodes of numpy.dtype(spec, False, True), as NumPy pickles a dtype."""
    return global_op("numpy", "dtype") + b"(" + unicode(spec) + b"\x89\x88tR"


def array_with_state(state: bytes) -> bytes:
    """_reconstruct(ndarray, (0,), b'b') followed by BUILD with ``state``."""
    return (
        global_op("numpy._core.multiarray", "_reconstruct")
        + b"("
        + global_op("numpy", "ndarray")
        + b"(K\x00t"
        + b"C\x01b"
        + b"tR"
        + state
        + b"b"
    )


def numpy_abuse_cases() -> dict[str, bytes]:
    """The allowed NumPy names, misused: object dtypes, forged dtype layouts."""
    forged = (  # a 16-byte void dtype whose field 'a' lies 1 GiB past its end
        dtype_op("V16")
        + b"(K\x03"
        + unicode("|")
        + b"N("
        + unicode("a")
        + b"t}"
        + unicode("a")
        + b"("
        + dtype_op("f8")
        + b"J\x00\x00\x00\x40tsK\x10K\x01K\x00tb"
    )
    flags = (  # a void dtype whose flags claim it holds Python objects
        dtype_op("V8") + b"(K\x03" + unicode("|") + b"NNNK\x08K\x01K\x3ftb"
    )
    return {
        "numpy:object dtype": in_dict(dtype_op("O8")),
        "numpy:structured object field": in_dict(
            global_op("numpy", "dtype") + b"(](" + unicode("a") + unicode("O") + b"tatR"
        ),
        "numpy:object array via state": in_dict(
            array_with_state(b"(K\x01(K\x01t" + dtype_op("O8") + b"\x89](Ne" + b"t")
        ),
        "numpy:scalar of object dtype": in_dict(
            global_op("numpy._core.multiarray", "scalar")
            + b"("
            + dtype_op("O8")
            + b"NtR"
        ),
        "numpy:frombuffer object dtype": in_dict(
            global_op("numpy._core.numeric", "_frombuffer")
            + b"(C\x08"
            + bytes(8)
            + dtype_op("O8")
            + b"(K\x01t"
            + unicode("C")
            + b"tR"
        ),
        "numpy:forged field offset (array)": in_dict(
            array_with_state(
                b"(K\x01(K\x01t" + forged + b"\x89C\x10" + bytes(16) + b"t"
            )
        ),
        "numpy:forged field offset (frombuffer)": in_dict(
            global_op("numpy._core.numeric", "_frombuffer")
            + b"(C\x10"
            + bytes(16)
            + forged
            + b"(K\x01t"
            + unicode("C")
            + b"tR"
        ),
        "numpy:forged field offset (dict key)": b"\x80\x04}"
        + global_op("numpy._core.multiarray", "scalar")
        + b"("
        + forged
        + b"C\x10"
        + bytes(16)
        + b"tR"
        + array_with_state(
            b"(K\x01(K\x01t" + dtype_op("f8") + b"\x89C\x08" + bytes(8) + b"t"
        )
        + b"s.",
        "numpy:forged object flags": in_dict(
            array_with_state(b"(K\x01(K\x01t" + flags + b"\x89C\x08" + bytes(8) + b"t")
        ),
        "numpy:ndarray subclass (matrix)": in_dict(
            global_op("numpy._core.multiarray", "_reconstruct")
            + b"("
            + global_op("numpy", "matrix")
            + b"(K\x00tC\x01btR"
        ),
    }
