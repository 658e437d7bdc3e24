"""Significance tests of forecasts and strategies, each with a plain sentence.

Libraries do the work wherever one has the test: scipy (t-test, binomial test,
distributions) and arch (SPA / Reality Check). Hand-written, and tested against
published numbers or statsmodels: the Pesaran-Timmermann statistic, the
Diebold-Mariano statistic with the Harvey-Leybourne-Newbold factor and its
Newey-West variance, and (in ``sharpe``, re-exported here) the Probabilistic /
Deflated Sharpe Ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from predictor.ml.evaluation._common import FloatArray, ToDict, as_float_array, fmt_p, same_length
from predictor.ml.evaluation.metrics import hit_series
from predictor.ml.evaluation.sharpe import (
    RealityCheck,
    SharpeTest,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    reality_check,
)

__all__ = [
    "DieboldMariano",
    "HitRateTest",
    "PesaranTimmermann",
    "RealityCheck",
    "SharpeTest",
    "binomial_hit_test",
    "deflated_sharpe_ratio",
    "diebold_mariano",
    "expected_max_sharpe",
    "hit_rate_t_test",
    "newey_west_variance",
    "pesaran_timmermann",
    "pesaran_timmermann_statistic",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "reality_check",
]

Loss = Literal["squared", "absolute"]


@dataclass(frozen=True, slots=True)
class HitRateTest(ToDict):
    """H0: the hit rate is 0.5 (a coin flip); H1: it is greater (one-sided)."""

    name: str
    statistic: float
    p_value: float
    n: int
    hits: int
    hit_rate: float
    alpha: float
    significant: bool
    sentence: str


@dataclass(frozen=True, slots=True)
class PesaranTimmermann(ToDict):
    """H0: predicted and realised directions are independent; H1: positive association."""

    statistic: float
    p_value: float
    n: int
    accuracy: float
    expected_accuracy: float  # under independence, from the two up-rates
    share_up_realised: float
    share_up_predicted: float
    alpha: float
    significant: bool
    sentence: str


@dataclass(frozen=True, slots=True)
class DieboldMariano(ToDict):
    """H0: equal expected loss; H1: the model's loss is lower (one-sided)."""

    benchmark: str
    loss: Loss
    statistic: float  # HLN-corrected, compared with Student t(n - 1)
    p_value: float
    n: int
    horizon: int
    mean_loss_model: float
    mean_loss_benchmark: float
    alpha: float
    significant: bool
    sentence: str


def hit_rate_t_test(
    predicted_return: npt.ArrayLike, realised_return: npt.ArrayLike, alpha: float = 0.05
) -> HitRateTest:
    """The original tool's test, done right: one-sample t-test of hits against 0.5.

    One-sided (``alternative='greater'``) and the p-value is used as scipy gives
    it; the original halved an already one-sided value.
    """
    hits = hit_series(predicted_return, realised_return)
    n = len(hits)
    rate = float(hits.mean()) if n else np.nan
    if n < 2:
        statistic, p_value = np.nan, np.nan
    elif hits.min() == hits.max():  # zero variance: t is ±inf, scipy would warn and give NaN
        statistic = math.inf if rate > 0.5 else -math.inf
        p_value = 0.0 if rate > 0.5 else 1.0
    else:
        result = sps.ttest_1samp(hits, 0.5, alternative="greater")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    significant = bool(p_value < alpha)
    verdict = "Better" if significant else "Not better"
    sentence = (
        f"{verdict} than a coin flip at the {alpha * 100:g} % level "
        f"(hit rate {rate * 100:.1f} % over {n} calls, one-sided t-test, {fmt_p(p_value)})."
    )
    return HitRateTest(
        "t-test of hits vs 0.5", statistic, p_value, n, int(hits.sum()), rate, alpha,
        significant, sentence,
    )  # fmt: skip


def binomial_hit_test(
    predicted_return: npt.ArrayLike, realised_return: npt.ArrayLike, alpha: float = 0.05
) -> HitRateTest:
    """Exact binomial test of the number of hits against p = 0.5, one-sided."""
    hits = hit_series(predicted_return, realised_return)
    n, k = len(hits), int(hits.sum())
    p_value = float(sps.binomtest(k, n, 0.5, alternative="greater").pvalue) if n else np.nan
    rate = k / n if n else np.nan
    significant = bool(p_value < alpha)
    verdict = "Better" if significant else "Not better"
    sentence = (
        f"{verdict} than a coin flip at the {alpha * 100:g} % level "
        f"({k} of {n} directions right, exact binomial test, {fmt_p(p_value)})."
    )
    return HitRateTest(
        "exact binomial test", float(k), p_value, n, k, rate, alpha, significant, sentence
    )


def pesaran_timmermann_statistic(
    predicted_up: npt.NDArray[np.bool_], realised_up: npt.NDArray[np.bool_]
) -> tuple[float, float, float]:
    """(S_n, P_hat, P_star) of Pesaran & Timmermann (1992, JBES 10(4), eq. 5-8).

    S_n = (P - P*) / sqrt(V(P) - V(P*)) with P the share of correct signs,
    P* = Py Px + (1 - Py)(1 - Px), V(P) = P*(1 - P*)/n and
    V(P*) = (2Py - 1)^2 Px(1 - Px)/n + (2Px - 1)^2 Py(1 - Py)/n
            + 4 Py Px (1 - Py)(1 - Px)/n^2.
    Undefined (NaN) when either series never changes sign.
    """
    n = len(realised_up)
    if n == 0:
        return np.nan, np.nan, np.nan
    p_y, p_x = float(realised_up.mean()), float(predicted_up.mean())
    p_hat = float(np.mean(predicted_up == realised_up))
    p_star = p_y * p_x + (1 - p_y) * (1 - p_x)
    var_p = p_star * (1 - p_star) / n
    var_p_star = (
        (2 * p_y - 1) ** 2 * p_x * (1 - p_x) / n
        + (2 * p_x - 1) ** 2 * p_y * (1 - p_y) / n
        + 4 * p_y * p_x * (1 - p_y) * (1 - p_x) / n**2
    )
    denominator = var_p - var_p_star
    if not (0 < p_x < 1 and 0 < p_y < 1) or denominator <= 0:
        return np.nan, p_hat, p_star
    return (p_hat - p_star) / math.sqrt(denominator), p_hat, p_star


def pesaran_timmermann(
    predicted_return: npt.ArrayLike, realised_return: npt.ArrayLike, alpha: float = 0.05
) -> PesaranTimmermann:
    """Directional skill beyond the market's own up/down rate (one-sided, N(0, 1)).

    Rows with a NaN, a zero realised move or a zero forecast (no call) are left out.
    """
    f = as_float_array(predicted_return, "predicted_return")
    y = as_float_array(realised_return, "realised_return")
    same_length(predicted_return=f, realised_return=y)
    keep = np.isfinite(f) & np.isfinite(y) & (y != 0) & (f != 0)
    predicted_up, realised_up = f[keep] > 0, y[keep] > 0
    statistic, p_hat, p_star = pesaran_timmermann_statistic(predicted_up, realised_up)
    n = int(keep.sum())
    p_value = float(sps.norm.sf(statistic)) if math.isfinite(statistic) else np.nan
    significant = bool(p_value < alpha)
    if not math.isfinite(statistic):
        sentence = (
            "No directional skill can be shown: the forecast (or the market) never changes "
            "direction, so the Pesaran-Timmermann test is undefined; treated as not significant."
        )
    else:
        verdict = "Directional skill" if significant else "No directional skill"
        sentence = (
            f"{verdict} beyond the market's own up/down rate at the {alpha * 100:g} % level "
            f"(accuracy {p_hat * 100:.1f} % vs {p_star * 100:.1f} % expected by chance, "
            f"PT = {statistic:.2f}, {fmt_p(p_value)})."
        )
    share_y = float(realised_up.mean()) if n else np.nan
    share_x = float(predicted_up.mean()) if n else np.nan
    return PesaranTimmermann(
        statistic, p_value, n, p_hat, p_star, share_y, share_x, alpha, significant, sentence
    )


def _loss(errors: FloatArray, loss: Loss) -> FloatArray:
    if loss == "squared":
        return errors * errors
    if loss == "absolute":
        return np.abs(errors)
    raise ValueError(f"loss must be 'squared' or 'absolute', got {loss!r}")


def newey_west_variance(x: FloatArray, lags: int) -> float:
    """Long-run variance of ``x`` with Bartlett weights 1 - k/(lags + 1).

    Equals ``statsmodels.stats.sandwich_covariance.S_hac_simple(x - mean, lags) / n``
    (a test checks it); written with einsum because the BLAS products that
    statsmodels uses stall when other processes load a two-core machine.
    """
    n = len(x)
    centred = x - x.mean()
    total = float(np.einsum("i,i->", centred, centred))
    for lag in range(1, min(lags, n - 1) + 1):  # one step per lag, h - 1 in all
        weight = 1.0 - lag / (lags + 1.0)
        total += 2.0 * weight * float(np.einsum("i,i->", centred[lag:], centred[:-lag]))
    return total / n


def diebold_mariano(
    model_errors: npt.ArrayLike,
    benchmark_errors: npt.ArrayLike,
    *,
    horizon: int,
    loss: Loss = "squared",
    benchmark: str = "benchmark",
    alpha: float = 0.05,
) -> DieboldMariano:
    """Diebold-Mariano (1995) with the Harvey-Leybourne-Newbold (1997) correction.

    d_t = L(model) - L(benchmark). Its long-run variance is Newey-West (Bartlett,
    lag h - 1) because h-step forecasts made every bar overlap. The
    statistic is multiplied by sqrt((n + 1 - 2h + h(h - 1)/n) / n) and compared
    with Student t(n - 1); H1 is "the model's loss is lower".
    """
    model = as_float_array(model_errors, "model_errors")
    bench = as_float_array(benchmark_errors, "benchmark_errors")
    same_length(model_errors=model, benchmark_errors=bench)
    keep = np.isfinite(model) & np.isfinite(bench)
    model_loss, bench_loss = _loss(model[keep], loss), _loss(bench[keep], loss)
    d = model_loss - bench_loss
    n = len(d)
    statistic, p_value = np.nan, np.nan
    if n > 2 * horizon:
        d_bar = float(d.mean())
        long_run_variance = newey_west_variance(d, horizon - 1)
        if long_run_variance > 0:
            dm = d_bar / math.sqrt(long_run_variance / n)
            hln = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
            statistic = dm * hln
            p_value = float(sps.t.cdf(statistic, df=n - 1))
    significant = bool(p_value < alpha)
    verdict = "More accurate" if significant else "Not more accurate"
    sentence = (
        f"{verdict} than the {benchmark.replace('_', '-')} forecast at the {alpha * 100:g} % "
        f"level ({loss} loss, Diebold-Mariano with HLN correction, "
        f"DM = {statistic:.2f}, {fmt_p(p_value)})."
    )
    return DieboldMariano(
        benchmark, loss, statistic, p_value, n, horizon,
        float(model_loss.mean()) if n else np.nan, float(bench_loss.mean()) if n else np.nan,
        alpha, significant, sentence,
    )  # fmt: skip
