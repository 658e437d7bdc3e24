"""Benchmark: walk-forward recipes on real 1m candles at horizon 15 (docs/recipes.md).

    PYTHONPATH=$PWD .venv/bin/python bench/recipes.py \\
        --csv ../shared/data/Filimonov-Eremeyka__freqtrade/BTCUSDT_1m.csv.gz \\
        [--recipes ridge-base,ridge-new,lgbm] [--step 20160] [--min-train 40320]

A script, not a management command: it reads CSV files straight through the ML
layer (no database), and what it prints is evidence for the docs, not a product
feature; users get the same folds from ``walk_forward``. Each recipe is retrained
every ``--step`` bars on all data before the fold (expanding, purged by the label
reach) and predicts the next block. The first block chooses θ (the product's rule:
``choose_threshold`` on validation forecasts, fee 0.1 % per side); the later blocks
are the out-of-sample test: IC and rank IC per calendar month, hit rate and the
after-cost result at that θ.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from predictor.ml.config import TrainConfig
from predictor.ml.evaluation import choose_threshold
from predictor.ml.evaluation.backtest import backtest
from predictor.ml.training import predict_anchors, prepare_data, train_pipeline
from predictor.ml.walkforward import plan_walk_forward

HORIZON = 15
FEE = 0.001
BARS_PER_YEAR = 525_600.0
NEW_SETS = ("returns", "trend", "chance", "multiscale", "volume", "time")
RECIPES: dict[str, dict[str, Any]] = {
    # The baseline: ridge on returns + time over a 60-bar window.
    "ridge-base": {"arch": "ridge", "window": 60, "features": ("returns", "time")},
    # Ridge on the new sets, last bar only (the sets carry their own history).
    "ridge-new": {"arch": "ridge", "window": 1, "features": NEW_SETS},
    # The default recipe: boosted trees on the new sets, early-stopped on validation.
    "lgbm": {
        "arch": "lgbm",
        "window": 1,
        "features": NEW_SETS,
        "gbm_trees": 400,
        "gbm_leaves": 15,
        "early_stopping": 30,
    },
    # The same trees without early stopping: a fixed, slower-learning ensemble.
    "lgbm-fixed": {
        "arch": "lgbm",
        "window": 1,
        "features": NEW_SETS,
        "gbm_trees": 300,
        "gbm_leaves": 15,
        "learning_rate": 0.02,
    },
}


def read_candles(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True)
    return frame[["open", "high", "low", "close", "volume"]].astype(np.float64)


def run_recipe(frame: pd.DataFrame, name: str, step: int, min_train: int) -> dict[str, Any]:
    config = TrainConfig(
        target="return", horizon=HORIZON, interval="1min", scaler="standard", **RECIPES[name]
    )
    prep = prepare_data(frame, config)
    plan = plan_walk_forward(
        prep.anchors, prep.market.index, window=config.window, reach=config.reach,
        step=step, min_train=min_train, val_fraction=config.val_split,
    )  # fmt: skip
    began = time.perf_counter()
    anchors, forecasts, trees = [], [], []
    for fold in plan.folds:
        bundle = train_pipeline(frame, config, split=fold)
        test = fold.test.anchors
        forecasts.append(predict_anchors(bundle, prep.features.flat(), test)[:, 0])
        anchors.append(test)
        if config.arch == "lgbm":
            trees.append(bundle.model.boosters[0].best_iteration or config.gbm_trees)
    seconds = time.perf_counter() - began
    first = len(plan.folds[0].test.anchors)
    rows, pred = np.concatenate(anchors), np.concatenate(forecasts)
    truth = prep.targets.flat()[rows, 0]
    return score(prep, rows, pred, truth, first) | {
        "recipe": name,
        "folds": len(plan.folds),
        "train_s": round(seconds, 1),
        "trees": trees,
    }


def score(prep: Any, rows: Any, pred: Any, truth: Any, first: int) -> dict[str, Any]:
    """θ on the first block, then IC, rank IC, hit rate and after-cost result on the rest."""
    index = prep.market.index
    opens = prep.market.field("open")[:, 0].astype(np.float64)
    times = index.asi8 // 10**9

    def grid(lo: int, hi: int) -> tuple[Any, Any, Any]:
        keep = (rows >= lo) & (rows < hi)
        f = np.full(hi - lo, np.nan)
        f[rows[keep] - lo] = pred[keep]
        return opens[lo:hi], f, times[lo:hi]

    v_lo, v_hi = int(rows[0]), int(rows[first - 1]) + 1
    v_open, v_fc, v_t = grid(v_lo, v_hi)
    chosen = choose_threshold(
        validation_open=v_open, validation_forecast=v_fc, validation_times=v_t,
        horizon=HORIZON, bars_per_year=BARS_PER_YEAR, fee=FEE,
    )  # fmt: skip
    t_rows, t_pred, t_truth = rows[first:], pred[first:], truth[first:]
    t_open, t_fc, _ = grid(int(t_rows[0]), min(int(t_rows[-1]) + HORIZON + 2, len(opens)))
    result = backtest(
        t_open, t_fc, horizon=HORIZON, theta=chosen.theta, bars_per_year=BARS_PER_YEAR, fee=FEE
    ).stats
    months = pd.Series(index[t_rows].strftime("%Y-%m"))
    per_month = {}
    for month, where in months.groupby(months).groups.items():
        p, y = t_pred[where], t_truth[where]
        per_month[month] = (
            float(np.corrcoef(p, y)[0, 1]),
            float(stats.spearmanr(p, y).statistic),
            len(p),
        )
    return {
        "ic": float(np.corrcoef(t_pred, t_truth)[0, 1]),
        "rank_ic": float(stats.spearmanr(t_pred, t_truth).statistic),
        "hit_rate": float(np.mean(np.sign(t_pred) == np.sign(t_truth))),
        "months": per_month,
        "theta": chosen.theta,
        "theta_quantile": chosen.quantile,
        "total_return": result.total_return,
        "holdings": result.n_holdings,
        "net_hit_rate": result.hit_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", required=True, action="append", help="freqtrade-style 1m CSV")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--step", type=int, default=20_160, help="bars per fold (2 weeks)")
    parser.add_argument("--min-train", type=int, default=40_320, help="bars (4 weeks)")
    args = parser.parse_args()
    for path in args.csv:
        frame = read_candles(path)
        print(f"== {path}: {len(frame):,} bars {frame.index[0]} -> {frame.index[-1]}")
        for name in args.recipes.split(","):
            r = run_recipe(frame, name, args.step, args.min_train)
            print(
                f"{r['recipe']:<11} folds {r['folds']} train {r['train_s']:>6}s  "
                f"IC {r['ic']:+.4f} rankIC {r['rank_ic']:+.4f} hit {r['hit_rate']:.3f}  "
                f"θ {r['theta']:.5f} (q{r['theta_quantile']}) after cost "
                f"{r['total_return']:+.2%} over {r['holdings']} holdings "
                f"(net hit {r['net_hit_rate']:.3f}) trees {r['trees']}"
            )
            for month, (ic, ric, n) in r["months"].items():
                print(f"    {month}: IC {ic:+.4f} rankIC {ric:+.4f} n {n:,}")


if __name__ == "__main__":
    main()
