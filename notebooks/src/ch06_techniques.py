# Source of notebooks/ch06_techniques.ipynb: edit here, then run notebooks/build.py.

# %% [markdown]
# # Chapter 6: techniques for training
#
# The book's optimizers (`SGD`, `Momentum`, `AdaGrad`, `Adam`, ...) on a toy
# function and on a deep network, initial weight scales, Batch
# Normalization, and overfitting held back by weight decay and Dropout,
# with `MultiLayerNet` and `MultiLayerNetExtend` under the book's names.
#
# Settings, as for the command-line tools: `DEVICE` (`"numpy"`, `"numba"`,
# `"cupy"` or `"auto"`: a GPU if usable, else Numba, else NumPy); data from
# `$XPNET_DATA_DIR`, else `../shared/data` beside the repository, else the user
# cache (downloading on first use).
#
# **Data:** **Fashion-MNIST** (MNIST's format and sizes, 10 classes of
# clothing), because MNIST's training images are not available on the
# machines that run these notebooks in CI; set `DATASET = "mnist"` where you
# have them. The runs are shorter than the book's so that the notebook
# finishes in about a minute; `docs/figures/make_chapter6_figures.py` runs
# them at the book's sizes.

# %%
# %matplotlib inline
import numpy as np
from chapter_settings import shared_data_dir
from IPython.display import display

import backend as B
import nn
from nn.figures import chapter6 as fig6
from nn.figures import chapter6_runs as runs
from nn.figures.base import new_figure
from nn.training import load_data

DEVICE = "auto"

be = B.use(DEVICE)
print("backend:", be.describe())
xp = be.xp

DATA_DIR = shared_data_dir()
DATASET = "fashion-mnist"
NOTE = "Fashion-MNIST stands in for MNIST" if DATASET == "fashion-mnist" else None
print("data:", DATA_DIR or "user cache (downloads if missing)", "|", DATASET)
(x_train, t_train), (x_test, t_test) = load_data(DATASET, data_dir=DATA_DIR)

# %% [markdown]
# ## 6.1 Optimizers on f(x, y) = x²/20 + y²
#
# Each optimizer's `update(params, grads)` changes the arrays of `params` in
# place, as in the book. Thirty steps from (-7, 2) with the book's learning
# rates: SGD zig-zags along the steep y direction; Momentum rolls like a
# ball; AdaGrad and Adam damp the steep direction.


# %%
def df(x, y):
    return x / 10.0, 2.0 * y


optimizers = {
    "SGD": nn.SGD(lr=0.95),
    "Momentum": nn.Momentum(lr=0.1),
    "AdaGrad": nn.AdaGrad(lr=1.5),
    "Adam": nn.Adam(lr=0.3),
}
fig = new_figure(8, 6)
grid_x, grid_y = np.meshgrid(np.arange(-10, 10, 0.01), np.arange(-5, 5, 0.01))
z = grid_x**2 / 20 + grid_y**2
for k, (name, optimizer) in enumerate(optimizers.items()):
    params = {"x": xp.asarray([-7.0]), "y": xp.asarray([2.0])}
    path = []
    for _ in range(30):
        path.append((float(params["x"][0]), float(params["y"][0])))
        gx, gy = df(params["x"], params["y"])
        optimizer.update(params, {"x": gx, "y": gy})
    path = np.array(path)
    print(f"{name:>8}: after 30 steps at ({path[-1, 0]:+.3f}, {path[-1, 1]:+.3f})")
    ax = fig.add_subplot(2, 2, k + 1)
    ax.contour(grid_x, grid_y, np.where(z > 7, 0, z), levels=8)
    ax.plot(path[:, 0], path[:, 1], "o-", color="red", markersize=3)
    ax.plot(0, 0, "+")
    ax.set(xlim=(-10, 10), ylim=(-5, 5), title=name)
display(fig)

# %% [markdown]
# ## 6.1.8 Optimizers on Fashion-MNIST (figure 6-9)
#
# The book's five-layer network (784-100-100-100-100-10, ReLU, He
# initialisation), batch 128, the same batches for every optimizer, each at
# its default learning rate. 300 steps here (the book runs 2,000).

# %%
result = runs.compare_optimizers(x_train, t_train, iters=300)
for name, losses in result["losses"].items():
    print(f"{name:>8}: loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}")
print(f"optimizers: {result['seconds']:.1f} s")
fig6.loss_curves(result, note=NOTE)

# %% [markdown]
# ## 6.2 Initial weights (figure 6-15)
#
# The same network with SGD (lr 0.01) from three initial scales: std 0.01
# (the signal vanishes through four layers and nothing learns), Xavier
# (sqrt(1/n)) and He (sqrt(2/n), made for ReLU).

# %%
result = runs.compare_weight_inits(x_train, t_train, iters=300)
for name, losses in result["losses"].items():
    print(f"{name:>8}: loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}")
print(f"weight init: {result['seconds']:.1f} s")
fig6.loss_curves(
    result, title="initial weights compared (SGD)", ylim=(0, 2.5), note=NOTE
)

# %% [markdown]
# ## 6.3 Batch Normalization (figure 6-19)
#
# `BatchNormalization` normalises each unit over the batch in training and
# keeps running statistics for inference. On 1,000 training images, the
# 784-100x5-10 network learns from initial scales that stop the plain network
# (dashed) cold. Four scales of the book's sixteen, 10 epochs of its 20.

# %%
layer = nn.BatchNormalization(xp.ones(3), xp.zeros(3))
batch = be.asarray(np.array([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]]))
print("normalised batch\n", layer.forward(batch, train_flg=True))
result = runs.batchnorm_scales(
    x_train, t_train, scales=[1.0, 0.1, 0.01, 0.001], epochs=10
)
for scale, bn, plain in zip(
    result["scales"], result["batchnorm"], result["plain"], strict=True
):
    print(f"scale {scale:g}: accuracy with BN {bn[-1]:.3f}, without {plain[-1]:.3f}")
print(f"batch norm: {result['seconds']:.1f} s")
fig6.batchnorm_grid(result, note=NOTE)

# %% [markdown]
# ## 6.4 Overfitting, weight decay and Dropout (figures 6-20, 6-21, 6-23)
#
# A seven-layer network (784-100x6-10) trained on only 300 images for 201
# epochs: it learns them by heart and the test accuracy stays far below.
# Weight decay (lambda 0.1 adds 0.5 lambda sum(W²) to the loss) and Dropout
# (ratio 0.2: units dropped in training, outputs scaled by 0.8 at inference)
# narrow the gap. Test accuracy on 2,000 test images to keep it quick.

# %%
train, test = (x_train, t_train), (x_test[:2000], t_test[:2000])
overfit = {
    "no regularisation": runs.overfit(train, test),
    "weight decay 0.1": runs.overfit(train, test, weight_decay_lambda=0.1),
    "Dropout 0.2": runs.overfit(train, test, dropout_ratio=0.2),
}
for name, r in overfit.items():
    train_acc, test_acc = r["train_acc"][-1], r["test_acc"][-1]
    print(
        f"{name}: train acc {train_acc:.3f}, test acc {test_acc:.3f}, "
        f"gap {train_acc - test_acc:.3f}, {r['seconds']:.1f} s"
    )
fig6.overfit_curves(overfit, note=NOTE)
