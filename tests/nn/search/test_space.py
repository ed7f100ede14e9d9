"""The --space syntax: parsing, canonical text, errors, and sampling in range."""

import math

import pytest

from nn.search.settings import SearchSettings, train_command, trial_values
from nn.search.space import DEFAULT_SPACE, SpaceError, parse_space, space_text

optuna = pytest.importorskip("optuna")


def test_default_space_is_the_books():
    dims = {d.name: d for d in parse_space(DEFAULT_SPACE)}
    assert set(dims) == {"lr", "weight_decay"}
    assert (dims["lr"].low, dims["lr"].high, dims["lr"].log) == (1e-6, 1e-2, True)
    wd = dims["weight_decay"]
    assert (wd.low, wd.high, wd.log) == (1e-8, 1e-4, True)


def test_canonical_text_is_order_and_spelling_free():
    a = space_text(parse_space("weight_decay=1e-8:0.0001:log, lr=0.000001:1e-2:LOG"))
    b = space_text(parse_space(DEFAULT_SPACE))
    assert a == b
    assert space_text(parse_space("optimizer=adam|sgd")) != space_text(
        parse_space("optimizer=sgd|adam")
    )  # the choice order is the sampler's, so it is part of the space


def test_kinds():
    dims = {
        d.name: d
        for d in parse_space("optimizer=sgd|adam,batch_size=32:256:log,dropout=0:0.5")
    }
    assert dims["optimizer"].choices == ("sgd", "adam")
    assert dims["batch_size"].integer and dims["batch_size"].log
    assert not dims["dropout"].integer and not dims["dropout"].log
    assert dims["batch_size"].text() == "batch_size=32:256:int:log"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("lr=1e-2:1e-6:log", "low end must be below the high end; e.g. lr=1e-6:1e-2"),
        ("lr=1e-3:1e-3", "low end must be below the high end"),
        ("lr=0:1:log", "above 0 on a log scale"),
        ("momentum=0.1:0.9", "cannot search 'momentum'"),
        ("lr", "is not NAME=LOW:HIGH"),
        ("lr=a:b", "must be numbers"),
        ("lr=1:2:cube", "optional :log and :int"),
        ("depth=1.5:3", "whole numbers"),
        ("optimizer=sgd|lbfgs", "choose distinct values among"),
        ("lr=1e-6:1e-2,lr=1e-5:1e-1", "names lr twice"),
        ("dropout=0:1", "below 1"),
        ("", "is empty"),
    ],
)
def test_bad_space_names_the_fix(text, words):
    with pytest.raises(SpaceError, match=None) as info:
        parse_space(text)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_samples_stay_in_range_and_log_scale_is_uniform_in_log():
    dims = parse_space(DEFAULT_SPACE + ",depth=2:4,optimizer=sgd|adam")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    lrs = []
    for _ in range(400):
        trial = study.ask()
        values = {d.name: d.suggest(trial) for d in dims}
        study.tell(trial, 0.0)
        assert 1e-6 <= values["lr"] <= 1e-2 and 1e-8 <= values["weight_decay"] <= 1e-4
        assert values["depth"] in (2, 3, 4) and values["optimizer"] in ("sgd", "adam")
        lrs.append(math.log10(values["lr"]))
    # uniform on [-6, -2]: mean -4, about half below -4 (400 draws: +-0.1 is > 3 sigma)
    assert abs(sum(lrs) / len(lrs) + 4) < 0.2
    assert 0.4 < sum(x < -4 for x in lrs) / len(lrs) < 0.6


def test_trial_values_and_train_command():
    s = SearchSettings(
        space=DEFAULT_SPACE, storage="sqlite://", dataset="fashion-mnist"
    )
    values = trial_values(s, {"lr": 0.00123456, "weight_decay": 3e-7})
    assert values["hidden_sizes"] == (100,) * 6 and values["optimizer"] == "sgd"
    cmd = train_command(s, values, seed=7)
    assert cmd.startswith("xpnet-train --dataset fashion-mnist --hidden-sizes ")
    for part in ("100,100,100,100,100,100", "--lr 0.001235", "--weight-decay 3e-07"):
        assert part in cmd
    assert "--epochs 50" in cmd and "--batch-size 100" in cmd and "--seed 7" in cmd
    deep = trial_values(s, {"depth": 3, "width": 50})
    assert deep["hidden_sizes"] == (50, 50, 50)
