"""Run a script or module as ``python`` would, with the stand-in as the GPU.

    python tests/cupy_standin/run.py train.py --device cuda --epochs 1
    python tests/cupy_standin/run.py -m nn.inference --device cuda ...
    python tests/cupy_standin/run.py -m pytest tests/gpu
    python tests/cupy_standin/run.py -c "import backend; print(backend.NAMES)"

For subprocess tests of the command-line tools: the tools themselves are run
unchanged (``runpy``), after `cupy_standin.install.install`.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def main(argv: list[str]) -> None:
    for path in (str(ROOT), str(TESTS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from cupy_standin.install import install

    install()
    if not argv:
        raise SystemExit("usage: run.py SCRIPT|-m MODULE|-c CODE [ARGS]")
    if argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        sys.path.insert(0, "")
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    elif argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path.insert(0, str(Path(argv[0]).resolve().parent))
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
