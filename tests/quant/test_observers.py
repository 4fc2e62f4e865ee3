"""Calibration statistics: exact histogram growth, and the four range methods on data whose
answer is known independently (numpy percentiles, brute-force error minimisation)."""

from __future__ import annotations

import numpy as np
import pytest

from edgec.quant.observers import NUM_BINS, TensorStats, _fake_quant


def test_histogram_keeps_every_count_and_the_exact_extremes():
    rng = np.random.default_rng(0)
    s = TensorStats()
    parts = [rng.standard_normal(5000) * k for k in (0.1, 1.0, 7.0, 0.5)] + [np.zeros(10)]
    for p in parts:
        s.update(p.astype(np.float32))
    allx = np.concatenate(parts).astype(np.float32)
    assert s.count == allx.size and s.hist.sum() == allx.size
    assert s.min == allx.min() and s.max == allx.max()
    assert s.hist_lo <= allx.min() and s.hist_hi >= allx.max()
    # Every value lies in the bin the histogram counts it in (bins merge exactly; only
    # values within float rounding of a bin edge may land in the neighbour).
    idx = np.clip(((allx - s.hist_lo) / s.bin_width).astype(np.int64), 0, NUM_BINS - 1)
    moved = np.abs(np.bincount(idx, minlength=NUM_BINS) - s.hist).sum()
    assert moved <= allx.size // 1000


def test_merge_equals_joint_update_in_counts():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(3000), rng.standard_normal(3000) * 3
    joint, left, right = TensorStats(), TensorStats(), TensorStats()
    joint.update(a)
    joint.update(b)
    left.update(a)
    right.update(b)
    left.merge(right)
    assert left.count == joint.count and left.min == joint.min and left.max == joint.max
    assert left.hist.sum() == joint.hist.sum()


def test_nonfinite_values_are_counted_apart():
    s = TensorStats()
    s.update(np.array([1.0, np.nan, -2.0, np.inf], np.float32))
    assert (s.min, s.max, s.count, s.nonfinite) == (-2.0, 1.0, 2, 2)


def test_minmax_and_zero_inclusion():
    s = TensorStats()
    s.update(np.array([0.5, 2.0, 3.0], np.float32))
    assert s.range_for("minmax") == (0.0, 3.0)
    s2 = TensorStats()
    s2.update(np.zeros(4, np.float32))
    assert s2.range_for("entropy") == (0.0, 0.0)


def test_percentile_matches_numpy_within_a_bin():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(200_000).astype(np.float32)
    s = TensorStats()
    s.update(x)
    lo, hi = s.range_for("percentile", 99.9)
    assert abs(hi - np.percentile(x, 99.9)) <= 2 * s.bin_width
    assert abs(lo - np.percentile(x, 0.1)) <= 2 * s.bin_width


def test_mse_is_close_to_the_brute_force_minimum_on_the_data():
    rng = np.random.default_rng(3)
    x = rng.laplace(size=50_000).astype(np.float32)  # heavy tails: clipping pays off
    s = TensorStats()
    s.update(x)
    lo, hi = s.range_for("mse")
    xd = x.astype(np.float64)

    def err(a, b):
        return float(np.mean((xd - _fake_quant(xd, a, b)) ** 2))

    full_lo, full_hi = float(x.min()), float(x.max())
    brute = min(err(full_lo * t, full_hi * t) for t in np.linspace(0.05, 1.0, 400))
    assert hi < full_hi
    assert err(lo, hi) <= 1.05 * brute


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_clipping_methods_ignore_a_lone_outlier(method):
    rng = np.random.default_rng(4)
    x = np.concatenate([np.abs(rng.standard_normal(100_000)), [60.0]]).astype(np.float32)
    s = TensorStats()
    s.update(x)
    lo, hi = s.range_for(method)
    assert lo == 0.0 and 2.0 < hi < 30.0
