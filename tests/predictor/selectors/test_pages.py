"""Page reads: each market once, with its stored intervals finest first."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from predictor.models import Market
from predictor.selectors.candles import market_coverage_list
from predictor.selectors.pages import market_series_list
from tests.predictor.conftest import store_candles

pytestmark = pytest.mark.django_db


def test_market_series_groups_intervals_finest_first_and_spans_the_finest(
    make_market: Callable[..., Market],
) -> None:
    eth = make_market("ETHUSDT", 30, interval="1h")
    store_candles(eth, 120, interval="1m")
    make_market("BTCUSDT", 10, interval="1d")
    btc, eth_series = market_series_list()
    assert (btc.symbol, btc.intervals, btc.candles) == ("BTCUSDT", ("1d",), 10)
    assert eth_series.intervals == ("1m", "1h")
    assert eth_series.finest.code == "1m"
    assert eth_series.candles == 120
    assert eth_series.label == "ETHUSDT · binance"
    assert market_series_list(market_coverage_list()[:1]) == [btc]
