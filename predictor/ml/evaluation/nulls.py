"""Seeded no-skill worlds for measuring the size of the significance tests.

Each generator returns ``reps`` independent rows at once (vectorised across
repetitions); a test then runs on each row as a report would. A forecast is
made at every bar ``t`` for the move from ``t`` to ``t + horizon``, so the
targets overlap exactly as they do in ``EvaluationInputs``. Used by the
calibration tests and by ``bench/calibration.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import lfilter

from predictor.ml.evaluation._common import FloatArray

Pair = tuple[FloatArray, FloatArray]
AR_COEFFICIENT = 0.95
T_DEGREES = 3  # Student t(3): finite variance, infinite fourth moment


def _walk(increments: FloatArray, horizon: int) -> tuple[FloatArray, FloatArray]:
    """(past h-bar move, next h-bar move) at each bar of a random walk."""
    path = np.cumsum(increments, axis=1)
    past = path[:, horizon:-horizon] - path[:, : -2 * horizon]
    future = path[:, 2 * horizon :] - path[:, horizon:-horizon]
    return past, future


def ar1(shocks: FloatArray, coefficient: float = AR_COEFFICIENT) -> FloatArray:
    """x_t = coefficient x_{t-1} + e_t along each row."""
    return np.asarray(lfilter([1.0], [1.0, -coefficient], shocks, axis=1), dtype=np.float64)


def persistence_on_random_walk(rng: np.random.Generator, reps: int, n: int, horizon: int) -> Pair:
    """Gaussian random walk; the forecast is the last h-bar move (no skill, but overlapping)."""
    return _walk(rng.normal(size=(reps, n + 2 * horizon)), horizon)


def noise_on_random_walk(rng: np.random.Generator, reps: int, n: int, horizon: int) -> Pair:
    """Gaussian random walk; the forecast is independent white noise."""
    _, future = _walk(rng.normal(size=(reps, n + 2 * horizon)), horizon)
    return rng.normal(size=future.shape), future


def autocorrelated_on_random_walk(
    rng: np.random.Generator, reps: int, n: int, horizon: int
) -> Pair:
    """Gaussian random walk; the forecast is an independent AR(0.95): slow-moving calls."""
    _, future = _walk(rng.normal(size=(reps, n + 2 * horizon)), horizon)
    return ar1(rng.normal(size=future.shape)), future


def persistence_fat_tailed(rng: np.random.Generator, reps: int, n: int, horizon: int) -> Pair:
    """Random walk with Student t(3) bar returns; the forecast is the last h-bar move."""
    return _walk(rng.standard_t(T_DEGREES, size=(reps, n + 2 * horizon)), horizon)


HIT_NULLS: dict[str, Callable[[np.random.Generator, int, int, int], Pair]] = {
    "random walk, persistence forecast": persistence_on_random_walk,
    "random walk, noise forecast": noise_on_random_walk,
    "random walk, AR(0.95) forecast": autocorrelated_on_random_walk,
    "t(3) returns, persistence forecast": persistence_fat_tailed,
}


def planted_edge(rng: np.random.Generator, reps: int, n: int, horizon: int, edge: float) -> Pair:
    """Random walk; the forecast is the next h-bar move plus noise (correlation ``edge``)."""
    _, future = _walk(rng.normal(size=(reps, n + 2 * horizon)), horizon)
    scale = np.sqrt(horizon * (1.0 - edge**2)) / edge
    return future + scale * rng.normal(size=future.shape), future


def _overlapping_errors(shocks: FloatArray, horizon: int) -> FloatArray:
    """MA(h - 1) errors: the sum of the h shocks a target spans."""
    kernel = np.ones(horizon)
    return np.asarray(lfilter(kernel, [1.0], shocks, axis=1)[:, horizon - 1 :], dtype=np.float64)


def dm_independent_errors(rng: np.random.Generator, reps: int, n: int, horizon: int) -> Pair:
    """Model and benchmark errors: independent MA(h - 1) with equal variance."""
    shocks = rng.normal(size=(2, reps, n + horizon - 1))
    return _overlapping_errors(shocks[0], horizon), _overlapping_errors(shocks[1], horizon)


def dm_fat_tailed_errors(rng: np.random.Generator, reps: int, n: int, horizon: int) -> Pair:
    """As ``dm_independent_errors`` with Student t(3) shocks."""
    shocks = rng.standard_t(T_DEGREES, size=(2, reps, n + horizon - 1))
    return _overlapping_errors(shocks[0], horizon), _overlapping_errors(shocks[1], horizon)


def dm_common_target(rng: np.random.Generator, reps: int, n: int, horizon: int) -> Pair:
    """Two independent AR(0.95) no-skill forecasts of the same overlapping h-bar moves."""
    _, future = _walk(rng.normal(size=(reps, n + 2 * horizon)), horizon)
    scale = np.sqrt(horizon * (1.0 - AR_COEFFICIENT**2))  # each forecast as wide as the move
    first = scale * ar1(rng.normal(size=future.shape))
    second = scale * ar1(rng.normal(size=future.shape))
    return future - first, future - second


DM_NULLS: dict[str, Callable[[np.random.Generator, int, int, int], Pair]] = {
    "independent MA(h-1) errors": dm_independent_errors,
    "t(3) MA(h-1) errors": dm_fat_tailed_errors,
    "two AR(0.95) forecasts, one target": dm_common_target,
}


def no_skill_strategy_returns(
    rng: np.random.Generator, reps: int, n: int, horizon: int, market_ar: float = 0.0
) -> FloatArray:
    """Per-bar returns of trading a signal that knows nothing, held h bars (overlapping sleeves).

    The position is the mean of the last h signs of an AR(0.95) signal; bar
    returns are Student t(3), AR(``market_ar``) when that is non-zero (a market
    with momentum). No costs, so the true Sharpe ratio is exactly 0.
    """
    signal = np.sign(ar1(rng.normal(size=(reps, n + horizon))))
    position = np.asarray(
        lfilter(np.ones(horizon) / horizon, [1.0], signal, axis=1)[:, horizon:], dtype=np.float64
    )
    returns = rng.standard_t(T_DEGREES, size=(reps, n))
    if market_ar:
        returns = ar1(returns, market_ar)
    return position * returns
