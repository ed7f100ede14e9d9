"""pytest plugin of ``bench/gpu_report.py``: one JSON line per test as it ends.

    python -m pytest -p gpu_report_log --xpnet-log=PATH ...   (bench/ on sys.path)

JUnit XML and pytest-benchmark's JSON are written only when the run ends, so a
run stopped at its time budget would leave nothing; this log is appended and
flushed test by test instead. Its lines (JSON objects, ``event`` first):

* ``{"event": "collected", "count": M}`` once collection is done;
* ``{"event": "test", "nodeid", "outcome", "seconds", "message"}`` per test,
  ``outcome`` one of passed, failed, error (setup or teardown), skipped;
* ``{"event": "row", ...}`` per benchmark that measured something: the entry
  pytest-benchmark would write (group, name, params, extra_info, stats without
  the raw data), plus ``nodeid``;
* ``{"event": "finished", "exitstatus": N}`` when pytest ends, also after
  Ctrl-C (SIGINT), which is how the report stops a stage at its budget.
"""

from __future__ import annotations

import json
import time

import pytest

OPTION = "--xpnet-log"


def pytest_addoption(parser):
    parser.addoption(OPTION, default=None, help="append one JSON line per test here")


def pytest_configure(config):
    path = config.getoption(OPTION)
    if path:
        config.pluginmanager.register(JsonLog(path), "xpnet-json-log")


def read_log(path) -> list[dict]:
    """The log's events; a last line cut short by a kill is ignored."""
    events = []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


class JsonLog:
    """Appends an event per test to ``path``, flushed at once."""

    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8")
        self.started: dict[str, float] = {}
        self.outcome: dict[str, tuple[str, str]] = {}

    def write(self, **event) -> None:
        self.file.write(json.dumps(event, default=str) + "\n")
        self.file.flush()

    def pytest_collection_finish(self, session):
        self.write(event="collected", count=len(session.items))

    def pytest_runtest_logstart(self, nodeid, location):
        self.started[nodeid] = time.monotonic()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        yield
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        stats = getattr(fixture, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            row = stats.as_dict(include_data=False)
            self.write(event="row", nodeid=item.nodeid, **row)

    def pytest_runtest_logreport(self, report):
        first = self.outcome.get(report.nodeid)
        if report.failed:
            kind = "failed" if report.when == "call" else "error"
            message = str(report.longrepr).strip().splitlines()[-1:] or [""]
            # The first failure is what broke the test; keep it.
            if first is None or first[0] not in ("failed", "error"):
                self.outcome[report.nodeid] = (kind, message[0][:300])
        elif report.skipped and first is None:
            reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else ""
            self.outcome[report.nodeid] = ("skipped", str(reason)[:300])
        elif report.when == "call" and first is None:
            self.outcome[report.nodeid] = ("passed", "")

    def pytest_runtest_logfinish(self, nodeid, location):
        outcome, message = self.outcome.pop(nodeid, ("error", "no outcome"))
        seconds = time.monotonic() - self.started.pop(nodeid, time.monotonic())
        self.write(
            event="test",
            nodeid=nodeid,
            outcome=outcome,
            seconds=round(seconds, 3),
            message=message,
        )

    def pytest_sessionfinish(self, session, exitstatus):
        self.write(event="finished", exitstatus=int(exitstatus))
        self.file.close()
