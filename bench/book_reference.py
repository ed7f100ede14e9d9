"""The book's chapter 4 and 5 networks, transcribed in plain NumPy: the baselines.

This follows the operations of the book's reference code (``common/layers.py``,
``common/functions.py``, ``common/gradient.py``, ``ch05/two_layer_net.py`` and
``ch05/train_neuralnet.py``; MIT licensed) one for one, including what makes it
slow, because it is what readers run and what every ratio in the report is
measured against:

- float64 weights with float32 images, so every product casts its input;
- one-hot float64 targets, turned back into labels by ``argmax`` in the loss;
- the first layer's ``dx`` computed although nobody reads it;
- softmax calling ``exp`` twice; the training loop's extra ``loss`` after
  each update.

``first_dx=False`` with ``dtype=float32`` gives the "plain float32
transcription" control: the same code without the casts and the unused product.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def numerical_gradient(f, x):
    """The book's central-difference loop: two calls of ``f`` per element of x."""
    h = 1e-4
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)
        x[idx] = tmp_val - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val
        it.iternext()
    return grad


class Relu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        return dout


class Affine:
    def __init__(self, W, b, need_dx=True):
        self.W = W
        self.b = b
        self.need_dx = need_dx
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        if not self.need_dx:
            return None
        dx = np.dot(dout, self.W.T)
        return dx.reshape(*self.original_x_shape)


class SoftmaxWithLoss:
    def __init__(self):
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:
            return (self.y - self.t) / batch_size
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx / batch_size


class BookTwoLayerNet:
    """Chapter 5's ``TwoLayerNet`` (ReLU). Params in ``dtype`` (the book: float64).

    x: (N, input_size) float32; t: (N, output_size) one-hot (the book's
    ``one_hot_label=True``) or (N,) labels.
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        output_size,
        weight_init_std=0.01,
        dtype=np.float64,
        first_dx=True,
        seed=0,
    ):
        rng = np.random.default_rng(seed)
        p = {
            "W1": weight_init_std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }
        self.params = {k: v.astype(dtype) for k, v in p.items()}
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(
            self.params["W1"], self.params["b1"], need_dx=first_dx
        )
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.lastLayer.forward(self.predict(x), t)

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def numerical_gradient(self, x, t):
        def loss_W(W):
            return self.loss(x, t)

        return {k: numerical_gradient(loss_W, self.params[k]) for k in self.params}

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.lastLayer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        return {
            "W1": self.layers["Affine1"].dW,
            "b1": self.layers["Affine1"].db,
            "W2": self.layers["Affine2"].dW,
            "b2": self.layers["Affine2"].db,
        }

    def sgd_step(self, x, t, learning_rate=0.1):
        """``train_neuralnet.py``'s update: gradient, then params -= lr * grad.

        Returns the loss computed by the forward pass, before the update.
        """
        grad = self.gradient(x, t)
        for key in ("W1", "b1", "W2", "b2"):
            self.params[key] -= learning_rate * grad[key]
        return self.lastLayer.loss


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class BookSigmoidNet:
    """Chapter 4's ``TwoLayerNet`` (``ch04/two_layer_net.py``): sigmoid, then
    softmax and the cross-entropy as functions, its gradient by the book's
    ``numerical_gradient`` loop. Weights as ``BookTwoLayerNet`` draws them.
    """

    def __init__(
        self, input_size, hidden_size, output_size, weight_init_std=0.01, seed=0
    ):
        self.params = BookTwoLayerNet(
            input_size, hidden_size, output_size, weight_init_std, seed=seed
        ).params

    def predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        z1 = sigmoid(np.dot(x, W1) + b1)
        return softmax(np.dot(z1, W2) + b2)

    def loss(self, x, t):
        return cross_entropy_error(self.predict(x), t)

    def numerical_gradient(self, x, t):
        def loss_W(W):
            return self.loss(x, t)

        return {k: numerical_gradient(loss_W, self.params[k]) for k in self.params}


def one_hot(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """The book's one-hot targets: float64 (N, classes)."""
    t = np.zeros((labels.size, classes))
    t[np.arange(labels.size), labels] = 1
    return t
