# Source of notebooks/ch04_numerical_gradient.ipynb: edit here, then run
# notebooks/build.py.

# %% [markdown]
# # Chapter 4: learning from data with numerical gradients
#
# Derivatives, partial derivatives and gradients by central differences,
# gradient descent and how a bad learning rate breaks it, the chapter's
# `SimpleNet`, and finally `TwoLayerNet` trained by mini-batch SGD with
# **numerical** gradients.
#
# Settings, as for the command-line tools: `DEVICE` (`"numpy"`, `"numba"`,
# `"cupy"` or `"auto"`: a GPU if usable, else Numba, else NumPy); data from
# `$XPNET_DATA_DIR`, else `../shared/data` beside the repository, else the user
# cache (downloading on first use).
#
# **Data:** the training section uses **Fashion-MNIST** (same format and sizes
# as MNIST: 28x28 grey images, 10 classes), because MNIST's training images are
# not available on the machines that run these notebooks in CI; set
# `DATASET = "mnist"` where you have them. To keep the run to a minute, it
# trains on a 6,000-image subset for a few hundred iterations.

# %%
# %matplotlib inline
import time

import numpy as np
from chapter_settings import shared_data_dir

import backend as B
import nn
from nn import figures
from nn.figures import plot

DEVICE = "auto"

be = B.use(DEVICE)
print("backend:", be.describe())
xp = be.xp

DATA_DIR = shared_data_dir()
DATASET = "fashion-mnist"
print("data:", DATA_DIR or "user cache (downloads if missing)", "|", DATASET)

# %% [markdown]
# ## 4.3 Numerical differentiation
#
# `numerical_diff(f, x)` is the central difference (f(x+h) - f(x-h)) / 2h with
# h = 1e-4. For f(x) = 0.01x² + 0.1x the exact derivative is 0.02x + 0.1:
# 0.2 at x = 5 and 0.3 at x = 10.

# %%
print(nn.numerical_diff(figures.function_1, 5))
print(nn.numerical_diff(figures.function_1, 10))
# The book's warning against a tiny h: 1e-50 is 0.0 in float32 (rounding error).
print(np.float32(1e-50))
figures.tangent_lines(figures.function_1, at=(5, 10))

# %% [markdown]
# ### Partial derivatives of f(x0, x1) = x0² + x1² at (3, 4)
#
# Fix one variable and differentiate in the other: exactly 6 and 8.


# %%
def function_tmp1(x0):
    return x0 * x0 + 4.0**2.0


def function_tmp2(x1):
    return 3.0**2.0 + x1 * x1


print(nn.numerical_diff(function_tmp1, 3.0))
print(nn.numerical_diff(function_tmp2, 4.0))

# %% [markdown]
# ## 4.4 Gradients
#
# `numerical_gradient(f, x)` does all partial derivatives at once, perturbing
# one element of `x` at a time (in place, restored after). Minus the gradient
# points to the minimum, more steeply the farther away (the book's figure 4-9).

# %%
for point in ([3.0, 4.0], [0.0, 2.0], [3.0, 0.0]):
    print(point, nn.numerical_gradient(figures.function_2, xp.array(point)))
figures.gradient_field()

# %% [markdown]
# ### Gradient descent
#
# x ← x − lr · ∇f(x), 100 steps from (−3, 4). With lr = 0.1 it reaches the
# minimum (0, 0); with lr = 10 it diverges (the book's -2.58e+13), with
# lr = 1e-10 it hardly moves.

# %%
init_x = xp.array([-3.0, 4.0])
for lr in (0.1, 10.0, 1e-10):
    x, _ = nn.gradient_descent(figures.function_2, init_x, lr=lr, step_num=100)
    print(f"lr={lr:g}: {x}")
figures.gradient_descent_paths(figures.function_2, init_x=(-3.0, 4.0), step_num=20)

# %% [markdown]
# ## 4.4.2 The gradient of a network: `SimpleNet`
#
# One 2x3 weight matrix, softmax and cross-entropy. With the book's weights
# the scores, loss and dL/dW match the printed example.

# %%
net = nn.SimpleNet(
    W=[[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]]
)
x = xp.array([0.6, 0.9])
t = xp.array([0, 0, 1])
p = net.predict(x)
print("scores", p, "argmax", int(xp.argmax(p)))
print("loss", float(net.loss(x, t)))


def f(W):
    return net.loss(x, t)


dW = nn.numerical_gradient(f, net.W)
print("dW\n", dW)

# %% [markdown]
# ## 4.5 A two-layer network trained with numerical gradients
#
# `TwoLayerNet(784, 50, 10)` with sigmoid, as in the chapter. The textbook
# numerical gradient runs the whole forward pass twice per parameter: 79,520
# passes, about 17 s per step at batch 100. xpnet's fast path still computes a
# true central difference of the true loss for every parameter, but reuses
# what a perturbation cannot change. First, the two agree on a small network:

# %%
FAST = be.two_layer_numerical_gradient is not None
print("fast numerical gradient on this backend:", FAST)
small = nn.TwoLayerNet(784, 3, 10, activation="sigmoid", rng=0)
rng = np.random.default_rng(0)
xs = be.asarray(rng.random((5, 784)) * (rng.random((5, 784)) < 0.5))
ts = be.asarray(rng.integers(0, 10, 5))
loop = small.numerical_gradient(xs, ts, method="loop")  # the book's loop
fast = small.numerical_gradient(xs, ts)  # the backend's fast path, if any
diff = max(float(xp.max(xp.abs(fast[k] - loop[k]))) for k in loop)
print(f"max |fast - loop| = {diff:.1e}")

# %% [markdown]
# ### The chapter's training loop
#
# Mini-batches of 100 drawn at random, `network.numerical_gradient`, an SGD
# step with lr = 0.1, and the accuracy on the train subset and the test set
# once an epoch (60 iterations of the 6,000-image subset). In float64, as
# the book: a central difference with h = 1e-4 needs it. Without a fast path
# on this backend the run shrinks to a hidden layer of 10, batch 10.

# %%
(x_train, t_train), (x_test, t_test) = nn.load_mnist(
    normalize=True, one_hot_label=False, dataset=DATASET, data_dir=DATA_DIR
)
TRAIN_SIZE = 6000
x_train = be.asarray(x_train[:TRAIN_SIZE], dtype="float64")
t_train = be.asarray(t_train[:TRAIN_SIZE], dtype="int64")
x_test = be.asarray(x_test, dtype="float64")
t_test = be.asarray(t_test, dtype="int64")

if FAST:
    hidden_size, batch_size, iters_num = 50, 100, 300
else:
    hidden_size, batch_size, iters_num = 10, 10, 40
learning_rate = 0.1
network = nn.TwoLayerNet(784, hidden_size, 10, activation="sigmoid", rng=0)
print(f"784-{hidden_size}-10 sigmoid, batch {batch_size}, {iters_num} iterations")

# %%
rng = B.default_rng(0)
iter_per_epoch = max(TRAIN_SIZE // batch_size, 1)
train_loss_list, train_acc_list, test_acc_list, epochs = [], [], [], []
start = time.perf_counter()
for i in range(iters_num + 1):
    if i % iter_per_epoch == 0 or i == iters_num:
        epochs.append(i / iter_per_epoch)
        train_acc_list.append(network.accuracy(x_train, t_train))
        test_acc_list.append(network.accuracy(x_test, t_test))
        print(
            f"iteration {i:4d}: train acc {train_acc_list[-1]:.4f}, "
            f"test acc {test_acc_list[-1]:.4f}"
        )
    if i == iters_num:
        break
    batch_mask = be.asarray(rng.choice(TRAIN_SIZE, batch_size))
    x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
    grad = network.numerical_gradient(x_batch, t_batch)
    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= learning_rate * grad[key]  # in place
    train_loss_list.append(float(network.loss(x_batch, t_batch)))
elapsed = time.perf_counter() - start
print(f"{iters_num} iterations in {elapsed:.1f} s: {elapsed / iters_num:.3f} s/step")
print(f"final test accuracy {test_acc_list[-1]:.4f}")

# %% [markdown]
# ### Loss and accuracy (the book's figures 4-11 and 4-12)

# %%
plot.plot_loss(range(1, len(train_loss_list) + 1), train_loss_list)

# %%
plot.plot_accuracy(epochs, train_acc_list, test_acc_list)
