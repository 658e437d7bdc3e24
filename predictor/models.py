"""Market data: markets and their candles.

A candle's ``open_time`` is the **start** of its bar, in UTC. Every source is
converted to open times on import (CryptoDataDownload ``Date``, Binance
``open_time``, CoinAPI ``time_period_start``). The original tool spliced
bar-end times from one exchange onto bar-start times from another and so
shifted its data by one bar; storing open times only, per exchange, prevents it.
"""

from __future__ import annotations

from django.db import connection, models
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from predictor.ml.intervals import INTERVAL_CHOICES


class Exchange(models.TextChoices):
    GEMINI = "gemini", "Gemini"
    BINANCE = "binance", "Binance spot"
    BINANCE_FUTURES = "binance-futures", "Binance USDⓈ-M futures"
    BITSTAMP = "bitstamp", "Bitstamp"
    KRAKEN = "kraken", "Kraken"
    COINBASE = "coinbase", "Coinbase"
    BITFINEX = "bitfinex", "Bitfinex"
    OTHER = "other", "Other / unknown"


class Market(models.Model):
    """A tradable pair on one exchange, as the exchange spells it."""

    exchange = models.CharField(max_length=32, choices=Exchange.choices)
    symbol = models.CharField(
        max_length=32, help_text="The symbol as the exchange writes it, e.g. BTCUSD or BTCUSDT."
    )
    base_asset = models.CharField(max_length=16, blank=True)
    quote_asset = models.CharField(max_length=16, blank=True)
    coinapi_symbol_id = models.CharField(
        max_length=64, blank=True, help_text="CoinAPI symbol id, e.g. GEMINI_SPOT_BTC_USD."
    )
    tracked = models.BooleanField(default=False, help_text="Kept current by the scheduled update.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["exchange", "symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "symbol"], name="market_exchange_symbol_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}"


class Candle(models.Model):
    """One OHLCV bar. ``open_time`` is the bar's start (UTC)."""

    # No separate index on market: the unique (market, interval, open_time) index
    # serves it. No database FK constraint either: its per-row trigger cost a third
    # of bulk-insert time; the one write path (services.candle_store) only writes
    # candles of a market it holds, and deleting a market deletes its candles in
    # one statement (``_delete_candles_with_market``), not row by row.
    market = models.ForeignKey(
        Market,
        on_delete=models.DO_NOTHING,
        related_name="candles",
        db_index=False,
        db_constraint=False,
    )
    interval = models.CharField(max_length=8, choices=INTERVAL_CHOICES)
    open_time = models.DateTimeField(help_text="Start of the bar, UTC.")
    # Double precision, not Decimal: the data goes straight to numpy.
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField(help_text="Volume in the base asset.")

    class Meta:
        # No default ordering: every ORDER BY over millions of rows must be asked for.
        constraints = [
            # Also the index for range scans by (market, interval, time).
            models.UniqueConstraint(
                fields=["market", "interval", "open_time"], name="candle_market_interval_time_uniq"
            ),
            models.CheckConstraint(
                condition=models.Q(high__gte=models.F("low")), name="candle_high_gte_low"
            ),
            models.CheckConstraint(
                condition=models.Q(open__gt=0, high__gt=0, low__gt=0, close__gt=0),
                name="candle_prices_positive",
            ),
            models.CheckConstraint(condition=models.Q(volume__gte=0), name="candle_volume_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.market_id} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


@receiver(pre_delete, sender=Market)
def _delete_candles_with_market(sender: type[Market], instance: Market, **kwargs: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Candle._meta.db_table} WHERE market_id = %s", [instance.pk])
