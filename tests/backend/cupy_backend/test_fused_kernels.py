"""The fused two-layer CUDA kernels (backend/cupy/*.cu), checked without a GPU.

Each source is compiled by nvcc for sm_80 and sm_90, by NVRTC as
``cupy.RawModule`` compiles it, and as host C++ by the CuPy stand-in's
``RawModule`` (tests/cupy_standin/hostcc.py), which runs it thread by thread
against the NumPy backend: the SGD step against
``TwoLayerNet.gradient`` + ``SGD.update``, the evaluation against ``predict``
and its arg-max, the numerical gradient against the book's loop.

Tolerances: the step in float64 to rtol 1e-10 (only the order of sums
differs), in float32 to rtol 1e-5 / atol 1e-6 as the Numba step; the
numerical gradient to 1e-8 against the loop in float64 (the issue's bar; the
loop's own rounding is about 5e-12) and to 1e-10 against the NumPy fast path.
Sizes are small: the stand-in runs every thread in turn.
"""

from __future__ import annotations

import subprocess

import cupy_standin as cp
import numpy as np
import pytest
from cupy_standin.hostcc import HostModule

import backend as B
from backend.cupy import fused as F
from backend.cupy import sources as S
from nn.optimizer import SGD
from nn.two_layer_net import TwoLayerNet

FILES = list(S.SIGNATURES)
TOL = {
    "float32": {"rtol": 1e-5, "atol": 1e-6},
    "float64": {"rtol": 1e-10, "atol": 1e-13},
}
SIZES = (12, 5, 4)  # inputs, hidden units, classes


@pytest.fixture
def fused():
    return F.FusedTwoLayer(cp)


def _dev(fused, a):
    return fused.xp.asarray(a)


def _host(a):
    return a.get()


def _typed(kind: str, ctype: str) -> tuple[str, bool]:
    """('float', True) for 'const T*' with T = float: what hostcc parses."""
    return kind.replace("const ", "").rstrip("*").replace("T", ctype), kind.endswith(
        "*"
    )


@pytest.mark.parametrize("filename", FILES)
def test_host_build_is_warning_free_and_signatures_match(filename):
    """-Wall -Werror on the host, and every entry point's parameters (read
    from the source by the stand-in) are the ones sources.SIGNATURES lists."""
    module = HostModule(S.module_source(filename), werror=True)
    assert sorted(module.kernels) == sorted(S.kernel_names(filename))
    ctypes = {"f32": "float", "f64": "double", "u8": "unsigned char"}
    for name, params in module.kernels.items():
        kernel, suffix = name.rsplit("_", 1)
        want = [_typed(k, ctypes[suffix]) for k in S.SIGNATURES[filename][kernel]]
        assert [(p.ctype, p.pointer) for p in params] == want, name


@pytest.mark.parametrize("filename", FILES)
def test_nvcc_compiles_each_source_for_sm80_and_sm90(nvcc, filename, tmp_path):
    src = tmp_path / filename
    src.write_text(S.module_source(filename))
    out = tmp_path / "out.fatbin"
    cmd = [nvcc, "-fatbin", "-Werror", "all-warnings", "-o", str(out), str(src)]
    for arch in ("80", "90"):
        cmd += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def test_nvrtc_compiles_each_source_as_cupy_does():
    """sm_90 only (nvcc checks sm_80 too): each compile costs seconds here."""
    cupy = pytest.importorskip("cupy")
    nvrtc = cupy.cuda.nvrtc
    try:
        nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"NVRTC not loadable ({exc}); pip install nvidia-cuda-nvrtc")
    for filename in FILES:
        prog = nvrtc.createProgram(S.module_source(filename), filename, (), ())
        try:
            # -ftz=true is what cupy.RawModule adds to every compile.
            nvrtc.compileProgram(prog, ("-arch=sm_90", "-ftz=true"))
            cubin = nvrtc.getCUBIN(prog)
        except nvrtc.NVRTCError as exc:
            pytest.fail(
                f"NVRTC failed on {filename}: {exc}\n{nvrtc.getProgramLog(prog)}"
            )
        finally:
            nvrtc.destroyProgram(prog)
        for name in S.kernel_names(filename):
            assert name.encode() in cubin


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gather_is_the_base_scaled_rows_bit_for_bit(fused, dtype):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 13), dtype=np.uint8)
    rows = np.array([3, 0, 8, 3, 5, 1, 2])
    out = fused.scaled_rows(_dev(fused, images), _dev(fused, rows), 255, dtype)
    expected = B.get_backend("numpy").scaled_rows(images, rows, 255, dtype)
    assert out.dtype == np.dtype(dtype) and fused.launches == 1
    np.testing.assert_array_equal(_host(out), expected)


def test_gather_wraps_out_of_range_indices_as_cupy_does(fused):
    images = np.arange(4 * 3, dtype=np.uint8).reshape(4, 3)
    rows = np.array([-1, 4, 9, -5], dtype=np.int32)
    out = fused.scaled_rows(_dev(fused, images), _dev(fused, rows), 2.0, "float64")
    np.testing.assert_array_equal(_host(out), images[[3, 0, 1, 3]] / np.float32(2))


def test_gather_leaves_other_inputs_to_the_generic_path(fused):
    images = _dev(fused, np.zeros((4, 3), np.uint8))
    rows = _dev(fused, np.array([0, 1]))
    assert fused.scaled_rows(images.astype(np.float32), rows, 255, "float32") is None
    assert fused.scaled_rows(images, slice(0, 2), 255, "float32") is None
    assert fused.scaled_rows(images, rows, 255, "float16") is None
    assert fused.scaled_rows(images, np.array([0, 1]), 255, "float32") is None
    assert fused.launches == 0


def _net_pair(dtype, activation, seed=0):
    nets = [
        TwoLayerNet(
            *SIZES,
            weight_init_std=0.5,
            activation=activation,
            backend="numpy",
            dtype=dtype,
            rng=seed,
        )
        for _ in range(2)
    ]
    rng = np.random.default_rng(seed + 1)
    for key in ("b1", "b2"):  # non-zero biases, so that their use is checked
        value = (0.3 * rng.standard_normal(nets[0].params[key].shape)).astype(dtype)
        for net in nets:
            net.params[key][...] = value
    return nets


def _batch(n, dtype, onehot, seed=0):
    rng = np.random.default_rng(seed + 2)
    x = rng.random((n, SIZES[0]))
    x[rng.random(x.shape) < 0.5] = 0.0  # exact zeros, as pixels have
    labels = rng.integers(0, SIZES[2], n)
    t = np.eye(SIZES[2], dtype=dtype)[labels] if onehot else labels
    return x.astype(dtype), t


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("onehot", [False, True])
def test_fused_step_equals_gradient_plus_sgd(fused, dtype, activation, onehot):
    ref_net, net = _net_pair(dtype, activation)
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    optimizer = SGD(0.3)
    for step in range(3):
        x, t = _batch(9, dtype, onehot, seed=step)
        loss = fused.sgd_step(params, _dev(fused, x), _dev(fused, t), 0.3, activation)
        ref_loss = ref_net.train_step(x, t, optimizer)
        assert loss.shape == () and loss.dtype == np.dtype(dtype)
        np.testing.assert_allclose(_host(loss), ref_loss, **TOL[dtype])
        for key, p in params.items():
            np.testing.assert_allclose(
                _host(p), ref_net.params[key], err_msg=key, **TOL[dtype]
            )
    # Three steps: 2 kernels and 2 products each, nothing else.
    assert (fused.launches, fused.products) == (6, 6)


def test_fused_step_hand_computed_case(fused):
    # One input, one hidden unit, two classes; all weights 0 except W1 = 1:
    # scores [0, 0] -> y = [1/2, 1/2], label 1, loss -log(1/2 + 1e-7).
    # dy = [1/2, -1/2]; dW2 = z * dy = [1/2, -1/2] (z = relu(2) = 2 -> [1, -1]);
    # db2 = dy; da1 = dy @ W2.T = 0, so W1 and b1 stay.
    f = fused.xp
    params = {
        "W1": f.asarray(np.ones((1, 1))),
        "b1": f.asarray(np.zeros(1)),
        "W2": f.asarray(np.zeros((1, 2))),
        "b2": f.asarray(np.zeros(2)),
    }
    loss = fused.sgd_step(params, f.asarray([[2.0]]), f.asarray([1]), 0.5, "relu")
    np.testing.assert_allclose(_host(loss), -np.log(0.5 + 1e-7), rtol=1e-15)
    np.testing.assert_allclose(_host(params["W2"]), [[-0.5, 0.5]], rtol=1e-15)
    np.testing.assert_allclose(_host(params["b2"]), [-0.25, 0.25], rtol=1e-15)
    np.testing.assert_array_equal(_host(params["W1"]), [[1.0]])
    np.testing.assert_array_equal(_host(params["b1"]), [0.0])


def test_fused_step_bad_label_gives_nan_loss_and_skips_the_row(fused):
    ref_net, net = _net_pair("float64", "relu")
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    x, t = _batch(6, "float64", onehot=False)
    t_bad = t.copy()
    t_bad[2] = SIZES[2]  # out of range
    loss = fused.sgd_step(params, _dev(fused, x), _dev(fused, t_bad), 0.1, "relu")
    assert np.isnan(_host(loss))
    # The other rows' gradients, averaged over all 6 rows, as the update.
    keep = np.arange(6) != 2
    grads = ref_net.gradient(x[keep], t[keep])
    for key, p in params.items():
        expected = ref_net.params[key] - 0.1 * grads[key] * 5 / 6
        np.testing.assert_allclose(_host(p), expected, rtol=1e-10, atol=1e-13)


def test_fused_step_negative_labels_index_like_python(fused):
    ref_net, net = _net_pair("float64", "sigmoid")
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    x, t = _batch(5, "float64", onehot=False)
    loss = fused.sgd_step(
        params, _dev(fused, x), _dev(fused, t - SIZES[2]), 0.1, "sigmoid"
    )
    ref_loss = ref_net.train_step(x, t, SGD(0.1))
    np.testing.assert_allclose(_host(loss), ref_loss, rtol=1e-12)


def test_fused_step_leaves_other_inputs_to_the_layers(fused):
    f = fused.xp
    _, net = _net_pair("float64", "relu")
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    x, t = _batch(4, "float64", onehot=False)
    x, t = _dev(fused, x), _dev(fused, t)
    half = {k: v.astype(np.float16) for k, v in params.items()}
    mixed = dict(params, b2=params["b2"].astype(np.float32))
    strided = dict(params, W1=f.asarray(np.asfortranarray(_host(params["W1"]))))
    assert fused.sgd_step(half, x, t, 0.1, "relu") is None
    assert fused.sgd_step(mixed, x, t, 0.1, "relu") is None
    assert fused.sgd_step(strided, x, t, 0.1, "relu") is None
    assert fused.sgd_step(params, x, t, 0.1, "tanh") is None
    assert fused.sgd_step(params, x, t.astype(np.float64), 0.1, "relu") is None
    assert fused.sgd_step(params, x[:, :5], t, 0.1, "relu") is None
    assert fused.launches == 0


def _predicted(net, x):
    return np.argmax(net.predict(x), axis=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("chunk", [4, S.EVAL_CHUNK])
def test_fused_count_equals_layer_by_layer(fused, dtype, activation, chunk):
    net, _ = _net_pair(dtype, activation)
    x, _ = _batch(11, dtype, onehot=False)
    predicted = _predicted(net, x)
    labels = np.where(np.arange(11) % 3 == 0, (predicted + 1) % SIZES[2], predicted)
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    for t in (labels, np.eye(SIZES[2], dtype=dtype)[labels]):
        got = fused.count_correct(
            params, _dev(fused, x), _dev(fused, t), activation, chunk=chunk
        )
        assert got == (int(np.sum(predicted == labels)), True)
    chunks = -(-11 // chunk)
    assert (fused.launches, fused.products) == (2 * chunks, 2 * chunks)


def test_fused_count_argmax_ties_and_nan_like_numpy(fused):
    f = fused.xp
    # Hidden unit = input (W1 = I, b1 = 0, relu of positives), scores = h.
    params = {
        "W1": f.asarray(np.eye(3)),
        "b1": f.asarray(np.zeros(3)),
        "W2": f.asarray(np.eye(3)),
        "b2": f.asarray(np.zeros(3)),
    }
    x = np.array([[1.0, 1.0, 0.5], [0.5, 2.0, 2.0], [np.nan, 1.0, 3.0]])
    # numpy.argmax: ties -> the first; a NaN input makes the whole row NaN
    # (NaN * 0 in x @ W1), and the first NaN is the arg-max: 0, 1, 0.
    got = fused.count_correct(params, f.asarray(x), f.asarray([0, 1, 0]), "relu")
    assert got == (3, True)
    got = fused.count_correct(params, f.asarray(x), f.asarray([1, 2, 2]), "relu")
    assert got == (0, True)
    # A NaN in one score only: it is the arg-max of every row.
    params["b2"][1] = np.nan
    got = fused.count_correct(params, f.asarray(x[:2]), f.asarray([1, 1]), "relu")
    assert got == (2, True)


def test_fused_count_reports_a_dead_relu_layer(fused):
    f = fused.xp
    _, net = _net_pair("float64", "relu")
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    params["b1"][...] = -100.0  # every unit blocked on inputs in [0, 1)
    x, t = _batch(5, "float64", onehot=False)
    correct, fired = fused.count_correct(params, f.asarray(x), f.asarray(t), "relu")
    assert not fired
    # All scores equal b2 then: the arg-max of b2 for every row.
    assert correct == int(np.sum(t == np.argmax(_host(params["b2"]))))
    _, fired = fused.count_correct(params, f.asarray(x), f.asarray(t), "sigmoid")
    assert fired


def test_fused_count_leaves_other_inputs_to_the_layers(fused):
    _, net = _net_pair("float64", "relu")
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    x, t = _batch(4, "float64", onehot=False)
    x, t = _dev(fused, x), _dev(fused, t)
    assert fused.count_correct(params, x.astype(np.float32), t, "relu") is None
    assert fused.count_correct(params, x[:0], t[:0], "relu") is None
    assert fused.count_correct(params, x, t.astype(np.float64), "relu") is None
    assert fused.launches == 0


def _loop_gradient(net, x, t):
    return net.numerical_gradient(x, t, method="loop")


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("targets", ["labels", "one-hot", "soft"])
def test_numerical_gradient_agrees_with_the_book_loop(fused, activation, targets):
    net, _ = _net_pair("float64", activation)
    x, labels = _batch(6, "float64", onehot=False)
    x[-1] = 0  # a sample no W1 perturbation reaches
    if targets == "labels":
        t = labels
    elif targets == "one-hot":
        t = np.eye(SIZES[2])[labels]
    else:
        t = np.random.default_rng(5).dirichlet(np.ones(SIZES[2]), 6)
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    got = fused.numerical_gradient(params, _dev(fused, x), _dev(fused, t), activation)
    loop = _loop_gradient(net, x, t)
    fast = net.numerical_gradient(x, t, method="fast")
    for key in loop:
        assert got[key].shape == loop[key].shape and got[key].dtype == np.float64
        np.testing.assert_allclose(_host(got[key]), loop[key], rtol=0, atol=1e-8)
        np.testing.assert_allclose(_host(got[key]), fast[key], rtol=0, atol=1e-10)
        assert np.any(_host(got[key]) != 0)
    # Float64 params: one product and two kernels, nothing more.
    assert (fused.launches, fused.products) == (2, 1)


def test_numerical_gradient_of_float32_params_is_float32(fused):
    net, ref = _net_pair("float32", "relu")
    x, t = _batch(5, "float32", onehot=False)
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    got = fused.numerical_gradient(params, _dev(fused, x), _dev(fused, t), "relu")
    fast = ref.numerical_gradient(x, t, method="fast")
    for key in fast:
        assert got[key].dtype == np.float32
        np.testing.assert_allclose(_host(got[key]), fast[key], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("x_shape", "t", "message"),
    [
        ((3, 7), np.array([0, 1, 2]), "features per sample"),
        ((3, 12), np.array([0, 1, 4]), "labels must lie"),
        ((3, 12), np.array([0, -1, 2]), "labels must lie"),
        ((3, 12), np.array([0.0, 1.0, 2.0]), "integer labels"),
        ((0, 12), np.zeros(0, dtype=int), "empty batch"),
    ],
)
def test_numerical_gradient_bad_input_is_a_clear_error(fused, x_shape, t, message):
    _, net = _net_pair("float64", "relu")
    params = {k: _dev(fused, v) for k, v in net.params.items()}
    with pytest.raises(ValueError, match=message):
        fused.numerical_gradient(
            params, _dev(fused, np.ones(x_shape)), _dev(fused, t), "relu"
        )
