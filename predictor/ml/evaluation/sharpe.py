"""Significance of a strategy's returns: PSR, DSR, and White / Hansen across strategies.

Bailey & López de Prado's Probabilistic (2012) and Deflated (2014) Sharpe
ratios are hand-written (no kept library has them) and tested against the
DSR paper's numerical example; the Reality Check / SPA is ``arch.bootstrap.SPA``.

Per-bar strategy returns do not overlap (each bar is counted once, however
long a position is held) and are a martingale difference when the market is
one, whatever the holding period. A market whose returns are autocorrelated
makes them autocorrelated too, and the i.i.d. PSR then rejects a true Sharpe of
0 about twice as often as it should (10 % at nominal 5 % in an AR(0.2) market).
So the sample size in PSR and DSR is the effective one, n * g0 / LRV, with a
Bartlett long-run variance at the larger of the Newey-West (1994) automatic lag
and the holding period (a position held h bars carries any market
autocorrelation across h bars); it is never taken above n.

The variance of the Sharpe estimate is evaluated at the benchmark, the value
H0 puts on the boundary, not at the estimate as Bailey & López de Prado write
it: with the estimate, a lucky fat-tailed outlier raises the sample skewness
together with the Sharpe ratio and shrinks its own standard error, and the PSR
rejected a true Sharpe of 0 in 6.8 % of cases at nominal 5 % (t(3) returns,
AR(0.2) market, h = 15). Against a benchmark of 0 the PSR is then the HAC
t-test of the mean return. ``psr_from_moments`` offers both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from arch.bootstrap import SPA
from scipy import stats as sps
from scipy.special import ndtr

from predictor.ml.evaluation._common import FloatArray, ToDict, as_float_array, fmt_p
from predictor.ml.evaluation.overlap import autocovariances, check_horizon, newey_west_variance

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True, slots=True)
class SharpeTest(ToDict):
    """PSR / DSR: probability that the true Sharpe exceeds ``benchmark_sharpe``."""

    name: str
    sharpe: float  # per bar, not annualised
    benchmark_sharpe: float  # per bar; for the DSR, the expected best of N noise trials
    statistic: float  # the z inside the normal CDF
    probability: float  # PSR or DSR itself
    p_value: float  # 1 - probability
    n: int
    skew: float
    kurtosis: float  # non-excess: 3 for a normal distribution
    n_trials: int
    trial_sharpe_variance: float
    alpha: float
    significant: bool
    sentence: str
    effective_n: int  # n * g0 / LRV of the returns, at most n
    lags: int  # of the Bartlett long-run variance behind effective_n


@dataclass(frozen=True, slots=True)
class RealityCheck(ToDict):
    """White's Reality Check and Hansen's SPA: does any model beat the benchmark?"""

    statistic: float  # max over models of mean(benchmark loss - model loss)
    p_value: float  # Hansen SPA (consistent)
    reality_check_p_value: float  # White (upper)
    lower_p_value: float
    n: int
    n_models: int
    reps: int
    block_size: int
    seed: int
    alpha: float
    significant: bool
    sentence: str


def psr_from_moments(
    sharpe: float,
    n: int,
    skew: float,
    kurtosis: float,
    benchmark_sharpe: float,
    *,
    variance_at: Literal["estimate", "benchmark"] = "estimate",
) -> tuple[float, float]:
    """(z, PSR) of Bailey & López de Prado (2012), all Sharpe ratios per period.

    z = (SR - SR*) sqrt(n - 1) / sqrt(1 - skew S + (kurtosis - 1)/4 S^2), PSR = Phi(z),
    with S = SR as the paper writes it (``variance_at="estimate"``) or S = SR*,
    the null's value (``"benchmark"``, what the tests here use).
    """
    if variance_at not in ("estimate", "benchmark"):
        raise ValueError(f"variance_at must be 'estimate' or 'benchmark', got {variance_at!r}")
    at = sharpe if variance_at == "estimate" else benchmark_sharpe
    scale = 1.0 - skew * at + (kurtosis - 1.0) / 4.0 * at**2
    if n < 2 or not scale > 0 or not math.isfinite(sharpe):
        return np.nan, np.nan
    z = (sharpe - benchmark_sharpe) * math.sqrt(n - 1) / math.sqrt(scale)
    return z, float(ndtr(z))


def expected_max_sharpe(n_trials: int, trial_sharpe_variance: float) -> float:
    """SR*_0 of Bailey & López de Prado (2014): the expected best of N noise trials.

    sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))); 0 for N = 1.
    """
    if n_trials <= 1:
        return 0.0
    quantiles = (1 - EULER_GAMMA) * sps.norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * sps.norm.ppf(
        1 - 1 / (n_trials * math.e)
    )
    return math.sqrt(trial_sharpe_variance) * float(quantiles)


def automatic_lags(n: int) -> int:
    """Newey & West (1994): floor(4 (n / 100)^(2/9)); 7 lags at n = 2,000."""
    return int(4 * (n / 100) ** (2 / 9)) if n > 1 else 0


def effective_sample_size(returns: FloatArray, lags: int) -> int:
    """n * g0 / LRV (Bartlett, ``lags``), clipped to [1, n]: what the Sharpe estimate rests on."""
    n = len(returns)
    if n < 2:
        return n
    variance = float(autocovariances(returns, 0)[0])
    long_run = newey_west_variance(returns, lags)
    if not (variance > 0 and long_run > 0):
        return n
    return max(1, min(n, round(n * variance / long_run)))


def _moments(
    returns: npt.ArrayLike, horizon: int, lags: int | None
) -> tuple[int, int, int, float, float, float]:
    r = as_float_array(returns, "returns")
    r = r[np.isfinite(r)]
    n = len(r)
    horizon = check_horizon(horizon)
    lags = max(automatic_lags(n), horizon) if lags is None else lags
    if lags < 0:
        raise ValueError(f"lags must be >= 0, got {lags}")
    spread = float(r.std(ddof=1)) if n > 1 else 0.0
    if spread == 0:
        return n, n, lags, np.nan, np.nan, np.nan
    # the biased moment ratios of scipy.stats.skew / kurtosis(fisher=False), without
    # their per-call overhead (a millisecond each: the calibration runs thousands)
    centred = r - r.mean()
    squared = centred * centred
    m2 = float(squared.mean())
    skew = float(np.dot(squared, centred)) / n / m2**1.5
    kurtosis = float(np.dot(squared, squared)) / n / m2**2
    return n, effective_sample_size(r, lags), lags, float(r.mean()) / spread, skew, kurtosis


def _sample(n: int, n_eff: int, lags: int) -> str:
    if n_eff >= n:
        return f"{n:,} bars"
    return f"n_eff ≈ {n_eff:,} of {n:,} autocorrelated bars, Bartlett {lags} lags"


def probabilistic_sharpe_ratio(
    returns: npt.ArrayLike,
    benchmark_sharpe: float = 0.0,
    alpha: float = 0.05,
    *,
    horizon: int = 1,
    lags: int | None = None,
) -> SharpeTest:
    """Probability that the true per-bar Sharpe exceeds ``benchmark_sharpe`` (PSR).

    ``horizon``: the bars a position is held. ``lags`` of the long-run variance
    behind the effective sample size; None takes max(Newey-West automatic, h).
    """
    n, n_eff, lags, sharpe, skew, kurtosis = _moments(returns, horizon, lags)
    z, psr = psr_from_moments(
        sharpe, n_eff, skew, kurtosis, benchmark_sharpe, variance_at="benchmark"
    )
    significant = bool(psr > 1 - alpha)
    sentence = (
        f"The true Sharpe ratio is above {benchmark_sharpe:g} with probability "
        f"{psr * 100:.1f} % (PSR over {_sample(n, n_eff, lags)}); "
        f"{'significant' if significant else 'not significant'} at the {alpha * 100:g} % level."
        if math.isfinite(psr)
        else "PSR undefined: the returns do not vary (no trades, or constant returns)."
    )
    return SharpeTest(
        name="probabilistic Sharpe ratio",
        sharpe=sharpe,
        benchmark_sharpe=benchmark_sharpe,
        statistic=z,
        probability=psr,
        p_value=1 - psr,
        n=n,
        skew=skew,
        kurtosis=kurtosis,
        n_trials=1,
        trial_sharpe_variance=0.0,
        alpha=alpha,
        significant=significant,
        sentence=sentence,
        effective_n=n_eff,
        lags=lags,
    )


def deflated_sharpe_ratio(
    returns: npt.ArrayLike,
    *,
    n_trials: int,
    trial_sharpe_variance: float | None = None,
    alpha: float = 0.05,
    horizon: int = 1,
    lags: int | None = None,
) -> SharpeTest:
    """PSR against the expected best Sharpe of ``n_trials`` noise trials (DSR).

    ``n_trials`` is the number of evaluation sessions already run on the market
    (the application counts them); ``trial_sharpe_variance`` is the variance of
    their per-bar Sharpe ratios. If it is not known, 1/(n_eff - 1) is used: the
    spread of Sharpe estimates of strategies with no edge. ``horizon`` and
    ``lags`` as in ``probabilistic_sharpe_ratio``. Against independent
    no-edge trials the DSR is conservative by construction (it compares the
    best Sharpe with the *expected* best, then asks for 95 % on top): its
    measured size is about 1 % at nominal 5 % (``docs/evaluation.md``).
    """
    n, n_eff, lags, sharpe, skew, kurtosis = _moments(returns, horizon, lags)
    if n_trials < 1:
        raise ValueError("n_trials counts this session too, so it is at least 1")
    variance = trial_sharpe_variance if trial_sharpe_variance is not None else 1 / max(n_eff - 1, 1)
    benchmark = expected_max_sharpe(n_trials, variance)
    z, dsr = psr_from_moments(sharpe, n_eff, skew, kurtosis, benchmark, variance_at="benchmark")
    significant = bool(dsr > 1 - alpha)
    verdict = "significant" if significant else "not significant"
    source = "given" if trial_sharpe_variance is not None else "assumed 1/(n_eff-1), no-edge trials"
    sentence = (
        f"Allowing for {n_trials} configuration(s) tried on this market and target (trial Sharpe "
        f"variance "
        f"{source}), the true Sharpe beats the best of that many no-edge trials with "
        f"probability {dsr * 100:.1f} % (DSR over {_sample(n, n_eff, lags)}); {verdict} at the "
        f"{alpha * 100:g} % level."
        if math.isfinite(dsr)
        else "DSR undefined: the returns do not vary (no trades, or constant returns)."
    )
    return SharpeTest(
        name="deflated Sharpe ratio",
        sharpe=sharpe,
        benchmark_sharpe=benchmark,
        statistic=z,
        probability=dsr,
        p_value=1 - dsr,
        n=n,
        skew=skew,
        kurtosis=kurtosis,
        n_trials=n_trials,
        trial_sharpe_variance=variance,
        alpha=alpha,
        significant=significant,
        sentence=sentence,
        effective_n=n_eff,
        lags=lags,
    )


def reality_check(
    benchmark_losses: npt.ArrayLike,
    model_losses: npt.ArrayLike,
    *,
    reps: int = 1000,
    block_size: int | None = None,
    horizon: int = 1,
    seed: int = 0,
    alpha: float = 0.05,
) -> RealityCheck:
    """White's Reality Check and Hansen's SPA (``arch.bootstrap.SPA``), seeded.

    ``model_losses`` is (n, k): one column per strategy or session. H0: no model
    has lower expected loss than the benchmark. Bootstrap-based, so slow: keep
    it out of per-request paths.

    ``horizon``: the bars each loss spans (an ``h``-bar forecast or holding). Losses
    ``h`` bars apart share returns, so the stationary bootstrap's mean block is at
    least ``4h`` bars. Measured at the least favourable null (5 models, 5 % level,
    200 draws): with the ``n^(1/3)`` rule alone, ``h = 15`` and ``n = 1000`` rejected
    17.5 % of the time; with ``4h`` blocks 10.5 % (``n = 1000``) and 6 % (``n = 3000``;
    ``2h`` blocks: 9 %). Small samples of long horizons stay somewhat oversized; see
    ``tests/ml/evaluation/test_reality_check_size.py`` and docs/benchmarks.md.
    """
    if horizon < 1:
        raise ValueError("horizon is at least 1 bar")
    bench = as_float_array(benchmark_losses, "benchmark_losses")
    models = np.asarray(model_losses, dtype=np.float64)
    if models.ndim == 1:
        models = models[:, None]
    if models.shape[0] != len(bench):
        raise ValueError("benchmark_losses and model_losses must have the same number of rows")
    block = block_size or max(1, round(len(bench) ** (1 / 3)), 4 * horizon)
    spa = SPA(bench, models, block_size=block, reps=reps, seed=seed)
    spa.compute()
    pvalues = spa.pvalues
    consistent = float(pvalues["consistent"])
    significant = bool(consistent < alpha)
    verdict = "At least one" if significant else "None"
    sentence = (
        f"{verdict} of the {models.shape[1]} strategies beats the benchmark after allowing for "
        f"the search across them at the {alpha * 100:g} % level (Hansen SPA {fmt_p(consistent)}, "
        f"White Reality Check {fmt_p(float(pvalues['upper']))})."
    )
    return RealityCheck(
        statistic=float(np.max(bench.mean() - models.mean(axis=0))),
        p_value=consistent,
        reality_check_p_value=float(pvalues["upper"]),
        lower_p_value=float(pvalues["lower"]),
        n=len(bench),
        n_models=models.shape[1],
        reps=reps,
        block_size=block,
        seed=seed,
        alpha=alpha,
        significant=significant,
        sentence=sentence,
    )
