"""Child process that feeds hostile pickles to the safe loader and reports.

Usage: ``python hostile_child.py MANIFEST.json``. The manifest lists the case
files, the marker/victim paths, the extension codes to register and
``mode``: ``"safe"`` (nn.data.safe_pickle.load_array_dict and
ThreeLayerNet.from_pickle) or ``"plain"`` (the standard ``pickle.load``, to
show that the payloads are live). One JSON line per case goes to stdout as
soon as the case is done, so a crash is pinned on its case.

The process runs under an address-space limit (a memory bomb fails instead
of swapping the machine), with copyreg's extension cache already warm (the
worst case for EXT opcodes), and with an audit hook that records every
event (imports, exec, os.system, subprocess, file opens, ...) during a load.
"""

from __future__ import annotations

import copyreg
import json
import os
import pickle
import resource
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]
#: Address space allowed beyond what the interpreter uses after its imports.
HEADROOM = 1 << 30

_events: list | None = None


def _audit(name, args):
    if _events is not None:
        _events.append((name, repr(args)[:200]))


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 4 << 30


def main(manifest_path: str) -> None:
    global _events
    manifest = json.loads(Path(manifest_path).read_text())
    import numpy  # noqa: F401
    import reliability_support  # noqa: F401  (the helper target must be importable)

    import backend as B
    from nn.data.safe_pickle import load_array_dict
    from nn.three_layer_net import ThreeLayerNet

    B.current()
    # Codecs that protocol-0 strings use are imported on first use: not the
    # file's doing, so they are imported before the audit starts.
    b"x".decode("raw-unicode-escape")
    b"x".decode("latin-1")
    for module, name, code in manifest["extensions"]:
        copyreg.add_extension(module, name, code)
        try:  # resolve (never call) the target once, as an earlier load might have
            pickle.loads(b"\x84" + code.to_bytes(4, "little", signed=True) + b".")
        except Exception:
            pass
    if manifest.get("warm_weights"):
        ThreeLayerNet.from_pickle(manifest["warm_weights"])
    limit = _vm_size() + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.addaudithook(_audit)
    for case in manifest["cases"]:
        path = case["file"]
        result = {"id": case["id"]}
        loaders = (
            {"plain": lambda p: pickle.load(open(p, "rb"))}
            if manifest["mode"] == "plain"
            else {
                "load_array_dict": load_array_dict,
                "from_pickle": ThreeLayerNet.from_pickle,
            }
        )
        for label, load in loaders.items():
            _events = []
            try:
                value = load(path)
                outcome = {"raised": None, "type": type(value).__name__}
            except BaseException as exc:
                outcome = {"raised": type(exc).__name__, "message": str(exc)}
            events, _events = _events, None
            outcome["events"] = [
                e
                for e in events
                if not (e[0] == "open" and e[1].startswith(repr((path,))[:-2]))
            ]
            result[label] = outcome
        result["marker"] = os.path.exists(case["marker"])
        result["victims"] = all(os.path.exists(v) for v in manifest["victims"])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
