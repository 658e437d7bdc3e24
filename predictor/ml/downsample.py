"""Downsampling series for charts: LTTB for lines, a coarser interval for candles.

A browser draws a few thousand points per series comfortably; a year of
one-minute candles is half a million. Lines are thinned with
Largest-Triangle-Three-Buckets (Steinarsson, "Downsampling Time Series for
Visual Representation", 2013, ch. 4.2), which keeps the peaks and troughs a
plain every-n-th sample drops. OHLC candles are not thinned point by point
(that would invent bars); they are resampled to the first coarser interval
that fits, see :func:`interval_for_points`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from predictor.ml.intervals import CANONICAL_INTERVALS, Interval, as_interval, parse_interval

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_POINTS = 5000


def _series(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.ndim != 1 or ys.ndim != 1 or len(xs) != len(ys):
        raise ValueError(f"x and y must be 1-D and of one length, got {xs.shape} and {ys.shape}")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ValueError("LTTB needs finite values; drop NaN and inf points first")
    return xs, ys


def lttb_indices(x: npt.ArrayLike, y: npt.ArrayLike, n_out: int) -> IntArray:
    """Positions of the ``n_out`` points LTTB keeps, ascending; all when ``len(x) <= n_out``.

    ``x`` must be sorted (times as numbers). The first and last points are kept;
    the points between are split into ``n_out - 2`` buckets of equal width in
    positions, and from each bucket the point is kept that forms the largest
    triangle with the point kept from the previous bucket and the mean of the
    next bucket.
    """
    if n_out < 3:
        raise ValueError(f"n_out must be at least 3 (first, one bucket, last), got {n_out}")
    xs, ys = _series(x, y)
    n = len(xs)
    if n <= n_out:
        return np.arange(n, dtype=np.int64)
    buckets = n_out - 2
    # Integer arithmetic: floor(k * (n - 2) / buckets) exactly, so the last bucket ends at n - 1.
    edges = (np.arange(buckets + 1, dtype=np.int64) * (n - 2)) // buckets + 1
    starts, ends = edges[:-1], edges[1:]
    # The "third point" of bucket k is the mean of bucket k + 1; after the last bucket, the
    # last point. These ranges tile [starts[1], n), so one reduceat gives every sum.
    next_starts = np.r_[starts[1:], n - 1]
    counts = np.diff(np.r_[next_starts, n]).astype(np.float64)
    mean_x = np.add.reduceat(xs, next_starts) / counts
    mean_y = np.add.reduceat(ys, next_starts) / counts
    # Buckets as rows of a padded matrix; the padding repeats a bucket's last point, after
    # it, so argmax (first maximum) never lands on padding.
    width = int((ends - starts).max())
    rows = np.minimum(starts[:, None] + np.arange(width)[None, :], (ends - 1)[:, None])
    bucket_x, bucket_y = xs[rows], ys[rows]
    kept = np.empty(n_out, dtype=np.int64)
    kept[0], kept[-1] = 0, n - 1
    a = 0
    # Each bucket's choice depends on the previous one, so the buckets are walked in
    # order: a loop over output points (at most a few thousand), each step vectorised.
    for k in range(buckets):
        ax, ay = xs[a], ys[a]
        area = np.abs((ax - mean_x[k]) * (bucket_y[k] - ay) - (ax - bucket_x[k]) * (mean_y[k] - ay))
        a = int(rows[k, int(np.argmax(area))])
        kept[k + 1] = a
    return kept


def lttb(
    x: npt.ArrayLike, y: npt.ArrayLike, n_out: int = MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """The points LTTB keeps, as ``(x, y)``."""
    xs, ys = _series(x, y)
    kept = lttb_indices(xs, ys, n_out)
    return xs[kept], ys[kept]


def interval_for_points(
    span_seconds: float,
    interval: Interval | str,
    max_points: int = MAX_POINTS,
    candidates: Iterable[str] = CANONICAL_INTERVALS,
) -> Interval:
    """The finest interval, ``interval`` or a coarser multiple of it, giving at most
    ``max_points`` bars over ``span_seconds``; the coarsest candidate if none does."""
    base = as_interval(interval)
    if max_points < 1:
        raise ValueError(f"max_points must be positive, got {max_points}")
    options = sorted(
        {base.seconds}
        | {
            parse_interval(code).seconds
            for code in candidates
            if parse_interval(code).seconds % base.seconds == 0
        }
    )
    for seconds in options:
        if np.ceil(span_seconds / seconds) <= max_points:
            return Interval(seconds)
    return Interval(options[-1])
