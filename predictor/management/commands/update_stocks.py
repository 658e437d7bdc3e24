"""``update_stocks``: fetch the closed candles after the last stored one (CoinAPI, Binance)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from predictor.management.flags import when
from predictor.ml.intervals import IntervalError, parse_interval
from predictor.ml.symbols import normalise_symbol
from predictor.models import Market
from predictor.services.providers import PROVIDERS, MarketMismatch, provider_default_for
from predictor.services.updating import (
    UpdateError,
    UpdateFailed,
    UpdateResult,
    market_for_update,
    market_update,
    markets_update_tracked,
)


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value else "none"


class Command(BaseCommand):
    help = (
        "Fetch closed candles after the newest stored one (or from --since) from CoinAPI or "
        "Binance and store them. --all updates every tracked market."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--symbol", help="e.g. BTCUSD or BTCUSDT, as the exchange writes it")
        parser.add_argument("--exchange", help="the market's exchange, e.g. gemini or binance")
        parser.add_argument(
            "--provider",
            choices=PROVIDERS,
            help="default: binance for Binance markets, coinapi otherwise",
        )
        parser.add_argument("--interval", help="candle interval (default 1m)")
        parser.add_argument(
            "--since", type=when, help="start here instead of after the last stored"
        )
        parser.add_argument("--until", type=when, help="stop here (default: now)")
        parser.add_argument("--all", action="store_true", help="update every tracked market")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        if options["interval"]:
            try:
                parse_interval(options["interval"])
            except IntervalError as exc:
                raise CommandError(str(exc)) from None
        if options["all"]:
            self._update_all(options)
            return
        if not options["symbol"]:
            raise CommandError("pass --symbol (and --exchange for a new market), or --all")
        market = self._market(options)
        provider = options["provider"] or provider_default_for(market)
        interval = options["interval"] or "1m"
        with self._bar(market, interval) as progress:
            try:
                result = market_update(
                    market,
                    provider=provider,
                    interval=interval,
                    since=options["since"],
                    until=options["until"],
                    progress=progress,
                )
            except UpdateFailed as exc:
                raise CommandError(f"{market} {interval}: {exc}") from None
            except (MarketMismatch, UpdateError) as exc:
                raise CommandError(str(exc)) from None
        self._summary(result)

    def _market(self, options: dict[str, Any]) -> Market:
        symbol, exchange = options["symbol"], options["exchange"]
        if exchange:
            try:
                return market_for_update(
                    exchange,
                    symbol,
                    provider=options["provider"],
                    interval=options["interval"] or "1m",
                )
            except (MarketMismatch, UpdateError) as exc:
                raise CommandError(str(exc)) from None
        matches = list(Market.objects.filter(symbol=normalise_symbol(symbol)))
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise CommandError(f"no market {symbol} yet: pass --exchange to create it")
        names = ", ".join(str(m) for m in matches)
        raise CommandError(f"{symbol} is on several exchanges ({names}): pass --exchange")

    def _update_all(self, options: dict[str, Any]) -> None:
        if options["symbol"] or options["exchange"] or options["since"] or options["until"]:
            raise CommandError("--all takes no --symbol, --exchange, --since or --until")
        bars: list[tqdm[Any]] = []

        def progress_for(market: Market, interval: str) -> Callable[[int, int], None]:
            bar = self._new_bar(f"{market} {interval}")
            bars.append(bar)
            return _advance(bar)

        try:
            results = markets_update_tracked(
                provider=options["provider"],
                interval=options["interval"],
                progress_for=progress_for,
            )
        finally:
            for bar in bars:
                bar.close()
        if not results:
            self.stdout.write("No tracked markets: set Market.tracked in the admin.")
        for result in results:
            self._summary(result)
        failed = [r for r in results if r.status in ("failed", "refused")]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} updates failed (see above)")

    def _new_bar(self, label: str) -> tqdm[Any]:
        return tqdm(total=0, desc=label, unit=" candles", disable=self.verbosity < 1, leave=False)

    def _bar(self, market: Market, interval: str) -> _BarContext:
        return _BarContext(self._new_bar(f"{market} {interval}"))

    def _summary(self, result: UpdateResult) -> None:
        head = f"{result.market} {result.interval} via {result.provider}"
        if result.status in ("failed", "refused", "already-running"):
            style = self.style.WARNING if result.status == "already-running" else self.style.ERROR
            self.stdout.write(style(f"{head}: {result.status}: {result.message}"))
            if result.status == "failed":
                self.stdout.write(f"  last stored candle: {_time(result.last_stored)}")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{head}: fetched {result.fetched:,} closed candles in {result.pages} pages, "
                f"inserted {result.inserted:,} ({result.duplicates:,} already stored, "
                f"{result.conflicts:,} conflicting kept), gaps left {result.gaps:,} "
                f"({result.missing_bars:,} missing bars); last stored candle "
                f"{_time(result.last_stored)}"
            )
        )


def _advance(bar: tqdm[Any]) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return progress


class _BarContext:
    def __init__(self, bar: tqdm[Any]) -> None:
        self.bar = bar

    def __enter__(self) -> Callable[[int, int], None]:
        return _advance(self.bar)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
