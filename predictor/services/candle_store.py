"""The one write path for candles: validated, idempotent, fast, all-or-nothing.

Every source — CSV import, exchange APIs — hands :func:`candles_upsert` a stream
of :class:`CandleChunk`. A chunk that continues the stream in time order, over a
time range where no candle of the market is stored, goes straight into the
candle table (PostgreSQL: binary ``COPY``; SQLite: ``executemany``). Any other
chunk goes to a temporary staging table, where the rows are checked as a whole
(grid, duplicates, conflicts with stored candles) and then merged into the
candle table with ``INSERT … ON CONFLICT DO NOTHING`` (or an ``UPDATE`` first
with ``replace=True``). Should the stream turn out not to be in order, the rows
written straight in move to the stage first, so that a time repeated anywhere in
the stream is checked the same way. It all happens in one transaction: a bad row
anywhere means nothing of the batch is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction

from predictor.ml.candles import CandleChunk, CandleInputError
from predictor.ml.intervals import Interval
from predictor.models import Candle, Market
from predictor.services.candle_copy import (
    FIELDS,
    IV,
    REPLACED,
    STAGE,
    Direct,
    Stage,
    stage_join,
    time_sql,
    utc,
)


class CandleDataError(CandleInputError):
    """Candles that break a rule; nothing of their batch was written."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """A candle whose stored values differ from the incoming ones."""

    open_time: datetime
    line: int
    stored: tuple[float, ...]
    incoming: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class UpsertResult:
    rows: int
    inserted: int
    duplicates: int  # identical rows: repeated in the input or already stored
    conflicts: int  # stored candles whose values differ (kept unless replace=True)
    replaced: int
    first_open_time: datetime | None
    last_open_time: datetime | None
    gap_count: int
    largest_gap_seconds: int
    missing_bars: int
    conflict_examples: tuple[Conflict, ...] = ()


@dataclass
class _Scan:
    """Running checks over the stream: order, range and gaps without keeping rows."""

    interval: Interval
    rows: int = 0
    ordered: bool = True  # strictly monotonic so far (either direction)
    direction: int = 0
    last: int | None = None
    first_ts: int | None = None
    last_ts: int | None = None
    gaps: int = 0
    largest_gap: int = 0
    missing: int = 0

    def add(self, times: np.ndarray) -> None:
        self.rows += times.size
        lo, hi = int(times.min()), int(times.max())
        self.first_ts = lo if self.first_ts is None else min(lo, self.first_ts)
        self.last_ts = hi if self.last_ts is None else max(hi, self.last_ts)
        if not self.ordered:
            return
        joined = times if self.last is None else np.concatenate(([self.last], times))
        steps = np.diff(joined)
        if steps.size:
            direction = 1 if steps[0] > 0 else -1
            if self.direction == 0:
                self.direction = direction
            if (steps * self.direction <= 0).any():
                self.ordered = False
                return
            self._gaps(np.abs(steps))
        self.last = int(times[-1])

    @property
    def rising(self) -> bool:
        """Everything so far came in strictly increasing time order."""
        return self.ordered and self.direction >= 0

    def _gaps(self, steps: np.ndarray) -> None:
        big = steps[steps > self.interval.seconds]
        if big.size:
            self.gaps += int(big.size)
            self.largest_gap = max(self.largest_gap, int(big.max()))
            self.missing += int((big // self.interval.seconds - 1).sum())


def candles_upsert(
    market: Market,
    interval: Interval,
    chunks: Iterable[CandleChunk],
    *,
    replace: bool = False,
    source: str = "",
    progress: Callable[[int], None] | None = None,
) -> UpsertResult:
    """Validate and store candles of one market and interval, atomically."""
    source = source or f"{market} {interval}"
    scan = _Scan(interval)
    # On an error the transaction (or savepoint) rolls back, the staging table
    # with it: DDL is transactional on both PostgreSQL and SQLite.
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Imports are idempotent and re-runnable: losing the last commit in a
            # crash costs a re-run, never consistency, and saves a WAL flush wait.
            with connection.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit TO OFF")
        stage, direct = Stage(), Direct(market, interval)
        for chunk in chunks:
            if not len(chunk):
                continue
            _check_chunk(chunk, interval, source)
            scan.add(chunk.open_time)
            if not (scan.rising and direct.write(chunk)):
                stage.write(chunk)
            if progress is not None:
                progress(len(chunk))
        if scan.rows == 0:
            result = UpsertResult(0, 0, 0, 0, 0, None, None, 0, 0, 0)
        else:
            result = _merge(stage, direct, scan, replace, source)
        stage.drop()
        if result.inserted or result.replaced:
            # Cached reads of this market's candles (coverage counts, resampled bars,
            # charts) are keyed by its token: a new one, committed with the candles.
            market.candles_token = uuid.uuid4().hex
            Market.objects.filter(pk=market.pk).update(candles_token=market.candles_token)
    return result


def _check_chunk(chunk: CandleChunk, interval: Interval, source: str) -> None:
    problem = chunk.first_invalid()
    if problem is not None:
        row, field, reason = problem
        raise CandleDataError(source, reason, line=int(chunk.line[row]), field=field)
    off = ~interval.on_grid(chunk.open_time)
    if off.any():
        row = int(np.argmax(off))
        when = utc(int(chunk.open_time[row]))
        raise CandleDataError(
            source,
            f"open time {when:%Y-%m-%d %H:%M:%S} is off the {interval} grid",
            line=int(chunk.line[row]),
            field="time",
        )


def _fetch(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute(sql, params or [])
        return list(cur.fetchall())


def _execute(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return int(cur.rowcount)


def _dedupe_stage(source: str) -> int:
    """Same time twice: identical rows collapse, different ones are an error."""
    differs = " OR ".join(f"MIN({f}) <> MAX({f})" for f in FIELDS)
    rows = _fetch(
        f"SELECT ts, MIN(line), MAX(line), COUNT(*), CASE WHEN {differs} THEN 1 ELSE 0 END "
        f"FROM {STAGE} GROUP BY ts HAVING COUNT(*) > 1 ORDER BY MIN(line)"
    )
    for ts, first, second, _count, conflicting in rows:
        if conflicting:
            raise CandleDataError(
                source,
                f"{utc(int(ts)):%Y-%m-%d %H:%M:%S} appears again with different values "
                f"(first on line {first})",
                line=int(second),
                field="time",
            )
    if not rows:
        return 0
    _execute(
        f"DELETE FROM {STAGE} WHERE line NOT IN (SELECT MIN(line) FROM {STAGE} GROUP BY ts)", []
    )
    return sum(int(r[3]) - 1 for r in rows)


def _stage_gaps(scan: _Scan) -> None:
    step = scan.interval.seconds
    ((count, largest, missing),) = _fetch(
        f"SELECT COUNT(*), COALESCE(MAX(d), 0), COALESCE(SUM(d / {step} - 1), 0) FROM "
        f"(SELECT ts - LAG(ts) OVER (ORDER BY ts) AS d FROM {STAGE}) q WHERE d > {step}"
    )
    scan.gaps, scan.largest_gap, scan.missing = int(count), int(largest), int(missing)


@dataclass
class _Merged:
    inserted: int = 0
    stored_identical: int = 0
    conflicts: int = 0
    replaced: int = 0
    examples: tuple[Conflict, ...] = ()


def _merge(stage: Stage, direct: Direct, scan: _Scan, replace: bool, source: str) -> UpsertResult:
    in_file_duplicates = 0
    if not scan.ordered:
        # A time may repeat anywhere in the stream: every row must be in the stage.
        direct.move_to(stage)
        in_file_duplicates = _dedupe_stage(source)
        _stage_gaps(scan)
    # In an ordered stream every time is new to it, so the rows written straight in
    # cannot meet the staged ones; the stream's own gaps were counted on the way.
    merged = _merge_stage(stage, direct.key, replace) if stage.rows else _Merged()
    return UpsertResult(
        rows=scan.rows,
        inserted=direct.rows + merged.inserted,
        duplicates=in_file_duplicates + merged.stored_identical,
        conflicts=merged.conflicts,
        replaced=merged.replaced,
        first_open_time=utc(scan.first_ts),
        last_open_time=utc(scan.last_ts),
        gap_count=scan.gaps,
        largest_gap_seconds=scan.largest_gap,
        missing_bars=scan.missing,
        conflict_examples=merged.examples,
    )


def _merge_stage(stage: Stage, key: list[Any], replace: bool) -> _Merged:
    table = Candle._meta.db_table
    join = (
        f"FROM {STAGE} s {stage_join()} {table} c ON c.market_id = %s AND c.{IV} = %s "
        f"AND c.open_time = {time_sql('s.ts')}"
    )
    differs = " OR ".join(f"c.{f} <> s.{f}" for f in FIELDS)
    merged = _Merged()
    overlaps = Candle.objects.filter(
        market_id=key[0],
        interval=key[1],
        open_time__range=(utc(stage.first_ts), utc(stage.last_ts)),
    ).exists()
    if overlaps:
        ((matched, conflicts),) = _fetch(
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {differs} THEN 1 ELSE 0 END), 0) {join}", key
        )
        merged.conflicts = int(conflicts)
        merged.stored_identical = int(matched) - merged.conflicts
        if merged.conflicts:
            merged.examples = _conflict_examples(join, differs, key)
        if merged.conflicts and replace:
            merged.replaced = _replace(table, join, differs, key)
    merged.inserted = _insert(table, key, maybe_conflicting=overlaps)
    return merged


def _insert(table: str, key: list[Any], *, maybe_conflicting: bool) -> int:
    """Merge the stage into the candle table; returns the rows inserted.

    When no stored candle falls in the stage's time range (a first import, or
    new data after the last candle) a plain INSERT is enough and ~40 % faster
    than ON CONFLICT's speculative insertion; a concurrent writer that slipped
    in between is caught by the unique index and handled by the slow path.
    """
    insert = (
        f"INSERT INTO {table} (market_id, {IV}, open_time, {', '.join(FIELDS)}) "
        f"SELECT %s, %s, {time_sql('s.ts')}, {', '.join('s.' + f for f in FIELDS)} "
        f"FROM {STAGE} s "
        # "WHERE 1 = 1": SQLite would otherwise read ON CONFLICT as a join's ON.
        "WHERE 1 = 1 ORDER BY s.ts"
    )
    if not maybe_conflicting:
        try:
            with transaction.atomic():
                return _execute(insert, key)
        except IntegrityError:
            pass
    return _execute(f"{insert} ON CONFLICT (market_id, {IV}, open_time) DO NOTHING", key)


def _conflict_examples(join: str, differs: str, key: list[Any]) -> tuple[Conflict, ...]:
    cols = ", ".join(f"c.{f}" for f in FIELDS) + ", " + ", ".join(f"s.{f}" for f in FIELDS)
    rows = _fetch(
        f"SELECT s.ts, s.line, {cols} {join} WHERE {differs} ORDER BY s.line LIMIT 5", key
    )
    return tuple(
        Conflict(
            datetime.fromtimestamp(int(r[0]), tz=UTC),
            int(r[1]),
            tuple(map(float, r[2:7])),
            tuple(map(float, r[7:12])),
        )
        for r in rows
    )


def _replace(table: str, join: str, differs: str, key: list[Any]) -> int:
    if connection.vendor == "sqlite":
        return _replace_sqlite(table, join, differs, key)
    assignments = ", ".join(f"{f} = s.{f}" for f in FIELDS)
    return _execute(
        f"UPDATE {table} AS c SET {assignments} FROM {STAGE} s WHERE c.market_id = %s "
        f"AND c.{IV} = %s AND c.open_time = {time_sql('s.ts')} AND ({differs})",
        key,
    )


def _replace_sqlite(table: str, join: str, differs: str, key: list[Any]) -> int:
    """SQLite's ``UPDATE … FROM`` takes no join order: given the key, its planner drives
    the update from (market, interval) with the stage scanned per candle, and given a
    subquery it flattens it and does the same. So the differing candles' rowids and new
    values are found first (stage outer) into a table of their own, which then drives
    the update by rowid."""
    values = ", ".join(f"s.{f}" for f in FIELDS)
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {REPLACED}")
        cur.execute(
            f"CREATE TEMPORARY TABLE {REPLACED} AS "
            f"SELECT c.rowid AS candle, {values} {join} WHERE {differs}",
            key,
        )
        cur.execute(
            f"UPDATE {table} AS c SET {', '.join(f'{f} = r.{f}' for f in FIELDS)} "
            f"FROM {REPLACED} r WHERE c.rowid = r.candle"
        )
        replaced = int(cur.rowcount)
        cur.execute(f"DROP TABLE {REPLACED}")
    return replaced


def market_last_open_time(market: Market, interval: Interval | str) -> datetime | None:
    """The newest stored open time of a market at an interval."""
    latest = (
        Candle.objects.filter(market=market, interval=interval)
        .order_by("-open_time")
        .values_list("open_time", flat=True)
        .first()
    )
    return latest
