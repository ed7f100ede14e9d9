"""CUDA graphs on the CuPy stand-in: capture and replay as CUDA and CuPy 14
define them, the trainer's replayed chunks against its eager steps (bit for
bit), the fallback on a failed capture and ``XPNET_CUDA_GRAPHS=0``."""

from __future__ import annotations

import warnings

import cupy_standin as cp
import numpy as np
import pytest
from cupy_standin.cublas_binding import LIBRARY
from cupy_standin.install import installed, standin_backend

import backend as B
from nn.training import loop
from nn.training.config import TrainConfig
from nn.training.health import NotLearningWarning
from nn.training.progress import SilentReporter
from nn.training.trainer import Trainer

SAXPY = r"""
extern "C" __global__ void saxpy(const float* x, float* y, float a, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] += a * x[i];
}
"""


@pytest.fixture
def gpu():
    """A fresh stand-in backend per test (graph state is per backend)."""
    with installed(standin_backend()) as be:
        yield be


# -- the stand-in's capture model ---------------------------------------------
def _saxpy():
    return cp.RawModule(code=SAXPY).get_function("saxpy")


def test_captured_work_is_recorded_not_run_and_replays():
    kernel = _saxpy()
    x = cp.asarray(np.arange(4, dtype=np.float32))
    y = cp.asarray(np.ones(4, dtype=np.float32))
    out = cp.empty(4, dtype=np.float32)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        assert stream.is_capturing()
        with cp.counting() as c:
            kernel((1,), (32,), (x, y, np.float32(2.0), np.int64(4)))
            cp.multiply(y, 3, out=out)  # a write into an existing array
        graph = stream.end_capture()
    assert not stream.is_capturing()
    assert c.snapshot() == {"launches": 0, "h2d": 0, "d2h": 0, "syncs": 0}
    np.testing.assert_array_equal(y.get(), np.ones(4))  # nothing ran
    for replay in range(1, 3):
        with cp.counting() as c:
            graph.launch(stream)
        assert c.launches == 1  # one host call for the whole graph
        want = 1 + replay * 2 * np.arange(4)
        np.testing.assert_array_equal(y.get(), want)
        np.testing.assert_array_equal(out.get(), 3 * want)


def test_the_capture_api_is_cupys():
    """Every name the backend calls exists in real CuPy (importable without a
    GPU) with the stand-in's meaning."""
    cupy = pytest.importorskip("cupy")
    for name in ("begin_capture", "end_capture", "is_capturing", "use"):
        assert callable(getattr(cupy.cuda.Stream, name))
        assert callable(getattr(cp.cuda.Stream, name))
    graph = pytest.importorskip("cupy.cuda.graph")
    for name in ("launch", "upload"):
        assert callable(getattr(graph.Graph, name))
        assert callable(getattr(cp.cuda.graph.Graph, name))
    assert callable(cupy.cuda.runtime.streamIsCapturing)


def test_the_legacy_stream_cannot_capture():
    with pytest.raises(RuntimeError, match="default \\(legacy\\) stream"):
        cp.cuda.get_current_stream().begin_capture()


@pytest.mark.parametrize(
    "action, error, match, invalidates",
    [
        # CuPy's own checks (cupy/cuda/memory.pyx) raise before calling CUDA.
        (lambda y: y.get(), RuntimeError, "D2H transfers are disallowed", False),
        (lambda y: float(y[0]), RuntimeError, "D2H transfers are disallowed", False),
        (lambda y: y.set(np.zeros(4, np.float32)), RuntimeError, "H2D", False),
        (lambda y: cp.asarray(np.zeros(2)), RuntimeError, "H2D transfers", False),
        # The stand-in's own rule (stricter than CuPy's relaxed mode).
        (lambda y: cp.empty(3), RuntimeError, "allocation", True),
        (lambda y: y + 1, RuntimeError, "during stream capture", True),
        # CUDA's: cudaStreamSynchronize on a capturing stream.
        (
            lambda y: cp.cuda.get_current_stream().synchronize(),
            cp.CUDARuntimeError,
            "cudaErrorStreamCaptureUnsupported",
            True,
        ),
    ],
)
def test_what_cuda_and_cupy_refuse_during_a_capture_raises(
    action, error, match, invalidates
):
    y = cp.asarray(np.ones(4, dtype=np.float32))
    stream = cp.cuda.Stream()
    with stream:
        stream.begin_capture()
        with pytest.raises(error, match=match):
            action(y)
        if invalidates:
            # The capture is then invalidated, as CUDA does after a sync.
            with pytest.raises(cp.CUDARuntimeError, match="Invalidated"):
                stream.end_capture()
        else:
            stream.end_capture()
    assert not stream.is_capturing()


def test_cupys_cublas_binding_refuses_a_capture_and_the_library_records():
    """CuPy's binding raises during a capture (its setStream); the library
    called directly is recorded, its host-mode coefficients read at capture."""
    binding = cp.cuda.cublas
    handle = binding.create()
    a = cp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = cp.asarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    out = cp.asarray(np.zeros((2, 4), dtype=np.float32))
    alpha, beta = np.array([2.0], np.float32), np.array([0.0], np.float32)
    work = cp.empty(1 << 22, dtype=np.uint8)
    # out.T = b.T @ a.T, column-major (what backend/cupy/blas.py passes)
    args = (handle, 0, 0, 4, 2, 3, alpha.ctypes.data, b.data.ptr, 4, a.data.ptr,
            3, beta.ctypes.data, out.data.ptr, 4)  # fmt: skip
    stream = cp.cuda.Stream()
    with stream:
        stream.begin_capture()
        with pytest.raises(NotImplementedError, match="stream capture"):
            binding.sgemm(*args)
        LIBRARY.cublasSetStream_v2(handle, stream.ptr)
        with pytest.raises(RuntimeError, match="without cublasSetWorkspace"):
            LIBRARY.cublasSgemm_v2(*args)  # cuBLAS would allocate in the graph
        LIBRARY.cublasSetWorkspace_v2(handle, work.data.ptr, work.nbytes)
        LIBRARY.cublasSgemm_v2(*args)
        graph = stream.end_capture()
    alpha[0] = 5.0  # host pointer mode: the graph keeps the value it read
    np.testing.assert_array_equal(out.get(), 0)
    graph.launch(stream)
    np.testing.assert_array_equal(out.get(), 2 * (a.get() @ b.get()))


def test_the_generic_backend_does_not_capture():
    assert B.get_backend("numpy").capture(lambda: None) is None


# -- the trainer ----------------------------------------------------------------
def _data(seed=0, n=700):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    images[rng.random(images.shape) < 0.7] = 0
    return images, rng.integers(0, 10, n)


def _run(be, graphs, monkeypatch, *, iters=47, eval_every=13, pixels=True, **kw):
    """A fit on ``be``; -> (params on the host, losses, counts)."""
    monkeypatch.setenv("XPNET_CUDA_GRAPHS", graphs)
    monkeypatch.setattr(loop, "FLUSH_SECONDS", 1e9)
    train, test = _data(0), _data(1, 200)
    if not pixels:
        train = ((train[0] / np.float32(255)).astype(np.float32), train[1])
        test = ((test[0] / np.float32(255)).astype(np.float32), test[1])
    config = TrainConfig(
        iters=iters, batch_size=50, hidden_size=20, lr=0.1, dtype=kw.pop("dtype",
        "float32"), seed=5, eval_every=eval_every, allow_not_learning=True, **kw,
    )  # fmt: skip
    trainer = Trainer(
        train,
        test,
        config,
        backend=be,
        reporter=SilentReporter(),
        pixel_scale=255 if pixels else None,
    )
    with cp.counting() as c:
        trainer.fit()
    params = {k: B.to_numpy(v) for k, v in trainer.net.params.items()}
    return params, list(trainer.history.loss), c.snapshot(), trainer


@pytest.mark.parametrize(
    "dtype, pixels, activation",
    [("float32", True, "relu"), ("float64", False, "sigmoid")],
)
def test_graph_replays_equal_eager_steps_bit_for_bit(
    monkeypatch, dtype, pixels, activation
):
    """47 steps of 14 an epoch, evaluations every 13, losses flushed every 8:
    chunks of many shapes (cut by epochs, evaluations and flushes)."""
    monkeypatch.setattr(loop, "FLUSH_EVERY", 8)
    kw = dict(dtype=dtype, pixels=pixels, activation=activation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no capture may fail
        # Random labels: not learning is expected, and only warns.
        warnings.simplefilter("ignore", NotLearningWarning)
        with installed(standin_backend()) as be:
            graph = _run(be, "1", monkeypatch, **kw)
        with installed(standin_backend()) as be:
            eager = _run(be, "0", monkeypatch, **kw)
    # The generator ends where the CPU's does (a checkpoint would be exact).
    cpu = _run("numpy", "1", monkeypatch, **kw)
    state = cpu[3].rng.bit_generator.state
    assert graph[3].rng.bit_generator.state == eager[3].rng.bit_generator.state == state
    assert graph[1] == eager[1] and len(graph[1]) == 47
    for key, value in eager[0].items():
        assert np.array_equal(graph[0][key], value), key
    assert graph[2]["launches"] < eager[2]["launches"] / 3
    assert len(graph[3].history.eval_iteration) == len(eager[3].history.eval_iteration)


def test_a_failed_capture_warns_once_and_trains_eagerly(monkeypatch):
    with installed(standin_backend()) as be:
        eager = _run(be, "0", monkeypatch)
    with installed(standin_backend()) as be:
        with cp.failing("capture", RuntimeError("capture refused (injected)")):
            with pytest.warns(RuntimeWarning) as caught:
                got = _run(be, "1", monkeypatch)
        assert be.graphs_failed is not None
    messages = [
        str(w.message) for w in caught if not issubclass(w.category, NotLearningWarning)
    ]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "CUDA graphs are off in this process" in messages[0]
    assert "injected" in messages[0]
    assert got[1] == eager[1]
    for key, value in eager[0].items():
        assert np.array_equal(got[0][key], value), key
    assert got[2] == eager[2]  # the same eager launches, copies and waits


def test_a_capture_that_allocates_fails_cleanly(gpu):
    """The capture ends even when the captured function raises, nothing of it
    runs, and the stream can capture again afterwards (one warning)."""
    y = cp.asarray(np.ones(3, dtype=np.float32))
    with pytest.warns(RuntimeWarning, match="allocation"):
        assert gpu.capture(lambda: cp.empty(3)) is None
    assert not gpu._graph_stream.is_capturing()
    assert gpu.capture(lambda: y.fill(2)) is None  # off for the process now
    np.testing.assert_array_equal(y.get(), 1)


def test_a_failure_without_a_message_still_warns_in_one_line(gpu):
    def fail():
        raise RuntimeError

    with pytest.warns(RuntimeWarning, match=r"a capture failed: RuntimeError: \)"):
        assert gpu.capture(fail) is None


def test_graphs_off_by_environment(gpu, monkeypatch):
    monkeypatch.setenv("XPNET_CUDA_GRAPHS", "0")
    y = cp.asarray(np.ones(3, dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gpu.capture(lambda: y.fill(2)) is None
    assert gpu.graphs_failed is None
    monkeypatch.setenv("XPNET_CUDA_GRAPHS", "1")
    replay = gpu.capture(lambda: y.fill(2))
    np.testing.assert_array_equal(y.get(), 1)
    replay.launch()
    np.testing.assert_array_equal(y.get(), 2)


def test_steady_state_one_replay_per_epoch_and_no_copy_between_evaluations(
    gpu, monkeypatch
):
    """Chapter 5's shape of run, scaled down: 14 steps an epoch, losses
    flushed every 100 steps, an evaluation every epoch. After the first epoch
    (its chunk is captured), each epoch's steps are one graph launch and one
    index upload; nothing waits and nothing comes to the host but the losses
    flushed at the evaluation."""
    from nn.training import trainer as trainer_module

    inside = []
    evaluate = trainer_module.evaluate

    def counted(trainer, metrics):
        with cp.counting() as c:
            evaluate(trainer, metrics)
        inside.append(c.snapshot())

    monkeypatch.setattr(trainer_module, "evaluate", counted)
    counts = {}
    for epochs in (3, 5):
        inside.clear()
        total = _run(gpu, "1", monkeypatch, iters=14 * epochs, eval_every=14)[2]
        counts[epochs] = {k: total[k] - sum(e[k] for e in inside) for k in total}
    per_epoch = {k: (counts[5][k] - counts[3][k]) / 2 for k in counts[5]}
    # 1 replay, 1 upload, and the flush of the epoch's losses (one copy).
    assert per_epoch == {"launches": 1, "h2d": 1, "d2h": 1, "syncs": 1}
    assert gpu.graphs_failed is None


def test_evaluations_of_the_same_arrays_replay_a_graph(gpu, monkeypatch):
    """The first evaluation is eager; the second is captured, and it and every
    later one is one launch and one copy; the replay reads the parameters as they are
    now (updated in place between evaluations), as the eager one does."""
    from nn.two_layer_net import TwoLayerNet

    monkeypatch.setenv("XPNET_CUDA_GRAPHS", "1")
    images, labels = _data(3, 3000)
    x = (images / np.float32(255)).astype(np.float32)
    net = TwoLayerNet(784, 20, 10, backend=gpu, dtype="float32", rng=2)
    ref = TwoLayerNet(784, 20, 10, backend="numpy", dtype="float32", rng=2)
    d_x, d_t = gpu.asarray(x), gpu.asarray(labels)
    rng = np.random.default_rng(0)
    for call in range(4):
        with cp.counting() as c:
            got = gpu.fused_two_layer.count_correct(
                net.params, d_x, d_t, "relu", chunk=1024, capture=gpu.capture
            )
        assert got == ref.count_correct(x, labels)
        launches = 1 + 2 * 3 if call == 0 else 1  # 3 chunks of 1024 rows
        assert c.snapshot() == {"launches": launches, "h2d": 0, "d2h": 1, "syncs": 1}
        delta = rng.standard_normal((784, 20)).astype(np.float32) * 0.05
        net.params["W1"] += gpu.asarray(delta)  # in place, as a step does
        ref.params["W1"] += delta
    assert gpu.graphs_failed is None
