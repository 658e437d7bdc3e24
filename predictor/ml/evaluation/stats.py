"""Significance tests of forecasts and strategies, each with a plain sentence.

Forecasts are made every bar for a target ``horizon`` bars ahead, so
neighbouring calls share ``horizon - 1`` bars and are not independent: every
test here takes ``horizon=`` and uses the overlap-robust machinery of
``overlap`` (unweighted long-run variance and the HLN factor; t with n // h - 1
degrees of freedom for the hit tests, t(n - 1) for DM) or a binomial test on
the non-overlapping subsample. Each
sentence states the effective number of independent calls. ``docs/evaluation.md``
lists what each test assumes and its measured size under no-skill nulls.

Libraries do the work wherever one has the test: scipy (t and binomial
distributions) and arch (SPA / Reality Check). Hand-written and tested against
published numbers: the Pesaran-Timmermann statistic, the Diebold-Mariano
statistic with the Harvey-Leybourne-Newbold factor, and (in ``sharpe``,
re-exported here) the Probabilistic / Deflated Sharpe Ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import bdtrc, ndtr, stdtr

from predictor.ml.evaluation._common import FloatArray, ToDict, as_float_array, fmt_p, same_length
from predictor.ml.evaluation.overlap import (
    check_horizon,
    effective_n,
    hac_mean_test,
    hln_factor,
    long_run_variance,
    newey_west_variance,
    subsample,
)
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
HAC_T = "HAC t-test"
CLASSIC_PT = "Pesaran-Timmermann (1992), independent calls"
HAC_PT = "Pesaran-Timmermann on a HAC basis (sign covariance, mean-bias corrected)"
MID_P = "exact binomial on every h-th call, mid-p"


@dataclass(frozen=True, slots=True)
class HitRateTest(ToDict):
    """H0: the hit rate is 0.5 (a coin flip); H1: it is greater (one-sided)."""

    name: str
    statistic: float
    p_value: float
    n: int  # calls scored (for the binomial: those in the subsample)
    hits: int
    hit_rate: float
    alpha: float
    significant: bool
    sentence: str
    horizon: int
    effective_n: int  # independent calls the p-value rests on
    method: str
    subsample_start: int | None  # row of the first call in the binomial's subsample
    exact_p_value: float | None  # the binomial's conservative exact p (mid-p is p_value)


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
    horizon: int
    effective_n: int
    method: str


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
    effective_n: int
    method: str


def _calls(n: int, n_eff: int, horizon: int) -> str:
    """How many independent calls a verdict rests on, as the sentences say it."""
    if horizon == 1:
        return f"{n:,} calls on 1-bar targets, which do not overlap"
    return f"n_eff ≈ {n_eff:,} of {n:,} overlapping {horizon}-bar calls"


def _scored_rows(
    predicted_return: npt.ArrayLike, realised_return: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Both arrays and the rows a hit test scores: finite, with a non-zero realised move.

    A zero forecast stays in and counts as a miss (it calls no direction).
    """
    f = as_float_array(predicted_return, "predicted_return")
    y = as_float_array(realised_return, "realised_return")
    same_length(predicted_return=f, realised_return=y)
    return f, y, np.isfinite(f) & np.isfinite(y) & (y != 0)


def _verdict(significant: bool, alpha: float) -> str:
    return f"{'Better' if significant else 'Not better'} than a coin flip at the {alpha * 100:g} % level"


def hit_rate_t_test(
    predicted_return: npt.ArrayLike,
    realised_return: npt.ArrayLike,
    *,
    horizon: int,
    alpha: float = 0.05,
) -> HitRateTest:
    """One-sided t-test of the hits against 0.5 with an overlap-robust standard error.

    The hits' long-run variance is the unweighted sum of h - 1 autocovariances,
    with the HLN factor and t(n // h - 1) (see ``overlap``). For h = 1 this is
    exactly the one-sample t-test (``scipy.stats.ttest_1samp``, greater), and
    the p-value is used as it is: the original tool halved an already
    one-sided value.
    """
    horizon = check_horizon(horizon)
    f, y, keep = _scored_rows(predicted_return, realised_return)
    hits = (np.sign(f[keep]) == np.sign(y[keep])).astype(np.float64)
    n = len(hits)
    rate = float(hits.mean()) if n else np.nan
    result = hac_mean_test(hits, 0.5, horizon)
    significant = bool(result.p_value < alpha)
    sentence = (
        f"{_verdict(significant, alpha)} (hit rate {rate * 100:.1f} % over "
        f"{_calls(n, result.effective_n, horizon)}, one-sided HAC t-test, {fmt_p(result.p_value)})."
    )
    return HitRateTest(
        name="t-test of hits vs 0.5",
        statistic=result.statistic,
        p_value=result.p_value,
        n=n,
        hits=int(hits.sum()),
        hit_rate=rate,
        alpha=alpha,
        significant=significant,
        sentence=sentence,
        horizon=horizon,
        effective_n=result.effective_n,
        method=f"{HAC_T}, {result.method}",
        subsample_start=None,
        exact_p_value=None,
    )


def _binomial_tails(k: int, n: int) -> tuple[float, float]:
    """(P(X >= k), P(X > k) + P(X = k) / 2) for X ~ Bin(n, 1/2); NaN when n = 0."""
    if n == 0:
        return np.nan, np.nan
    above = float(bdtrc(k, n, 0.5))  # P(X > k); scipy.stats.binom.sf without its overhead
    at_least = float(bdtrc(k - 1, n, 0.5)) if k > 0 else 1.0
    return at_least, above + 0.5 * (at_least - above)


def binomial_hit_test(
    predicted_return: npt.ArrayLike,
    realised_return: npt.ArrayLike,
    *,
    horizon: int,
    alpha: float = 0.05,
) -> HitRateTest:
    """Binomial test of the hits against p = 0.5 on non-overlapping calls, one-sided.

    Only every ``horizon``-th forecast is used, from the first scored row
    (``subsample_start``), so no two targets share a bar. With few calls (h = 60
    leaves about 33 in 2,000 bars) the exact test is very conservative, its size
    jumping between 2 % and 5 % as n changes by one, so the verdict uses the
    mid-p value P(X > k) + P(X = k) / 2; the exact P(X >= k) is kept beside it.
    """
    horizon = check_horizon(horizon)
    f, y, keep = _scored_rows(predicted_return, realised_return)
    rows, start = subsample(keep, horizon)
    hits = np.sign(f[rows]) == np.sign(y[rows])
    n, k = len(hits), int(hits.sum())
    exact, mid_p = _binomial_tails(k, n)
    rate = k / n if n else np.nan
    significant = bool(mid_p < alpha)
    calls = (
        f"{n:,} calls"
        if horizon == 1
        else f"{n:,} non-overlapping calls (one every {horizon} bars from row {start})"
    )
    sentence = (
        f"{_verdict(significant, alpha)} ({k:,} right of {calls}, n_eff = {n:,}, "
        f"binomial mid-{fmt_p(mid_p)}, exact {fmt_p(exact)})."
    )
    return HitRateTest(
        name="binomial test on non-overlapping calls",
        statistic=float(k),
        p_value=mid_p,
        n=n,
        hits=k,
        hit_rate=rate,
        alpha=alpha,
        significant=significant,
        sentence=sentence,
        horizon=horizon,
        effective_n=n,
        method=MID_P,
        subsample_start=start if n else None,
        exact_p_value=exact,
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


def _cross_moment_bias(x: FloatArray, y: FloatArray, horizon: int) -> float:
    """Minus the bias of mean((x - x̄)(y - ȳ)) under H0: (1/n) sum_{0<k<2h} cov(x_{t+k}, y_t).

    Demeaning both series takes cov(x̄, ȳ) off the sample covariance. With no
    skill a call is uncorrelated with every later outcome, but a call made
    after an outcome may be built from it (persistence: x_{t+h} = y_t); those
    lags alone pull the size at h = 60, n = 2,000 from 5 % to about 3 %.
    """
    n = len(x)
    running = np.concatenate(([0.0], np.cumsum(x)))
    rows = np.arange(n)
    later_calls = running[np.minimum(rows + 2 * horizon, n)] - running[rows + 1]
    return float(np.dot(y, later_calls)) / n / n  # sum over t of y_t (x_{t+1} + ... + x_{t+2h-1})


def pesaran_timmermann(
    predicted_return: npt.ArrayLike,
    realised_return: npt.ArrayLike,
    *,
    horizon: int,
    alpha: float = 0.05,
) -> PesaranTimmermann:
    """Directional skill beyond the market's own up/down rate (one-sided).

    h = 1: the classic statistic against N(0, 1). h > 1: its regression form,
    the covariance of the up-indicators of forecast and outcome (P - P* is
    that covariance times 2), tested with the overlap-robust HAC t-test after
    removing the finite-sample bias of demeaning. Rows with a NaN, a zero
    realised move or a zero forecast (no call) are left out.
    """
    horizon = check_horizon(horizon)
    f = as_float_array(predicted_return, "predicted_return")
    y = as_float_array(realised_return, "realised_return")
    same_length(predicted_return=f, realised_return=y)
    keep = np.isfinite(f) & np.isfinite(y) & (y != 0) & (f != 0)
    predicted_up, realised_up = f[keep] > 0, y[keep] > 0
    statistic, p_hat, p_star = pesaran_timmermann_statistic(predicted_up, realised_up)
    n = int(keep.sum())
    n_eff, method = effective_n(n, horizon), CLASSIC_PT
    p_value = float(ndtr(-statistic)) if math.isfinite(statistic) else np.nan
    if horizon > 1 and math.isfinite(statistic):
        x = predicted_up - predicted_up.mean()
        z = realised_up - realised_up.mean()
        result = hac_mean_test(x * z, 0.0, horizon, shift=_cross_moment_bias(x, z, horizon))
        statistic, p_value, method = result.statistic, result.p_value, f"{HAC_PT}, {result.method}"
    significant = bool(p_value < alpha)
    if not math.isfinite(statistic):
        sentence = (
            "No directional skill can be shown: the forecast (or the market) never changes "
            "direction, or there are too few calls, so the Pesaran-Timmermann test is undefined; "
            "treated as not significant."
        )
    else:
        verdict = "Directional skill" if significant else "No directional skill"
        sentence = (
            f"{verdict} beyond the market's own up/down rate at the {alpha * 100:g} % level "
            f"(accuracy {p_hat * 100:.1f} % vs {p_star * 100:.1f} % expected by chance over "
            f"{_calls(n, n_eff, horizon)}, PT = {statistic:.2f}, {fmt_p(p_value)})."
        )
    share_y = float(realised_up.mean()) if n else np.nan
    share_x = float(predicted_up.mean()) if n else np.nan
    return PesaranTimmermann(
        statistic=statistic,
        p_value=p_value,
        n=n,
        accuracy=p_hat,
        expected_accuracy=p_star,
        share_up_realised=share_y,
        share_up_predicted=share_x,
        alpha=alpha,
        significant=significant,
        sentence=sentence,
        horizon=horizon,
        effective_n=n_eff,
        method=method,
    )


def _loss(errors: FloatArray, loss: Loss) -> FloatArray:
    if loss == "squared":
        return errors * errors
    if loss == "absolute":
        return np.abs(errors)
    raise ValueError(f"loss must be 'squared' or 'absolute', got {loss!r}")


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

    d_t = L(model) - L(benchmark). Its long-run variance is the unweighted
    g0 + 2 sum_{k=1}^{h-1} g_k that the HLN factor
    sqrt((n + 1 - 2h + h(h - 1)/n) / n) is derived for; when that sum is not
    positive, the Bartlett (Newey-West, h - 1 lags) variance is used instead
    and ``method`` says so. Compared with Student t(n - 1) as HLN recommend;
    H1 is "the model's loss is lower".
    """
    horizon = check_horizon(horizon)
    model = as_float_array(model_errors, "model_errors")
    bench = as_float_array(benchmark_errors, "benchmark_errors")
    same_length(model_errors=model, benchmark_errors=bench)
    keep = np.isfinite(model) & np.isfinite(bench)
    model_loss, bench_loss = _loss(model[keep], loss), _loss(bench[keep], loss)
    d = model_loss - bench_loss
    n = len(d)
    n_eff = effective_n(n, horizon)
    statistic, p_value, method = np.nan, np.nan, "undefined: n <= 2h or no variation"
    if n > 2 * horizon:
        variance, lrv_method = long_run_variance(d, horizon)
        if variance > 0:
            statistic = float(d.mean()) / math.sqrt(variance / n) * hln_factor(n, horizon)
            p_value = float(stdtr(n - 1, statistic))  # scipy.stats.t.cdf without its overhead
            method = f"DM with HLN correction, {lrv_method}"
    significant = bool(p_value < alpha)
    verdict = "More accurate" if significant else "Not more accurate"
    sentence = (
        f"{verdict} than the {benchmark.replace('_', '-')} forecast at the {alpha * 100:g} % "
        f"level ({loss} loss over {_calls(n, n_eff, horizon)}, Diebold-Mariano with HLN "
        f"correction, DM = {statistic:.2f}, {fmt_p(p_value)})."
    )
    return DieboldMariano(
        benchmark=benchmark,
        loss=loss,
        statistic=statistic,
        p_value=p_value,
        n=n,
        horizon=horizon,
        mean_loss_model=float(model_loss.mean()) if n else np.nan,
        mean_loss_benchmark=float(bench_loss.mean()) if n else np.nan,
        alpha=alpha,
        significant=significant,
        sentence=sentence,
        effective_n=n_eff,
        method=method,
    )
