"""Synthetic candles for the ML tests: seeded, in memory, no files and no database."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_frame(
    n: int,
    *,
    seed: int = 0,
    start: str = "2024-01-01",
    freq: str = "1h",
    price: float = 100.0,
    vol: float = 0.01,
) -> pd.DataFrame:
    """A random-walk OHLCV frame with consistent highs and lows and positive volume."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[price], close[:-1]])
    wick = np.abs(rng.normal(0.0, vol / 2, (2, n)))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.lognormal(3.0, 0.5, n),
        },
        index=pd.date_range(start, periods=n, freq=freq, tz="UTC"),
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame(400)


@pytest.fixture
def long_frame() -> pd.DataFrame:
    # Long enough for the 720-step trend windows and their lagged deltas.
    return make_frame(2600, seed=1, freq="1min")


@pytest.fixture
def two_markets() -> dict[str, pd.DataFrame]:
    return {"BTCUSDT": make_frame(400, seed=2), "ETHUSDT": make_frame(400, seed=3, price=10.0)}
