"""TwoLayerNet: parameters, forward math, gradient checks and the training step."""

from __future__ import annotations

import numpy as np
import pytest

import backend as B
from nn import SGD, TwoLayerNet

SIZES = (4, 5, 3)


def _batch(backend, n=6, seed=0):
    """x: (n, 4) float64 and labels (n,) / one-hot (n, 3) on the backend."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, SIZES[0]))
    labels = rng.integers(0, SIZES[2], size=n)
    return x, labels, np.eye(SIZES[2])[labels]


def _reference_scores(net, x, activation):
    """predict in float64 NumPy from the net's parameters."""
    p = {k: np.asarray(B.to_numpy(v), dtype=np.float64) for k, v in net.params.items()}
    a1 = x @ p["W1"] + p["b1"]
    z1 = np.maximum(a1, 0) if activation == "relu" else 1 / (1 + np.exp(-a1))
    return z1 @ p["W2"] + p["b2"]


def _reference_loss(scores, labels):
    y = np.exp(scores - scores.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    return -np.mean(np.log(y[np.arange(len(labels)), labels] + 1e-7))


# -- construction ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [None, "float64", "float32"])
def test_param_shapes_dtypes_and_init(backend, to_host, dtype):
    net = TwoLayerNet(784, 50, 10, dtype=dtype, rng=0)
    expected_dtype = np.dtype(dtype or "float64")
    shapes = {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert sorted(net.params) == sorted(shapes)
    for key, shape in shapes.items():
        assert net.params[key].shape == shape
        assert net.params[key].dtype == expected_dtype
        assert type(net.params[key]).__module__.split(".")[0] == backend.xp.__name__
    assert not np.any(to_host(net.params["b1"]))
    assert not np.any(to_host(net.params["b2"]))
    # weight_init_std * N(0, 1): the std of 39200 draws is within 2% of 0.01.
    assert np.std(to_host(net.params["W1"])) == pytest.approx(0.01, rel=0.02)
    assert abs(np.mean(to_host(net.params["W1"]))) < 3e-4


def test_same_seed_gives_the_same_weights_on_every_backend(backend, to_host):
    net = TwoLayerNet(*SIZES, weight_init_std=0.5, rng=42)
    rng = np.random.default_rng(42)  # one generator: W1 first, then W2
    np.testing.assert_array_equal(
        to_host(net.params["W1"]), 0.5 * rng.standard_normal((4, 5))
    )
    np.testing.assert_array_equal(
        to_host(net.params["W2"]), 0.5 * rng.standard_normal((5, 3))
    )
    other = TwoLayerNet(*SIZES, weight_init_std=0.5, rng=43)
    assert not np.array_equal(to_host(other.params["W1"]), to_host(net.params["W1"]))
    generator = TwoLayerNet(*SIZES, weight_init_std=0.5, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(
        to_host(generator.params["W2"]), to_host(net.params["W2"])
    )


def test_backend_argument_places_the_params(backend):
    net = TwoLayerNet(*SIZES, backend="numpy")
    assert net.backend.name == "numpy"
    assert type(net.params["W1"]).__module__ == "numpy"
    assert TwoLayerNet(*SIZES).backend is backend  # default: the current one


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "tanh"}, "activation"),
        ({"input_size": 0}, "input_size"),
        ({"hidden_size": -3}, "hidden_size"),
        ({"output_size": 2.5}, "output_size"),
        ({"input_size": "4"}, "input_size"),
        ({"hidden_size": True}, "hidden_size"),
        ({"dtype": "int32"}, "dtype"),
        ({"dtype": "not-a-dtype"}, "dtype"),
        ({"weight_init_std": -0.1}, "weight_init_std"),
        ({"weight_init_std": float("nan")}, "weight_init_std"),
        ({"backend": "tpu"}, "unknown backend"),
    ],
)
def test_bad_constructor_arguments_are_value_errors(kwargs, match):
    args = {"input_size": 4, "hidden_size": 5, "output_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        TwoLayerNet(**args)


def test_numpy_integer_sizes_are_accepted():
    net = TwoLayerNet(np.int64(4), np.int32(5), 3)
    assert net.params["W1"].shape == (4, 5)


# -- params are the layers' arrays --------------------------------------------


def test_params_are_the_arrays_the_layers_use(backend, to_host):
    net = TwoLayerNet(*SIZES, weight_init_std=1.0, rng=0)
    assert net.layers["Affine1"].W is net.params["W1"]
    assert net.layers["Affine1"].b is net.params["b1"]
    assert net.layers["Affine2"].W is net.params["W2"]
    assert net.layers["Affine2"].b is net.params["b2"]
    x = backend.asarray(_batch(backend)[0])
    before = to_host(net.predict(x))
    net.params["b2"] += 1.0  # in place: every score moves by exactly 1
    np.testing.assert_allclose(to_host(net.predict(x)), before + 1.0, rtol=1e-14)
    net.params["W2"][...] = 0.0
    np.testing.assert_allclose(to_host(net.predict(x)), 1.0, rtol=1e-14)


def test_rebinding_a_param_is_seen_as_well(backend, to_host):
    net = TwoLayerNet(*SIZES, weight_init_std=1.0, rng=0)
    x = backend.asarray(_batch(backend)[0])
    net.params["b2"] = net.params["b2"] + 2.0  # a new array, not in place
    np.testing.assert_allclose(
        to_host(net.predict(x)), _reference_scores(net, B.to_numpy(x), "relu")
    )


# -- predict, loss, accuracy ----------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_predict_and_loss_match_a_float64_reference(backend, to_host, activation):
    net = TwoLayerNet(*SIZES, weight_init_std=1.0, activation=activation, rng=3)
    x, labels, one_hot = _batch(backend)
    scores = _reference_scores(net, x, activation)
    np.testing.assert_allclose(
        to_host(net.predict(backend.asarray(x))), scores, rtol=1e-13, atol=1e-14
    )
    expected = _reference_loss(scores, labels)
    for t in (labels, one_hot):
        loss = net.loss(backend.asarray(x), backend.asarray(t))
        assert loss.shape == ()
        assert float(loss) == pytest.approx(expected, rel=1e-13)


def test_float32_net_computes_in_float32(backend):
    net = TwoLayerNet(*SIZES, dtype="float32", rng=0)
    x, labels, _ = _batch(backend)
    x32 = backend.asarray(x.astype(np.float32))
    assert net.predict(x32).dtype == np.float32
    loss = net.loss(x32, backend.asarray(labels))
    assert loss.dtype == np.float32
    grads = net.gradient(x32, backend.asarray(labels))
    assert all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.parametrize("target", ["label", "one_hot"])
def test_accuracy_counts_arg_max_hits(backend, target):
    net = TwoLayerNet(*SIZES, weight_init_std=1.0, rng=5)
    x, _, _ = _batch(backend, n=8)
    predicted = _reference_scores(net, x, "relu").argmax(axis=1)
    labels = predicted.copy()
    labels[:3] = (labels[:3] + 1) % SIZES[2]  # three wrong out of eight
    t = labels if target == "label" else np.eye(SIZES[2])[labels]
    acc = net.accuracy(backend.asarray(x), backend.asarray(t))
    assert isinstance(acc, float)
    assert acc == 5 / 8


def test_accuracy_of_an_empty_batch_is_a_value_error(backend):
    net = TwoLayerNet(*SIZES)
    with pytest.raises(ValueError, match="empty"):
        net.accuracy(backend.asarray(np.zeros((0, 4))), backend.asarray([0])[:0])


# -- gradients ------------------------------------------------------------------


@pytest.mark.parametrize("target", ["label", "one_hot"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradient_check_loop_against_backprop(backend, to_host, activation, target):
    net = TwoLayerNet(*SIZES, weight_init_std=0.3, activation=activation, rng=11)
    x, labels, one_hot = _batch(backend, n=5, seed=1)
    x, t = backend.asarray(x), backend.asarray(labels if target == "label" else one_hot)
    before = {k: B.to_numpy(v).copy() for k, v in net.params.items()}

    numeric = net.numerical_gradient(x, t, method="loop")
    backprop = net.gradient(x, t)

    assert sorted(numeric) == sorted(backprop) == ["W1", "W2", "b1", "b2"]
    for key, value in before.items():
        assert B.to_numpy(net.params[key]).tobytes() == value.tobytes(), key
        assert backprop[key].shape == value.shape
        g_num, g_bp = to_host(numeric[key]), to_host(backprop[key])
        # Backprop leaves out the 1e-7 inside the log: relative error ~1e-7 / y_t.
        scale = np.max(np.abs(g_bp))
        np.testing.assert_allclose(g_bp, g_num, rtol=2e-6, atol=2e-6 * scale)
        assert scale > 1e-4  # the check would be empty if the gradients vanished


def test_numerical_gradient_rejects_an_unknown_method(backend):
    net = TwoLayerNet(*SIZES)
    x, labels, _ = _batch(backend)
    with pytest.raises(ValueError, match="unknown method"):
        net.numerical_gradient(backend.asarray(x), backend.asarray(labels), "exact")


# -- training --------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_train_step_equals_gradient_then_sgd_update(backend, to_host, activation):
    x, labels, _ = _batch(backend, n=8)
    x, t = backend.asarray(x), backend.asarray(labels)
    fused = TwoLayerNet(*SIZES, weight_init_std=0.5, activation=activation, rng=9)
    manual = TwoLayerNet(*SIZES, weight_init_std=0.5, activation=activation, rng=9)
    ids = {k: id(v) for k, v in fused.params.items()}

    loss_before = float(manual.loss(x, t))
    step_loss = fused.train_step(x, t, SGD(lr=0.5))
    SGD(lr=0.5).update(manual.params, manual.gradient(x, t))

    assert float(step_loss) == pytest.approx(loss_before, rel=1e-12)
    assert {k: id(v) for k, v in fused.params.items()} == ids  # updated in place
    for key in manual.params:
        np.testing.assert_allclose(
            to_host(fused.params[key]),
            to_host(manual.params[key]),
            rtol=1e-12,
            atol=1e-14,
        )


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_train_steps_decrease_the_loss(backend, activation):
    net = TwoLayerNet(*SIZES, weight_init_std=0.5, activation=activation, rng=2)
    x, labels, _ = _batch(backend, n=16)
    x, t = backend.asarray(x), backend.asarray(labels)
    optimizer = SGD(lr=0.5)
    losses = [float(net.train_step(x, t, optimizer)) for _ in range(30)]
    assert losses[1] < losses[0]
    assert float(net.loss(x, t)) < 0.8 * losses[0]


def test_train_step_uses_any_optimizer(backend):
    class Recorder:
        def __init__(self):
            self.calls = []

        def update(self, params, grads):
            self.calls.append(sorted(grads))

    net = TwoLayerNet(*SIZES, rng=0)
    x, labels, _ = _batch(backend)
    before = B.to_numpy(net.params["W1"]).copy()
    optimizer = Recorder()
    loss = net.train_step(backend.asarray(x), backend.asarray(labels), optimizer)
    assert optimizer.calls == [["W1", "W2", "b1", "b2"]]
    assert np.isfinite(float(loss))
    np.testing.assert_array_equal(B.to_numpy(net.params["W1"]), before)


@pytest.mark.parametrize("onehot", [False, True])
def test_count_correct_in_chunks_equals_one_pass(backend, to_host, onehot):
    rng = np.random.default_rng(4)
    net = TwoLayerNet(6, 5, 3, backend=backend, rng=0)
    x = backend.asarray(rng.normal(size=(23, 6)))
    labels = rng.integers(0, 3, 23)
    predicted = np.argmax(to_host(net.predict(x)), axis=1)
    labels[:12] = predicted[:12]  # some right, so the count is not 0
    t = np.eye(3)[labels] if onehot else labels
    correct, fired = net.count_correct(x, backend.asarray(t), chunk=7)
    assert correct == int(np.sum(predicted == labels))
    assert fired is True  # random inputs make some ReLU fire
    assert net.accuracy(x, backend.asarray(t)) == correct / 23
