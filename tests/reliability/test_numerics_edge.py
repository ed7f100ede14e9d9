"""Numerical edge cases on every backend: NaN, inf, all-zero batches, one sample.

Each case checks the documented behaviour: overflow-safe sigmoid and
softmax give exact limits; NaN and inf are never hidden (they reach the loss,
and the trainer turns a non-finite loss into TrainingDiverged, keeping the
last good checkpoint); labels that are not integers are refused; a batch of
one and an all-zero batch give the hand-computed losses and gradients.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import backend as B
from nn.functions import cross_entropy_error, sigmoid, softmax
from nn.layers import Affine, SoftmaxWithLoss
from nn.optimizer import SGD
from nn.training.checkpoint import load_checkpoint
from nn.training.progress import SilentReporter
from nn.training.trainer import TrainConfig, Trainer, TrainingDiverged
from nn.two_layer_net import TwoLayerNet

LOG_TEN = -math.log(0.1 + 1e-7)  # the book's loss of a uniform 10-class guess


def host(a):
    return np.asarray(B.to_numpy(a), dtype=np.float64)


def case_sigmoid_limits(be):
    x = be.asarray(np.array([np.inf, -np.inf, np.nan, 1e308, -1e308, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        y = host(sigmoid(x))
    np.testing.assert_array_equal(y, [1.0, 0.0, np.nan, 1.0, 0.0, 0.5])


def case_softmax_huge_and_minus_inf(be):
    x = be.asarray(np.array([[1e300, -1e300, 0.0], [0.0, -np.inf, 0.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = host(softmax(x))
    np.testing.assert_array_equal(y, [[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]])


def case_softmax_nan_stays_in_its_row(be):
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = host(softmax(be.asarray(x)))
    assert np.isnan(y[0]).all()
    e = np.exp(x[1] - 3.0)
    np.testing.assert_allclose(y[1], e / e.sum(), rtol=1e-12)


def case_cross_entropy_float_labels_refused(be):
    y = be.asarray(np.full((2, 3), 1 / 3))
    with pytest.raises(TypeError, match="labels must be integers"):
        cross_entropy_error(y, be.asarray(np.array([0.0, 2.0])))


def case_cross_entropy_labels_out_of_range(be):
    """A ValueError on the host; a NaN loss on the GPU, which cannot check
    without waiting for the device (and whose indexing wraps around)."""
    y = be.asarray(np.full((2, 3), 1 / 3))
    if not be.on_host:
        assert math.isnan(float(cross_entropy_error(y, be.asarray(np.array([0, 3])))))
        return
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cross_entropy_error(y, be.asarray(np.array([0, 3])))


def case_cross_entropy_of_zero_probability(be):
    y = be.asarray(np.array([[0.0, 1.0]]))
    loss = float(cross_entropy_error(y, be.asarray(np.array([0]))))
    assert loss == pytest.approx(-math.log(1e-7), rel=1e-12)  # the book's delta


def case_cross_entropy_nan_is_not_hidden(be):
    y = be.asarray(np.array([[np.nan, 0.5], [0.5, 0.5]]))
    assert math.isnan(float(cross_entropy_error(y, be.asarray(np.array([0, 1])))))


def case_softmax_with_loss_batch_of_one(be):
    x = np.array([[1.0, 2.0, 0.5]])
    layer = SoftmaxWithLoss()
    loss = float(layer.forward(be.asarray(x), be.asarray(np.array([1]))))
    dx = host(layer.backward())
    p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    assert loss == pytest.approx(-math.log(p[0, 1] + 1e-7), rel=1e-12)
    np.testing.assert_allclose(dx, p - [[0, 1, 0]], rtol=1e-12)


def case_loss_refuses_float_labels(be):
    net = TwoLayerNet(4, 3, 2, backend=be, rng=0)
    with pytest.raises(TypeError, match="labels must be integers"):
        net.loss(be.asarray(np.ones((2, 4))), be.asarray(np.array([0.0, 1.0])))


def case_affine_refuses_a_bare_sample(be):
    layer = Affine(be.asarray(np.ones((4, 2))), be.asarray(np.zeros(2)))
    with pytest.raises(ValueError, match="reshape"):
        layer.forward(be.asarray(np.ones(4)))


def case_gradient_batch_of_one(be):
    net = TwoLayerNet(5, 4, 3, weight_init_std=0.5, backend=be, rng=1)
    x = be.asarray(np.random.default_rng(2).normal(size=(1, 5)))
    t = be.asarray(np.array([2]))
    got = {k: host(v) for k, v in net.gradient(x, t).items()}
    numeric = {k: host(v) for k, v in net.numerical_gradient(x, t, "loop").items()}
    for key in got:
        assert got[key].shape == tuple(net.params[key].shape)
        # Central differences with h = 1e-4 are exact to about h**2.
        np.testing.assert_allclose(
            got[key], numeric[key], rtol=1e-5, atol=1e-7, err_msg=key
        )


def case_all_zero_batch(be):
    net = TwoLayerNet(6, 4, 10, backend=be, rng=3)
    x = be.asarray(np.zeros((5, 6)))
    t = np.array([0, 1, 1, 9, 3])
    assert float(net.loss(x, be.asarray(t))) == pytest.approx(LOG_TEN, rel=1e-12)
    grads = {k: host(v) for k, v in net.gradient(x, be.asarray(t)).items()}
    # Scores are all 0 -> y = 1/10 everywhere; only b2 gets a gradient.
    for key in ("W1", "b1", "W2"):
        np.testing.assert_array_equal(grads[key], 0.0, err_msg=key)
    expected_db2 = (np.full((5, 10), 0.1) - np.eye(10)[t]).mean(axis=0)
    np.testing.assert_allclose(grads["b2"], expected_db2, atol=1e-15)


def case_train_step_nan_input_spreads_like_numpy(be):
    x = np.random.default_rng(4).random((3, 6))
    x[1, 2] = np.nan
    x[2, 0] = np.inf
    t = np.array([0, 1, 2])
    results = []
    for backend in (B.get_backend("numpy"), be):
        net = TwoLayerNet(6, 4, 3, weight_init_std=0.1, backend=backend, rng=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            loss = net.train_step(backend.asarray(x), backend.asarray(t), SGD(0.1))
        results.append((float(loss), {k: host(v) for k, v in net.params.items()}))
    (ref_loss, ref), (loss, got) = results
    assert math.isnan(loss) and math.isnan(ref_loss)
    for key in ref:
        np.testing.assert_array_equal(np.isnan(got[key]), np.isnan(ref[key]), key)
        assert np.isnan(ref[key]).any(), key  # the NaN really reached every param


EDGE_CASES = {
    name.removeprefix("case_"): func
    for name, func in sorted(globals().items())
    if name.startswith("case_")
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_case(name, backend):
    previous = B.current()
    B.use(backend)
    try:
        EDGE_CASES[name](backend)
    finally:
        B.use(previous)


def blobs(n, seed, classes=3, features=8):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n).astype(np.uint8)
    x = rng.normal(0, 1, (n, features)) + t[:, None]
    return x.astype(np.float32), t


def trainer(train, test, out_dir=None, **config):
    config = {"hidden_size": 6, "iters": 20, "batch_size": 4, "seed": 1, **config}
    return Trainer(
        train,
        test,
        TrainConfig(**config),
        out_dir=out_dir,
        reporter=SilentReporter(),
        backend="numpy",
    )


NON_FINITE = [np.nan, np.inf, -np.inf]
ACTIVATIONS = ["relu", "sigmoid"]
BATCH_SIZES = [1, 100]


@pytest.mark.parametrize("bad", NON_FINITE)
def test_trainer_on_non_finite_inputs_stops_and_keeps_a_good_checkpoint(bad, tmp_path):
    (x, t), test = blobs(40, 1), blobs(10, 2)
    x[:, 3] = bad  # every batch sees it
    run = trainer((x, t), test, out_dir=tmp_path, eval_every=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged) as info:
            run.fit(handle_sigint=False)
    assert "\n" not in str(info.value)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.iteration == 0
    assert all(np.isfinite(v).all() for v in ckpt.params.values())


def test_trainer_refuses_float_labels():
    (x, t), test = blobs(20, 1), blobs(10, 2)
    with pytest.raises(ValueError, match="integers"):
        trainer((x, t.astype(np.float32)), test)


@pytest.mark.filterwarnings("ignore::nn.training.health.NotLearningWarning")
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_trainer_on_all_zero_inputs(activation):
    (x, t), (xt, tt) = blobs(20, 1), blobs(10, 2)
    # Nothing to learn from, on purpose: the sigmoid net would be stopped as
    # not learning (dead ReLUs stay an error, as documented below).
    run = trainer(
        (np.zeros_like(x), t),
        (np.zeros_like(xt), tt),
        activation=activation,
        allow_not_learning=activation == "sigmoid",
    )
    if activation == "relu":  # documented: a network whose ReLUs never fire is dead
        with pytest.raises(TrainingDiverged, match="dead"):
            run.fit(handle_sigint=False)
        return
    result = run.fit(handle_sigint=False)
    assert all(math.isfinite(v) for v in result.history.loss)
    # Without input information every sample gets the same prediction.
    assert result.train_acc in {np.mean(t == c) for c in range(3)}


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_trainer_batch_of_one_and_batch_larger_than_the_data(batch_size):
    train, test = blobs(30, 1), blobs(10, 2)
    result = trainer(train, test, batch_size=batch_size).fit(handle_sigint=False)
    assert result.iterations == 20
    assert len(result.history.loss) == 20
    assert all(math.isfinite(v) for v in result.history.loss)


#: Numerical edge cases (the library ones run on every backend) (README table).
NUMERIC_CASES = (
    len(EDGE_CASES) + len(NON_FINITE) + 1 + len(ACTIVATIONS) + len(BATCH_SIZES)
)
