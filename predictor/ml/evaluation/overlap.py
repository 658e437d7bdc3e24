"""Long-run variances and mean tests for series of overlapping h-bar forecasts.

A forecast made every bar for a target ``h`` bars ahead shares ``h - 1`` bars
with its neighbour, so its hits, losses and sign products form (at least) an
MA(h - 1) process: their sample mean varies up to ``h`` times more than an
independent sample's. ``hac_mean_test`` divides by the unweighted long-run
variance ``g0 + 2 (g1 + ... + g_{h-1})`` that is exact for an MA(h - 1)
(Hansen-Hodrick; the one Diebold-Mariano and Harvey-Leybourne-Newbold assume),
applies the HLN small-sample factor, and reads the p-value from Student t with
``n // h - 1`` degrees of freedom: the number of non-overlapping calls is what
the data really hold. Bartlett weights at ``h - 1`` lags would shrink the
autocovariances of an overlap (weights 1 - k/h against correlations 1 - k/h)
and reject far too often; they are only the fallback when the unweighted sum
is not positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr

from predictor.ml.evaluation._common import FloatArray

UNWEIGHTED = "unweighted long-run variance (h - 1 lags)"
FFT_FROM_LAGS = 12
BARTLETT_FALLBACK = "Bartlett long-run variance (h - 1 lags; the unweighted sum was not positive)"


@dataclass(frozen=True, slots=True)
class MeanTest:
    """A one-sided HAC t-test of ``mean(x) > mu0`` (``statistic`` < 0 favours "less")."""

    statistic: float
    p_value: float  # P(T >= statistic) under H0
    effective_n: int
    method: str


def check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon must be a whole number of bars >= 1, got {horizon!r}")
    return int(horizon)


def effective_n(n: int, horizon: int) -> int:
    """Non-overlapping h-bar calls among ``n`` overlapping ones (at least 1 when n > 0)."""
    return max(n // horizon, 1) if n else 0


def autocovariances(x: FloatArray, lags: int) -> FloatArray:
    """g_0 .. g_lags of ``x`` about its mean, each divided by n (so the matrix is PSD)."""
    n = len(x)
    centred = x - x.mean()
    out = np.zeros(lags + 1)
    top = min(lags, n - 1)
    if top > FFT_FROM_LAGS:  # all lags at once: O(n log n) instead of one pass per lag
        size = 1 << (2 * n - 1).bit_length()
        spectrum = np.fft.rfft(centred, size)
        out[: top + 1] = np.fft.irfft(spectrum * np.conj(spectrum), size)[: top + 1] / n
        return out
    for lag in range(top + 1):
        out[lag] = float(np.einsum("i,i->", centred[lag:], centred[: n - lag])) / n
    return out


def newey_west_variance(x: FloatArray, lags: int) -> float:
    """Long-run variance of ``x`` with Bartlett weights 1 - k/(lags + 1).

    Equals ``statsmodels.stats.sandwich_covariance.S_hac_simple(x - mean, lags) / n``
    (a test checks it); written with einsum because the BLAS products that
    statsmodels uses stall when other processes load a two-core machine.
    """
    gamma = autocovariances(x, lags)
    weights = 1.0 - np.arange(lags + 1) / (lags + 1.0)
    return float(gamma[0] + 2.0 * np.dot(weights[1:], gamma[1:]))


def long_run_variance(x: FloatArray, horizon: int) -> tuple[float, str]:
    """(g0 + 2 sum_{k<h} g_k, method), or the Bartlett value when that is not positive."""
    gamma = autocovariances(x, horizon - 1)
    unweighted = float(gamma[0] + 2.0 * gamma[1:].sum())
    if unweighted > 0:
        return unweighted, UNWEIGHTED
    return newey_west_variance(x, horizon - 1), BARTLETT_FALLBACK


def hln_factor(n: int, horizon: int) -> float:
    """Harvey, Leybourne & Newbold (1997): sqrt((n + 1 - 2h + h(h - 1)/n) / n)."""
    return math.sqrt(max(n + 1 - 2 * horizon + horizon * (horizon - 1) / n, 0.0) / n)


def hac_mean_test(x: FloatArray, mu0: float, horizon: int, *, shift: float = 0.0) -> MeanTest:
    """t = (mean(x) + shift - mu0) / sqrt(LRV / n) * HLN, against t(n // h - 1).

    ``shift`` lets a caller remove a known finite-sample bias of ``mean(x)``.
    NaN when there are too few calls (n <= 2h) or no variation at all.
    """
    n = len(x)
    n_eff = effective_n(n, horizon)
    if n <= 2 * horizon or n_eff < 2:
        return MeanTest(np.nan, np.nan, n_eff, UNWEIGHTED)
    variance, method = long_run_variance(x, horizon)
    distance = float(x.mean()) + shift - mu0
    if not variance > 0:  # a constant series: the sign of the distance decides
        statistic = math.copysign(math.inf, distance) if distance else np.nan
        p_value = (0.0 if distance > 0 else 1.0) if distance else np.nan
        return MeanTest(statistic, p_value, n_eff, method)
    statistic = distance / math.sqrt(variance / n) * hln_factor(n, horizon)
    p_value = float(stdtr(n_eff - 1, -statistic))  # P(T >= t): scipy.stats.t.sf, minus overhead
    return MeanTest(statistic, p_value, n_eff, method)


def subsample(valid: np.ndarray, horizon: int) -> tuple[np.ndarray, int]:
    """Rows start, start + h, start + 2h, ... that are valid, and start (-1 if none).

    ``start`` is the first valid row; a grid row that is invalid (a NaN, a zero
    move) is skipped, not replaced by its neighbour, so no two kept h-bar
    targets overlap.
    """
    rows = np.flatnonzero(valid)
    if not len(rows):
        return rows, -1
    start = int(rows[0])
    grid = np.arange(start, len(valid), horizon)
    return grid[valid[grid]], start
