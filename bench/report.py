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

from report_tables import environment, headlines, markdown

__all__ = ["environment", "headlines", "load_passes", "markdown", "summarize"]


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
