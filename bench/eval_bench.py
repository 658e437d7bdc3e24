"""Benchmark: one full evaluation report for a year of one-minute forecasts.

    .venv/bin/python bench/eval_bench.py [--rows 525600] [--horizon 60] [--repeats 3]

Times ``evaluation_report`` (every metric, the strategy and its three
baselines, and all significance tests except the bootstrap SPA) on seeded
synthetic random-walk prices with noisy forecasts, median of ``--repeats``
runs, next to a reference in the same process: numpy computing only MAE and
RMSE of the same forecasts. The threshold is chosen beforehand on a separate
validation year and is timed on its own line.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from predictor.ml.evaluation import (
    EvaluationInputs,
    choose_threshold,
    evaluation_report,
)

BAR_SECONDS = 60
START = 1_704_067_200  # 2024-01-01T00:00:00Z


def synthetic_inputs(rows: int, horizon: int, seed: int, start: int) -> EvaluationInputs:
    """Random-walk minute bars and forecasts that are the truth plus a lot of noise."""
    rng = np.random.default_rng(seed)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, rows)))
    opens = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.0001, rows))
    future = np.r_[close[horizon:], np.full(horizon, close[-1])]
    predicted = close + 0.05 * (future - close) + close * rng.normal(0, 0.003, rows)
    return EvaluationInputs(
        times=start + BAR_SECONDS * np.arange(rows, dtype=np.int64),
        open=opens,
        close=close,
        predicted_price=predicted,
        horizon=horizon,
        bar_seconds=BAR_SECONDS,
    )


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        timings.append(time.perf_counter() - began)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=525_600)
    parser.add_argument("--horizon", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    validation = synthetic_inputs(args.rows, args.horizon, seed=1, start=START - 366 * 86_400)
    test = synthetic_inputs(args.rows, args.horizon, seed=2, start=START)

    began = time.perf_counter()
    threshold = choose_threshold(
        validation_open=validation.open,
        validation_forecast=validation.predicted_return,
        validation_times=validation.times,
        horizon=args.horizon,
        bars_per_year=validation.bars_per_year,
    )
    choose_seconds = time.perf_counter() - began

    def report() -> object:
        return evaluation_report(test, split="test", threshold=threshold, n_trials=5)

    def reference() -> object:
        realised = test.realised_return
        actual = np.r_[test.close[args.horizon :], np.full(args.horizon, np.nan)]
        error = (test.predicted_price - actual)[np.isfinite(realised)]
        return float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error * error)))

    report()  # warm-up: imports, first-touch page faults
    report_seconds = median_seconds(report, args.repeats)
    reference_seconds = median_seconds(reference, max(args.repeats, 5))

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"rows {args.rows}, horizon {args.horizon} bars, median of {args.repeats}")
    print(
        f"choose_threshold (validation, {len(threshold.candidates)} candidates): "
        f"{choose_seconds:.3f} s"
    )
    print(f"evaluation_report: {report_seconds:.3f} s, {args.rows / report_seconds:,.0f} rows/s")
    print(f"reference (numpy MAE + RMSE only): {reference_seconds * 1e3:.2f} ms")
    print(f"ratio report / reference: {report_seconds / reference_seconds:.0f}x")
    print(f"goal < 1 s: {'met' if report_seconds < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
