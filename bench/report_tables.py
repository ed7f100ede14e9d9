"""The markdown side of the benchmark report: tables, headlines, environment.

Every function takes the summary of ``report.summarize``: rows keyed by test
name, each with its (group, variant, size) ``key``, ``median`` seconds,
noise figures and ratios.
"""

from __future__ import annotations

import statistics
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
    "train-ch5": "Chapter 5's run (full size: 10,000 iterations, 17 evaluations; "
    "`*-trainer`: nn.Trainer on uint8 pixels as train.py runs it, 18 evaluations)",
    "gradients": "Gradients of TwoLayerNet, chapter 5's ReLU net (float64)",
    "gradients-sigmoid": "Gradients of TwoLayerNet, chapter 4's sigmoid net "
    "(float64; baseline: the book's chapter 4 code)",
    "numgrad-scaling": "How a gradient's cost grows with hidden and batch size "
    "(float64; loop calls too long to run are estimated from two loss evaluations)",
    "kernels-matmul": "matmul at the step's shapes (ratio: to the NumPy backend)",
    "kernels-softmax": "softmax (ratio: to the NumPy backend)",
    "chapter6": "Chapter 6: 2,000 Adam steps of 784-100x4-10 at batch 128, "
    "float32, without and with Batch Normalization; each library in its own "
    "process, runs alternated",
}
GROUP_ORDER = list(GROUP_TITLES)


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
    math = next(
        (
            t["numba_math"]
            for p in passes
            for e in p
            if "numba_math" in (t := (e.get("extra_info") or {}).get("threads") or {})
        ),
        None,
    )
    math_s = f"; Numba's vector exp/log: {math} lanes" if math else ""
    return "\n".join(
        [
            f"- machine: {machine}, {gpu}; {len(paths)} result file(s)",
            f"- libraries: {versions}",
            f"- BLAS: {blas_s or 'unknown'}; OPENBLAS_CORETYPE {coretype}{math_s}",
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
    lines += chapter6_headlines(summary)
    for (group, name), target in NUMGRAD_TARGETS.items():
        loop = _find(summary, group, "book-loop", size)
        fast = _find(summary, group, name, size)
        if loop and fast:
            speedup = loop["median"] / fast["median"]
            verdict = "met" if speedup >= target else "not met"
            lines.append(
                f"- numerical gradient ({NETWORKS[group]}): `{name}` "
                f"{fmt_time(fast['median'])}, {speedup:,.0f}x faster than the "
                f"book's loop {fmt_time(loop['median'])} in the same run "
                f"(target >= {target}x: {verdict})"
            )
    return "\n".join(lines)


#: Issue 21: the fast numerical gradient against the book's loop, same run.
NUMGRAD_TARGETS = {
    ("gradients", "numba-fast"): 1500,
    ("gradients", "numpy-fast"): 150,
    ("gradients-sigmoid", "numba-fast"): 1000,
    ("gradients-sigmoid", "numpy-fast"): 150,
}
NETWORKS = {"gradients": "ReLU", "gradients-sigmoid": "sigmoid"}


def chapter6_headlines(summary: dict) -> list[str]:
    """Per chapter 6 configuration: xpnet's best CPU backend / the best peer."""
    lines = []
    sizes = sorted({r["key"][2] for r in summary.values() if r["key"][0] == "chapter6"})
    for size in sizes:
        best = _best(summary, "chapter6", ("numpy-", "numba-"), size)
        peer = _best(summary, "chapter6", ("torch-", "jax-"), size)
        if best and peer:
            ratio = best["median"] / peer["median"]
            verdict = "met" if ratio <= 1.0 else "not met"
            lines.append(
                f"- chapter 6 ({size}): best xpnet `{best['key'][1]}` "
                f"{fmt_time(best['median'])} = {ratio:.2f}x the best peer "
                f"`{peer['key'][1]}` {fmt_time(peer['median'])} (target <= 1.0x, "
                f"aiming at 0.7x: {verdict})"
            )
    return lines
