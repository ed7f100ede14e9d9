"""Chapter 6 in the trainer: which network a config builds, training with
every optimizer, resume bit for bit with Adam, Batch Normalization and Dropout."""

from __future__ import annotations

import numpy as np
import pytest

from nn import MultiLayerNetExtend, TwoLayerNet
from nn.optimizers import Adam
from nn.training.checkpoint import CheckpointError, load_checkpoint
from nn.training.network import build_network, layer_widths, output_size
from nn.training.progress import SilentReporter
from nn.training.trainer import TrainConfig, Trainer

CLASSES, FEATURES = 4, 12


def blobs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 1.5, (CLASSES, FEATURES))
    t = rng.integers(0, CLASSES, n).astype(np.uint8)
    x = centers[t] + rng.normal(0, 1, (n, FEATURES))
    return x.astype(np.float32), t


@pytest.fixture(scope="module")
def data():
    return blobs(600, seed=1), blobs(200, seed=2)


CH6 = {
    "hidden_sizes": (16, 16),
    "optimizer": "adam",
    "weight_init_std": "he",
    "weight_decay": 0.001,
    "dropout": 0.2,
    "batchnorm": True,
}


def trainer(data, out_dir=None, backend=None, **config):
    config.setdefault("seed", 3)
    config.setdefault("hidden_size", 16)
    return Trainer(
        *data,
        TrainConfig(**config),
        backend=backend,
        out_dir=out_dir,
        reporter=SilentReporter(),
    )


def test_chapter5_config_keeps_two_layer_net_and_chapter6_gets_extend():
    assert TrainConfig().is_chapter5 and TrainConfig(hidden_sizes=(50,)).is_chapter5
    net = build_network(TrainConfig(hidden_size=8), 5, 3, "numpy", 0)
    assert type(net) is TwoLayerNet
    for change in ({"optimizer": "momentum"}, {"batchnorm": True}, {"dropout": 0.5}):
        cfg = TrainConfig(hidden_size=8, **change)
        assert type(build_network(cfg, 5, 3, "numpy", 0)) is MultiLayerNetExtend
    deep = build_network(TrainConfig(hidden_sizes=(4, 3)), 5, 2, "numpy", 0)
    assert layer_widths(deep.params) == [5, 4, 3, 2] and output_size(deep.params) == 2


def test_lr_and_init_defaults_follow_the_optimizer_and_depth():
    assert TrainConfig().lr == 0.1 and TrainConfig().weight_init_std == 0.01
    assert TrainConfig(optimizer="adam").lr == 0.001
    assert TrainConfig(optimizer="rmsprop").lr == 0.01
    assert TrainConfig(optimizer="adam", lr=0.5).lr == 0.5
    assert TrainConfig(hidden_sizes=(5, 5)).weight_init_std == "he"
    assert TrainConfig(weight_init_std="Xavier").weight_init_std == "xavier"
    again = TrainConfig.from_dict(TrainConfig(**CH6).to_dict())
    assert again == TrainConfig(**CH6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_sizes": (100, 0)}, "hidden layer width must be a positive"),
        ({"hidden_sizes": ()}, "hidden_sizes is empty"),
        ({"optimizer": "adamw"}, "optimizer must be one of sgd, momentum"),
        ({"weight_init_std": "lecun"}, "weight_init_std must be a positive number"),
        ({"weight_decay": -1.0}, "weight_decay must be a number >= 0"),
        ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
        ({"batchnorm": True, "batch_size": 1}, "batchnorm needs a batch size of 2"),
    ],
)
def test_bad_chapter6_config_is_a_one_line_error(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        TrainConfig(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad"])
def test_every_optimizer_trains_a_deep_net(data, optimizer):
    tr = trainer(data, hidden_sizes=(16, 16), optimizer=optimizer, iters=120)
    result = tr.fit()
    assert result.test_acc > 0.9, result


def test_chapter6_run_learns_on_every_backend(data, backend):
    tr = trainer(data, backend=backend, iters=150, **CH6)
    assert "adam" in tr.describe() and "12-16-16-4" in tr.describe()
    result = tr.fit()
    assert result.test_acc > 0.9 and result.history.loss[-1] < result.history.loss[0]


@pytest.mark.parametrize("split_at", [1, 25])
def test_resume_with_adam_batchnorm_dropout_is_bit_for_bit(data, tmp_path, split_at):
    full = trainer(data, tmp_path / "full", iters=50, eval_every=10, **CH6)
    full.fit()
    part = trainer(data, tmp_path / "part", iters=split_at, eval_every=10, **CH6)
    part.fit()
    ckpt = load_checkpoint(tmp_path / "part")
    assert ckpt.format_version == 2
    assert "optimizer.m.W1" in ckpt.buffers and "net.running_var2" in ckpt.buffers
    assert ckpt.network["dropout"][0][1] == split_at  # one mask per step
    resumed = Trainer.resume(
        tmp_path / "part", *data, iters=50, reporter=SilentReporter()
    )
    resumed.fit()
    for key, value in full.net.params.items():
        np.testing.assert_array_equal(resumed.net.params[key], value)
    for key, value in full.net.state_dict()["buffers"].items():
        np.testing.assert_array_equal(resumed.net.state_dict()["buffers"][key], value)
    assert resumed.history.loss == full.history.loss
    assert resumed.optimizer.iter == full.optimizer.iter == 50


def test_chapter6_checkpoint_continues_on_every_backend(data, tmp_path, backend):
    trainer(data, tmp_path, iters=20, backend="numpy", **CH6).fit()
    resumed = Trainer.resume(
        tmp_path, *data, iters=120, backend=backend, reporter=SilentReporter()
    )
    assert isinstance(resumed.optimizer, Adam) and resumed.optimizer.iter == 20
    assert resumed.fit().test_acc > 0.9


def test_damaged_optimizer_state_is_a_checkpoint_error(data, tmp_path):
    trainer(data, tmp_path, iters=5, **CH6).fit()
    ckpt = load_checkpoint(tmp_path)
    ckpt.buffers["optimizer.m.W1"] = np.zeros((3, 3), np.float32)
    with pytest.raises(CheckpointError, match="optimizer state.*m.*W1.*shape"):
        Trainer.resume(ckpt, *data, reporter=SilentReporter())
