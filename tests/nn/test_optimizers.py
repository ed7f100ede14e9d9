"""Chapter 6's optimizers against an independent float64 NumPy reimplementation
of the book's formulas, on every backend, and their state dicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

import backend as B
from nn import OPTIMIZERS, SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from nn.optimizers import make_optimizer

SHAPES = {"W1": (4, 3), "b1": (3,), "W2": (3, 2), "b2": (2,)}


def _reference(name, hyper, params, grads_seq):
    """The book's common/optimizer.py, transcribed in float64 NumPy."""
    p = {k: v.astype(np.float64).copy() for k, v in params.items()}
    s1 = {k: np.zeros_like(v) for k, v in p.items()}
    s2 = {k: np.zeros_like(v) for k, v in p.items()}
    lr = hyper["lr"]
    for it, grads in enumerate(grads_seq, start=1):
        for k in p:
            g = grads[k].astype(np.float64)
            if name == "sgd":
                p[k] -= lr * g
            elif name == "momentum":
                s1[k] = hyper["momentum"] * s1[k] - lr * g
                p[k] += s1[k]
            elif name == "nesterov":
                mom = hyper["momentum"]
                s1[k] *= mom
                s1[k] -= lr * g
                p[k] += mom * mom * s1[k]
                p[k] -= (1 + mom) * lr * g
            elif name == "adagrad":
                s1[k] += g * g
                p[k] -= lr * g / (np.sqrt(s1[k]) + 1e-7)
            elif name == "rmsprop":
                d = hyper["decay_rate"]
                s1[k] *= d
                s1[k] += (1 - d) * g * g
                p[k] -= lr * g / (np.sqrt(s1[k]) + 1e-7)
            elif name == "adam":
                b1, b2 = hyper["beta1"], hyper["beta2"]
                lr_t = lr * np.sqrt(1.0 - b2**it) / (1.0 - b1**it)
                s1[k] += (1 - b1) * (g - s1[k])
                s2[k] += (1 - b2) * (g**2 - s2[k])
                p[k] -= lr_t * s1[k] / (np.sqrt(s2[k]) + 1e-7)
    return p


HYPER = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.05, "momentum": 0.8},
    "nesterov": {"lr": 0.05, "momentum": 0.8},
    "adagrad": {"lr": 0.3},
    "rmsprop": {"lr": 0.02, "decay_rate": 0.9},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.95},
}


def _problem(dtype, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    grads = [
        {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        for _ in range(steps)
    ]
    # A zero gradient entry: AdaGrad's and Adam's 1e-7 keep it finite.
    grads[0]["b2"][0] = 0
    return params, grads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(HYPER))
def test_each_update_rule_is_the_books(backend, to_host, name, dtype):
    params_host, grads_host = _problem(dtype)
    params = {k: backend.asarray(v.copy()) for k, v in params_host.items()}
    same = dict(params)
    opt = OPTIMIZERS[name](**HYPER[name])
    for grads in grads_host:
        opt.update(params, {k: backend.asarray(v) for k, v in grads.items()})
    want = _reference(name, HYPER[name], params_host, grads_host)
    tol = 1e-12 if dtype == "float64" else 2e-5
    for k in SHAPES:
        assert params[k] is same[k]  # in place: the layers keep references
        assert params[k].dtype == np.dtype(dtype)
        np.testing.assert_allclose(to_host(params[k]), want[k], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", [n for n in HYPER if n != "sgd"])
def test_state_lives_on_the_params_backend(backend, name):
    params_host, grads_host = _problem("float32", steps=1)
    params = {k: backend.asarray(v.copy()) for k, v in params_host.items()}
    opt = OPTIMIZERS[name]()
    opt.update(params, {k: backend.asarray(v) for k, v in grads_host[0].items()})
    for slot in opt.SLOTS:
        for k, arr in opt.state[slot].items():
            assert type(arr) is type(params[k])
            assert arr.dtype == params[k].dtype and arr.shape == params[k].shape


def test_the_books_defaults():
    assert (SGD().lr, Momentum().lr, Momentum().momentum) == (0.01, 0.01, 0.9)
    assert (Nesterov().lr, Nesterov().momentum) == (0.01, 0.9)
    assert AdaGrad().lr == 0.01
    assert (RMSprop().lr, RMSprop().decay_rate) == (0.01, 0.99)
    assert (Adam().lr, Adam().beta1, Adam().beta2) == (0.001, 0.9, 0.999)
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad"} | {
        "rmsprop",
        "adam",
    }


@pytest.mark.parametrize("name", list(HYPER))
def test_state_dict_round_trip_continues_bit_exact(backend, to_host, name):
    params_host, grads_host = _problem("float64", steps=4)
    a = {k: backend.asarray(v.copy()) for k, v in params_host.items()}
    opt = OPTIMIZERS[name](**HYPER[name])
    for grads in grads_host[:2]:
        opt.update(a, {k: backend.asarray(v) for k, v in grads.items()})
    # Through the host, as a checkpoint does.
    state = {
        k: ({n: B.to_numpy(x) for n, x in v.items()} if isinstance(v, dict) else v)
        for k, v in opt.state_dict().items()
    }
    b = {k: backend.asarray(B.to_numpy(v)) for k, v in a.items()}
    other = OPTIMIZERS[name]()
    other.load_state_dict(state, params=b)
    for grads in grads_host[2:]:
        g = {k: backend.asarray(v) for k, v in grads.items()}
        opt.update(a, g)
        other.update(b, g)
    for k in SHAPES:
        np.testing.assert_array_equal(to_host(a[k]), to_host(b[k]))


def test_loaded_state_is_a_copy():
    params = {"W": np.ones(3)}
    opt = Momentum()
    opt.update(params, {"W": np.ones(3)})
    other = Momentum()
    other.load_state_dict(opt.state_dict())
    other.update({"W": np.ones(3)}, {"W": np.ones(3)})
    np.testing.assert_allclose(opt.state["v"]["W"], -0.01)


@pytest.mark.parametrize(
    ("source", "target", "match"),
    [
        ("adam", "momentum", "from 'adam', not 'momentum'"),
        ("momentum", "sgd", "from 'momentum', not 'sgd'"),
        ("sgd", "adam", "from 'sgd', not 'adam'"),
    ],
)
def test_state_dict_of_another_optimizer_is_rejected(source, target, match):
    params = {"W": np.ones(3)}
    opt = OPTIMIZERS[source]()
    opt.update(params, {"W": np.ones(3)})
    with pytest.raises(ValueError, match=match):
        OPTIMIZERS[target]().load_state_dict(opt.state_dict())


def test_state_dict_of_another_shape_is_rejected():
    opt = Adam()
    opt.update({"W": np.ones((2, 3))}, {"W": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"W has shape \(2, 3\).*\(3, 2\)"):
        Adam().load_state_dict(opt.state_dict(), params={"W": np.ones((3, 2))})
    later = Adam()
    later.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="another network"):
        later.update({"V": np.ones((2, 3))}, {"V": np.ones((2, 3))})


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (Adam, {"lr": -1}, "learning rate"),
        (Adam, {"beta1": 1.0}, "beta1 must be a number in"),
        (Momentum, {"momentum": math.nan}, "momentum must be"),
        (RMSprop, {"decay_rate": -0.1}, "decay_rate must be"),
    ],
)
def test_bad_hyper_parameters_are_one_line_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        cls(**kwargs)
    assert "\n" not in str(info.value)


def test_unknown_optimizer_names_the_choices():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'; choose one of"):
        make_optimizer("adamw")
    assert make_optimizer("adam").lr == 0.001
    assert make_optimizer("momentum", 0.5).lr == 0.5


def test_missing_gradient_is_a_key_error():
    with pytest.raises(KeyError, match="'b'"):
        Adam().update({"W": np.ones(2), "b": np.ones(2)}, {"W": np.ones(2)})
