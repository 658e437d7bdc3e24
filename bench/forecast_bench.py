"""Benchmark: forecasting every window of a long real series, against a bare ``model.predict``.

    .venv/bin/python bench/forecast_bench.py [--file PATH] [--interval 5m] [--repeats 3]

Reads real Binance candles by path (default: 16 months of BTCUSDT 5-minute bars,
140,614 rows, from ``../shared/data``), trains a small LSTM briefly on the first
rows (the weights do not matter for speed), then times, median of ``--repeats``:

* the forecast path, ``forecast_windows``: candles → aligned arrays → features →
  every window predicted in chunks → target and issue times, split labels,
  future points and realised values;
* the reference, in the same process and run alternately with it: ``model.predict``
  on the same windows, already gathered and scaled beforehand (so the reference
  does no data work at all), batch size as the forecast path's chunk.

The machines are noisy (other processes share two cores), so the script also
times the forecast path with a model that answers instantly: that is its data
work alone, and ``bare / (bare + data work)`` is the ratio to expect on a quiet
machine. Goal: the forecast path reaches at least 0.9× the reference's windows
per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from predictor.ml.arrays import align_markets, window_view
from predictor.ml.config import TrainConfig
from predictor.ml.forecasting import forecast_windows
from predictor.ml.training import PREDICT_CHUNK, train_pipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_FILE = DATA / "XyloTech__TF.bk" / "BTCUSDT_5m.csv.gz"


def read_candles(path: Path) -> pd.DataFrame:
    """A converted freqtrade file: ``timestamp`` (open time, ms), OHLCV."""
    frame = pd.read_csv(path)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True))
    return frame[["open", "high", "low", "close", "volume"]].astype("float64")


def seconds(function: Callable[[], object]) -> float:
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def interleaved(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> list[tuple[float, float]]:
    """Timings of the two, run alternately so a busy machine slows both alike."""
    return [(seconds(first), seconds(second)) for _ in range(repeats)]


class InstantModel:
    """Answers at once: what is left of the forecast path's time is its data work."""

    def __init__(self, width: int) -> None:
        self.width = width

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), self.width), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--interval", default="5m")
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--train-rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    frame = read_candles(args.file)
    config = TrainConfig(
        arch="lstm",
        target="price",
        window=args.window,
        units=args.units,
        epochs=1,
        batch_size=256,
        interval=args.interval,
        features=("close",),
    )
    bundle = train_pipeline(frame.iloc[: args.train_rows], config)

    # The reference's input: every complete window on the same (gap-filled) grid,
    # gathered and scaled beforehand.
    raw = align_markets(frame, args.interval).field("close")
    x = bundle.scaling.transform_features(np.ascontiguousarray(window_view(raw, args.window)))
    model = bundle.model

    def ours() -> object:
        return forecast_windows(bundle, frame)

    def bare() -> object:
        return model.predict(x, batch_size=PREDICT_CHUNK, verbose=0)

    result = forecast_windows(bundle, frame)  # warm-up: traces both predict functions
    bare()
    pairs = interleaved(ours, bare, args.repeats)
    ours_s = statistics.median(p[0] for p in pairs)
    bare_s = statistics.median(p[1] for p in pairs)
    pair_ratio = statistics.median(b / o for o, b in pairs)
    no_model = replace(bundle, model=InstantModel(1))
    data_s = statistics.median(
        seconds(lambda: forecast_windows(no_model, frame)) for _ in range(args.repeats)
    )
    n = len(x)
    assert result.n_windows == n, (result.n_windows, n)

    print(
        f"python {platform.python_version()}, keras {keras.__version__} "
        f"({keras.backend.backend()}), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, devices {keras.distribution.list_devices()}"
    )
    print(
        f"{args.file.name}: {len(frame):,} candles, {n:,} windows of {args.window}, "
        f"LSTM({args.units}), chunk {PREDICT_CHUNK}, median of {args.repeats} alternating runs"
    )
    print(
        f"forecast_windows (features, prediction, times, labels, truth): {ours_s:.3f} s, "
        f"{n / ours_s:,.0f} windows/s ({result.n_future} future points)"
    )
    print(f"bare model.predict on prepared windows: {bare_s:.3f} s, {n / bare_s:,.0f} windows/s")
    print(
        f"data work alone (model answering instantly): {data_s:.3f} s, "
        f"{data_s / bare_s * 100:.1f} % of the bare predict time"
    )
    ratio = bare_s / ours_s
    print(
        f"ratio forecast path / bare predict (windows/s): {ratio:.2f}x of the medians, "
        f"{pair_ratio:.2f}x median of the {len(pairs)} pairs, "
        f"{bare_s / (bare_s + data_s):.2f}x expected from the data work"
    )
    print(f"goal >= 0.9x: {'met' if ratio >= 0.9 else 'NOT met'}")


if __name__ == "__main__":
    main()
