"""``candles_upsert``: chunks written straight into the candle table and chunks staged, mixed."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from predictor.ml.candles import CandleChunk
from predictor.ml.intervals import parse_interval
from predictor.models import Candle, Market
from predictor.services.candle_copy import DEMOTED, REPLACED, STAGE, Direct
from predictor.services.candle_store import CandleDataError, candles_upsert

pytestmark = pytest.mark.django_db

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
M1 = parse_interval("1m")


def chunk(minutes: list[int], *, price: float = 100.0, first_line: int = 2) -> CandleChunk:
    """Candles at ``T0 + minute`` in the order given, close = ``price + minute``."""
    n = len(minutes)
    close = price + np.asarray(minutes, dtype=np.float64)
    return CandleChunk(
        open_time=T0 + 60 * np.asarray(minutes, dtype=np.int64),
        open=close - 0.5,
        high=close + 1.0,
        low=close - 1.0,
        close=close,
        volume=np.full(n, 2.5),
        line=np.arange(first_line, first_line + n, dtype=np.int64),
    )


@pytest.fixture
def market() -> Market:
    return Market.objects.create(exchange="binance", symbol="BTCUSDT")


def closes(market: Market) -> dict[int, float]:
    rows = Candle.objects.filter(market=market).order_by("open_time")
    return {int(c.open_time.timestamp() - T0) // 60: c.close for c in rows}


def test_an_ordered_stream_over_an_empty_range_never_touches_the_stage(market: Market) -> None:
    interval = parse_interval("15m")  # a three-letter code: the text field's length varies
    times = T0 + 900 * np.array([0, 1, 2, 5], dtype=np.int64)
    values = np.array([0.1 + 0.2, 1e-8, 123456789.123456789, 7.0])
    data = CandleChunk(times, values, values * 2, values / 2, values, values, np.arange(4))
    with CaptureQueriesContext(connection) as queries:
        result = candles_upsert(market, interval, [data])
    assert not any(STAGE in q["sql"] for q in queries.captured_queries)
    assert (result.rows, result.inserted, result.duplicates) == (4, 4, 0)
    assert (result.gap_count, result.largest_gap_seconds, result.missing_bars) == (1, 2700, 2)
    stored = list(Candle.objects.filter(market=market).order_by("open_time"))
    assert [int(c.open_time.timestamp()) for c in stored] == times.tolist()
    assert [c.close for c in stored] == values.tolist()  # bit for bit
    assert [c.high for c in stored] == (values * 2).tolist()
    assert {c.interval for c in stored} == {"15m"}


def test_an_ordered_stream_looks_for_stored_candles_once_not_per_chunk(market: Market) -> None:
    candles_upsert(market, M1, [chunk([50, 51])])  # stored further on
    stream = [chunk([0, 1]), chunk([2, 3]), chunk([4, 5]), chunk([49, 50]), chunk([60, 61])]
    with CaptureQueriesContext(connection) as queries:
        result = candles_upsert(market, M1, stream)
    lookups = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "predictor_candle" in q["sql"]
    ]
    # One finds minute 50 ahead, which serves 0-5 and sends 49-50 to the stage; once the
    # stream is past it, one more for 60-61.
    assert len([q for q in lookups if '"open_time" >=' in q]) == 2
    assert (result.rows, result.inserted, result.duplicates) == (10, 9, 1)
    assert sorted(closes(market)) == [0, 1, 2, 3, 4, 5, 49, 50, 51, 60, 61]


def test_an_identical_repeat_of_a_directly_written_chunk_is_a_duplicate(market: Market) -> None:
    first = chunk([0, 1, 2, 3, 4])
    again = chunk([3, 4], first_line=7)  # out of order: staged, overlapping the first
    result = candles_upsert(market, M1, [first, again])
    assert (result.rows, result.inserted, result.duplicates, result.conflicts) == (7, 5, 2, 0)
    assert (result.gap_count, result.missing_bars) == (0, 0)
    assert closes(market) == {m: 100.0 + m for m in range(5)}


def test_a_different_repeat_of_a_directly_written_chunk_is_an_error(market: Market) -> None:
    first = chunk([0, 1, 2, 3, 4])
    again = chunk([2, 3], price=200.0, first_line=7)
    with pytest.raises(CandleDataError) as caught:
        candles_upsert(market, M1, [first, again], source="BTCUSDT_1m.csv")
    message = str(caught.value)
    assert "BTCUSDT_1m.csv, line 7, field 'time'" in message
    assert "2024-01-01 00:02:00 appears again with different values (first on line 4)" in message
    assert Candle.objects.count() == 0


def test_gaps_of_an_unordered_stream_span_direct_and_staged_chunks(market: Market) -> None:
    later, earlier = chunk([10, 11, 12]), chunk([0, 1, 2], first_line=5)
    result = candles_upsert(market, M1, [later, earlier])
    assert (result.inserted, result.duplicates) == (6, 0)
    assert (result.gap_count, result.largest_gap_seconds, result.missing_bars) == (1, 480, 7)
    assert sorted(closes(market)) == [0, 1, 2, 10, 11, 12]


def test_a_chunk_over_stored_candles_merges_and_reports_conflicts(market: Market) -> None:
    candles_upsert(market, M1, [chunk([0, 1, 2, 3, 4])])
    overlapping = chunk([3, 4, 5, 6], price=200.0)  # conflicts at 3 and 4
    after = chunk([9, 10], price=200.0, first_line=6)  # nothing stored there: straight in
    result = candles_upsert(market, M1, [overlapping, after])
    assert (result.rows, result.inserted, result.duplicates, result.conflicts) == (6, 4, 0, 2)
    assert [c.line for c in result.conflict_examples] == [2, 3]
    assert result.conflict_examples[0].stored[3] == 103.0
    assert result.conflict_examples[0].incoming[3] == 203.0
    assert (result.gap_count, result.largest_gap_seconds, result.missing_bars) == (1, 180, 2)
    assert closes(market) == {
        0: 100,
        1: 101,
        2: 102,
        3: 103,
        4: 104,
        5: 205,
        6: 206,
        9: 209,
        10: 210,
    }

    again = candles_upsert(market, M1, [overlapping, after], replace=True)
    assert (again.inserted, again.duplicates, again.conflicts, again.replaced) == (0, 4, 2, 2)
    assert closes(market)[3] == 203.0


def test_a_writer_slipping_in_after_the_check_sends_the_chunk_to_the_stage(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    candles_upsert(market, M1, [chunk([0, 1, 2])])
    # As if another transaction had stored these candles after the range was found empty.
    monkeypatch.setattr(Direct, "stored_between", lambda self, first, last: False)
    result = candles_upsert(market, M1, [chunk([1, 2, 3], price=200.0)])
    assert (result.inserted, result.duplicates, result.conflicts) == (1, 0, 2)
    assert closes(market) == {0: 100.0, 1: 101.0, 2: 102.0, 3: 203.0}


def test_chunks_after_the_stream_turns_back_are_staged_without_a_try(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[list[int]] = []
    write = Direct.write

    def spy(self: Direct, data: CandleChunk) -> bool:
        tried.append(((data.open_time - T0) // 60).tolist())
        return write(self, data)

    monkeypatch.setattr(Direct, "write", spy)
    stream = [chunk([0, 1]), chunk([5, 6]), chunk([3, 4]), chunk([7, 8]), chunk([9, 10])]
    result = candles_upsert(market, M1, stream)
    assert tried == [[0, 1], [5, 6]]
    assert (result.inserted, result.duplicates, result.missing_bars) == (10, 0, 1)  # minute 2


def test_a_newest_first_stream_after_a_one_row_chunk_is_stored_whole(market: Market) -> None:
    result = candles_upsert(market, M1, [chunk([9]), chunk([8, 7, 4], first_line=3)])
    assert (result.rows, result.inserted, result.duplicates) == (4, 4, 0)
    assert (result.gap_count, result.largest_gap_seconds, result.missing_bars) == (1, 180, 2)
    assert sorted(closes(market)) == [4, 7, 8, 9]


def test_a_bad_chunk_after_a_direct_one_leaves_nothing_written(market: Market) -> None:
    bad = chunk([5, 6])
    bad.high[1] = 1.0  # below low
    with pytest.raises(CandleDataError, match="line 3, field 'high'"):
        candles_upsert(market, M1, [chunk([0, 1, 2]), bad])
    assert Candle.objects.count() == 0


def test_candles_are_deleted_and_fetched_by_their_composite_key(market: Market) -> None:
    candles_upsert(market, M1, [chunk([0, 1, 2, 3, 4])])
    at = datetime.fromtimestamp(T0 + 120, tz=UTC)
    one = Candle.objects.get(pk=(market.pk, "1m", at))
    assert (one.pk, one.close) == ((market.pk, "1m", at), 102.0)
    deleted, _ = Candle.objects.filter(market=market, open_time__gte=at).delete()
    assert deleted == 3
    assert sorted(closes(market)) == [0, 1]


def test_binary_copy_payload_is_postgresqls_format_read_in_blocks() -> None:
    import struct

    from predictor.services.candle_copy import _pg_binary

    times = np.array([T0, T0 + 60], dtype=np.int64)
    close = np.array([1.5, -2.25])
    columns = {"market_id": 7, '"interval"': "15m", "open_time": times, "close": close}
    payload = _pg_binary(columns, 2, "open_time")
    blocks = []
    while block := payload.read(5):
        blocks.append(block)
    expected = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    for ts, price in zip(times.tolist(), close.tolist(), strict=True):
        micros = (ts - 946_684_800) * 1_000_000
        expected += struct.pack(">hiqi3siqid", 4, 8, 7, 3, b"15m", 8, micros, 8, price)
    expected += b"\xff\xff"
    assert b"".join(blocks) == expected
    assert max(len(b) for b in blocks) == 5


def _plans_with_candles() -> tuple[list[list[str]], object]:
    """A connection wrapper keeping SQLite's plan of each statement that reads a
    temporary table together with the candle table, and the list it keeps them in."""
    plans: list[list[str]] = []
    temporary = (STAGE, DEMOTED, REPLACED)

    def explain(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        both = "predictor_candle" in sql and any(name in sql for name in temporary)
        ddl = sql.startswith(("DROP", "CREATE")) and " AS SELECT " not in sql
        if both and not many and not ddl:
            cur = context["cursor"].cursor
            cur.execute("EXPLAIN QUERY PLAN " + sql, params)
            plans.append([str(row[3]) for row in cur.fetchall()])
        return execute(sql, params, many, context)

    return plans, explain


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner")
def test_sqlite_merges_look_each_candle_up_by_its_whole_key(market: Market) -> None:
    # No ANALYZE has run: the planner's guess, not statistics, picks the join order.
    candles_upsert(market, M1, [chunk(list(range(20)))])
    plans, explain = _plans_with_candles()
    with connection.execute_wrapper(explain):
        changed = candles_upsert(market, M1, [chunk(list(range(10, 30)), price=200.0)])
        assert (changed.inserted, changed.conflicts) == (10, 10)
        replaced = candles_upsert(market, M1, [chunk([5, 6, 7], price=300.0)], replace=True)
        assert (replaced.conflicts, replaced.replaced, replaced.inserted) == (3, 3, 0)
        # Out of order: the rows written straight in move to the stage through a join too.
        unordered = candles_upsert(market, M1, [chunk([40, 41]), chunk([0, 1])])
        assert (unordered.inserted, unordered.duplicates) == (2, 2)
    candle_steps = [
        [step for step in plan if step.split()[1] in ("c", "predictor_candle")] for plan in plans
    ]
    # Count and examples of the first two, the replaced rows and the update; the move to
    # the stage, back out of the candle table, and the count of the third.
    assert sum(1 for steps in candle_steps if steps) == 9
    for step, plan in ((s, p) for steps, p in zip(candle_steps, plans, strict=True) for s in steps):
        # Looked up per row of the temporary table by (market, interval, open time) or by
        # rowid; never (market, interval) read as the outer loop, the stage scanned per candle.
        assert "open_time=?)" in step or "(rowid=?)" in step, plan
    stored = closes(market)
    assert (stored[4], stored[7], stored[12], stored[25]) == (104.0, 307.0, 112.0, 225.0)
