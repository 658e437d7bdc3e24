"""Fixtures for tests that need markets with candles and trained sessions.

Candles are a seeded random walk written through the real write path
(``candles_upsert``); sessions are trained for real, with tiny networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from predictor.ml.candles import CandleChunk
from predictor.ml.config import TrainConfig
from predictor.ml.intervals import parse_interval
from predictor.models import Market, TrainingSession

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z

# Small enough to train in about a second on 2 CPU cores.
TINY: dict[str, Any] = {
    "window": 8,
    "units": 4,
    "epochs": 1,
    "batch_size": 32,
    "xla": False,
    "interval": "1h",
}


def random_walk(n: int, seed: int = 0, start: float = 100.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[start], close[:-1]])
    spread = np.abs(rng.normal(0, 0.003, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.uniform(1, 10, n)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def store_candles(
    market: Market, n: int, *, interval: str = "1h", seed: int = 0, start: int = T0
) -> None:
    """``n`` consecutive candles of ``market`` from ``start`` (unix seconds)."""
    from predictor.services.candle_store import candles_upsert

    step = parse_interval(interval).seconds
    walk = random_walk(n, seed)
    chunk = CandleChunk(
        start + step * np.arange(n, dtype=np.int64),
        walk["open"],
        walk["high"],
        walk["low"],
        walk["close"],
        walk["volume"],
        np.arange(n, dtype=np.int64),
    )
    candles_upsert(market, parse_interval(interval), [chunk])


@pytest.fixture
def make_market(db: None) -> Callable[..., Market]:
    """``make_market("BTCUSDT", n=400)``: a Binance market with ``n`` hourly candles."""

    def make(
        symbol: str = "BTCUSDT",
        n: int = 400,
        *,
        interval: str = "1h",
        exchange: str = "binance",
        seed: int = 0,
    ) -> Market:
        market = Market.objects.create(exchange=exchange, symbol=symbol)
        if n:
            store_candles(market, n, interval=interval, seed=seed)
        return market

    return make


@pytest.fixture
def trained_session(make_market: Callable[..., Market]) -> Callable[..., TrainingSession]:
    """``trained_session(arch="lstm", target="price", evaluation=True, **config)``.

    Trains inline (no Celery) on a market made for it (or ``market=``) and
    returns the succeeded session, its artifacts in the test's artifact folders.
    """
    from predictor.services.sessions import session_create
    from predictor.services.training import session_run

    def train(*, market: Market | None = None, n: int = 400, **overrides: Any) -> TrainingSession:
        market = market or make_market("BTCUSDT", n)
        config = TrainConfig(**{**TINY, **overrides})
        session = session_create(config, symbols=[market.symbol], exchange=market.exchange)
        session = session_run(session.pk)
        assert session.status == "succeeded", session.error
        return session

    return train


@pytest.fixture(autouse=True)
def _small_validation_splits(settings: Any) -> None:
    """The fixtures' sessions are a few hundred bars: their validation splits hold ~30
    forecasts, under the production minimum of real ones (100) that θ is chosen on."""
    settings.EVALUATION_MIN_VALIDATION_FORECASTS = 20


@pytest.fixture(autouse=True)
def _artifact_dirs(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test writes its model weights and scalers to its own temporary folders."""
    root = tmp_path_factory.mktemp("artifacts")
    settings.MODEL_WEIGHTS_DIR = root / "model_weights"
    settings.SCALERS_DIR = root / "scalers"
    settings.STORAGES = {
        **settings.STORAGES,
        "model_weights": {
            "BACKEND": "predictor.storage.AtomicFileSystemStorage",
            "OPTIONS": {"location": str(root / "model_weights")},
        },
        "scalers": {
            "BACKEND": "predictor.storage.AtomicFileSystemStorage",
            "OPTIONS": {"location": str(root / "scalers")},
        },
    }
