"""The tables and files of ``bench/gpu_report.py``: ``report.md``, ``report.json``.

Everything is read from the stages' JSON-lines logs (``tests.jsonl``,
``rows.jsonl``, ``peers.jsonl``), which hold whatever finished even when a
stage was stopped at its budget, so the report is written in every case.
"""

from __future__ import annotations

import json
from pathlib import Path

from gpu_peers import summarise
from gpu_report_log import read_log

OPERATION_NAMES = {
    "gpu-train-step": "SGD step",
    "gpu-evaluate": "evaluation (train + test accuracy)",
    "gpu-numgrad-fast": "numerical gradient, fast",
    "gpu-numgrad-loop": "numerical gradient, loop",
    "gpu-train-ch5": "chapter 5's run (nn.Trainer)",
}
PEER_TASKS = {
    "step": "one SGD step",
    "evaluate": "one evaluation (train and test sets)",
    "run": "chapter 5's whole run",
}
PEER_ORDER = ("xpnet", "torch-eager", "torch-graph", "jax-jit", "jax-scan")


def seconds(value) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.3g} us"
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def bench_table(rows_log: Path) -> list[str]:
    """CPU against GPU from the rows of ``bench/gpu_rows.py`` that finished."""
    rows = [e for e in read_log(rows_log) if e.get("event") == "row"]
    if not rows:
        return ["No benchmark results (see the bench entry above)."]
    times: dict[tuple, dict] = {}
    size = ""
    for b in rows:
        info = b.get("extra_info", {})
        key = (b.get("group"), info.get("dtype"))
        times.setdefault(key, {})[info.get("backend")] = b["stats"]["median"]
        size = info.get("size", size)
    lines = [
        f"Median time per call ({size}); speed-up = CPU time / CuPy time; "
        "- where a row did not run.",
        "",
        "| operation | dtype | NumPy | Numba | CuPy | vs NumPy | vs best CPU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for group, label in OPERATION_NAMES.items():
        for dtype in ("float32", "float64"):
            row = times.get((group, dtype), {})
            cells = [seconds(row.get(n)) for n in ("numpy", "numba", "cupy")]
            gpu = row.get("cupy")
            cpu = [row[n] for n in ("numpy", "numba") if row.get(n)]
            vs_numpy = f"{row['numpy'] / gpu:.1f}x" if gpu and row.get("numpy") else ""
            vs_best = f"{min(cpu) / gpu:.1f}x" if gpu and cpu else ""
            lines.append(
                f"| {label} | {dtype} | "
                + " | ".join(cells)
                + f" | {vs_numpy} | {vs_best} |"
            )
    return lines


def peers_table(peers_log: Path) -> list[str]:
    """xpnet, PyTorch and JAX side by side, and xpnet's time over each peer's."""
    summary = summarise(read_log(peers_log))
    medians, skipped = summary["medians"], summary["skipped"]
    lines = []
    if medians:
        cols = [v for v in PEER_ORDER if v in medians]
        cols += sorted(set(medians) - set(cols))
        lines += [
            f"Median over the rounds, float32, {summary['size']} ReLU, lr 0.1 "
            "(each library in its own process, alternated). xpnet's run is "
            "`nn.Trainer` from host pixels (the upload included); the peers' "
            "data are on the device before timing.",
            "",
            "| task | " + " | ".join(cols) + " |",
            "|---|" + "---:|" * len(cols),
        ]
        for task, label in PEER_TASKS.items():
            cells = [seconds(medians[v].get(task)) for v in cols]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        mine = medians.get("xpnet", {})
        others = [v for v in cols if v != "xpnet"]
        if mine and others:
            lines += [
                "",
                "xpnet's time / the peer's (below 1: xpnet is faster):",
                "",
                "| task | " + " | ".join(others) + " |",
                "|---|" + "---:|" * len(others),
            ]
            for task, label in PEER_TASKS.items():
                cells = []
                for v in others:
                    a, b = mine.get(task), medians[v].get(task)
                    cells.append(f"{a / b:.2f}x" if a and b else "-")
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    else:
        lines.append("No peer results (see the peers entry above).")
    if skipped:
        lines += [""] + [f"- {v} skipped: {why}" for v, why in sorted(skipped.items())]
    return lines


def chapter6_table(path: Path) -> list[str]:
    """Chapter 6's benchmark on the GPU (``chapter6.json``): medians per
    configuration and xpnet's time over the best peer's."""
    from chapter6 import CONFIGS, ratios

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return ["No chapter 6 results (see the chapter6 entry above)."]
    runs = doc.get("benchmarks", [])
    skipped = doc.get("skipped", {})
    notes = [f"- {v} skipped: {why}" for v, why in sorted(skipped.items())]
    if not runs:
        return ["No chapter 6 run finished (see the chapter6 entry above).", *notes]
    cols = sorted({e["params"]["variant"] for e in runs}, key=lambda v: v[:4] != "cupy")
    where = doc.get("device", {})
    size = runs[0]["extra_info"]["size"].rsplit(" ", 1)[0]
    lines = [
        f"Wall time of the whole run, {size}, float32, Adam (median over the "
        f"rounds; each library in its own process, alternated); xpnet on "
        f"{where.get('xpnet', '?')}, the peers on {where.get('peers', '?')}.",
        "",
        "| configuration | " + " | ".join(cols) + " | xpnet / best peer |",
        "|---|" + "---:|" * (len(cols) + 1),
    ]
    best = ratios(runs)
    for config in CONFIGS:
        times = {
            e["params"]["variant"]: e["stats"]["median"]
            for e in runs
            if e["extra_info"]["config"] == config
        }
        ratio = f"{best[config][2]:.2f}x" if config in best else "-"
        cells = [seconds(times.get(v)) for v in cols]
        lines.append(f"| {config} | " + " | ".join(cells) + f" | {ratio} |")
    return lines + [""] * bool(notes) + notes


def write_report(r, data: dict, started: str, total: float, budgets: dict) -> bool:
    """Write ``report.md`` and ``report.json`` into ``r.out``; -> all passed."""
    passed = bool(r.results) and all(e["status"] == "passed" for e in r.results)
    device = next((e for e in r.results if e["name"] == "detection"), {})
    plan = ", ".join(f"{k} {v:.0f} s" for k, v in budgets.items())
    md = [
        "# xpnet GPU report",
        "",
        f"- started {started} UTC, {total:.0f} s in all; overall: "
        + ("**passed**" if passed else "**FAILED**"),
        "- device: " + (device.get("stdout", "").strip().splitlines() or ["?"])[0],
        f"- data for the CLI runs: {data['source']}",
        f"- mode: {'stand-in (dry run)' if r.args.standin else 'real GPU'}"
        + (", smoke sizes" if r.args.smoke else ""),
        f"- stage budgets: {plan}",
        "",
        "## Results",
        "",
        "| part | check | status | seconds | detail |",
        "|---|---|---|---:|---|",
    ]
    for e in r.results:
        detail = e.get("detail", "")
        log = e.get("log")
        if log and e["part"] == "tests":
            detail = (
                f"{log['passed']} passed, {log['failed']} failed, "
                f"{log['error']} errors, {log['skipped']} skipped of "
                f"{log['collected']}. " + detail
            )
        elif log and e["part"] == "bench":
            detail = f"{log['rows']} rows of {log['collected']}. " + detail
        md.append(
            f"| {e['part']} | {e['name']} | {e['status']} | {e['seconds']} | "
            f"{detail.strip()} |"
        )
    failing = [f for e in r.results for f in (e.get("log") or {}).get("failing", [])]
    if failing:
        md += ["", "### Failing tests", ""] + [f"- `{f}`" for f in failing]
    md += ["", "## xpnet, PyTorch and JAX on this device", ""]
    md += peers_table(r.out / "peers.jsonl")
    md += ["", "## Chapter 6: xpnet, PyTorch and JAX on this device", ""]
    md += chapter6_table(r.out / "chapter6.json")
    md += ["", "## CPU against GPU", ""] + bench_table(r.out / "rows.jsonl")
    md += [
        "",
        "Raw data: `report.json` (every command and its output tail), "
        "`tests.jsonl`, `rows.jsonl`, `peers.jsonl` (one line per test, row "
        "and timing, written as they finished), `chapter6.json`, `logs/` "
        "(full output).",
    ]
    (r.out / "report.md").write_text("\n".join(md) + "\n")
    raw = {
        "started": started,
        "seconds": round(total, 1),
        "passed": passed,
        "standin": r.args.standin,
        "smoke": r.args.smoke,
        "data": data["source"],
        "budgets": budgets,
        "results": r.results,
    }
    (r.out / "report.json").write_text(json.dumps(raw, indent=1, default=str))
    return passed
