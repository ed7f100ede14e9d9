"""The safe weights loader against a corpus of hostile pickles (hostile_pickles.py).

Every case is fed, in a child process (hostile_child.py) under an address
space limit and an audit hook, to ``load_array_dict`` and to
``ThreeLayerNet.from_pickle``. Each must raise ``UnsafePickleError`` naming
the file in one line, run nothing (no marker file, victims intact, no audit
event but the opening of the file itself) and never crash the interpreter.
A control run with the standard unpickler shows that the payloads are live.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hostile_pickles import build_corpus, ext_registrations
from reliability_support import ROOT

CHILD = [sys.executable, str(ROOT / "tests" / "reliability" / "hostile_child.py")]
DUMMY = {"marker": "m", "victim": "v", "victim_dir": "d"}
CASE_IDS = sorted(build_corpus(DUMMY))
#: Hostile pickles in the corpus, each fed to both loaders (README table).
HOSTILE_CASES = len(CASE_IDS)
#: Cases whose payload the standard pickle module does run (the control).
LIVE_CONTROLS = [
    "GLOBAL+REDUCE:os.system",
    "STACK_GLOBAL+REDUCE:helper",
    "INST:helper",
    "OBJ:eval",
    "EXT1:helper",
    "EXT2:os.system",
    "EXT4:exec",
    "nested:getattr(__import__('os'),'system')",
    "nested:pickle.loads(inner pickle)",
    "nested:OrderedDict([(k, os.system(...))])",
    "nested:50 tuples deep",
    "nested:as dict key",
]


def run_child(tmp, cases: dict, mode: str, shared_paths: dict, weights=None) -> dict:
    """{case id: result} from hostile_child.py; a crash is charged to its case."""
    pending = dict(cases)
    results = {}
    while pending:
        manifest = {
            "mode": mode,
            "cases": [
                {"id": cid, "file": str(path), "marker": str(marker)}
                for cid, (path, marker) in pending.items()
            ],
            "extensions": ext_registrations(),
            "victims": [shared_paths["victim"], shared_paths["victim_dir"]],
            "warm_weights": str(weights) if weights else None,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        proc = subprocess.run(
            [*CHILD, str(tmp / "manifest.json")],
            capture_output=True,
            text=True,
            timeout=120,
            env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        )
        for line in proc.stdout.splitlines():
            result = json.loads(line)
            results[result["id"]] = result
            pending.pop(result["id"])
        if proc.returncode != 0 and pending:
            crashed = next(iter(pending))
            results[crashed] = {"crash": proc.returncode, "stderr": proc.stderr[-2000:]}
            pending.pop(crashed)
    return results


def make_paths(tmp):
    victim_dir = tmp / "victim-dir"
    victim_dir.mkdir()
    (victim_dir / "keep").write_text("keep")
    victim = tmp / "victim.txt"
    victim.write_text("keep")
    return {
        "marker": str(tmp / "marker"),
        "victim": str(victim),
        "victim_dir": str(victim_dir),
    }


@pytest.fixture(scope="module")
def safe_results(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("hostile")
    paths = make_paths(tmp)
    cases = {}
    for i, (cid, data) in enumerate(sorted(build_corpus(paths).items())):
        (tmp / f"case{i}.pkl").write_bytes(data)
        cases[cid] = (tmp / f"case{i}.pkl", paths["marker"])
    weights = shared_data / "book" / "sample_weight.pkl"
    return run_child(tmp, cases, "safe", paths, weights)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_hostile_pickle_is_refused_and_runs_nothing(safe_results, case_id):
    result = safe_results[case_id]
    assert "crash" not in result, f"the interpreter died: {result}"
    for loader in ("load_array_dict", "from_pickle"):
        outcome = result[loader]
        assert outcome["raised"] == "UnsafePickleError", (loader, outcome)
        assert "\n" not in outcome["message"]
        assert outcome["message"].split(":")[0].endswith(".pkl")
        assert outcome["events"] == [], (loader, outcome["events"])
    assert not result["marker"], "a payload ran: the marker file exists"
    assert result["victims"], "a payload ran: a victim file was deleted"


@pytest.mark.timeout(120)
def test_the_payloads_are_live_under_the_standard_unpickler(tmp_path):
    paths = make_paths(tmp_path)
    cases = {}
    for i, cid in enumerate(LIVE_CONTROLS):
        marker = tmp_path / f"marker{i}"
        data = build_corpus({**paths, "marker": str(marker)})[cid]
        (tmp_path / f"case{i}.pkl").write_bytes(data)
        cases[cid] = (tmp_path / f"case{i}.pkl", marker)
    results = run_child(tmp_path, cases, "plain", paths)
    ran = [cid for cid in LIVE_CONTROLS if results[cid].get("marker")]
    assert ran == LIVE_CONTROLS
