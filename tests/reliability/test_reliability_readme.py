"""The docs' "Reliability" table is generated from the tests' own constants.

``python tests/reliability/test_reliability_readme.py`` prints the section;
the test below fails when docs/reliability.md lacks it or when its table no
longer matches the counts the reliability tests actually run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The documentation page that holds the table (it was in README.md).
PAGE = ROOT / "docs" / "reliability.md"
HEADING = "## Reliability"
INTRO = (
    "What `tests/reliability/` tries on every test run (the counts come from the "
    "tests themselves, and `tests/reliability/test_reliability_readme.py` "
    "fails if this table disagrees with them). Hypothesis runs derandomized and "
    "every random choice is seeded, so each run tries the same cases. They are "
    "part of the normal `pytest` run (about 70 s of it on 2 cores)."
)
COLUMNS = ("What was tried", "Cases", "What happened")


def rows() -> list[tuple[str, int, str]]:
    """(what was tried, number of cases, what happened), one per table row."""
    import test_cli_bad_input as cli
    import test_disk_full as disk
    import test_download_faults as download
    import test_hostile_pickles as pickles
    import test_idx_fuzz as idx
    import test_kill_resume as kill
    import test_loader_fuzz as loader
    import test_numerics_edge as numerics
    import test_resume_fuzz as resume
    import test_stale_temps as stale

    return [
        (
            "`read_idx` on Hypothesis-made IDX files of every element type: "
            "truncated or padded payloads, wrong magic, random header bytes, "
            "corrupt or cut gzip, garbage after the gzip member, random bytes",
            idx.IDX_EXAMPLES,
            "each loaded exactly the reference parser's array or raised "
            "`IdxFormatError` naming the file, in one line",
        ),
        (
            "`read_idx` on headers declaring at least 2^31 bytes (e.g. 2^31 "
            "images of 28x28) over a few bytes of data, plain and gzip",
            idx.ABSURD_EXAMPLES,
            "refused with `IdxFormatError` in under 1 s, allocating under 1 MiB "
            "(tracemalloc)",
        ),
        (
            "`load_mnist_split` on folders of images + labels: counts that "
            "disagree, labels over 9, other shapes or element types, files "
            "swapped, truncated, padded or with corrupt gzip",
            loader.LOADER_EXAMPLES,
            "exactly the data (again from the parsed cache), or `IdxFormatError` "
            "/ `DatasetError` in one line; refused data is never cached",
        ),
        (
            "Hostile pickles: GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, "
            "NEWOBJ, NEWOBJ_EX, EXT1/2/4 (copyreg cache warm), PERSID, BINPERSID "
            "aimed at os.system, eval, exec, open, subprocess, shutil.rmtree, ...; "
            "nested reducers; memory bombs (memo index, length fields, shells); "
            "forged NumPy dtypes",
            pickles.HOSTILE_CASES,
            "all refused with `UnsafePickleError` by `load_array_dict` and "
            "`ThreeLayerNet.from_pickle`: no marker file, no deleted file, no "
            "audit event, no crash (run with only 1 GiB of address space to "
            "spare)",
        ),
        (
            "`train.py` with bad arguments (unknown device, sizes of 0 or less "
            "or of 10^12 and 2^63, learning rates that are not positive numbers, "
            "...), a bad `--out`, `--resume` of truncated, foreign, other-shape, "
            "newer-version or 8-TiB-declaring checkpoints, missing or corrupt "
            "data, no network",
            cli.CLI_CASES,
            "one `train.py: error:` line, exit code 2 (usage) or 1 (cannot run), "
            "every existing file unchanged",
        ),
        (
            "`train.py --resume` of checkpoints whose JSON record Hypothesis "
            "tampered with (a field deleted or given another type, a negative, "
            "huge, NaN or infinite value)",
            resume.RESUME_EXAMPLES,
            "each resumed to the end or stopped with one `train.py: error:` "
            "line and exit code 1 or 2",
        ),
        (
            "Numerics: NaN and inf inputs, huge and -inf scores, all-zero "
            "batches, a batch of one, labels as floats (NumPy and Numba backends)",
            numerics.NUMERIC_CASES,
            "exact limits or the documented error; NaN is never hidden; the "
            "trainer stops with `TrainingDiverged` and keeps its last good "
            "checkpoint",
        ),
        (
            "SIGKILL of a training run at a chosen file-system event (inside a "
            "checkpoint's bytes, at an fsync, before a rename, inside a metrics "
            "append) or after a random delay",
            kill.KILLED_RUNS,
            "the checkpoint always loaded; every metrics row equalled the "
            "uninterrupted run's; `--resume` ended with bit-identical weights "
            "and metrics",
        ),
        (
            "`--resume` of a run whose metrics.csv was overwritten with random "
            "bytes, cut in the middle of a row, overwritten mid-file with "
            "garbage, or lost its header and some rows",
            len(kill.METRICS_DAMAGE),
            "the run continued to bit-identical weights; every row of the "
            "uninterrupted run is there (rows that survived kept as they were, "
            "the others rebuilt from the checkpoint), the damaged file kept as "
            "`metrics.csv.damaged`, one `warning:` line",
        ),
        (
            "Downloads cut at random byte offsets (with and without "
            "Content-Length), mirrors serving wrong bytes (a flipped byte, "
            "another dataset, an HTML page, nothing, other content), a download "
            "process SIGKILLed",
            download.DOWNLOAD_FAULTS,
            "a one-line `DatasetNotFoundError`; nothing in the cache but hidden "
            "`.part` files; the next load from a good mirror gave the real data",
        ),
        (
            "Temporary files of atomic writes left by a SIGKILL (`.tmp` of a "
            "checkpoint, `.part` of a download), look-alike names, a live "
            "writer's file, a young file, a symlink and a folder of our naming",
            stale.STALE_CASES,
            "the next checkpoint save or download removed exactly the dead "
            "writers' stale files (unlocked and untouched for 60 s); every "
            "other file was kept",
        ),
        (
            "Disk full (ENOSPC after half a write) at a chosen file-system event "
            "of a training run",
            disk.DISK_FULL_POINTS,
            "`train.py: error: cannot write to ...: No space left on device`, "
            "exit code 1, no temporary file, the previous checkpoint loads; "
            "`--resume` ended bit-identical (a failed fsync of the run folder "
            "itself is ignored by design: that run finished normally)",
        ),
    ]


def render_section() -> str:
    """The page's section, Markdown, ending with a newline."""
    lines = [HEADING, "", INTRO, "", "| " + " | ".join(COLUMNS) + " |"]
    lines.append("|---|---:|---|")
    lines += [f"| {what} | {count} | {happened} |" for what, count, happened in rows()]
    return "\n".join(lines) + "\n"


def parse_table(readme: str) -> list[tuple[str, int, str]]:
    """The rows of the table under the page's Reliability heading."""
    match = re.search(rf"^{re.escape(HEADING)}\s*$", readme, re.MULTILINE)
    assert match, (
        "docs/reliability.md has no '## Reliability' section; paste the output "
        "of `python tests/reliability/test_reliability_readme.py` into it"
    )
    table = []
    for line in readme[match.end() :].splitlines():
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            table.append(cells)
    assert table and tuple(table[0]) == COLUMNS, table[:1]
    return [(what, int(count), happened) for what, count, happened in table[1:]]


def test_docs_reliability_table_matches_the_tests():
    assert PAGE.is_file(), f"{PAGE} is missing (it needs a '## Reliability' section)"
    page = PAGE.read_text(encoding="utf-8")
    assert parse_table(page) == rows()


def test_rendered_section_parses_back():
    assert parse_table(render_section()) == rows()


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
    sys.stdout.write(render_section())
