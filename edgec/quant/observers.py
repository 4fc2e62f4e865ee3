"""Per-tensor statistics gathered during calibration, and the methods that turn them into a
quantisation range.

A `TensorStats` keeps the running minimum and maximum and a histogram of every value seen.
The histogram has `NUM_BINS` equal bins over a range that always contains 0; when a later
batch falls outside it, the range grows by an integer factor of the bin width so that old bins
merge exactly into new ones (no re-binning error, no second pass over the data).

Range methods (each returns the real interval [lo, hi] that int8 should cover; 0 is always
inside it, as the asymmetric int8 scheme requires; a non-empty range narrower than
`MIN_RANGE` is widened to it, so that int8 scales stay at least 2^-63 and products of two
scales stay normal float32 numbers, which no FTZ/DAZ hardware flushes to zero; data around
1e-40 then quantises to zero; an all-zero range keeps scale 1, see qmath.choose_qparams):

- minmax:     [min, max] of everything seen.
- percentile: the `percentile`-th and (100 - `percentile`)-th percentiles of the histogram
              (default 99.99), clipping rare outliers.
- mse:        among the ranges [t·lo, t·hi] (t on a grid in (0, 1]), the one that minimises the
              expected squared error of quantise-dequantise over the histogram (clipping error
              plus rounding error, each bin represented by its centre).
- entropy:    among the same candidate ranges, the one minimising the KL divergence between
              the clipped histogram P (outliers folded into the edge bins) and its 255-level
              quantised version Q (TensorRT's calibration, generalised to asymmetric ranges by
              shrinking both ends together).

Host independence: the histogram is built with elementwise float32 operations (exactly
rounded, the same on every machine); the mse/entropy costs are summed with math.fsum
(correctly rounded, order-free) and the logarithm is edgec.detmath.log, so the chosen range
does not depend on BLAS or numpy's SIMD dispatch (see edgec/detmath.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgec import detmath

NUM_BINS = 2048
METHODS = ("minmax", "percentile", "entropy", "mse")
DEFAULT_PERCENTILE = 99.99
QUANT_LEVELS = 255  # int8: 256 codes, 255 steps
# Narrowest non-empty range: 255 int8 steps of 2^-63 (see the module docstring).
MIN_RANGE = QUANT_LEVELS * 2.0**-63
# Shrink factors tried by the mse and entropy searches (1.0 keeps the full range).
SEARCH_FACTORS = np.linspace(1.0, 0.02, 200)


@dataclass
class TensorStats:
    """Running min/max and histogram of one tensor's values."""

    min: float = math.inf
    max: float = -math.inf
    count: int = 0
    hist: np.ndarray | None = None
    hist_lo: float = 0.0
    bin_width: float = 0.0
    nonfinite: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def hist_hi(self) -> float:
        """Upper edge of the histogram."""
        return self.hist_lo + self.bin_width * NUM_BINS

    def update(self, x: np.ndarray) -> None:
        """Add the values of `x` (any shape) to the statistics."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            finite = np.isfinite(x)
            self.nonfinite += int(x.size - np.count_nonzero(finite))
            x = x[finite]
            if x.size == 0:
                return
            lo, hi = float(x.min()), float(x.max())
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        self.count += int(x.size)
        self._grow(min(lo, 0.0), max(hi, 0.0))
        if self.bin_width == 0.0:  # only zeros so far
            self.hist[0] += x.size
            return
        self.hist += np.bincount(self._bin_index(x), minlength=NUM_BINS)

    def _bin_index(self, x: np.ndarray) -> np.ndarray:
        """Histogram bin of every (finite) value of `x`.

        float32 arithmetic when the histogram's origin and inverse bin width are finite
        float32 numbers (the usual case, and the historical bits); float64 otherwise: bins
        narrower than 1/FLT_MAX (data around 1e-40) or edges beyond the float32 range.
        """
        with np.errstate(over="ignore"):  # 1/width overflows float32 only for tiny bins
            inverse, origin = np.float32(1.0 / self.bin_width), np.float32(self.hist_lo)
        if np.isfinite(inverse) and np.isfinite(origin):
            with np.errstate(over="ignore"):  # x - origin may pass FLT_MAX: the last bin
                scaled = x - origin
                scaled *= inverse
        else:
            scaled = (x.astype(np.float64) - self.hist_lo) / self.bin_width
        np.clip(scaled, 0, NUM_BINS - 1, out=scaled)
        return scaled.astype(np.intp)

    def _grow(self, lo: float, hi: float) -> None:
        """Make the histogram cover [lo, hi], merging bins by an integer factor if needed."""
        if self.hist is None or self.bin_width == 0.0:
            zeros = 0 if self.hist is None else int(self.hist.sum())
            self.hist = np.zeros(NUM_BINS, np.int64)
            if hi > lo:
                self.hist_lo, self.bin_width = lo, (hi - lo) / NUM_BINS
                if zeros:  # earlier all-zero data
                    self.hist[min(int(-lo / self.bin_width), NUM_BINS - 1)] += zeros
            else:
                self.hist[0] = zeros
            return
        if lo >= self.hist_lo and hi <= self.hist_hi:
            return
        w = self.bin_width
        shift = max(0, math.ceil((self.hist_lo - lo) / w))  # old bins added below
        span_bins = shift + max(NUM_BINS, math.ceil((hi - self.hist_lo) / w))
        factor = max(1, math.ceil(span_bins / NUM_BINS))
        # Bin edges stay aligned: new edge j = old edge (j * factor - shift).
        # The estimate is off by float rounding at most; steps of 1 (the historical bits),
        # then doubling steps: with bins of 1e-44 and data of 1e38, adding one bin width no
        # longer changes the float sum and steps of 1 would never end.
        step, tries = 1, 0
        while (shift + NUM_BINS) > NUM_BINS * factor or \
                self.hist_lo - shift * w + NUM_BINS * factor * w < hi:
            factor += step
            tries += 1
            if tries >= 64:
                step *= 2
        new = np.zeros(NUM_BINS, np.int64)
        if shift + NUM_BINS < 2**62 and factor < 2**62:
            target = (np.arange(NUM_BINS) + shift) // factor
        else:  # a jump of many orders of magnitude (1e-40 data, then 1.0): Python integers
            target = np.array([(i + shift) // factor for i in range(NUM_BINS)], np.int64)
        np.add.at(new, np.minimum(target, NUM_BINS - 1), self.hist)
        self.hist = new
        self.hist_lo = self.hist_lo - shift * w
        self.bin_width = w * factor

    def merge(self, other: TensorStats) -> None:
        """Fold another TensorStats into this one (used when batches are observed apart)."""
        if other.count == 0:
            return
        centres = other.hist_lo + (np.arange(NUM_BINS) + 0.5) * other.bin_width
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self._grow(min(other.min, 0.0), max(other.max, 0.0))
        if self.bin_width == 0:
            self.hist[0] += other.count
        else:
            idx = np.clip(((centres - self.hist_lo) / self.bin_width).astype(np.int64), 0,
                          NUM_BINS - 1)
            np.add.at(self.hist, idx, other.hist)
        self.count += other.count
        self.nonfinite += other.nonfinite

    # ------------------------------------------------------------------ ranges
    def centres(self) -> np.ndarray:
        """Bin centres of the histogram."""
        return self.hist_lo + (np.arange(NUM_BINS) + 0.5) * self.bin_width

    def range_for(self, method: str = "minmax", percentile: float = DEFAULT_PERCENTILE
                  ) -> tuple[float, float]:
        """The real interval [lo, hi] chosen by `method` (always contains 0)."""
        if self.count == 0:
            return 0.0, 0.0
        lo, hi = min(self.min, 0.0), max(self.max, 0.0)
        if method == "minmax" or self.bin_width == 0.0 or hi == lo:
            return _at_least_min_range(lo, hi)
        if method == "percentile":
            return _at_least_min_range(*self._percentile_range(percentile))
        if method in ("mse", "entropy"):
            return _at_least_min_range(*self._search(method))
        raise ValueError(f"unknown calibration method '{method}' (known: {', '.join(METHODS)})")

    def _percentile_range(self, percentile: float) -> tuple[float, float]:
        cdf = np.cumsum(self.hist) / max(self.count, 1)
        tail = (100.0 - percentile) / 100.0
        lo_bin = int(np.searchsorted(cdf, tail, side="right"))
        hi_bin = int(np.searchsorted(cdf, 1.0 - tail, side="left"))
        lo = self.hist_lo + lo_bin * self.bin_width
        hi = self.hist_lo + (min(hi_bin, NUM_BINS - 1) + 1) * self.bin_width
        lo = max(lo, self.min)
        hi = min(hi, self.max)
        return min(lo, 0.0), max(hi, 0.0)

    def _search(self, method: str) -> tuple[float, float]:
        lo, hi = min(self.min, 0.0), max(self.max, 0.0)
        zero_bin = (0.0 - self.hist_lo) / self.bin_width  # fractional position of 0
        hist = self.hist.astype(np.float64)
        centres = self.centres()
        best, best_cost = (lo, hi), math.inf
        for t in SEARCH_FACTORS:
            if method == "entropy":
                # Candidate edges on histogram bin edges, as TensorRT's entropy calibrator.
                ia = int(np.clip(round(zero_bin * (1 - t)), 0, NUM_BINS))
                ib = int(np.clip(round(zero_bin + (NUM_BINS - zero_bin) * t), 0, NUM_BINS))
                if ib - ia < QUANT_LEVELS:
                    break
                c = _kl_cost(hist, ia, ib)
                a, b = self.hist_lo + ia * self.bin_width, self.hist_lo + ib * self.bin_width
                a, b = min(max(a, lo), 0.0), max(min(b, hi), 0.0)
            else:
                a, b = float(lo * t), float(hi * t)
                c = _mse_cost(centres, hist, a, b)
            if c < best_cost:
                best, best_cost = (a, b), c
        return best


def _at_least_min_range(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] (lo <= 0 <= hi), widened about 0 in proportion to MIN_RANGE if narrower."""
    width = hi - lo
    if width == 0.0 or width >= MIN_RANGE:
        return lo, hi
    grow = MIN_RANGE / width
    return lo * grow, hi * grow


def _fake_quant(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Quantise-dequantise `x` onto 256 levels covering [lo, hi] (zero exactly representable)."""
    step = (hi - lo) / QUANT_LEVELS
    if step <= 0:
        return np.zeros_like(x)
    zp = np.round(-lo / step)
    q = np.clip(np.round(x / step) + zp, 0, QUANT_LEVELS)
    return (q - zp) * step


def _mse_cost(centres: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> float:
    """Expected squared quantisation error over the histogram."""
    err = centres - _fake_quant(centres, lo, hi)
    return math.fsum((weights * (err * err)).tolist())  # exact sum: no BLAS order


def _kl_cost(hist: np.ndarray, ia: int, ib: int) -> float:
    """KL(P || Q) for the candidate bins [ia, ib).

    P is the histogram restricted to those bins with the mass outside folded into the edge
    bins (the clipping error); Q is built from the restricted histogram without that mass:
    255 groups of adjacent bins, each group's mass spread evenly over its non-empty bins.
    Empty bins of Q where P has mass get a small floor (TensorRT's smoothing).
    """
    sliced = hist[ia:ib]
    p = sliced.copy()
    p[0] += hist[:ia].sum()
    p[-1] += hist[ib:].sum()
    n = p.size
    group = (np.arange(n) * QUANT_LEVELS) // n
    nonzero = sliced > 0
    mass = np.bincount(group, sliced, QUANT_LEVELS)
    filled = np.bincount(group, nonzero.astype(np.float64), QUANT_LEVELS)
    q = np.where(nonzero, mass[group] / np.maximum(filled[group], 1.0), 0.0)
    total_p, total_q = p.sum(), q.sum()
    if total_p <= 0 or total_q <= 0:
        return math.inf
    keep = p > 0
    pn = p[keep] / total_p
    qn = np.maximum(q[keep] / total_q, 1e-4 / n)
    return math.fsum((pn * detmath.log(pn / qn)).tolist())
