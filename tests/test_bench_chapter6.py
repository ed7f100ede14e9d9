"""The chapter6 benchmark's networks compute what the book's network computes.

Every contender (xpnet, PyTorch, JAX) must do the same work, so each is
checked against a float64 NumPy forward written here from the book's
formulas, finite differences and the book's Adam; PyTorch and JAX tests skip
where the library does not import, xpnet's where its chapter 6 networks are
absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
import chapter6_nets as c6  # noqa: E402

sys.path.remove(str(BENCH))

SIZES = (12, 7, 6, 5, 4)  # input, four hidden layers, output: small but deep


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", False)
    return jax


def _torch():
    return pytest.importorskip("torch")


def reference_loss(params: dict, x, t, batchnorm: bool) -> float:
    """The book's forward in float64: Affine (-> BatchNorm, batch statistics)
    -> ReLU per hidden layer, Affine, softmax, mean cross-entropy."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    n = c6.layer_count(p)
    h = np.asarray(x, np.float64)
    for i in range(1, n + 1):
        h = h @ p[f"W{i}"] + p[f"b{i}"]
        if i == n:
            break
        if batchnorm:
            xc = h - h.mean(axis=0)
            h = p[f"gamma{i}"] * xc / np.sqrt((xc**2).mean(axis=0) + 1e-6)
            h = h + p[f"beta{i}"]
        h = np.maximum(h, 0)
    h = h - h.max(axis=1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(t)), t].mean())


def _problem(batchnorm: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = c6.he_params(SIZES, batchnorm, seed=seed)
    if batchnorm:  # not the trivial 1 and 0, so their gradients are exercised
        for k in params:
            if k.startswith(("gamma", "beta")):
                params[k] += rng.normal(0, 0.3, params[k].shape).astype(np.float32)
    x = rng.random((16, SIZES[0])).astype(np.float32)
    t = rng.integers(0, SIZES[-1], 16)
    return params, x, t


def test_he_params_have_the_books_shapes_and_scale():
    params = c6.he_params((784, 100, 100, 10), batchnorm=True, seed=0)
    assert sorted(params) == sorted(
        ["W1", "W2", "W3", "b1", "b2", "b3", "gamma1", "gamma2", "beta1", "beta2"]
    )
    assert params["W1"].shape == (784, 100) and params["W1"].dtype == np.float32
    assert params["W1"].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert params["W2"].std() == pytest.approx(np.sqrt(2 / 100), rel=0.05)
    assert not params["b3"].any() and (params["gamma2"] == 1).all()


def test_book_adam_in_jax_matches_the_books_formula():
    jax = _jax()
    rng = np.random.default_rng(1)
    p = {"W": rng.standard_normal((3, 4))}
    m = {"W": np.zeros((3, 4))}
    v = {"W": np.zeros((3, 4))}
    jp, jm, jv = (
        {k: jax.numpy.asarray(a, np.float32) for k, a in d.items()} for d in (p, m, v)
    )
    for it in (1, 2, 3):
        g = rng.standard_normal((3, 4))
        # The book's Adam.update, float64.
        lr_t = 0.001 * np.sqrt(1 - 0.999**it) / (1 - 0.9**it)
        m["W"] += (1 - 0.9) * (g - m["W"])
        v["W"] += (1 - 0.999) * (g**2 - v["W"])
        p["W"] -= lr_t * m["W"] / (np.sqrt(v["W"]) + 1e-7)
        jg = {"W": jax.numpy.asarray(g, np.float32)}
        jp, jm, jv = c6.book_adam(jax.numpy, jp, jg, jm, jv, float(it))
    np.testing.assert_allclose(np.asarray(jp["W"]), p["W"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jv["W"]), v["W"], rtol=1e-5)


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_jax_loss_and_gradient_match_numpy_and_finite_differences(batchnorm):
    jax = _jax()
    params, x, t = _problem(batchnorm)
    want = reference_loss(params, x, t, batchnorm)
    jparams = {k: jax.numpy.asarray(v) for k, v in params.items()}
    loss, grads = jax.value_and_grad(
        lambda p: c6.jax_loss(
            jax, p, jax.numpy.asarray(x), jax.numpy.asarray(t), batchnorm
        )[0]
    )(jparams)
    assert float(loss) == pytest.approx(want, rel=1e-5)
    # Directional derivative along a random direction: central differences of
    # the float64 reference against <grad, d>.
    rng = np.random.default_rng(2)
    d = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    eps = 1e-7  # small enough that no ReLU input changes sign
    plus = {k: params[k] + eps * d[k] for k in params}
    minus = {k: params[k] - eps * d[k] for k in params}
    numeric = (
        reference_loss(plus, x, t, batchnorm) - reference_loss(minus, x, t, batchnorm)
    ) / (2 * eps)
    analytic = sum(
        float((np.asarray(grads[k], np.float64) * d[k]).sum()) for k in params
    )
    assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_torch_network_matches_numpy_and_trains_like_jax(batchnorm):
    torch, jax = _torch(), _jax()
    params, x, t = _problem(batchnorm)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    # A training-mode forward updates running statistics: a network of its own.
    loss = c6.TorchNet(torch, params, batchnorm).loss(xt, tt)
    assert float(loss.detach()) == pytest.approx(
        reference_loss(params, x, t, batchnorm), rel=1e-5
    )
    net = c6.TorchNet(torch, params, batchnorm)
    # Three Adam steps on the same batches: PyTorch's Adam and the JAX step
    # (the book's Adam) agree to float32 and epsilon-placement precision.
    rows = np.random.default_rng(3).integers(0, 16, (3, 8))
    net.train(xt, tt, net.indices(rows))
    jnet = c6.JaxNet(jax, params, batchnorm)
    jnet.train(
        jax.numpy.asarray(x), jax.numpy.asarray(t.astype(np.int32)), jnet.indices(rows)
    )
    jnet.sync()
    layers = [m for m in net.model if isinstance(m, torch.nn.Linear)]
    for i, layer in enumerate(layers, start=1):
        W = layer.weight.detach().numpy().T
        assert not np.allclose(W, params[f"W{i}"])  # it moved
        # Adam moves each weight by about lr = 1e-3 a step; the two differ
        # only where a gradient is as small as the epsilon (1e-7).
        np.testing.assert_allclose(W, np.asarray(jnet.params[f"W{i}"]), atol=5e-5)
    assert int(jnet.i) == 3
    if batchnorm:
        bn = [m for m in net.model if isinstance(m, torch.nn.BatchNorm1d)]
        for (rm, _), layer in zip(jnet.running, bn, strict=True):
            np.testing.assert_allclose(
                np.asarray(rm), layer.running_mean.numpy(), atol=2e-4
            )


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_xpnet_network_matches_numpy_and_trains_like_jax(batchnorm):
    import backend as B
    import nn

    if not hasattr(nn, "MultiLayerNetExtend") or not hasattr(nn, "Adam"):
        pytest.skip("xpnet's chapter 6 networks are not built yet")
    jax = _jax()
    params, x, t = _problem(batchnorm)
    be = B.get_backend("numpy")
    net = c6.XpnetNet(be, params, batchnorm)
    if not batchnorm:  # inference and training mode agree without BN
        assert net.eval_loss(x, t) == pytest.approx(
            reference_loss(params, x, t, batchnorm), rel=1e-5
        )
    rows = np.random.default_rng(3).integers(0, 16, (3, 8))
    net.train(x, t, net.indices(rows))
    jnet = c6.JaxNet(jax, params, batchnorm)
    jnet.train(
        jax.numpy.asarray(x), jax.numpy.asarray(t.astype(np.int32)), jnet.indices(rows)
    )
    for key in params:
        np.testing.assert_allclose(
            B.to_numpy(net.net.params[key]), np.asarray(jnet.params[key]), atol=5e-5
        )


def test_eval_loss_uses_running_statistics_in_jax():
    jax = _jax()
    params, x, t = _problem(batchnorm=True)
    jnet = c6.JaxNet(jax, params, batchnorm=True)
    jx, jt = jax.numpy.asarray(x), jax.numpy.asarray(t.astype(np.int32))
    rows = np.tile(np.arange(16), (200, 1))  # the whole batch, 200 times
    before = jnet.eval_loss(jx, jt)
    jnet.train(jx, jt, jnet.indices(rows))
    # Running statistics converge to the full batch's: inference = training mode.
    train_mode = float(c6.jax_loss(jax, jnet.params, jx, jt, True)[0])
    assert jnet.eval_loss(jx, jt) == pytest.approx(train_mode, rel=1e-2)
    assert train_mode < before
