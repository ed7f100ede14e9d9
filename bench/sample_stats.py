"""Summary statistics of timing samples, in pytest-benchmark's JSON shape.

Its own module so that the worker-process drivers (``interleaved.py``,
``chapter6.py``) share it without importing ``benchkit``.
"""

from __future__ import annotations

import numpy as np


def sample_stats(samples: list[float]) -> dict:
    """min, max, mean, median, quartiles and IQR of ``samples`` (seconds)."""
    a = np.asarray(samples)
    q1, median, q3 = np.percentile(a, [25, 50, 75])
    return {
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "rounds": len(samples),
    }
