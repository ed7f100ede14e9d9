"""Chapter 6's fully connected network of any depth, with weight decay."""

from __future__ import annotations

import numbers
from collections import OrderedDict

import backend as B
from nn.layers import (
    Affine,
    BatchNormalization,
    Dropout,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from nn.network_args import (
    check_hidden_sizes,
    check_weight_decay,
    check_weight_init,
    init_scale,
)
from nn.network_state import NetworkState

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}
#: Rows per forward pass of ``count_correct`` (bounds memory).
EVAL_CHUNK = 10000


class MultiLayerNet(NetworkState):
    """(Affine -> activation) per hidden layer, then Affine -> SoftmaxWithLoss.

    ``params``: ``W1`` (input_size, h1), ``b1`` (h1,), ... ``Wk`` (h_last,
    output_size), ``bk``, the very arrays the layers use (update in place).

    Parameters
    ----------
    input_size, output_size : int
    hidden_size_list : sequence of int
        Width of each hidden layer, e.g. ``[100, 100, 100, 100]``.
    activation : {"relu", "sigmoid"}
    weight_init_std : float or str
        A number (weights start as it times N(0, 1)), ``"relu"``/``"he"``
        (sqrt(2 / n) for a layer of n inputs) or ``"sigmoid"``/``"xavier"``
        (sqrt(1 / n)). Biases start at zero.
    weight_decay_lambda : float
        L2 weight decay: the loss gains 0.5 * lambda * sum(W**2) per weight
        matrix and each weight's gradient lambda * W.
    backend, dtype, rng
        As for [`TwoLayerNet`][nn.two_layer_net.TwoLayerNet]: where the
        parameters live, their floating dtype (default float64), and the seed
        or host generator of the initial weights (the same on every backend).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list,
        output_size: int,
        activation: str = "relu",
        weight_init_std="relu",
        weight_decay_lambda: float = 0,
        *,
        backend=None,
        dtype=None,
        rng=None,
    ):
        self._setup(
            input_size,
            hidden_size_list,
            output_size,
            activation,
            weight_init_std,
            weight_decay_lambda,
            backend,
            dtype,
            rng,
        )

    def _setup(self, input_size, hidden, output_size, activation, init, decay, *rest):
        backend, dtype, rng = rest
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of "
                f"{sorted(ACTIVATIONS)}"
            )
        for name, size in (("input_size", input_size), ("output_size", output_size)):
            integral = isinstance(size, numbers.Integral) and not isinstance(size, bool)
            if not integral or size < 1:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        self.input_size, self.output_size = int(input_size), int(output_size)
        self.hidden_size_list = list(check_hidden_sizes(hidden))
        self.hidden_layer_num = len(self.hidden_size_list)
        self.activation = activation
        self.weight_init_std = check_weight_init(init)
        self.weight_decay_lambda = check_weight_decay(decay)
        self.backend = B.get_backend(backend)
        try:
            self.dtype = self.backend.xp.dtype(dtype or B.DEFAULT_DTYPE)
        except TypeError:
            self.dtype = None
        if self.dtype is None or self.dtype.kind != "f":
            raise ValueError(
                f"dtype must be a floating type such as 'float64' or 'float32', "
                f"got {dtype!r}"
            )
        self.rng = B.default_rng(rng)
        self.params = {}
        self._init_weight(self.weight_init_std)
        self._build_layers()

    # Chapter 6's extensions; MultiLayerNetExtend sets them.
    use_dropout = False
    use_batchnorm = False

    def _init_weight(self, weight_init_std) -> None:
        sizes = [self.input_size, *self.hidden_size_list, self.output_size]
        be, xp = self.backend, self.backend.xp
        for idx in range(1, len(sizes)):
            scale = init_scale(weight_init_std, sizes[idx - 1])
            self.params[f"W{idx}"] = be.random_normal(
                (sizes[idx - 1], sizes[idx]), scale, self.dtype, self.rng
            )
            self.params[f"b{idx}"] = xp.zeros(sizes[idx], dtype=self.dtype)

    def _build_layers(self) -> None:
        be, xp, p = self.backend, self.backend.xp, self.params
        self.layers = OrderedDict()
        if self.use_dropout:
            dropout_seed = int(self.rng.integers(2**62))
        for idx in range(1, self.hidden_layer_num + 1):
            self.layers[f"Affine{idx}"] = Affine(p[f"W{idx}"], p[f"b{idx}"], be)
            if self.use_batchnorm:
                width = self.hidden_size_list[idx - 1]
                p[f"gamma{idx}"] = xp.ones(width, dtype=self.dtype)
                p[f"beta{idx}"] = xp.zeros(width, dtype=self.dtype)
                self.layers[f"BatchNorm{idx}"] = BatchNormalization(
                    p[f"gamma{idx}"],
                    p[f"beta{idx}"],
                    running_mean=xp.zeros(width, dtype=self.dtype),
                    running_var=xp.zeros(width, dtype=self.dtype),
                    backend=be,
                )
            activation = ACTIVATIONS[self.activation]
            self.layers[f"Activation_function{idx}"] = (
                activation(be) if activation is Relu else activation()
            )
            if self.use_dropout:
                self.layers[f"Dropout{idx}"] = Dropout(
                    self.dropout_ration, seed=dropout_seed + idx, backend=be
                )
        idx = self.hidden_layer_num + 1
        self.layers[f"Affine{idx}"] = Affine(p[f"W{idx}"], p[f"b{idx}"], be)
        self.last_layer = SoftmaxWithLoss(backend=be)
        self._flagged = {
            key
            for key, layer in self.layers.items()
            if isinstance(layer, (Dropout, BatchNormalization))
        }

    def _sync_layers(self) -> None:
        # Compute with what ``params`` holds even if an entry was rebound.
        p = self.params
        for key, layer in self.layers.items():
            if isinstance(layer, Affine):
                idx = key[len("Affine") :]
                layer.W, layer.b = p[f"W{idx}"], p[f"b{idx}"]
            elif isinstance(layer, BatchNormalization):
                idx = key[len("BatchNorm") :]
                layer.gamma, layer.beta = p[f"gamma{idx}"], p[f"beta{idx}"]

    def predict(self, x, train_flg: bool = False):
        """x: (N, input_size) -> scores (N, output_size), before softmax.

        ``train_flg``: Dropout drops and Batch Normalization uses the batch's
        statistics (training), or not (inference, the default).
        """
        self._sync_layers()
        for key, layer in self.layers.items():
            if key in self._flagged:
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def _decay(self):
        lam = self.weight_decay_lambda
        if not lam:
            return 0
        xp, p = self.backend.xp, self.params
        n = self.hidden_layer_num + 1
        total = sum(xp.sum(p[f"W{i}"] ** 2) for i in range(1, n + 1))
        return 0.5 * lam * total

    def loss(self, x, t, train_flg: bool = False):
        """Mean cross-entropy plus 0.5 * lambda * sum(W**2) of every weight. -> 0-d.

        t: (N,) integer labels or (N, output_size) one-hot.
        """
        loss = self.last_layer.forward(self.predict(x, train_flg), t)
        # Without decay, no addition (on a GPU it would be one more launch).
        return loss + self._decay() if self.weight_decay_lambda else loss

    def accuracy(self, x, t) -> float:
        """Fraction of rows of x whose arg-max score (inference mode) is the label."""
        return self.count_correct(x, t)[0] / x.shape[0]

    def count_correct(self, x, t, chunk: int = EVAL_CHUNK) -> tuple[int, bool]:
        """Rows of x whose arg-max score equals the label, and whether every
        ReLU layer had some unit fire on some row (a layer dead on every row
        cuts the input off the output). -> ``(int, bool)``, one host sync.

        x: (N, input_size); t: (N,) labels or (N, output_size) one-hot.
        """
        if x.shape[0] == 0:
            raise ValueError("accuracy of an empty batch is undefined; pass samples")
        xp = self.backend.xp
        if t.ndim != 1:
            t = xp.argmax(t, axis=1)
        relus = [layer for layer in self.layers.values() if isinstance(layer, Relu)]
        correct = xp.zeros((), dtype="int64")
        fired = xp.zeros(len(relus) or 1, dtype="int64")
        for start in range(0, x.shape[0], chunk):
            y = xp.argmax(self.predict(x[start : start + chunk]), axis=1)
            correct = correct + xp.sum(y == t[start : start + chunk])
            if relus:
                fired = fired + xp.stack([xp.sum(~r.mask) for r in relus])
        host = self.backend.asnumpy(xp.concatenate([correct[None], fired]))
        return int(host[0]), not relus or bool((host[1:] > 0).all())

    def numerical_gradient(self, x, t):
        """Gradients of ``loss(x, t, train_flg=True)`` by central differences.

        -> ``{name: array}`` like ``params``. Batch Normalization's running
        statistics are restored afterwards, and Dropout keeps one mask for
        every perturbation (so the gradient is of one function).
        """
        held = [(la, la.hold) for la in self.layers.values() if isinstance(la, Dropout)]
        saved = self.state_dict()["buffers"]
        saved = {k: v.copy() for k, v in saved.items()}
        for layer, _ in held:
            layer.hold = True

        def loss_W(W):
            return self.loss(x, t, train_flg=True)

        try:
            return {
                key: self.backend.numerical_gradient(loss_W, self.params[key])
                for key in self.params
            }
        finally:
            for layer, hold in held:
                layer.hold = hold
            self._load_buffers(saved)

    def gradient(self, x, t):
        """Gradients of ``loss(x, t, train_flg=True)`` by backpropagation."""
        self._last_loss = self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        layers = list(self.layers.values())
        for layer in reversed(layers[1:]):
            dout = layer.backward(dout)
        layers[0].backward(dout, need_dx=False)
        grads = {}
        lam = self.weight_decay_lambda
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{idx}"]
            dW = affine.dW
            grads[f"W{idx}"] = dW + lam * self.params[f"W{idx}"] if lam else dW
            grads[f"b{idx}"] = affine.db
            if self.use_batchnorm and idx != self.hidden_layer_num + 1:
                grads[f"gamma{idx}"] = self.layers[f"BatchNorm{idx}"].dgamma
                grads[f"beta{idx}"] = self.layers[f"BatchNorm{idx}"].dbeta
        return grads

    def train_step(self, x, t, optimizer):
        """Backprop, then ``optimizer.update``. -> the 0-d loss before the update."""
        grads = self.gradient(x, t)
        optimizer.update(self.params, grads)
        return self._last_loss
