"""The two-layer network of chapters 4 and 5."""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict

import backend as B
from nn.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from nn.optimizer import SGD

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}
GRADIENT_METHODS = ("auto", "fast", "loop")
#: Rows per forward pass of `TwoLayerNet.count_correct` (bounds memory).
EVAL_CHUNK = 10000


class TwoLayerNet:
    """Affine -> activation -> Affine -> SoftmaxWithLoss.

    ``activation="sigmoid"`` is chapter 4's network, ``"relu"`` chapter 5's.
    ``params`` holds the very arrays the layers use: update them in place.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer widths (784, 50, 10 in the book).
    weight_init_std : float
        Weights start as ``weight_init_std * N(0, 1)``; biases at zero.
    activation : {"relu", "sigmoid"}
    backend : str or Backend, optional
        Where the parameters live; default the current backend.
    dtype : str, optional
        Parameter dtype; default ``backend.DEFAULT_DTYPE`` (float64, as the book).
    rng : int or numpy.random.Generator, optional
        Seed of the initial weights (drawn on the host: same on every backend).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        activation: str = "relu",
        backend=None,
        dtype=None,
        rng=None,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; "
                f"choose one of {sorted(ACTIVATIONS)}"
            )
        for name, size in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("output_size", output_size),
        ):
            integral = isinstance(size, numbers.Integral) and not isinstance(size, bool)
            if not integral or size < 1:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        if not isinstance(weight_init_std, numbers.Real) or not (
            math.isfinite(weight_init_std) and weight_init_std >= 0
        ):
            raise ValueError(
                f"weight_init_std must be a finite number >= 0, got {weight_init_std!r}"
            )
        self.backend = B.get_backend(backend)
        self.activation = activation
        try:
            self.dtype = self.backend.xp.dtype(dtype or B.DEFAULT_DTYPE)
        except TypeError:
            self.dtype = None
        if self.dtype is None or self.dtype.kind != "f":
            raise ValueError(
                f"dtype must be a floating type such as 'float64' or 'float32', "
                f"got {dtype!r}"
            )
        xp, be = self.backend.xp, self.backend
        rng = B.default_rng(rng)  # one generator for both draws, so W1 and W2 differ
        self.params = {
            "W1": be.random_normal(
                (input_size, hidden_size), weight_init_std, self.dtype, rng
            ),
            "b1": xp.zeros(hidden_size, dtype=self.dtype),
            "W2": be.random_normal(
                (hidden_size, output_size), weight_init_std, self.dtype, rng
            ),
            "b2": xp.zeros(output_size, dtype=self.dtype),
        }
        self._build_layers()

    def _build_layers(self):
        p = self.params
        self.layers = OrderedDict()
        be = self.backend
        self.layers["Affine1"] = Affine(p["W1"], p["b1"], backend=be)
        self.layers[self.activation.capitalize() + "1"] = ACTIVATIONS[self.activation]()
        self.layers["Affine2"] = Affine(p["W2"], p["b2"], backend=be)
        self.lastLayer = SoftmaxWithLoss(backend=be)

    def _sync_layers(self):
        # The layers must compute with what ``params`` holds even if an entry
        # was rebound (``net.params["W1"] = W``) rather than updated in place.
        p, a1, a2 = self.params, self.layers["Affine1"], self.layers["Affine2"]
        a1.W, a1.b, a2.W, a2.b = p["W1"], p["b1"], p["W2"], p["b2"]

    def predict(self, x):
        """x: (N, input_size) -> scores (N, output_size), before softmax."""
        self._sync_layers()
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        """Mean cross-entropy of softmax(predict(x)) against t. -> 0-d.

        t: (N,) integer labels or (N, output_size) one-hot.
        """
        return self.lastLayer.forward(self.predict(x), t)

    def accuracy(self, x, t) -> float:
        """Fraction of rows of x whose arg-max score equals the label.

        x: (N, input_size); t: (N,) labels or (N, output_size) one-hot.
        """
        return self.count_correct(x, t)[0] / x.shape[0]

    def count_correct(self, x, t, chunk: int = EVAL_CHUNK) -> tuple[int, bool]:
        """Rows of x whose arg-max score equals the label, and whether some
        hidden ReLU unit fired (was not blocked) on some row. -> ``(int, bool)``.

        x: (N, input_size); t: (N,) labels or (N, output_size) one-hot. A
        backend with a fused kernel (``two_layer_count_correct``) computes the
        same arg-max without the layers' temporaries; otherwise the rows go
        through ``predict`` ``chunk`` at a time (bounding memory) and both
        results come to the host in one synchronisation. Always True for
        sigmoid, which has no blocked units.
        """
        if x.shape[0] == 0:
            raise ValueError("accuracy of an empty batch is undefined; pass samples")
        fused = self.backend.two_layer_count_correct
        if fused is not None:
            result = fused(self.params, x, t, self.activation)
            if result is not None:
                return result
        xp = self.backend.xp
        if t.ndim != 1:
            t = xp.argmax(t, axis=1)
        relu = self.layers.get("Relu1")
        correct, fired = xp.zeros((), dtype="int64"), xp.zeros((), dtype="int64")
        for start in range(0, x.shape[0], chunk):
            y = xp.argmax(self.predict(x[start : start + chunk]), axis=1)
            correct = correct + xp.sum(y == t[start : start + chunk])
            if relu is not None:
                fired = fired + xp.sum(~relu.mask)
        correct, fired = self.backend.asnumpy(xp.stack([correct, fired])).tolist()
        return int(correct), relu is None or fired > 0

    def numerical_gradient(self, x, t, method: str = "auto"):
        """Gradients of [`loss`][nn.TwoLayerNet.loss] by central differences,
        ``{name: array}``.

        ``method="loop"`` is the book's loop: two full forward passes per
        parameter. ``"fast"`` uses the backend's kernel that reuses what a
        perturbation cannot change (still a true central difference of the
        true loss); ``"auto"`` takes it when the backend has one.
        """
        if method not in GRADIENT_METHODS:
            raise ValueError(
                f"unknown method {method!r}; choose one of {GRADIENT_METHODS}"
            )
        fast = self.backend.two_layer_numerical_gradient
        if method == "fast" and fast is None:
            raise NotImplementedError(
                f"the {self.backend.name} backend has no fast numerical gradient; "
                "use method='loop'"
            )
        if method != "loop" and fast is not None:
            forward = ACTIVATIONS[self.activation]().forward
            return fast(self.params, x, t, self.activation, forward)

        def loss_W(W):
            return self.loss(x, t)

        return {
            key: self.backend.numerical_gradient(loss_W, self.params[key])
            for key in self.params
        }

    def gradient(self, x, t):
        """Gradients of [`loss`][nn.TwoLayerNet.loss] by backpropagation,
        ``{name: array}``."""
        self.loss(x, t)
        dout = self.lastLayer.backward(1)
        layers = list(self.layers.values())
        for layer in reversed(layers[1:]):
            dout = layer.backward(dout)
        layers[0].backward(dout, need_dx=False)
        return {
            "W1": self.layers["Affine1"].dW,
            "b1": self.layers["Affine1"].db,
            "W2": self.layers["Affine2"].dW,
            "b2": self.layers["Affine2"].db,
        }

    def train_step(self, x, t, optimizer):
        """One step: gradient by backprop, then ``optimizer.update``. -> 0-d loss.

        With plain [`SGD`][nn.SGD], a backend that has a fused kernel
        (``two_layer_sgd_step``) does forward, backward and update in one call,
        unless it returns None for these inputs (the CuPy kernels cover
        float32 and float64 only). The loss returned is the one computed
        before the update.
        """
        fused = self.backend.two_layer_sgd_step
        if fused is not None and type(optimizer) is SGD:
            loss = fused(self.params, x, t, optimizer.lr, self.activation)
            if loss is not None:
                return loss
        grads = self.gradient(x, t)
        optimizer.update(self.params, grads)
        return self.lastLayer.loss
