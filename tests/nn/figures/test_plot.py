"""Training figures: headless, returned as Figures, written atomically as PNG."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from nn.figures import plot  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("n", "panels"), [(300, 1), (1000, 1), (2500, 2)])
def test_loss_figure_zooms_like_figure_4_11(tmp_path, n, panels):
    losses = list(2.3 * np.exp(-np.arange(n) / 300))
    fig = plot.plot_loss(range(1, n + 1), losses, path=tmp_path / "loss.png")
    assert len(fig.axes) == panels
    x, y = fig.axes[0].lines[0].get_data()
    np.testing.assert_array_equal(y, losses)
    if panels == 2:
        assert len(fig.axes[1].lines[0].get_xdata()) == plot.LOSS_ZOOM
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_MAGIC


def test_accuracy_figure_is_figure_4_12(tmp_path):
    fig = plot.plot_accuracy([0, 1, 2], [0.1, 0.8, 0.9], [0.1, 0.7, 0.85])
    (ax,) = fig.axes
    assert ax.get_ylim() == (0.0, 1.0)
    train, test = ax.lines
    np.testing.assert_array_equal(train.get_ydata(), [0.1, 0.8, 0.9])
    np.testing.assert_array_equal(test.get_ydata(), [0.1, 0.7, 0.85])
    assert test.get_linestyle() == "--"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train acc",
        "test acc",
    ]


def test_batch_size_comparison_draws_raw_and_smoothed_curves():
    rng = np.random.default_rng(0)
    a, b = rng.random(200), rng.random(200)
    fig = plot.plot_batch_size_comparison(
        {"batch 10": (range(200), a), "batch 100": (range(200), b)}, window=20
    )
    (ax,) = fig.axes
    assert len(ax.lines) == 4
    smooth = ax.lines[1].get_ydata()
    np.testing.assert_allclose(smooth, np.convolve(a, np.ones(20) / 20, "valid"))
    assert ax.lines[1].get_xdata()[0] == 19  # each mean sits at its window's end


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    fig = plot.plot_loss([1, 2], [1.0, 0.5], path=path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError):
        plot.save_figure(fig, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_run_comparison_draws_losses_and_test_accuracy(tmp_path):
    runs = {
        "numerical": {"iteration": [1, 2, 3], "loss": [2.0, 1.0, 0.5],
                      "eval_iteration": [0, 3], "test_acc": [0.1, 0.8]},
        "backprop": {"iteration": [1, 2, 3], "loss": [2.0, 1.2, 0.4],
                     "eval_iteration": [0, 3], "test_acc": [0.1, 0.85]},
    }  # fmt: skip
    path = tmp_path / "cmp.png"
    fig = plot.plot_run_comparison(runs, window=2, path=path)
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.lines) == 4  # raw and smoothed per run
    np.testing.assert_allclose(ax_loss.lines[1].get_ydata(), [1.5, 0.75])
    np.testing.assert_array_equal(ax_acc.lines[1].get_ydata(), [0.1, 0.85])
    assert [t.get_text() for t in ax_acc.get_legend().get_texts()] == [
        "numerical",
        "backprop",
    ]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
