"""The book's section 6.5 search, transcribed in plain NumPy: the baseline.

The operations of ``ch06/hyperparameter_optimization.py`` with its
``common/multi_layer_net.py`` (ReLU, He initialisation, weight decay),
``common/optimizer.py`` (SGD) and ``common/trainer.py`` (MIT licensed), one
for one: float64 weights, the extra ``loss`` the book's ``Trainer`` computes
after each update, accuracies on the whole train and validation sets every
epoch, one trial after another.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from bench.book_reference import Affine, Relu, SoftmaxWithLoss


class BookMultiLayerNet:
    """``MultiLayerNet(input_size, hidden_size_list, output_size,
    weight_decay_lambda=...)`` with the book's defaults (ReLU, "relu" init)."""

    def __init__(
        self, input_size, hidden_size_list, output_size, weight_decay_lambda=0
    ):
        sizes = [input_size, *hidden_size_list, output_size]
        self.weight_decay_lambda = weight_decay_lambda
        self.hidden_layer_num = len(hidden_size_list)
        self.params = {}
        for idx in range(1, len(sizes)):
            scale = np.sqrt(2.0 / sizes[idx - 1])  # He
            self.params[f"W{idx}"] = scale * np.random.randn(sizes[idx - 1], sizes[idx])
            self.params[f"b{idx}"] = np.zeros(sizes[idx])
        self.layers = OrderedDict()
        for idx in range(1, self.hidden_layer_num + 1):
            self.layers[f"Affine{idx}"] = Affine(
                self.params[f"W{idx}"], self.params[f"b{idx}"]
            )
            self.layers[f"Activation_function{idx}"] = Relu()
        idx = self.hidden_layer_num + 1
        self.layers[f"Affine{idx}"] = Affine(
            self.params[f"W{idx}"], self.params[f"b{idx}"]
        )
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        y = self.predict(x)
        weight_decay = 0
        for idx in range(1, self.hidden_layer_num + 2):
            W = self.params[f"W{idx}"]
            weight_decay += 0.5 * self.weight_decay_lambda * np.sum(W**2)
        return self.last_layer.forward(y, t) + weight_decay

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            layer = self.layers[f"Affine{idx}"]
            grads[f"W{idx}"] = layer.dW + self.weight_decay_lambda * layer.W
            grads[f"b{idx}"] = layer.db
        return grads


def train_trial(x_train, t_train, x_val, t_val, lr, weight_decay, epochs=50, batch=100):
    """The book's ``__train``: one trial. -> (val_acc_list, train_acc_list)."""
    network = BookMultiLayerNet(784, [100] * 6, 10, weight_decay_lambda=weight_decay)
    train_size = x_train.shape[0]
    iter_per_epoch = max(train_size / batch, 1)
    max_iter = int(epochs * iter_per_epoch)
    val_acc_list, train_acc_list = [], []
    for i in range(max_iter):
        batch_mask = np.random.choice(train_size, batch)
        x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
        grads = network.gradient(x_batch, t_batch)
        for key in network.params:  # SGD.update
            network.params[key] -= lr * grads[key]
        network.loss(x_batch, t_batch)  # the book's Trainer records it
        if i % iter_per_epoch == 0:
            train_acc_list.append(network.accuracy(x_train, t_train))
            val_acc_list.append(network.accuracy(x_val, t_val))
    return val_acc_list, train_acc_list


def book_search(x_train, t_train, x_val, t_val, trials, epochs=50, batch=100):
    """The book's loop over ``trials`` ((lr, weight_decay) pairs), one after another.

    -> {"lr:..., weight decay:...": final validation accuracy}.
    """
    results = {}
    for lr, weight_decay in trials:
        val_acc_list, _ = train_trial(
            x_train, t_train, x_val, t_val, lr, weight_decay, epochs, batch
        )
        results[f"lr:{lr}, weight decay:{weight_decay}"] = val_acc_list[-1]
    return results
