# Source of notebooks/ch05_backprop.ipynb: edit here, then run notebooks/build.py.

# %% [markdown]
# # Chapter 5: backpropagation
#
# The apple-shopping graph with `MulLayer` and `AddLayer`, the layers of a
# network (`Relu`, `Sigmoid`, `Affine`, `SoftmaxWithLoss`), the gradient
# check of backprop against numerical gradients, training with backprop, and
# where the time goes on each available backend.
#
# Settings, as for the command-line tools: `DEVICE` (`"numpy"`, `"numba"`,
# `"cupy"` or `"auto"`: a GPU if usable, else Numba, else NumPy); data from
# `$XPNET_DATA_DIR`, else `../shared/data` beside the repository, else the user
# cache (downloading on first use).
#
# **Data:** training uses **Fashion-MNIST** (MNIST's format and sizes, 10
# classes of clothing), because MNIST's training images are not available on
# the machines that run these notebooks in CI; set `DATASET = "mnist"` where
# you have them. Runs are shortened to a few epochs to finish in about a
# minute.

# %%
# %matplotlib inline
import os
import time
from pathlib import Path

import numpy as np
from chapter_settings import shared_data_dir
from IPython.display import display

import backend as B
import nn
from nn import figures
from nn.figures import plot
from nn.training import TrainConfig, Trainer, load_data
from nn.training.progress import SilentReporter

DEVICE = "auto"

be = B.use(DEVICE)
print("backend:", be.describe())
xp = be.xp

DATA_DIR = shared_data_dir()
DATASET = "fashion-mnist"
print("data:", DATA_DIR or "user cache (downloads if missing)", "|", DATASET)

# %% [markdown]
# ## 5.4 The apple example
#
# Two apples at 100 each, 10 % tax. Backward from d(price) = 1 gives the
# derivative of the price with respect to every input.

# %%
apple, apple_num, tax = 100, 2, 1.1
mul_apple_layer, mul_tax_layer = nn.MulLayer(), nn.MulLayer()
apple_price = mul_apple_layer.forward(apple, apple_num)
price = mul_tax_layer.forward(apple_price, tax)
print("price:", price)
dapple_price, dtax = mul_tax_layer.backward(1)
dapple, dapple_num = mul_apple_layer.backward(dapple_price)
print("dApple:", dapple, "dApple_num:", dapple_num, "dTax:", dtax)

# %% [markdown]
# Apples and oranges (3 at 150), with `AddLayer` joining the two branches:

# %%
orange, orange_num = 150, 3
mul_apple_layer, mul_orange_layer = nn.MulLayer(), nn.MulLayer()
add_apple_orange_layer, mul_tax_layer = nn.AddLayer(), nn.MulLayer()
apple_price = mul_apple_layer.forward(apple, apple_num)
orange_price = mul_orange_layer.forward(orange, orange_num)
all_price = add_apple_orange_layer.forward(apple_price, orange_price)
price = mul_tax_layer.forward(all_price, tax)
dall_price, dtax = mul_tax_layer.backward(1)
dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
dorange, dorange_num = mul_orange_layer.backward(dorange_price)
dapple, dapple_num = mul_apple_layer.backward(dapple_price)
print("price:", price)
print("dApple:", dapple, "dApple_num:", dapple_num)
print("dOrange:", dorange, "dOrange_num:", dorange_num, "dTax:", dtax)

# %% [markdown]
# ## 5.5-5.6 Layers
#
# `Relu` remembers where its input was <= 0 and blocks the gradient there;
# `Sigmoid` reuses its output y: dx = dout · y(1 − y); `Affine` is X·W + b
# for a batch, and its backward gives dX, dW and db.

# %%
relu = nn.Relu()
x = xp.array([[1.0, -0.5], [-2.0, 3.0]])
print("relu forward\n", relu.forward(x))
print("mask\n", relu.mask)
print("relu backward of ones\n", relu.backward(xp.ones_like(x)))

sigmoid = nn.Sigmoid()
y = sigmoid.forward(x)
print("sigmoid backward\n", sigmoid.backward(xp.ones_like(x)))
print("y (1 - y)\n", y * (1 - y))

rng = np.random.default_rng(0)
W, b = be.asarray(rng.standard_normal((2, 3))), be.asarray(rng.standard_normal(3))
affine = nn.Affine(W, b)
out = affine.forward(x)
dx = affine.backward(xp.ones_like(out))
print("Affine: X", x.shape, "W", W.shape, "-> out", out.shape)
print("dX", dx.shape, "dW", affine.dW.shape, "db", affine.db.shape)

# %% [markdown]
# `SoftmaxWithLoss` ends the network: its backward is simply (y − t) / N.

# %%
layer = nn.SoftmaxWithLoss()
scores = xp.array([[0.3, 2.9, 4.0], [2.0, 0.1, -1.0]])
labels = xp.array([2, 0])
print("loss", float(layer.forward(scores, labels)))
print("dx = (y - t) / N\n", layer.backward(1))
print("y\n", layer.y)

# %% [markdown]
# ## 5.7.3 Gradient check
#
# Backprop's gradients against numerical ones (central differences of the
# true loss, each parameter perturbed) on three training images, in float64.
# The differences are tiny but not all ~1e-10: the loss takes log(y + 1e-7),
# as the book's does, and the numerical gradient sees that 1e-7 while
# backprop's (y − t) / N ignores it, a relative difference of about 1e-7 / y.
# Without the 1e-7 they fall to 1e-13 (W1) .. 1e-10 (b2).

# %%
(x_train, t_train), (x_test, t_test) = load_data(DATASET, data_dir=DATA_DIR)
network = nn.TwoLayerNet(784, 50, 10, rng=0)
x_batch = be.asarray(x_train[:3], dtype="float64")
t_batch = be.asarray(t_train[:3], dtype="int64")
differences = nn.gradient_check(network, x_batch, t_batch)
print(f"{'param':<6} {'shape':<11} {'mean |backprop - numerical|':>28}")
for key, diff in differences.items():
    shape = str(tuple(network.params[key].shape))
    print(f"{key:<6} {shape:<11} {diff:>28.3e}")

# %% [markdown]
# ## 5.7.4 Training with backprop
#
# Chapter 5's settings (784-50-10 ReLU, batch 100, lr 0.1) with the library's
# `Trainer`, the same one `train.py` runs, in float32. Two epochs of the
# 60,000 training images, evaluated every 200 iterations.

# %%
config = TrainConfig(iters=1200, eval_every=200, seed=0)
trainer = Trainer((x_train, t_train), (x_test, t_test), config, dataset=DATASET)
print(trainer.describe())
result = trainer.fit()
print(result.summary())

# %%
history = result.history
plot.plot_loss(range(1, len(history.loss) + 1), history.loss)

# %%
epochs = [i / trainer.iters_per_epoch for i in history.eval_iteration]
plot.plot_accuracy(epochs, history.train_acc, history.test_acc)

# %% [markdown]
# ### Batch size 10 versus 100
#
# The same number of steps: batches of 10 see a tenth of the data per step,
# so the loss falls more slowly and is much noisier.

# %%
curves = {}
for batch_size in (10, 100):
    cfg = TrainConfig(iters=600, batch_size=batch_size, eval_every=600, seed=0)
    run = Trainer(
        (x_train, t_train), (x_test, t_test), cfg, reporter=SilentReporter()
    ).fit()
    curves[f"batch {batch_size}"] = (range(1, 601), run.history.loss)
    print(f"batch {batch_size:>3}: test acc {run.test_acc:.4f}")
plot.plot_batch_size_comparison(curves, window=25)

# %% [markdown]
# ## Where the time goes, on every available backend
#
# One gradient of the 784-50-10 network at batch 100 (float64): the fast
# numerical gradient versus backprop, and the book's textbook loop estimated
# from timing it on the 60 biases. Then one SGD step in float32 (what
# training runs). Each time is the median of a few calls after a
# warm-up (Numba compiles on first use).


# %%
def seconds_per_call(fn, backend, repeat=5):
    """Median seconds of fn() after one warm-up call, device synchronised."""
    fn()
    backend.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        backend.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


available = []
for name in ("numpy", "numba", "cupy"):
    try:
        available.append(B.get_backend(name))
    except B.BackendUnavailableError as exc:
        print(f"{name}: unavailable ({exc})")


def time_backend(backend):
    """Seconds of a fast numerical gradient, a backprop gradient, an SGD step."""
    B.use(backend)
    net = nn.TwoLayerNet(784, 50, 10, backend=backend, rng=0)
    x, t = backend.asarray(x_host, dtype="float64"), backend.asarray(t_host)
    times = {}
    if backend.two_layer_numerical_gradient is not None:
        times["fast"] = seconds_per_call(
            lambda: net.numerical_gradient(x, t), backend, repeat=3
        )
    times["backprop"] = seconds_per_call(lambda: net.gradient(x, t), backend)
    net32 = nn.TwoLayerNet(784, 50, 10, backend=backend, dtype="float32", rng=0)
    x32, sgd = backend.asarray(x_host, dtype="float32"), nn.SGD(lr=0.1)
    times["step"] = seconds_per_call(
        lambda: net32.train_step(x32, t, sgd), backend, repeat=20
    )
    return times


x_host, t_host = x_train[:100], t_train[:100]
gradient_times, step_times = {}, {}
for backend in available:
    times = time_backend(backend)
    step_times[backend.name] = times.pop("step")
    for method, seconds in times.items():
        gradient_times[f"{backend.name}-{method}"] = seconds
B.use(be)

# The textbook loop costs two forward passes per parameter whichever it is:
# timed on b1 and b2 (60 parameters), scaled to all 39,760.
net = nn.TwoLayerNet(784, 50, 10, rng=0)
x, t = be.asarray(x_host, dtype="float64"), be.asarray(t_host)
part = ("b1", "b2")
start = time.perf_counter()
for key in part:
    B.numerical_gradient(lambda W: net.loss(x, t), net.params[key])
per_param = (time.perf_counter() - start) / sum(net.params[k].size for k in part)
gradient_times[f"{be.name}-loop (estimate)"] = per_param * sum(
    v.size for v in net.params.values()
)

for label, seconds in sorted(gradient_times.items(), key=lambda kv: -kv[1]):
    print(f"gradient {label:<22} {seconds * 1e3:10.3f} ms")
for name, seconds in step_times.items():
    print(f"SGD step {name:<22} {seconds * 1e3:10.3f} ms")
figures.time_bars(gradient_times, title="one gradient, 784-50-10, batch 100, float64")

# %% [markdown]
# The benchmark suite measures these carefully (the full textbook loop, several
# rounds, interleaved variants): `python bench/run.py` writes
# `runs/bench/pass-1.json`, and the same chart reads it.

# %%
BENCH_JSON = Path(os.environ.get("XPNET_BENCH_JSON", "../runs/bench/pass-1.json"))
if BENCH_JSON.is_file():
    display(figures.time_bars(BENCH_JSON, title=f"bench/ results: {BENCH_JSON}"))
else:
    print(f"no benchmark results at {BENCH_JSON}; run python bench/run.py")
