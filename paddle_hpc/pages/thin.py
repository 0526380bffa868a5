"""Curves thinned for display, to a byte budget: the parquet tables keep every row.

Each curve is cut into buckets along its x; a bucket keeps its first and last point and
its lowest and highest (M4), so a spike or a NaN (a diverged loss) stays visible
however few points are drawn. Pure.
"""

from __future__ import annotations

import itertools

import numpy as np

BYTES_PER_POINT = 2 * 4 * 4 / 3  # x and y as float32, base64 in the page
LEAST_POINTS = 32


def points_per_curve(curves: int, budget_bytes: float) -> int:
    """How many points each of `curves` curves may keep within `budget_bytes`."""
    if curves <= 0:
        return 0
    return max(LEAST_POINTS, int(budget_bytes / BYTES_PER_POINT / curves))


def thin(x: np.ndarray, y: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` of the curve (x sorted), with each bucket's first, last, lowest
    and highest point and every NaN's first occurrence per bucket, in x order."""
    if len(x) <= points:
        return x, y
    buckets = max(1, points // 5)  # at most 5 points a bucket: first, last, min, max, NaN
    edges = np.linspace(0, len(x), buckets + 1).astype(int)
    keep: list[int] = []
    for start, end in itertools.pairwise(edges):
        if start == end:
            continue
        part = y[start:end]
        picked = {start, end - 1}
        if np.isnan(part).any():
            picked.add(start + int(np.flatnonzero(np.isnan(part))[0]))
        if not np.isnan(part).all():
            picked |= {start + int(np.nanargmin(part)), start + int(np.nanargmax(part))}
        keep.extend(sorted(picked))
    return x[keep], y[keep]
