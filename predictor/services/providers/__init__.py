"""Market-data providers: one small client per API, built from settings.

``provider_get("binance")`` and ``provider_get("coinapi")`` read their base URLs
(and CoinAPI's key) from settings, which read them from the environment, so
tests point them at a local server.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from predictor.models import Exchange, Market
from predictor.services.providers.base import CandlePage, CandleProvider, MarketMismatch
from predictor.services.providers.binance import BinanceProvider
from predictor.services.providers.coinapi import CoinApiProvider, coinapi_error_hook
from predictor.services.providers.http import (
    HttpClient,
    MalformedPayload,
    NetworkUnreachable,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    QuotaExhausted,
    RetryPolicy,
)

__all__ = [
    "PROVIDERS",
    "BinanceProvider",
    "CandlePage",
    "CandleProvider",
    "CoinApiProvider",
    "HttpClient",
    "MalformedPayload",
    "MarketMismatch",
    "NetworkUnreachable",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "QuotaExhausted",
    "RetryPolicy",
    "provider_default_for",
    "provider_get",
]


def _retry_policy() -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.MARKET_DATA_RETRY_ATTEMPTS,
        total_seconds=float(settings.MARKET_DATA_RETRY_SECONDS),
    )


def _timeout() -> tuple[float, float]:
    return (5.0, float(settings.MARKET_DATA_TIMEOUT_SECONDS))


def _binance() -> CandleProvider:
    return BinanceProvider(
        spot_url=settings.BINANCE_API_URL,
        futures_url=settings.BINANCE_FUTURES_API_URL,
        client=HttpClient("binance", timeout=_timeout(), retry=_retry_policy()),
    )


def _coinapi() -> CandleProvider:
    return CoinApiProvider(
        base_url=settings.COINAPI_URL,
        api_key=settings.COINAPI_KEY,
        client=HttpClient(
            "coinapi",
            timeout=_timeout(),
            retry=_retry_policy(),
            error_hook=coinapi_error_hook("coinapi"),
        ),
    )


# Provider name (``update_stocks --provider``) → a factory configured from settings. A new
# provider is a module beside these and one line here.
_FACTORIES: dict[str, Callable[[], CandleProvider]] = {"binance": _binance, "coinapi": _coinapi}
PROVIDERS: tuple[str, ...] = tuple(_FACTORIES)


def provider_get(name: str) -> CandleProvider:
    """The provider called ``name``, configured from settings."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown provider {name!r}; use one of {', '.join(PROVIDERS)}")
    return factory()


def provider_default_for(market: Market) -> str:
    """Binance's own API for Binance markets; CoinAPI for every other exchange."""
    if market.exchange in (Exchange.BINANCE, Exchange.BINANCE_FUTURES):
        return "binance"
    return "coinapi"
