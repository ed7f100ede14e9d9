"""Fixtures and options of the benchmark suite (``pytest bench/``).

Options: ``--bench-smoke`` (or ``XPNET_BENCH_SMOKE=1``) shrinks every size so
the whole suite runs in seconds; ``--bench-data-dir`` (or
``XPNET_BENCH_DATA``) points at a Fashion-MNIST folder.
"""

from __future__ import annotations

import benchkit
import pytest


def pytest_addoption(parser):
    group = parser.getgroup("xpnet-bench")
    group.addoption(
        "--bench-smoke",
        action="store_true",
        default=False,
        help="tiny sizes, for checking that every benchmark still runs "
        f"(also ${benchkit.SMOKE_ENV}=1)",
    )
    group.addoption(
        "--bench-data-dir",
        default=None,
        help=f"Fashion-MNIST folder (also ${benchkit.DATA_ENV}); default "
        "$XPNET_SHARED_DATA/fashion-mnist or ../shared/data/fashion-mnist",
    )


def pytest_configure(config):
    if benchkit.settings(config).smoke:
        benchkit.SETTLE_SECONDS = 0.0  # smoke mode checks that it runs, not speed


def pytest_report_header(config):
    s = benchkit.settings(config)
    mode = "SMOKE (tiny sizes)" if s.smoke else "full"
    where = benchkit.data_dir(config)
    return [f"xpnet bench: {mode}, network {s.label()}, data dir {where}"]


@pytest.fixture(scope="session")
def bench_settings(pytestconfig) -> benchkit.Settings:
    """Sizes and repetition counts of this session (see ``benchkit.Settings``)."""
    return benchkit.settings(pytestconfig)


@pytest.fixture(scope="session")
def bench_data(pytestconfig, bench_settings) -> benchkit.BenchData:
    """Fashion-MNIST (or synthetic stand-in) as host float32 images, int64 labels."""
    return benchkit.load_data(benchkit.data_dir(pytestconfig), bench_settings)
