"""Migrations 0003 (re-keying the candle table) and 0005 (intervals as seconds) keep
every stored candle, both ways."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("predictor", "0002_training_sessions")
AFTER = ("predictor", "0003_candle_composite_primary_key")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
KEY = ["market_id", "interval", "open_time"]


def _migrate(target: tuple[str, str]) -> Any:
    """Migrate to ``target``; the historical models there."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def _primary_key() -> list[str]:
    """The candle table's primary key columns, in key order."""
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            # Django's introspection lists them in table order; the pragma has the key order.
            cur.execute("PRAGMA table_info(predictor_candle)")
            return [r[1] for r in sorted(cur.fetchall(), key=lambda r: r[5]) if r[5]]
        constraints = connection.introspection.get_constraints(cur, "predictor_candle")
    (key,) = [c["columns"] for c in constraints.values() if c["primary_key"]]
    return list(key)


def _stored() -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute(
            'SELECT m.symbol, c."interval", c.open_time, c.open, c.high, c.low, c.close, c.volume '
            "FROM predictor_candle c JOIN predictor_market m ON m.id = c.market_id "
            'ORDER BY m.symbol, c."interval", c.open_time'
        )
        return [(*r[:2], _aware(r[2]), *r[3:]) for r in cur.fetchall()]


def _aware(value: Any) -> datetime:
    # SQLite hands the raw column back as text.
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _parked_at(target: tuple[str, str]) -> Iterator[Any]:
    """The database migrated back to ``target`` for a test (its historical models), and
    forward to the latest migrations after it."""
    apps = _migrate(target)
    try:
        yield apps
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def at_0002(transactional_db: None) -> Iterator[Any]:
    yield from _parked_at(BEFORE)


def test_candles_survive_rekeying_both_ways(at_0002: Any) -> None:
    market_model = at_0002.get_model("predictor", "Market")
    candle_model = at_0002.get_model("predictor", "Candle")
    btc = market_model.objects.create(exchange="binance", symbol="BTCUSDT")
    eth = market_model.objects.create(exchange="binance", symbol="ETHUSDT")
    rows = [
        (market, interval, T0 + timedelta(hours=i), 100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, i)
        for market, interval in ((btc, "1h"), (btc, "1d"), (eth, "1h"))
        for i in range(3)
    ]
    candle_model.objects.bulk_create(
        candle_model(market=m, interval=iv, open_time=t, open=o, high=h, low=lo, close=c, volume=v)
        for m, iv, t, o, h, lo, c, v in rows
    )
    before = _stored()
    assert len(before) == 9
    assert _primary_key() == ["id"]

    Candle = _migrate(AFTER).get_model("predictor", "Candle")
    assert _primary_key() == KEY
    assert _stored() == before
    assert Candle.objects.filter(market_id=btc.pk, interval="1h").count() == 3
    with pytest.raises(IntegrityError), transaction.atomic():
        Candle.objects.create(
            market_id=btc.pk, interval="1h", open_time=T0, open=1, high=1, low=1, close=1, volume=1
        )

    _migrate(BEFORE)
    assert _primary_key() == ["id"]
    assert _stored() == before
    ids = list(candle_model.objects.values_list("id", flat=True))
    assert len(set(ids)) == 9
    with pytest.raises(IntegrityError), transaction.atomic():
        candle_model.objects.create(
            market=btc, interval="1h", open_time=T0, open=1, high=1, low=1, close=1, volume=1
        )
    # A new candle gets an id after the existing ones: the identity continues.
    added = candle_model.objects.create(
        market=eth, interval="1d", open_time=T0, open=1, high=1, low=1, close=1, volume=1
    )
    assert added.id not in ids


BEFORE_SECONDS = ("predictor", "0004_market_candles_token")
SECONDS = ("predictor", "0005_candle_interval_seconds")


@pytest.fixture
def at_0004(transactional_db: None) -> Iterator[Any]:
    yield from _parked_at(BEFORE_SECONDS)


def _raw_intervals() -> list[Any]:
    with connection.cursor() as cur:
        cur.execute('SELECT DISTINCT "interval" FROM predictor_candle ORDER BY 1')
        return [row[0] for row in cur.fetchall()]


def test_intervals_become_seconds_and_codes_again(at_0004: Any) -> None:
    market_model = at_0004.get_model("predictor", "Market")
    candle_model = at_0004.get_model("predictor", "Candle")
    btc = market_model.objects.create(exchange="binance", symbol="BTCUSDT")
    rows = [
        (interval, T0 + timedelta(days=i), 100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, i)
        for interval in ("1m", "15m", "4h", "1d", "1w")
        for i in range(2)
    ]
    candle_model.objects.bulk_create(
        candle_model(
            market=btc, interval=iv, open_time=t, open=o, high=h, low=lo, close=c, volume=v
        )
        for iv, t, o, h, lo, c, v in rows
    )
    before = sorted(_stored())
    assert _raw_intervals() == ["15m", "1d", "1m", "1w", "4h"]

    Candle = _migrate(SECONDS).get_model("predictor", "Candle")
    assert _raw_intervals() == [60, 900, 14_400, 86_400, 604_800]
    assert _primary_key() == KEY
    fields = ("interval", "open_time", "open", "high", "low", "close", "volume")
    after = sorted(("BTCUSDT", *row) for row in Candle.objects.values_list(*fields))
    assert after == before  # read back through the model: the same codes and values
    assert Candle.objects.filter(market_id=btc.pk, interval="4h").count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        Candle.objects.create(
            market_id=btc.pk, interval="1w", open_time=T0, open=1, high=1, low=1, close=1, volume=1
        )

    _migrate(BEFORE_SECONDS)
    assert _raw_intervals() == ["15m", "1d", "1m", "1w", "4h"]
    assert sorted(_stored()) == before


IMPORTED_FILES = ("predictor", "0006_imported_file")


@pytest.fixture
def at_0005(transactional_db: None) -> Iterator[Any]:
    yield from _parked_at(SECONDS)


def _tables() -> set[str]:
    with connection.cursor() as cur:
        return set(connection.introspection.table_names(cur))


def test_the_imported_files_table_comes_and_goes_with_its_migration(at_0005: Any) -> None:
    assert "predictor_importedfile" not in _tables()
    imported_file = _migrate(IMPORTED_FILES).get_model("predictor", "ImportedFile")
    assert "predictor_importedfile" in _tables()
    row = {
        "given_path": "data/BTCUSDT_1m.csv.gz",
        "size": 2_306_048,
        "mtime": T0,
        "sha256": "ab" * 32,
        "imported_at": T0 + timedelta(days=1),
        "rows": 130_708,
        "inserted": 130_708,
        "duplicates": 0,
        "conflicts": 0,
        "replaced": 0,
    }
    imported_file.objects.create(path="/srv/data/BTCUSDT_1m.csv.gz", **row)
    stored = imported_file.objects.get()
    assert (stored.size, stored.mtime, stored.rows) == (2_306_048, T0, 130_708)
    with pytest.raises(IntegrityError), transaction.atomic():
        imported_file.objects.create(path="/srv/data/BTCUSDT_1m.csv.gz", **row)

    _migrate(SECONDS)
    assert "predictor_importedfile" not in _tables()
