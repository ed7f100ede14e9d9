"""Chapter 6's experiments and figures, on tiny sizes: what they train and draw."""

from __future__ import annotations

import numpy as np
import pytest

from nn.figures import chapter6_runs as runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data(n=200, d=20, seed=0):
    """Separable toy data: the label is the arg-max of the first 10 features."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, d)).astype(np.float32)
    return x, x[:, :10].argmax(axis=1)


def test_smooth_curve_is_the_books_kaiser_window():
    x = np.random.default_rng(0).random(40)
    y = runs.smooth_curve(x)
    assert y.shape == x.shape
    w = np.kaiser(11, 2)
    w /= w.sum()
    # Away from the ends it is a plain weighted moving average.
    assert y[20] == pytest.approx(float(np.dot(w, x[15:26])))
    assert runs.smooth_curve(np.full(30, 3.0)) == pytest.approx(np.full(30, 3.0))


def test_compare_optimizers_uses_the_same_batches_and_every_optimizer_learns(
    backend,
):
    x, t = _data()
    r = runs.compare_optimizers(
        x, t, iters=60, batch_size=32, hidden_size_list=(16, 16), backend=backend
    )
    assert list(r["losses"]) == ["SGD", "Momentum", "AdaGrad", "Adam"]
    assert all(len(v) == 60 for v in r["losses"].values())
    assert r["seconds"] > 0
    first = {round(v[0], 5) for v in r["losses"].values()}
    assert len(first) == 1  # same network, same first batch: same first loss
    for name, losses in r["losses"].items():
        assert np.mean(losses[-10:]) < losses[0], name
    again = runs.compare_optimizers(
        x,
        t,
        ["adam"],
        iters=60,
        batch_size=32,
        hidden_size_list=(16, 16),
        backend=backend,
    )
    assert again["losses"]["adam"] == pytest.approx(r["losses"]["Adam"], rel=1e-5)


def test_weight_init_std_001_does_not_learn_where_he_does():
    x, t = _data(400)
    r = runs.compare_weight_inits(
        x, t, iters=150, batch_size=50, lr=0.1, hidden_size_list=(30, 30, 30, 30)
    )
    assert list(r["losses"]) == ["std=0.01", "Xavier", "He"]
    # Tiny weights through four layers: the scores are ~0 and the loss stays ln 10.
    assert np.mean(r["losses"]["std=0.01"][-20:]) == pytest.approx(np.log(10), abs=0.05)
    assert np.mean(r["losses"]["He"][-20:]) < np.log(10) - 0.3


def test_batchnorm_scales_shape_and_the_books_contrast():
    x, t = _data(300)
    r = runs.batchnorm_scales(
        x,
        t,
        scales=[0.5, 0.01],
        train_size=300,
        epochs=6,
        batch_size=50,
        lr=0.1,
        hidden_size_list=(20, 20, 20),
    )
    assert r["scales"] == [0.5, 0.01]
    assert [len(c) for c in r["batchnorm"] + r["plain"]] == [6] * 4
    # Scale 0.01 through three layers: only Batch Normalization learns.
    assert r["batchnorm"][1][-1] > r["plain"][1][-1] + 0.1


def test_overfit_weight_decay_and_dropout_run_and_record_each_epoch():
    train, test = _data(300, seed=1), _data(200, seed=2)
    base = dict(train_size=100, epochs=8, batch_size=50, lr=0.1)
    base["hidden_size_list"] = (20, 20)
    plain = runs.overfit(train, test, **base)
    decay = runs.overfit(train, test, weight_decay_lambda=0.5, **base)
    drop = runs.overfit(train, test, dropout_ratio=0.3, **base)
    for r in (plain, decay, drop):
        assert len(r["train_acc"]) == len(r["test_acc"]) == 8
        assert all(0 <= a <= 1 for a in r["train_acc"] + r["test_acc"])
    assert plain["train_acc"][-1] > plain["train_acc"][0]
    assert decay["train_acc"] != plain["train_acc"]
    assert drop["train_acc"] != plain["train_acc"]


def test_figures_draw_and_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from nn.figures import chapter6 as fig6

    losses = {"losses": {"SGD": list(np.linspace(2, 1, 30)), "Adam": [1.0] * 30}}
    fig = fig6.loss_curves(
        {**losses, "seconds": 1.5}, note="toy", path=tmp_path / "a.png"
    )
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["SGD", "Adam"]
    assert lines[1].get_ydata() == pytest.approx(np.ones(30))  # smoothing keeps 1
    assert "experiment time 1.5 s" in fig._supxlabel.get_text()
    bn = {"scales": [1.0, 0.1, 0.01], "batchnorm": [[0.1, 0.5]] * 3}
    bn["plain"] = [[0.1, 0.1]] * 3
    fig = fig6.batchnorm_grid(bn, path=tmp_path / "b.png")
    assert sum(ax.get_visible() for ax in fig.axes) == 3
    r = {"train_acc": [0.1, 1.0], "test_acc": [0.1, 0.7], "seconds": 2.0}
    fig = fig6.overfit_curves({"plain": r, "decay": r}, path=tmp_path / "c.png")
    assert "final gap 0.30" in fig.axes[0].get_title()
    for name in "abc":
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
