# Source of notebooks/ch03_inference.ipynb: edit here, then run notebooks/build.py.

# %% [markdown]
# # Chapter 3: neural network inference
#
# The chapter's activation functions, then its MNIST example: the book's trained
# three-layer network (`sample_weight.pkl`: 784-50-100-10, sigmoid, sigmoid,
# softmax) classifies the 10,000 test digits, one image at a time and in
# batches. Only MNIST's **test** split is needed here.
#
# Settings, as for the command-line tools:
#
# - `DEVICE`: `"numpy"`, `"numba"`, `"cupy"` or `"auto"` (a GPU if CuPy can use
#   one, else Numba if installed, else NumPy);
# - data: `$XPNET_DATA_DIR`, else `../shared/data` beside the repository when it
#   exists, else the user cache (downloading MNIST on first use);
# - weights: `$XPNET_SAMPLE_WEIGHT`, else `book/sample_weight.pkl` in the data
#   folder (the file from the book's repository, `ch03/sample_weight.pkl`).

# %%
# %matplotlib inline
import os
import time

from chapter_settings import shared_data_dir

import backend as B
import nn
from nn import figures

DEVICE = "auto"

be = B.use(DEVICE)
print("backend:", be.describe())
xp = be.xp

DATA_DIR = shared_data_dir()
WEIGHTS = os.environ.get("XPNET_SAMPLE_WEIGHT") or (
    DATA_DIR / "book" / "sample_weight.pkl" if DATA_DIR else "sample_weight.pkl"
)
print("data:", DATA_DIR or "user cache (downloads if missing)")
print("weights:", WEIGHTS)

# %% [markdown]
# ## 3.2 Activation functions
#
# `step_function`, `sigmoid` and `relu` work element-wise on arrays of any
# backend; `softmax` turns scores into probabilities (the book's example
# `[0.3, 2.9, 4.0]`).

# %%
x = xp.array([-1.0, 1.0, 2.0])
print("step   ", nn.step_function(x))
print("sigmoid", nn.sigmoid(x))
print("relu   ", nn.relu(x))
y = nn.softmax(xp.array([0.3, 2.9, 4.0]))
print("softmax", y, "sum", float(xp.sum(y)))

# %% [markdown]
# ## 3.6 MNIST
#
# `load_mnist_split("test")` reads only the test files: flattened (10000, 784)
# float32 pixels in [0, 1] and labels 0..9.

# %%
x_test, t_test = nn.load_mnist_split(
    "test", normalize=True, flatten=True, data_dir=DATA_DIR
)
print("x_test", x_test.shape, x_test.dtype, "t_test", t_test.shape, t_test.dtype)
figures.digit_grid(x_test[:30], t_test[:30], title="the first 30 test digits")

# %% [markdown]
# ## The book's trained network
#
# The pickle is read safely (only arrays, no code runs). The weights are
# float32, as the book ships them.

# %%
network = nn.ThreeLayerNet.from_pickle(WEIGHTS, backend=be)
for name, value in network.params.items():
    print(f"{name}: {tuple(value.shape)} {value.dtype}")
x = be.asarray(x_test)
t = be.asarray(t_test)

# %% [markdown]
# ### One image at a time (the book's first loop)

# %%
start = time.perf_counter()
accuracy_cnt = 0
for i in range(len(x)):
    y = network.predict(x[i])
    p = int(xp.argmax(y))  # index of the most likely class
    if p == int(t[i]):
        accuracy_cnt += 1
per_sample_s = time.perf_counter() - start
print("Accuracy:" + str(float(accuracy_cnt) / len(x)))
print(f"per sample: {per_sample_s:.2f} s, {per_sample_s / len(x) * 1e6:.0f} us/image")

# %% [markdown]
# ### In batches
#
# The same predictions, 100 images per forward pass (`X` is (100, 784), the
# output (100, 10)): the matrix products do the loop, much faster.

# %%
batch_size = 100
network.predict(x[:batch_size])  # warm-up: first calls pay one-off costs
start = time.perf_counter()
accuracy_cnt = 0
for i in range(0, len(x), batch_size):
    y_batch = network.predict(x[i : i + batch_size])
    p = xp.argmax(y_batch, axis=1)
    accuracy_cnt += int(xp.sum(p == t[i : i + batch_size]))
B.synchronize(x)
batched_s = time.perf_counter() - start
print("Accuracy:" + str(float(accuracy_cnt) / len(x)))
print(f"batch {batch_size}: {batched_s:.3f} s ({per_sample_s / batched_s:.0f}x faster)")

# %% [markdown]
# ### Time per image by batch size
#
# `network.accuracy(x, t, batch_size)` runs the loop above. Larger batches
# amortise the Python overhead until the arithmetic dominates.

# %%
for batch_size in (1, 10, 100, 1000, 10000):
    network.accuracy(x[:batch_size], t[:batch_size])  # warm-up (JIT, caches)
    start = time.perf_counter()
    acc = network.accuracy(x, t, batch_size=batch_size)
    B.synchronize(x)
    elapsed = time.perf_counter() - start
    print(
        f"batch {batch_size:>5}: accuracy {acc:.4f}, {elapsed:7.3f} s, "
        f"{elapsed / len(x) * 1e6:7.1f} us/image"
    )

# %% [markdown]
# ## The digits it gets wrong
#
# About 6.5 % of the test set: each title reads predicted/true.

# %%
scores = B.to_numpy(network.predict(x))
figures.misclassified_digits(x_test, t_test, scores, max_images=30)
