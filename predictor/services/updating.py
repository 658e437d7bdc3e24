"""Keep markets current from a provider's API: ``update_stocks`` and the beat task.

Each page of closed candles is stored through :func:`candles_upsert` as soon as
it arrives, in its own transaction. So a failure after the retries keeps what
was already stored, and the next run starts right after the newest stored
candle: no gap, no duplicate. Updates of one market never overlap: a lock in
Redis (when ``REDIS_URL`` is set), else a PostgreSQL advisory lock, else a
file lock beside SQLite (one machine, so a file lock is exact there).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

from predictor.ml.intervals import Interval, parse_interval
from predictor.ml.symbols import normalise_symbol, split_symbol
from predictor.models import Candle, Exchange, Market
from predictor.services.candle_store import CandleDataError, candles_upsert, market_last_open_time
from predictor.services.providers import (
    CandleProvider,
    MarketMismatch,
    ProviderError,
    provider_default_for,
    provider_get,
)

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (candles stored so far, candles expected)
LOCK_TTL_SECONDS = 600  # a Redis lock outlives a crashed worker by at most this; renewed per page
_PG_LOCK_CLASS = 0x43_52_59_4F  # "CRYO": the advisory-lock namespace of market updates


class UpdateError(Exception):
    """An update that cannot start: nothing to resume from, bad arguments."""


class MarketBusy(Exception):
    """Another update of the same market holds the lock."""


class LockLost(Exception):
    """The update lock expired under a running update (it stalled past LOCK_TTL_SECONDS)."""


@dataclass(frozen=True, slots=True)
class UpdateResult:
    market: str
    provider: str
    interval: str
    status: str  # "updated", "up-to-date", "already-running", "failed", "refused"
    fetched: int = 0
    inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    pages: int = 0
    gaps: int = 0
    missing_bars: int = 0
    last_stored: datetime | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_stored"] = self.last_stored.isoformat() if self.last_stored else None
        return data


class UpdateFailed(Exception):
    """Fetching stopped part-way; ``result`` says what was stored and where to resume."""

    def __init__(self, result: UpdateResult) -> None:
        self.result = result
        last = f"{result.last_stored:%Y-%m-%d %H:%M:%S} UTC" if result.last_stored else "none"
        super().__init__(
            f"{result.message}; {result.inserted:,} new candles were stored before the failure, "
            f"last stored candle: {last}; the next run resumes from there"
        )


def market_for_update(
    exchange: str, symbol: str, *, provider: str | None = None, interval: str = "1m"
) -> Market:
    """The market ``exchange:symbol``, created if new, once the provider is known to quote it."""
    if exchange not in Exchange.values:
        raise UpdateError(f"unknown exchange {exchange!r}; one of {', '.join(Exchange.values)}")
    market = Market.objects.filter(exchange=exchange, symbol=normalise_symbol(symbol)).first()
    if market is not None:
        return market
    base, quote = split_symbol(symbol)
    candidate = Market(
        exchange=exchange, symbol=normalise_symbol(symbol), base_asset=base, quote_asset=quote
    )
    name = provider or provider_default_for(candidate)
    provider_get(name).check_market(candidate, parse_interval(interval))
    market, _ = Market.objects.get_or_create(
        exchange=exchange,
        symbol=candidate.symbol,
        defaults={"base_asset": base, "quote_asset": quote},
    )
    return market


def market_update(
    market: Market,
    *,
    provider: str | CandleProvider,
    interval: str | Interval,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> UpdateResult:
    """Fetch and store every closed candle after the newest stored one (or from ``since``).

    Raises MarketMismatch when the provider does not quote this market, UpdateError
    when there is nothing to resume from and no ``since``, UpdateFailed when the
    provider fails part-way. Another update of the market running gives status
    "already-running".
    """
    interval = parse_interval(interval) if isinstance(interval, str) else interval
    source = provider_get(provider) if isinstance(provider, str) else provider
    source.check_market(market, interval)
    now_s = int((now or datetime.now(UTC)).timestamp())
    end_s = min(now_s, int(until.timestamp())) if until else now_s
    try:
        with market_update_lock(market) as keepalive:
            return _fetch_and_store(
                market, source, interval, since, end_s, now_s, progress, keepalive
            )
    except MarketBusy:
        return UpdateResult(
            str(market),
            source.name,
            interval.code,
            "already-running",
            message=f"an update of {market} is already running; this one exits",
        )


def _fetch_and_store(
    market: Market,
    source: CandleProvider,
    interval: Interval,
    since: datetime | None,
    end_s: int,
    now_s: int,
    progress: Progress | None,
    keepalive: Callable[[], None],
) -> UpdateResult:
    last = market_last_open_time(market, interval)
    if since is not None:
        start_s = int(since.timestamp())
    elif last is not None:
        start_s = int(last.timestamp()) + interval.seconds
    else:
        raise UpdateError(
            f"no {interval.code} candles of {market} are stored yet: "
            "pass --since to say where to start"
        )
    expected = max(0, (end_s - start_s) // interval.seconds)
    result = UpdateResult(str(market), source.name, interval.code, "up-to-date", last_stored=last)
    previous = int(last.timestamp()) if last is not None and since is None else None
    try:
        for page in source.pages(market, interval, start_s, end_s, now=now_s):
            stored = candles_upsert(
                market, interval, [page.chunk], source=f"{source.name} {page.url}"
            )
            keepalive()
            first = int(page.chunk.open_time[0])
            gaps, missing = stored.gap_count, stored.missing_bars
            if previous is not None and first - previous > interval.seconds:
                gaps += 1
                missing += (first - previous) // interval.seconds - 1
            previous = int(page.chunk.open_time[-1])
            newest = stored.last_open_time
            result = replace(
                result,
                status="updated",
                fetched=result.fetched + stored.rows,
                inserted=result.inserted + stored.inserted,
                duplicates=result.duplicates + stored.duplicates,
                conflicts=result.conflicts + stored.conflicts,
                pages=result.pages + 1,
                gaps=result.gaps + gaps,
                missing_bars=result.missing_bars + missing,
                last_stored=max(filter(None, (result.last_stored, newest)), default=None),
            )
            if progress is not None:
                progress(result.fetched, max(expected, result.fetched))
    except (ProviderError, CandleDataError, LockLost) as exc:
        logger.warning("update of %s %s stopped: %s", market, interval.code, exc)
        raise UpdateFailed(replace(result, status="failed", message=str(exc))) from exc
    return result


def markets_update_tracked(
    *,
    provider: str | None = None,
    interval: str | None = None,
    progress_for: Callable[[Market, str], Progress | None] | None = None,
    now: datetime | None = None,
) -> list[UpdateResult]:
    """Update every tracked market at each interval it has (or the default).

    Never raises for one market: its failure is a result with status "failed" or "refused".

    A market with no candles yet starts ``UPDATE_BACKFILL_HOURS`` back.
    """
    now = now or datetime.now(UTC)
    results: list[UpdateResult] = []
    for market in Market.objects.filter(tracked=True).order_by("exchange", "symbol"):
        name = provider or provider_default_for(market)
        codes = [interval] if interval else _stored_intervals(market)
        for code in codes or [str(settings.UPDATE_DEFAULT_INTERVAL)]:
            since = None
            if market_last_open_time(market, parse_interval(code)) is None:
                since = now - timedelta(hours=settings.UPDATE_BACKFILL_HOURS)
            progress = progress_for(market, code) if progress_for else None
            try:
                results.append(
                    market_update(
                        market,
                        provider=name,
                        interval=code,
                        since=since,
                        progress=progress,
                        now=now,
                    )
                )
            except UpdateFailed as exc:
                results.append(exc.result)
            except (MarketMismatch, UpdateError, ValueError) as exc:
                logger.warning("update of %s %s refused: %s", market, code, exc)
                results.append(UpdateResult(str(market), name, code, "refused", message=str(exc)))
    return results


def _stored_intervals(market: Market) -> list[str]:
    return list(
        Candle.objects.filter(market=market)
        .order_by()
        .values_list("interval", flat=True)
        .distinct()
    )


# --- Locks -----------------------------------------------------------------------------


@contextlib.contextmanager
def market_update_lock(market: Market) -> Iterator[Callable[[], None]]:
    """Hold the update lock of ``market`` (raises MarketBusy); yields a keep-alive callable."""
    if settings.REDIS_URL:
        lock_cm = _redis_lock(market)
    elif connection.vendor == "postgresql":
        lock_cm = _postgres_lock(market)
    else:
        lock_cm = _file_lock(market)
    with lock_cm as keepalive:
        yield keepalive


def _database_key() -> str:
    """Tells databases apart, so test databases and the real one never share a lock."""
    name = str(connection.settings_dict.get("NAME") or "")
    if "memory" in name:  # an in-memory SQLite database belongs to this process alone
        name += f"-{os.getpid()}"
    return hashlib.sha1(name.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _redis_lock(market: Market) -> Iterator[Callable[[], None]]:
    import redis

    client = redis.Redis.from_url(str(settings.REDIS_URL), **settings.REDIS_CLIENT_KWARGS)
    lock = client.lock(
        f"cryptooracle:market-update:{_database_key()}:{market.pk}",
        timeout=LOCK_TTL_SECONDS,
        blocking=False,
    )
    if not lock.acquire(blocking=False):
        client.close()
        raise MarketBusy(str(market))

    def keepalive() -> None:
        try:
            lock.reacquire()
        except redis.exceptions.LockError as exc:
            raise LockLost(
                f"the update lock of {market} expired; stopping so as not to overlap"
            ) from exc

    try:
        yield keepalive
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
        client.close()


@contextlib.contextmanager
def _postgres_lock(market: Market) -> Iterator[Callable[[], None]]:
    # A connection of its own: the lock lives as long as that session, whatever
    # the transactions of the update do, and dies with a crashed worker.
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with own.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", [_PG_LOCK_CLASS, market.pk % 2**31]
            )
            (acquired,) = cursor.fetchone()
        if not acquired:
            raise MarketBusy(str(market))
        yield lambda: None
    finally:
        own.close()  # ends the session, which releases the advisory lock


@contextlib.contextmanager
def _file_lock(market: Market) -> Iterator[Callable[[], None]]:
    directory = Path(settings.VAR_DIR) / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"market-update-{_database_key()}-{market.pk}.lock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MarketBusy(str(market)) from None
        yield lambda: None
    finally:
        os.close(fd)  # closing the descriptor releases the lock
