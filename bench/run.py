"""One command for the whole benchmark: passes of the suite, then the report.

    python bench/run.py                     # 3 passes, book sizes, ~10 min + chapter 6
    python bench/run.py --passes 1 -- -k "train-step or kernels"
    python bench/run.py --smoke             # tiny sizes, seconds: checks it all runs
    python bench/run.py --only chapter6     # chapter 6 vs PyTorch and JAX (chapter6.py)

Writes ``pass-N.json`` (pytest-benchmark's ``--benchmark-json``),
``interleaved-N.json`` (the SGD-step variants timed round-robin, see
``interleaved.py``), ``chapter6-N.json`` (chapter 6's Adam runs against
PyTorch and JAX, each in its own process, see ``chapter6.py``), ``bench.md``
(tables of medians and ratios) and ``scaling.png`` into ``--out`` (default
``runs/bench``). Each pass runs the whole suite again, so variants are also
interleaved at the pass level, and drift of the machine over minutes shows up
in the "pass spread" column instead of hiding inside a ratio.

The numerical-gradient loops (about 17 s per call at the book's size, more
in the scaling sweep) run in the first pass only; ``--long-every-pass`` repeats
them too. Their ratios then come from that pass alone.

OpenBLAS: where ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` are set (they pin
older kernels on some processors), they are unset for the benchmark run only,
so NumPy uses the kernel it would pick itself; ``--keep-openblas-env`` keeps
them. Each result records which kernel ran (threadpoolctl).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: pytest -k of the passes after the first: without the numerical-gradient
#: loops (test ids with "loop"), but with chapter 5's training loop.
LATER_PASSES = "not loop or chapter5"


def pytest_command(json_path: Path, smoke: bool, extra: list[str]) -> list[str]:
    """The pytest invocation of one pass."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE),
        "-p",
        "no:cacheprovider",
        "-q",
        f"--benchmark-json={json_path}",
        "--benchmark-columns=median,iqr,rounds",
        "--benchmark-sort=name",
    ]
    if smoke:
        # One short round each: this checks the pipeline, it measures nothing.
        cmd += [
            "--bench-smoke",
            "--benchmark-min-rounds=1",
            "--benchmark-max-time=0.0001",
            "--benchmark-min-time=0.0000001",
        ]
    return cmd + extra


def bench_env(keep_openblas_env: bool) -> dict:
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    if not keep_openblas_env:
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    return env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the benchmark suite and write the report.",
        epilog="Arguments after -- go to pytest (e.g. -- -k kernels).",
    )
    parser.add_argument(
        "--passes", type=int, default=3, help="full passes of the suite (default 3)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "runs" / "bench", help="output folder"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 pass")
    parser.add_argument(
        "--long-every-pass",
        action="store_true",
        help="run the numerical-gradient loops in every pass, not only the first",
    )
    parser.add_argument(
        "--no-interleaved",
        action="store_true",
        help="skip the round-robin SGD-step comparison (interleaved.py)",
    )
    parser.add_argument(
        "--no-chapter6",
        action="store_true",
        help="skip chapter 6's runs against PyTorch and JAX (chapter6.py)",
    )
    parser.add_argument(
        "--only",
        choices=("suite", "interleaved", "chapter6"),
        action="append",
        help="run only these parts (repeatable; default: all three)",
    )
    parser.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (default: unset for the run)",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    passes = 1 if args.smoke else args.passes
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"cannot create --out {args.out}: {exc.strerror}")

    parts = set(args.only or ("suite", "interleaved", "chapter6"))
    if args.no_interleaved:
        parts.discard("interleaved")
    if args.no_chapter6:
        parts.discard("chapter6")
    env = bench_env(args.keep_openblas_env)
    json_paths, status = [], 0
    for k in range(1, passes + 1):
        path = args.out / f"pass-{k}.json"
        path.unlink(missing_ok=True)  # never report a stale pass
        if "suite" in parts:
            print(f"== pass {k}/{passes} -> {path}", flush=True)
            pass_extra = extra
            if k > 1 and not args.long_every_pass and "-k" not in extra:
                pass_extra = [*extra, "-k", LATER_PASSES]
            cmd = pytest_command(path, args.smoke, pass_extra)
            code = subprocess.call(cmd, env=env)
            if code != 0:
                print(f"warning: pass {k} exited with code {code}", file=sys.stderr)
                status = status or code
            if path.exists():
                json_paths.append(path)
        if "interleaved" in parts:
            path = args.out / f"interleaved-{k}.json"
            path.unlink(missing_ok=True)
            cmd = [sys.executable, str(HERE / "interleaved.py"), "--out", str(path)]
            print(f"== pass {k}/{passes}: interleaved SGD steps -> {path}", flush=True)
            code = subprocess.call(cmd + (["--smoke"] if args.smoke else []), env=env)
            if code != 0:
                print(
                    f"warning: interleaved.py exited with code {code}", file=sys.stderr
                )
                status = status or code
            if path.exists():
                json_paths.append(path)
        if "chapter6" in parts:
            path = args.out / f"chapter6-{k}.json"
            path.unlink(missing_ok=True)
            cmd = [sys.executable, str(HERE / "chapter6.py"), "--out", str(path)]
            print(f"== pass {k}/{passes}: chapter 6 vs peers -> {path}", flush=True)
            code = subprocess.call(cmd + (["--smoke"] if args.smoke else []), env=env)
            if code != 0:
                print(f"warning: chapter6.py exited with code {code}", file=sys.stderr)
                status = status or code
            if path.exists():
                json_paths.append(path)
    if not json_paths:
        print("error: no pass produced results; see pytest's output", file=sys.stderr)
        return status or 1

    sys.path.insert(0, str(HERE))
    import report

    md, png = args.out / "bench.md", args.out / "scaling.png"
    code = report.main(
        [*map(str, json_paths), "--markdown", str(md), "--plot", str(png)]
    )
    print(f"report: {md}" + (f", plot: {png}" if png.exists() else ""))
    return status or code


if __name__ == "__main__":
    sys.exit(main())
