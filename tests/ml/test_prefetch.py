"""Reading ahead in a thread: same items, same errors, no thread left behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from predictor.ml.csvformats import CandleReader, detect_layout
from predictor.ml.csvsources import CandleFileError, Source
from predictor.ml.prefetch import prefetched

T0 = 1_704_067_200
HEADER = "timestamp,open,high,low,close,volume\n"


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def _counting(produced: list[int], closed: list[str], limit: int | None = None) -> Iterator[int]:
    """0, 1, 2, … (forever without ``limit``), noting each item and which thread closed it."""
    n = 0
    try:
        while limit is None or n < limit:
            produced.append(n)
            yield n
            n += 1
    finally:
        closed.append(threading.current_thread().name)


def test_items_arrive_in_order_and_the_thread_ends_with_the_block() -> None:
    produced: list[int] = []
    closed: list[str] = []
    with prefetched(_counting(produced, closed, limit=50), name="t-order") as items:
        assert list(items) == list(range(50))
    assert not _threads("t-order")
    assert closed == ["t-order"]


def test_an_early_stop_stops_the_producer_and_closes_its_source_in_its_thread() -> None:
    produced: list[int] = []
    closed: list[str] = []
    with prefetched(_counting(produced, closed), ahead=2, name="t-early") as items:
        assert next(items) == 0
        time.sleep(0.2)
        # One taken, two queued, one made and waiting for room: never more.
        assert len(produced) <= 4
    assert not _threads("t-early")
    assert closed == ["t-early"]  # the endless source was closed, by its own thread


def _read(items: Iterable[object], seen: list[object], *, fail_at: int = -1) -> None:
    """Read ``items`` into ``seen`` inside a read-ahead block, failing at item ``fail_at``."""
    with prefetched(items, name="t-read") as ahead:
        for n, item in enumerate(ahead):
            if n == fail_at:
                raise RuntimeError("write failed")
            seen.append(item)


def test_an_error_in_the_consumer_stops_the_producer() -> None:
    produced: list[int] = []
    closed: list[str] = []
    with pytest.raises(RuntimeError, match="write failed"):
        _read(_counting(produced, closed), [], fail_at=3)
    assert not _threads("t-read")
    assert closed == ["t-read"]


def test_the_producers_exception_arrives_unchanged_after_the_items_before_it() -> None:
    error = ValueError("bad row")

    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise error

    seen: list[object] = []
    with pytest.raises(ValueError, match="bad row") as caught:
        _read(failing(), seen)
    assert caught.value is error
    assert seen == [1, 2]
    assert not _threads("t-read")


def test_a_bad_row_in_a_late_chunk_is_reported_with_its_line_as_without_the_thread(
    write_csv: Callable[..., Path],
) -> None:
    good = "".join(
        f"{(T0 + 60 * i) * 1000},{100 + i},{102 + i},{99 + i},{101 + i},5\n" for i in range(30)
    )
    path = write_csv("BTCUSDT_1m.csv", HEADER + good + f"{(T0 + 1800) * 1000},100,oops,99,101,5\n")
    source = Source(path)

    def reader() -> CandleReader:
        return CandleReader(source, detect_layout(source), chunk_rows=4)

    with pytest.raises(CandleFileError) as plain:
        list(reader().chunks())
    chunks: list[object] = []
    with pytest.raises(CandleFileError) as ahead:
        _read(reader().chunks(), chunks)
    assert len(chunks) == 7  # the 30 good rows: 7 full chunks, the 8th holds the bad row
    assert (
        (ahead.value.line, ahead.value.field)
        == (plain.value.line, plain.value.field)
        == (32, "high")
    )
    assert str(ahead.value) == str(plain.value)


def test_ahead_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"), prefetched([1], ahead=0):
        pass
