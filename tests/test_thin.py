"""Curves thinned for display (pages/thin.py), fed literal curves."""

from __future__ import annotations

import numpy as np

from paddle_hpc.pages.thin import LEAST_POINTS, points_per_curve, thin


def test_a_short_curve_is_kept_whole() -> None:
    x, y = np.arange(5.0), np.array([3.0, 2.0, np.nan, 1.0, 0.5])
    tx, ty = thin(x, y, 10)
    assert tx is x and ty is y


def test_a_long_curve_keeps_its_ends_its_spike_and_its_nan() -> None:
    x = np.arange(10_000, dtype=float)
    y = np.exp(-x / 2000)
    y[4321] = 50.0  # a spike
    y[7777] = np.nan  # the loss diverged once
    tx, ty = thin(x, y, 100)
    assert len(tx) <= 100 and np.all(np.diff(tx) > 0)
    assert tx[0] == 0 and tx[-1] == 9999
    assert 4321 in tx and ty[list(tx).index(4321)] == 50.0
    assert 7777 in tx and np.isnan(ty[list(tx).index(7777)])


def test_a_curve_of_nans_and_few_points_asked() -> None:
    x, y = np.arange(100.0), np.full(100, np.nan)
    tx, ty = thin(x, y, 3)
    assert list(tx) == [0.0, 99.0] and np.isnan(ty).all()


def test_the_budget_shares_points_among_curves() -> None:
    assert points_per_curve(0, 1e6) == 0
    assert points_per_curve(1000, 2_000_000) == 187  # 2 MB / (10.67 B a point) / 1,000
    assert points_per_curve(10**6, 1e3) == LEAST_POINTS
