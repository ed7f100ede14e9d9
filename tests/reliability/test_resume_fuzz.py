"""``train.py --resume`` of checkpoints whose JSON record Hypothesis has tampered with.

Each example takes a finished 20-iteration run, deletes one field of the
checkpoint's ``meta`` record or gives it another JSON value (wrong types,
negative or huge numbers, strings, lists, nulls), and resumes it to 25
iterations in-process. The CLI must either finish (exit 0) or stop with one
``train.py: error:`` line and exit code 1 or 2; an uncaught exception, a
traceback or a second line fails the test.
"""

from __future__ import annotations

import itertools
import json
import shutil
import zipfile

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import FUZZ_SETTINGS, child_env, run_train, tiny_train_args

import backend as B
import train
from nn.training.checkpoint import CHECKPOINT_NAME

#: Hypothesis examples of tampered checkpoint records resumed (README table).
RESUME_EXAMPLES = 60
#: The fields of the meta record, as paths into its JSON.
FIELDS = [
    ("iteration",),
    ("config",),
    ("config", "hidden_size"),
    ("config", "activation"),
    ("config", "iters"),
    ("config", "epochs"),
    ("config", "batch_size"),
    ("config", "lr"),
    ("config", "grad"),
    ("config", "dtype"),
    ("config", "seed"),
    ("config", "eval_every"),
    ("config", "weight_init_std"),
    ("optimizer",),
    ("optimizer", "lr"),
    ("rng_state",),
    ("rng_state", "bit_generator"),
    ("rng_state", "state"),
    ("rng_state", "state", "state"),
    ("rng_state", "state", "inc"),
    ("rng_state", "has_uint32"),
    ("rng_state", "uinteger"),
    ("dataset",),
    ("backend",),
    ("elapsed",),
]
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 10**6, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["relu", "sigmoid", "float64", "numerical", "mnist", "PCG64"]),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["lr", "state", "x"]), st.integers(-3, 3)),
)


@pytest.fixture(scope="module")
def short_run(tiny_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("short")
    env = child_env(tmp / "cache", XPNET_FAULT_NO_PLOTS="1")
    proc = run_train(
        *tiny_train_args(tiny_data, tmp / "run", iters=20), env=env, faults=True
    )
    assert proc.returncode == 0, proc.stderr
    return tmp / "run"


def rewrite_meta(path, change) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.asarray(json.dumps(meta))
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, value, allow_pickle=False)


def tamper(meta, field, value, delete: bool) -> None:
    node = meta
    for key in field[:-1]:
        if not isinstance(node, dict):
            return
        node = node.get(key)
    if not isinstance(node, dict):
        return
    if delete:
        node.pop(field[-1], None)
    else:
        node[field[-1]] = value


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tampered_checkpoint_resumes_or_fails_in_one_line(
    short_run, tiny_data, tmp_path, capsys
):
    outcomes = {"finished": 0, "refused": 0}
    previous = B.current()
    numbers = itertools.count()

    @settings(max_examples=RESUME_EXAMPLES, **FUZZ_SETTINGS)
    @given(
        field=st.sampled_from(FIELDS),
        value=JSON_VALUES,
        delete=st.booleans(),
    )
    def case(field, value, delete):
        run = tmp_path / f"run{next(numbers)}"
        shutil.copytree(short_run, run)
        rewrite_meta(run / CHECKPOINT_NAME, lambda m: tamper(m, field, value, delete))
        argv = ["--device", "numpy", "--data-dir", str(tiny_data), "--quiet"]
        try:
            code = train.main([*argv, "--resume", str(run), "--iters", "25"])
        except SystemExit as exc:
            code = exc.code
        finally:
            B.use(previous)
        out, err = capsys.readouterr()
        if code == 0:
            outcomes["finished"] += 1
            return
        assert code in (1, 2), (field, value, delete, err)
        # One error line, after any warning the resume printed (a metrics file
        # that disagrees with the tampered record is repaired with a warning).
        lines = err.splitlines()
        assert lines[-1].startswith("train.py: error: "), err
        warned = ("warning: ", "train.py: warning: ")
        assert all(line.startswith(warned) for line in lines[:-1]), err
        outcomes["refused"] += 1
        shutil.rmtree(run)

    case()
    assert sum(outcomes.values()) >= RESUME_EXAMPLES
    assert min(outcomes.values()) >= RESUME_EXAMPLES // 10, outcomes
