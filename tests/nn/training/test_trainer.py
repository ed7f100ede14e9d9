"""The trainer library on small synthetic data: the book's loop, resume, stops."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest

import backend as B
import nn.training.loop as train_loop
from nn.training.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from nn.training.metrics import METRICS_NAME, read_metrics
from nn.training.progress import ConsoleReporter, SilentReporter
from nn.training.trainer import TrainConfig, Trainer, TrainingDiverged

CLASSES, FEATURES = 4, 12


def blobs(n: int, seed: int):
    """(x (n, 12) float32, t (n,) uint8): four well separated Gaussian clusters."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 1.5, (CLASSES, FEATURES))
    t = rng.integers(0, CLASSES, n).astype(np.uint8)
    x = centers[t] + rng.normal(0, 1, (n, FEATURES))
    return x.astype(np.float32), t


@pytest.fixture(scope="module")
def data():
    return blobs(600, seed=1), blobs(200, seed=2)


def quiet_trainer(data, out_dir=None, backend=None, **config):
    config.setdefault("seed", 3)
    config.setdefault("hidden_size", 16)
    return Trainer(
        *data,
        TrainConfig(**config),
        backend=backend,
        out_dir=out_dir,
        reporter=SilentReporter(),
    )


def book_loop(x, t, hidden, iters, batch_size, lr, seed):
    """Chapter 5's training loop, written out in float64 NumPy as a reference.

    Same generator order as the trainer: W1, W2, then one choice() per step.
    """
    rng = np.random.default_rng(seed)
    x = x.astype(np.float64)
    W1 = 0.01 * rng.standard_normal((x.shape[1], hidden))
    b1 = np.zeros(hidden)
    W2 = 0.01 * rng.standard_normal((hidden, CLASSES))
    b2 = np.zeros(CLASSES)
    losses = []
    for _ in range(iters):
        idx = rng.choice(len(x), batch_size)
        xb, tb, n = x[idx], t[idx], batch_size
        a1 = xb @ W1 + b1
        h = np.maximum(a1, 0)
        s = h @ W2 + b2
        e = np.exp(s - s.max(axis=1, keepdims=True))
        y = e / e.sum(axis=1, keepdims=True)
        losses.append(-np.sum(np.log(y[np.arange(n), tb] + 1e-7)) / n)
        dy = y.copy()
        dy[np.arange(n), tb] -= 1
        dy /= n
        da1 = (dy @ W2.T) * (a1 > 0)
        grads = (xb.T @ da1, da1.sum(axis=0), h.T @ dy, dy.sum(axis=0))
        for p, g in zip((W1, b1, W2, b2), grads, strict=True):
            p -= lr * g
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, losses


def test_defaults_are_the_books_chapter5_run():
    cfg = TrainConfig()
    assert (cfg.hidden_size, cfg.iters, cfg.batch_size, cfg.lr) == (50, 10000, 100, 0.1)
    assert (cfg.activation, cfg.grad, cfg.dtype) == ("relu", "backprop", "float32")
    assert cfg.eval_every is None and cfg.weight_init_std == 0.01


def test_one_epoch_is_train_size_over_batch_size(data):
    tr = quiet_trainer(data, batch_size=100)
    assert tr.iters_per_epoch == tr.eval_every == 6
    assert quiet_trainer(data, batch_size=1000).iters_per_epoch == 1
    assert quiet_trainer(data, batch_size=100, epochs=3).total == 18


def test_trainer_is_the_books_loop(data, backend, to_host):
    """Same weights and losses as the hand-written float64 reference loop."""
    tr = quiet_trainer(data, backend=backend, iters=40, dtype="float64", lr=0.5)
    result = tr.fit()
    ref, ref_losses = book_loop(*data[0], 16, 40, 100, 0.5, seed=3)
    for key, value in ref.items():
        np.testing.assert_allclose(to_host(tr.net.params[key]), value, rtol=1e-9)
    np.testing.assert_allclose(result.history.loss, ref_losses, rtol=1e-9)


def test_training_learns_on_every_backend(data, backend):
    result = quiet_trainer(data, backend=backend, iters=300).fit()
    assert result.history.test_acc[0] < 0.5
    assert result.test_acc > 0.95 and result.train_acc > 0.95
    assert result.iterations == 300 and not result.interrupted


def test_numba_evaluates_with_its_fused_count_and_same_accuracies(data, monkeypatch):
    pytest.importorskip("numba")
    numba_backend = B.get_backend("numba")
    calls = []
    fused = numba_backend.two_layer_count_correct

    def spy(*args):
        calls.append(fused(*args))
        return calls[-1]

    monkeypatch.setattr(numba_backend, "two_layer_count_correct", spy)
    config = dict(iters=40, dtype="float64", lr=0.5, eval_every=10)
    fused_run = quiet_trainer(data, backend="numba", **config).fit()
    layers_run = quiet_trainer(data, backend="numpy", **config).fit()
    assert len(calls) == 2 * len(fused_run.history.eval_iteration)  # train + test
    assert all(result is not None for result in calls)
    assert fused_run.history.train_acc == layers_run.history.train_acc
    assert fused_run.history.test_acc == layers_run.history.test_acc


def test_evaluations_at_start_every_epoch_and_end(data):
    result = quiet_trainer(data, iters=20, eval_every=6).fit()
    assert result.history.eval_iteration == [0, 6, 12, 18, 20]
    assert len(result.history.loss) == 20


@pytest.mark.parametrize(
    "bad",
    [
        {"iters": 0},
        {"batch_size": -1},
        {"hidden_size": 2.5},
        {"lr": float("nan")},
        {"lr": 0},
        {"lr": "0.1"},
        {"epochs": 0},
        {"eval_every": 0},
        {"seed": -1},
        {"activation": "tanh"},
        {"grad": "magic"},
        {"dtype": "float16"},
    ],
)
def test_bad_config_is_a_clear_error(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        TrainConfig(**bad)


def test_bad_data_is_a_clear_error(data):
    (x, t), test = data
    with pytest.raises(ValueError, match="600 samples and 599 labels"):
        Trainer((x, t[:-1]), test, reporter=SilentReporter())
    with pytest.raises(ValueError, match="integers"):
        Trainer((x, t.astype(np.float32)), test, reporter=SilentReporter())


def test_one_hot_labels_train_like_labels(data):
    (x, t), (xt, tt) = data
    onehot = np.eye(CLASSES)[t]
    a = quiet_trainer(((x, onehot), (xt, np.eye(CLASSES)[tt])), iters=30).fit()
    b = quiet_trainer(data, iters=30).fit()
    assert a.history.loss == b.history.loss


def test_outputs_in_out_dir(data, tmp_path):
    result = quiet_trainer(data, tmp_path, iters=30, eval_every=10).fit()
    assert result.checkpoint == tmp_path / CHECKPOINT_NAME
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.iteration == 30 and ckpt.backend == "numpy"
    m = read_metrics(tmp_path / METRICS_NAME)
    assert m.iteration == list(range(1, 31))
    np.testing.assert_allclose(m.loss, result.history.loss, rtol=1e-6)
    assert m.eval_iteration == [0, 10, 20, 30]
    assert m.test_acc[-1] == pytest.approx(result.test_acc, abs=1e-6)
    for name in ("loss.png", "accuracy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_losses_reach_the_host_in_batches(data, monkeypatch):
    """No per-iteration device sync: one copy per FLUSH_EVERY steps (or eval)."""
    monkeypatch.setattr(train_loop, "FLUSH_SECONDS", 1e9)
    tr = quiet_trainer(data, iters=250, eval_every=1000)
    calls = []
    real = tr.backend.asnumpy
    monkeypatch.setattr(tr.backend, "asnumpy", lambda a: calls.append(1) or real(a))
    tr.fit()
    steps_copies = math.ceil(250 / train_loop.FLUSH_EVERY)
    evals = 2 * 2  # start and end, train and test accuracy
    assert len(calls) == steps_copies + evals


@pytest.mark.parametrize("split_at", [1, 6, 17, 55])
def test_resume_is_bit_for_bit(data, tmp_path, split_at):
    full = quiet_trainer(data, tmp_path / "full", iters=60, eval_every=6)
    full.fit()
    part = quiet_trainer(data, tmp_path / "part", iters=split_at, eval_every=6)
    part.fit()
    resumed = Trainer.resume(
        tmp_path / "part",
        *data,
        iters=60,
        out_dir=tmp_path / "part",
        reporter=SilentReporter(),
    )
    assert resumed.iteration == split_at
    resumed.fit()
    for key, value in full.net.params.items():
        np.testing.assert_array_equal(resumed.net.params[key], value)
    assert resumed.history.loss == full.history.loss
    a = read_metrics(tmp_path / "full" / METRICS_NAME)
    b = read_metrics(tmp_path / "part" / METRICS_NAME)
    assert (a.iteration, a.loss) == (b.iteration, b.loss)
    assert b.eval_iteration == sorted(set([*range(0, 60, 6), split_at, 60]))


def test_checkpoint_from_numpy_continues_on_every_backend(data, tmp_path, backend):
    quiet_trainer(data, tmp_path, iters=30, backend="numpy").fit()
    resumed = Trainer.resume(
        tmp_path, *data, iters=200, backend=backend, reporter=SilentReporter()
    )
    assert resumed.net.params["W1"].dtype == np.float32
    assert resumed.fit().test_acc > 0.95


def test_resume_refuses_a_run_past_the_target(data, tmp_path):
    quiet_trainer(data, tmp_path, iters=30).fit()
    with pytest.raises(CheckpointError, match="past the requested 20"):
        Trainer.resume(tmp_path, *data, iters=20, reporter=SilentReporter())


def test_resume_refuses_other_data_shapes(data, tmp_path):
    quiet_trainer(data, tmp_path, iters=5).fit()
    (x, t), (xt, tt) = data
    wider = ((np.hstack([x, x]), t), (np.hstack([xt, xt]), tt))
    with pytest.raises(CheckpointError, match="shape"):
        Trainer.resume(tmp_path, *wider, reporter=SilentReporter())


class InterruptAt(SilentReporter):
    """Sends this process SIGINT (a Ctrl-C) once progress passes ``at``."""

    def __init__(self, at: int):
        self.at, self.sent = at, False

    def progress(self, iteration, loss):
        if iteration >= self.at and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_cleanly_and_resumes_exactly(data, tmp_path, monkeypatch):
    monkeypatch.setattr(train_loop, "FLUSH_EVERY", 7)
    tr = Trainer(
        *data,
        TrainConfig(iters=500, seed=3, hidden_size=16),
        out_dir=tmp_path,
        reporter=InterruptAt(40),
    )
    result = tr.fit()
    assert result.interrupted and 40 <= result.iterations < 500
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.iteration == result.iterations
    assert read_metrics(tmp_path / METRICS_NAME).iteration[-1] == result.iterations
    resumed = Trainer.resume(tmp_path, *data, iters=80, reporter=SilentReporter())
    resumed.fit()
    full = quiet_trainer(data, iters=80)
    full.fit()
    for key, value in full.net.params.items():
        np.testing.assert_array_equal(resumed.net.params[key], value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    tr = quiet_trainer(data, tmp_path, iters=200, lr=1e30, eval_every=1)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at iteration \d+"):
        tr.fit()
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.iteration < 200
    assert all(np.isfinite(v).all() for v in ckpt.params.values())
    m = read_metrics(tmp_path / METRICS_NAME)
    assert not math.isfinite(m.loss[-1])


def test_dead_relu_network_counts_as_divergence(data, tmp_path, backend):
    (x, t), test = data
    tr = Trainer(
        (x, t),
        test,
        TrainConfig(iters=50, seed=3),
        out_dir=tmp_path,
        reporter=SilentReporter(),
        backend=backend,
    )
    tr.net.params["b1"][...] = -1e3  # no hidden unit can fire on any sample
    with pytest.raises(TrainingDiverged, match="every hidden ReLU unit is dead") as exc:
        tr.fit()
    assert "iteration 0" in str(exc.value) and "no checkpoint was written" in str(
        exc.value
    )
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_sigmoid_network_is_never_called_dead(data, backend):
    trainer = quiet_trainer(
        data, backend=backend, iters=30, activation="sigmoid", lr=1.0
    )
    assert trainer.fit().iterations == 30


def test_numerical_step_runs_loss_and_gradient_with_serial_blas(data, monkeypatch):
    """The numerical step's products run inside backend.serial_blas(), so BLAS
    workers do not spin on the cores the gradient's kernels use."""
    import contextlib

    a = quiet_trainer(data, grad="numerical", iters=3, hidden_size=4)
    inside, events = [False], []

    @contextlib.contextmanager
    def serial_blas():
        inside[0] = True
        yield
        inside[0] = False

    monkeypatch.setattr(a.backend, "serial_blas", serial_blas)
    for name in ("loss", "numerical_gradient"):
        real = getattr(a.net, name)
        monkeypatch.setattr(
            a.net,
            name,
            lambda *args, _n=name, _f=real: events.append((_n, inside[0])) or _f(*args),
        )
    a.fit()
    steps = [e for e in events if e[0] == "numerical_gradient"]
    assert len(steps) == 3 and all(flag for _, flag in steps)
    assert ("loss", True) in events


def test_numerical_gradient_mode_uses_it_and_matches_backprop(data, monkeypatch):
    # Sigmoid: smooth, so central differences match backprop closely (a ReLU
    # kink within h of a pre-activation would not).
    same = {"iters": 5, "hidden_size": 4, "dtype": "float64", "activation": "sigmoid"}
    a = quiet_trainer(data, grad="numerical", **same)
    calls = []
    real = a.net.numerical_gradient
    monkeypatch.setattr(
        a.net, "numerical_gradient", lambda x, t: calls.append(1) or real(x, t)
    )
    a.fit()
    b = quiet_trainer(data, **same)
    b.fit()
    assert len(calls) == 5
    for key, value in b.net.params.items():
        np.testing.assert_allclose(a.net.params[key], value, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.history.loss, b.history.loss, rtol=1e-8)


def test_console_reporter_prints_the_books_epoch_lines(data, capsys):
    Trainer(
        *data, TrainConfig(iters=12, seed=3), reporter=ConsoleReporter(bar=False)
    ).fit()
    lines = capsys.readouterr().out.splitlines()
    evals = [line for line in lines if "train acc, test acc |" in line]
    assert len(evals) == 3  # iterations 0, 6, 12
    acc = evals[-1].split("|")[1].split(",")
    assert all(0 <= float(v) <= 1 for v in acc)


def test_progress_bar_mode_runs(data, capsys):
    Trainer(
        *data, TrainConfig(iters=12, seed=3), reporter=ConsoleReporter(bar=True)
    ).fit()
    captured = capsys.readouterr()
    assert captured.out.count("train acc, test acc |") == 3
    assert "12/12" in captured.err  # tqdm drew the bar on stderr


def test_fit_restores_the_current_backend(data):
    previous = B.current()
    quiet_trainer(data, iters=3, backend="numba" if _has("numba") else "numpy").fit()
    assert B.current() is previous


def _has(name: str) -> bool:
    try:
        B.get_backend(name)
    except B.BackendUnavailableError:
        return False
    return True


def as_pixels(split):
    """(uint8 pixels, the same images normalized as load_mnist does, labels)."""
    x, t = split
    pixels = np.clip(np.rint((x + 5) * 25), 0, 255).astype(np.uint8)
    normalized = pixels.astype(np.float32)
    normalized /= 255.0
    return pixels, normalized, t


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uint8_pixels_train_exactly_as_normalized_images(data, backend, dtype):
    (p_train, f_train, t_train), (p_test, f_test, t_test) = map(as_pixels, data)
    config = dict(iters=90, batch_size=20, dtype=dtype, backend=backend)
    on_floats = quiet_trainer(((f_train, t_train), (f_test, t_test)), **config)
    on_pixels = Trainer(
        (p_train, t_train),
        (p_test, t_test),
        on_floats.config,
        backend=backend,
        reporter=SilentReporter(),
        pixel_scale=255,
    )
    # Every backend keeps the pixels for the batches (on a GPU on the device,
    # gathered and divided by one kernel).
    assert on_pixels.batch_source.dtype == np.uint8
    a, b = on_floats.fit(), on_pixels.fit()
    assert a.history.loss == b.history.loss
    assert (a.history.train_acc, a.history.test_acc) == (
        b.history.train_acc,
        b.history.test_acc,
    )
    for key, value in on_floats.net.params.items():
        np.testing.assert_array_equal(
            B.to_numpy(value), B.to_numpy(on_pixels.net.params[key])
        )


@pytest.mark.parametrize(
    "scale,x_dtype,needle",
    [
        (0, np.uint8, "pixel_scale must be a finite number > 0, got 0"),
        (float("nan"), np.uint8, "pixel_scale must be a finite number > 0"),
        ("x", np.uint8, "pixel_scale must be a finite number > 0, got 'x'"),
        (255, np.float32, "pixel_scale needs integer pixel images, got dtype float32"),
    ],
)
def test_bad_pixel_scale_is_one_clear_value_error(data, scale, x_dtype, needle):
    (x, t), test = data
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        Trainer((x.astype(x_dtype), t), test, pixel_scale=scale)


def test_pixels_on_a_device_stay_pixels_and_train_like_the_floats(data):
    """On a device backend the uint8 pixels stay on the device (the CuPy
    backend gathers and divides them in one kernel) and the indices come in
    blocks: the run is the same as on the scaled floats."""
    from backend.numpy import NumPyBackend

    class DeviceLike(NumPyBackend):
        on_host = False  # as CuPy: indices go to the device in blocks

    (p_train, f_train, t_train), (p_test, f_test, t_test) = map(as_pixels, data)
    on_pixels = Trainer(
        (p_train, t_train),
        (p_test, t_test),
        TrainConfig(iters=30, seed=3, hidden_size=16),
        backend=DeviceLike(),
        reporter=SilentReporter(),
        pixel_scale=255,
    )
    assert on_pixels.batch_source.dtype == np.uint8
    on_floats = quiet_trainer(((f_train, t_train), (f_test, t_test)), iters=30)
    assert on_pixels.fit().history.loss == on_floats.fit().history.loss
