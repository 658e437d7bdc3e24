"""Market symbols as exchanges write them, split into base and quote assets."""

from __future__ import annotations

import re

# Longest first, so that USDT wins over USD and FDUSD over USD.
QUOTE_ASSETS = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USDP",
    "DAI",
    "USD",
    "EUR",
    "GBP",
    "JPY",
    "TRY",
    "BRL",
    "AUD",
    "BTC",
    "ETH",
    "BNB",
    "XBT",
)


def normalise_symbol(raw: str) -> str:
    """``BTC/USDT``, ``btc-usdt``, ``BTC_USDT`` → ``BTCUSDT``."""
    return re.sub(r"[^A-Za-z0-9]", "", raw).upper()


def split_symbol(raw: str) -> tuple[str, str]:
    """Base and quote asset of a symbol, or ``("", "")`` when it cannot be told."""
    parts = [p for p in re.split(r"[/\-_:]", raw.strip().upper()) if p]
    if len(parts) == 2:
        return parts[0], parts[1]
    symbol = normalise_symbol(raw)
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return "", ""
