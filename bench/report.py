"""Turn ``pytest bench --benchmark-json`` results into a markdown table.

    python bench/report.py results/pass1.json [results/pass2.json ...] \\
        --markdown results/bench.md --plot results/scaling.png

Each JSON file is one pass of the suite. A row's time is the median of its
per-pass medians; its ratio is computed within each pass (against the
baseline row of the same group and size measured minutes apart, not hours)
and the median of those ratios is shown. Ratios are time ratios: below 1 is
faster than the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

#: Figures measured on these machines and quoted in the benchmark issue:
#: (group, variant, size) -> seconds.
ISSUE_FIGURES = {
    ("train-step-interleaved", "book-f64", "784-50-10 b100"): 754e-6,
    ("train-step-interleaved", "plain-f32", "784-50-10 b100"): 289e-6,
    ("train-step-interleaved", "torch-f32", "784-50-10 b100"): 388e-6,
    ("train-step-interleaved", "torch-f64", "784-50-10 b100"): 609e-6,
    ("train-step", "book-f64", "784-50-10 b100"): 754e-6,
    ("train-step", "plain-f32", "784-50-10 b100"): 289e-6,
    ("train-step", "torch-f32", "784-50-10 b100"): 388e-6,
    ("train-step", "torch-f64", "784-50-10 b100"): 609e-6,
    ("train-ch5", "book-f64", "784-50-10 b100"): 20.6,
    ("train-ch5", "torch-f32", "784-50-10 b100"): 6.8,
    ("gradients", "book-loop", "784-50-10 b100"): 17.2,
}
GROUP_TITLES = {
    "train-step-interleaved": "One SGD step, all variants timed round-robin "
    "(the headline comparison)",
    "train-step": "One SGD step (forward, backward, update)",
    "train-1000": "1000 training iterations (batch gather + step, no evaluation)",
    "train-ch5": "Chapter 5's run (full size: 10,000 iterations, 17 evaluations)",
    "gradients": "Gradients of TwoLayerNet (float64)",
    "numgrad-scaling": "How a gradient's cost grows with hidden and batch size "
    "(float64; loop calls too long to run are estimated from two loss evaluations)",
    "kernels-matmul": "matmul at the step's shapes (ratio: to the NumPy backend)",
    "kernels-softmax": "softmax (ratio: to the NumPy backend)",
}
GROUP_ORDER = list(GROUP_TITLES)


class ReportError(Exception):
    """A result file that cannot be read; the message names the fix."""


def load_passes(paths: list[Path]) -> list[list[dict]]:
    """The benchmark entries of each JSON file (one file per pass)."""
    passes = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
            entries = data["benchmarks"]
        except FileNotFoundError:
            raise ReportError(f"{path}: no such file; run the suite first") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ReportError(
                f"{path}: not a pytest-benchmark JSON file ({exc}); "
                "produce one with pytest bench --benchmark-json FILE"
            ) from None
        passes.append(entries)
    if not any(passes):
        raise ReportError(
            "no benchmark results in the given files (were they run with "
            "--benchmark-disable?)"
        )
    return passes


def row_key(entry: dict) -> tuple[str, str, str]:
    """(group, variant, size) of an entry; falls back to pytest's names."""
    info = entry.get("extra_info") or {}
    variant = info.get("variant") or entry.get("param") or entry["name"]
    if "size" in info:
        size = str(info["size"])
    else:
        params = entry.get("params") or {}
        size = " ".join(
            f"{k}={v}" for k, v in sorted(params.items()) if isinstance(v, int)
        )
    return entry.get("group") or "ungrouped", str(variant), size


def seconds(entry: dict) -> float:
    """The entry's time: its median, or the cost a benchmark estimated from it
    (``extra_info["estimated_seconds"]``, e.g. a loop too long to run in full)."""
    info = entry.get("extra_info") or {}
    est = info.get("estimated_seconds")
    return float(est) if est is not None else entry["stats"]["median"]


def _ratios_in_pass(entries: list[dict], role) -> dict:
    """Per test: its median / the median of the test of the same group and size
    whose extra_info has ``role``."""
    refs = {}
    for e in entries:
        if role(e.get("extra_info") or {}):
            group, _, size = row_key(e)
            refs[(group, size)] = seconds(e)
    out = {}
    for e in entries:
        group, _, size = row_key(e)
        ref = refs.get((group, size))
        if ref:
            out[e["fullname"]] = seconds(e) / ref
    return out


def _is_baseline(info: dict) -> bool:
    return bool(info.get("baseline"))


def _is_torch(info: dict) -> bool:
    return info.get("reference") == "torch"


def summarize(passes: list[list[dict]]) -> dict:
    """Per test (pytest's full name): its key, median and ratios over passes."""
    rows: dict = defaultdict(
        lambda: {"medians": [], "iqr": [], "vs_base": [], "vs_torch": [], "rounds": 0}
    )
    for entries in passes:
        base = _ratios_in_pass(entries, _is_baseline)
        torch = _ratios_in_pass(entries, _is_torch)
        for e in entries:
            name = e["fullname"]
            r = rows[name]
            st = e["stats"]
            r["medians"].append(seconds(e))
            r["iqr"].append(st["iqr"] / st["median"] if st["median"] else 0.0)
            r["rounds"] += st["rounds"]
            r["key"] = row_key(e)
            r["info"] = e.get("extra_info") or {}
            r["params"] = e.get("params") or {}
            if name in base:
                r["vs_base"].append(base[name])
            if name in torch:
                r["vs_torch"].append(torch[name])
    out = {}
    for name, r in rows.items():
        m = r["medians"]
        med = statistics.median(m)
        out[name] = {
            "key": r["key"],
            "median": med,
            "pass_range": (max(m) - min(m)) / med if med else 0.0,
            "iqr": statistics.median(r["iqr"]),
            "passes": len(m),
            "rounds": r["rounds"],
            "vs_base": statistics.median(r["vs_base"]) if r["vs_base"] else None,
            "vs_torch": statistics.median(r["vs_torch"]) if r["vs_torch"] else None,
            "info": r["info"],
            "params": r["params"],
        }
    return out


def fmt_time(seconds: float) -> str:
    """A duration with a unit that keeps three significant digits."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"{r:.2g}x ({1 / r:,.0f}x faster)"


def _group_sort_key(group: str):
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else 99, group)


def _row_sort_key(item):
    size, _variant, row = item
    info = row["info"]
    numbers = (info.get("batch_size", 0), info.get("hidden_size", 0))
    return (str(info.get("op", "")), *numbers, size, row["median"])


def markdown(summary: dict) -> str:
    """One table per group: median, noise, ratio to baseline and to PyTorch."""
    by_group = defaultdict(list)
    for row in summary.values():
        group, variant, size = row["key"]
        by_group[group].append((size, variant, row))
    lines = []
    for group in sorted(by_group, key=_group_sort_key):
        items = sorted(by_group[group], key=_row_sort_key)
        has_torch = any(r["vs_torch"] is not None for _, _, r in items)
        lines += [f"**{GROUP_TITLES.get(group, group)}** (`{group}`)", ""]
        head = ["variant", "size", "median", "IQR", "pass spread", "vs baseline"]
        if has_torch:
            head.append("vs PyTorch f32")
        head.append("issue figure")
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for size, variant, r in items:
            figure = ISSUE_FIGURES.get((group, variant, size))
            base = _fmt_ratio(r["vs_base"])
            if r["info"].get("baseline"):
                base = "1.00x (baseline)"
            time_cell = f"**{fmt_time(r['median'])}**"
            if "estimated_seconds" in r["info"]:
                time_cell = f"~{fmt_time(r['median'])} (estimated)"
            cells = [
                f"`{variant}`",
                size,
                time_cell,
                f"{100 * r['iqr']:.0f}%",
                f"{100 * r['pass_range']:.0f}% ({r['passes']})",
                base,
            ]
            if has_torch:
                cells.append(_fmt_ratio(r["vs_torch"]))
            cells.append(fmt_time(figure) if figure else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def environment(passes: list[list[dict]], paths: list[Path]) -> str:
    """A few lines on the machine and libraries, from the first result."""
    first = next(e for entries in passes for e in entries)
    info = first.get("extra_info") or {}
    blas = info.get("blas") or []
    pools = (
        f"{b.get('internal_api')} {b.get('architecture') or ''} x{b.get('num_threads')}"
        for b in blas
        if "internal_api" in b
    )
    blas_s = ", ".join(dict.fromkeys(" ".join(p.split()) for p in pools))
    versions = ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())
    env = info.get("openblas_env") or {}
    coretype = env.get("OPENBLAS_CORETYPE") or "unset"
    sources = sorted(
        {e.get("extra_info", {}).get("data", "") for p in passes for e in p}
    )
    on_gpu = any(
        (e.get("extra_info") or {}).get("backend") == "cupy" for p in passes for e in p
    )
    gpu = "CuPy rows measured" if on_gpu else "no GPU (CuPy rows skipped)"
    loads = [
        e["extra_info"]["loadavg_1min"]
        for p in passes
        for e in p
        if "loadavg_1min" in (e.get("extra_info") or {})
    ]
    load = (
        f"- load average (1 min) while measuring: median "
        f"{statistics.median(loads):.1f}, max {max(loads):.1f}"
        if loads
        else "- load average: not recorded"
    )
    machine = info.get("machine", "?")
    return "\n".join(
        [
            f"- machine: {machine}, {gpu}; {len(paths)} result file(s)",
            f"- libraries: {versions}",
            f"- BLAS: {blas_s or 'unknown'}; OPENBLAS_CORETYPE {coretype}",
            f"- data: {'; '.join(s for s in sources if s)}",
            load,
            f"- smoke mode: {info.get('smoke', False)}",
        ]
    )


def _find(summary: dict, group: str, variant: str, size: str | None = None):
    for row in summary.values():
        g, v, sz = row["key"]
        if g == group and v == variant and (size is None or sz == size):
            return row
    return None


def _best(summary: dict, group: str, prefixes: tuple[str, ...], size: str):
    rows = [
        r
        for r in summary.values()
        if r["key"][0] == group
        and r["key"][2] == size
        and r["key"][1].startswith(prefixes)
        and r["info"].get("backend") != "cupy"
    ]
    return min(rows, key=lambda r: r["median"]) if rows else None


def headlines(summary: dict, size: str = "784-50-10 b100") -> str:
    """The issue's targets, and where this run stands against them."""
    lines = []
    for group in ("train-step-interleaved", "train-step"):
        best = _best(summary, group, ("numpy-", "numba-"), size)
        torch = _find(summary, group, "torch-f32", size)
        if best and torch:
            ratio = best["median"] / torch["median"]
            verdict = "met" if ratio <= 0.4 else "not met"
            lines.append(
                f"- SGD step ({size}, `{group}`): best xpnet CPU variant "
                f"`{best['key'][1]}` {fmt_time(best['median'])} = {ratio:.2f}x "
                f"PyTorch's {fmt_time(torch['median'])} (target <= 0.4x: {verdict})"
            )
            break
    best = _best(summary, "train-ch5", ("numpy-", "numba-"), size)
    if best:
        verdict = "met" if best["median"] < 3 else "not met"
        book = _find(summary, "train-ch5", "book-f64", size)
        vs = f", book {fmt_time(book['median'])}" if book else ""
        lines.append(
            f"- chapter 5 run: `{best['key'][1]}` {fmt_time(best['median'])}{vs} "
            f"(target < 3 s: {verdict})"
        )
    loop = _find(summary, "gradients", "numpy-loop", size)
    for name, target in (("numba-fast", 300), ("numpy-fast", 50)):
        fast = _find(summary, "gradients", name, size)
        if loop and fast:
            speedup = loop["median"] / fast["median"]
            verdict = "met" if speedup >= target else "not met"
            lines.append(
                f"- numerical gradient: `{name}` {fmt_time(fast['median'])}, "
                f"{speedup:,.0f}x faster than the textbook loop "
                f"{fmt_time(loop['median'])} (target >= {target}x: {verdict})"
            )
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="--benchmark-json files")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument("--plot", type=Path, help="write the scaling plot (PNG) here")
    args = parser.parse_args(argv)
    try:
        passes = load_passes(args.results)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(passes)
    text = environment(passes, args.results) + "\n\n"
    heads = headlines(summary)
    if heads:
        text += heads + "\n\n"
    text += markdown(summary)
    if args.plot:
        from plot_sweeps import plot_sweeps

        if plot_sweeps(summary, args.plot):
            text += f"\nScaling plot: `{args.plot}`\n"
    if args.markdown:
        write_atomic(args.markdown, text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
