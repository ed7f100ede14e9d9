"""The chapter figures: what each one draws, checked against hand-derived values."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from nn import figures as F  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _digits(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n)


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.get_images()]


def _bench_json(rows, group="gradients"):
    """A pytest-benchmark JSON document with one benchmark per (variant, median)."""
    return {
        "benchmarks": [
            {
                "group": group,
                "name": f"test_gradient[{variant}]",
                "extra_info": {"variant": variant, "size": size},
                "stats": {"median": median, "mean": 2 * median},
            }
            for variant, median, size in rows
        ]
    }


@pytest.mark.parametrize(
    "draw",
    [
        lambda p: F.digit_grid(*_digits(), path=p),
        lambda p: F.misclassified_digits(*_digits(), np.zeros(12, int), path=p),
        lambda p: F.tangent_lines(path=p),
        lambda p: F.gradient_field(step=0.5, path=p),
        lambda p: F.gradient_descent_paths(step_num=5, path=p),
        lambda p: F.time_bars({"loop": 17.0, "backprop": 1e-3}, path=p),
    ],
    ids=["grid", "misclassified", "tangent", "quiver", "descent", "bars"],
)
def test_every_figure_returns_a_figure_and_writes_a_png(tmp_path, draw):
    from matplotlib.figure import Figure

    path = tmp_path / "sub" / "fig.png"
    path.parent.mkdir()
    fig = draw(path)
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir()] == ["fig.png"]  # no temp left


@pytest.mark.parametrize("shape", [(7, 784), (7, 28, 28), (7, 1, 28, 28)])
def test_digit_grid_shows_each_image_with_its_label(shape):
    x = np.arange(7 * 784, dtype=np.float64).reshape(shape)
    t = np.array([3, 1, 4, 1, 5, 9, 2])
    fig = F.digit_grid(x, t, ncols=3)
    axes = _image_axes(fig)
    assert len(axes) == 7
    assert [ax.get_title() for ax in axes] == [str(v) for v in t]
    np.testing.assert_array_equal(
        axes[6].get_images()[0].get_array(), x.reshape(7, 28, 28)[6]
    )


def test_digit_grid_takes_backend_arrays_and_one_hot(backend):
    x_host, t_host = _digits(4)
    one_hot = np.eye(10)[t_host]
    fig = F.digit_grid(backend.asarray(x_host), backend.asarray(one_hot))
    assert [ax.get_title() for ax in _image_axes(fig)] == [str(v) for v in t_host]


def test_digit_grid_marks_wrong_predictions_red_with_class_names():
    x, _ = _digits(3)
    names = [f"c{i}" for i in range(10)]
    fig = F.digit_grid(x, [1, 2, 3], predicted=[1, 5, 3], class_names=names)
    titles = [ax.title for ax in _image_axes(fig)]
    assert [t.get_text() for t in titles] == ["c1/c1", "c5/c2", "c3/c3"]
    colors = [t.get_color() for t in titles]
    assert colors[1] == "tab:red" and colors[0] == colors[2] == "black"


def test_misclassified_digits_shows_only_the_wrong_ones_with_scores():
    x, t = _digits(10)
    scores = np.eye(10)[t]  # all right ...
    wrong = [2, 5, 7]
    scores[wrong] = np.eye(10)[(t[wrong] + 1) % 10]  # ... except three
    fig = F.misclassified_digits(x, t, scores, max_images=2)
    titles = [ax.get_title() for ax in _image_axes(fig)]
    assert titles == [f"{(t[i] + 1) % 10}/{t[i]}" for i in wrong[:2]]
    assert "3 of 10" in fig._suptitle.get_text()


def test_misclassified_digits_with_none_wrong_says_so():
    x, t = _digits(5)
    fig = F.misclassified_digits(x, t, t)
    assert not _image_axes(fig)
    assert "0 of 5" in fig._suptitle.get_text()


def test_tangent_lines_have_the_analytic_slopes():
    # f(x) = 0.01 x^2 + 0.1 x  =>  f'(x) = 0.02 x + 0.1: 0.2 at 5, 0.3 at 10.
    fig = F.tangent_lines(at=(5.0, 10.0))
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    for x0, slope in ((5.0, 0.2), (10.0, 0.3)):
        xs, ys = lines[f"tangent at x={x0:g}"].get_data()
        fitted = np.polyfit(xs, ys, 1)
        np.testing.assert_allclose(fitted, [slope, F.function_1(x0) - slope * x0])
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["slope 0.2000", "slope 0.3000"]


def test_gradient_field_arrows_are_minus_the_analytic_gradient():
    fig = F.gradient_field(lim=1.0, step=0.5)
    (ax,) = fig.axes
    (quiver,) = ax.collections
    xy = quiver.get_offsets()
    assert len(xy) == 25  # -1, -0.5, 0, 0.5, 1 on each axis
    np.testing.assert_allclose(quiver.U, -2 * xy[:, 0], atol=1e-6)
    np.testing.assert_allclose(quiver.V, -2 * xy[:, 1], atol=1e-6)


@pytest.mark.parametrize("step_num", [1, 6])
def test_gradient_descent_paths_follow_the_closed_form(step_num):
    # On x0^2 + x1^2 each step multiplies x by (1 - 2 lr).
    rates = ((0.01, "too small"), (0.1, "good"), (1.05, "too large"))
    start = np.array([-3.0, 4.0])
    fig = F.gradient_descent_paths(init_x=start, rates=rates, step_num=step_num)
    path_axes = fig.axes
    assert len(path_axes) == 3
    for ax, (lr, verdict) in zip(path_axes, rates, strict=True):
        xs, ys = ax.get_lines()[0].get_data()
        expected = np.outer((1 - 2 * lr) ** np.arange(step_num + 1), start)
        np.testing.assert_allclose(np.c_[xs, ys], expected, rtol=1e-6, atol=1e-9)
        assert verdict in ax.get_title()


def test_benchmark_times_reads_variants_and_the_requested_stat():
    doc = _bench_json([("numpy-loop", 17.0, "a"), ("numpy-backprop", 1e-3, "a")])
    assert F.benchmark_times(doc) == {"numpy-loop": 17.0, "numpy-backprop": 1e-3}
    assert F.benchmark_times(doc, stat="mean")["numpy-loop"] == 34.0


def test_benchmark_times_needs_a_size_when_there_are_several(tmp_path):
    doc = _bench_json([("loop", 17.0, "big"), ("loop", 0.1, "small")])
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="several sizes"):
        F.benchmark_times(path)
    assert F.benchmark_times(path, size="small") == {"loop": 0.1}
    with pytest.raises(ValueError, match="no benchmark results in group 'kernels'"):
        F.benchmark_times(path, group="kernels")


@pytest.mark.slow
def test_benchmark_times_reads_real_pytest_benchmark_json(tmp_path):
    (tmp_path / "test_b.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.parametrize("variant", ["slow", "fast"])
            def test_x(benchmark, variant):
                benchmark.group = "gradients"
                benchmark.extra_info["variant"] = variant
                benchmark(sum, range(20000 if variant == "slow" else 10))
            """
        )
    )
    out = tmp_path / "out.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_b.py"]
        + [f"--benchmark-json={out}", "--benchmark-max-time=0.02"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    times = F.benchmark_times(out)
    assert set(times) == {"slow", "fast"}
    assert times["slow"] > times["fast"] > 0
    fig = F.time_bars(out)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["fast", "slow"]


def test_time_bars_sorts_and_annotates_speedups():
    fig = F.time_bars({"loop": 20.0, "fast": 0.2, "backprop": 0.002})
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["backprop", "fast", "loop"]
    assert [t.get_text() for t in ax.texts] == [
        "2 ms  (10,000x faster)",
        "200 ms  (100x faster)",
        "20 s",
    ]
    assert [round(p.get_width(), 6) for p in ax.patches] == [0.002, 0.2, 20.0]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: F.digit_grid(np.zeros((3, 10))), "not square"),
        (lambda: F.digit_grid(np.zeros((0, 784))), "non-empty"),
        (lambda: F.digit_grid(np.zeros((3, 784)), [1, 2]), r"expected \(3,\)"),
        (lambda: F.time_bars({}), "at least one positive"),
        (lambda: F.time_bars({"a": 0.0}), "at least one positive"),
    ],
)
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_importing_figures_does_not_import_matplotlib():
    code = "import sys, nn.figures; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_make_figures_script_writes_the_readme_figures(shared_data, tmp_path):
    import importlib.util

    script = (
        Path(__file__).resolve().parents[3] / "docs" / "figures" / "make_figures.py"
    )
    spec = importlib.util.spec_from_file_location("make_figures", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(_bench_json([("loop", 17.0, "a"), ("fast", 0.1, "a")])))
    args = ["--data-dir", str(shared_data), "--bench-json", str(bench)]
    assert module.main(args + ["--out", str(tmp_path)]) == 0
    pngs = sorted(p.stem for p in tmp_path.glob("*.png"))
    assert pngs == sorted(module.NAMES)
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in tmp_path.glob("*.png"))
