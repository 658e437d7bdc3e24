"""How candle rows reach the database in bulk, for :mod:`candle_store`.

Two routes: a temporary staging table (:class:`Stage`), from which the rows are
checked and merged, and straight into the candle table (:class:`Direct`) where
nothing can collide. Both append whole chunks at once: PostgreSQL's binary
``COPY`` laid out by numpy, or one ``executemany`` on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction

from predictor.ml.candles import OHLCV_FIELDS, CandleChunk
from predictor.ml.intervals import Interval
from predictor.models import Candle, Market

STAGE = "candle_stage"
DEMOTED = "candle_demoted"
REPLACED = "candle_replaced"
IV = '"interval"'  # a keyword in PostgreSQL: always quoted
FIELDS = OHLCV_FIELDS
_PG_EPOCH = 946_684_800  # 2000-01-01 UTC, where PostgreSQL's binary timestamps count from
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_BLOCK = 1 << 20

# A column to append: an int64 or float64 array, or one value for every row.
Column = np.ndarray | int | str


def utc(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(int(seconds), tz=UTC)


def time_sql(seconds: str) -> str:
    """SQL turning a column of Unix seconds into a timestamp as the candle table stores it."""
    if connection.vendor == "postgresql":
        return f"to_timestamp({seconds})"
    return f"datetime({seconds}, 'unixepoch')"


def stage_join() -> str:
    """How a temporary table joins the candle table: the temporary table as the outer loop.

    Without statistics (no ``ANALYZE``, or one run while the table was small) SQLite's
    planner guesses that a (market, interval) holds about ten candles, reads those as
    the outer loop and scans the whole temporary table for each: re-importing 1,000
    stored candles took 36 s, 130,708 did not finish in 100 s (docs/benchmarks.md,
    "Re-import"). Its ``CROSS JOIN`` keeps the left table outer whatever the statistics
    say, so each row looks its candle up by the full primary key. PostgreSQL estimates
    both sides and needs no hint.
    """
    return "CROSS JOIN" if connection.vendor == "sqlite" else "JOIN"


def append_rows(table: str, columns: Mapping[str, Column], n: int, *, seconds: str = "") -> None:
    """Append ``n`` rows to ``table``; the column named by ``seconds`` holds Unix seconds
    to be stored as a timestamp. PostgreSQL: one binary COPY laid out by numpy, no per-row
    Python; SQLite: one ``executemany``."""
    names = ", ".join(columns)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            payload = _pg_binary(columns, n, seconds)
            # Django wraps execute()'s driver errors, not copy_expert()'s: IntegrityError
            # must be Django's for callers to catch. Sent in 1 MiB blocks, not psycopg2's
            # default 8 KiB: ~10 % less COPY time into an unindexed table.
            sql = f"COPY {table} ({names}) FROM STDIN WITH (FORMAT binary)"
            with connection.wrap_database_errors:
                cur.copy_expert(sql, payload, _COPY_BLOCK)
            return
        marks = ", ".join(time_sql("%s") if c == seconds else "%s" for c in columns)
        values = [v.tolist() if isinstance(v, np.ndarray) else [v] * n for v in columns.values()]
        cur.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", list(zip(*values, strict=True))
        )


def _pg_binary(columns: Mapping[str, Column], n: int, seconds: str) -> _Blocks:
    """PostgreSQL's binary COPY format: per row a field count, then (length, value) pairs,
    big-endian. Arrays are int8/float8 columns; a constant int is an int8, a str text;
    the timestamp column is microseconds since 2000-01-01."""
    fields: list[np.ndarray | bytes] = []
    for name, value in columns.items():
        if isinstance(value, np.ndarray):
            if name == seconds:
                value = (value.astype(np.int64) - _PG_EPOCH) * 1_000_000
            fields.append(value)
        else:
            # market_id is a bigint (BigAutoField): an int constant goes as an int8.
            fields.append(
                value.encode() if isinstance(value, str) else value.to_bytes(8, "big", signed=True)
            )
    layout: list[tuple[str, str]] = [("n", ">i2")]
    for i, field in enumerate(fields):
        kind = field.dtype.kind if isinstance(field, np.ndarray) else ""
        value_type = {"i": ">i8", "u": ">i8", "f": ">f8"}.get(kind, f"S{len(field)}")
        layout += [(f"l{i}", ">i4"), (f"v{i}", value_type)]
    row = np.dtype(layout)
    template = np.zeros(1, dtype=row)
    template["n"] = len(fields)
    for i, field in enumerate(fields):
        template[f"l{i}"] = 8 if isinstance(field, np.ndarray) else len(field)
        if not isinstance(field, np.ndarray):
            template[f"v{i}"] = field
    # Laid out in place in the one buffer that is sent: every row a byte copy of the
    # filled-in template, then the array columns written over it. Building it from
    # pieces (a structured np.repeat, tobytes, header + body + trailer) cost 13 ms
    # per 32k rows, ten times this.
    start = len(_PG_COPY_HEADER)
    payload = bytearray(start + n * row.itemsize + 2)
    payload[:start], payload[-2:] = _PG_COPY_HEADER, b"\xff\xff"
    body = np.frombuffer(payload, dtype=np.uint8, count=n * row.itemsize, offset=start)
    body.reshape(n, row.itemsize)[:] = np.frombuffer(template.tobytes(), dtype=np.uint8)
    rows = body.view(row)
    for i, field in enumerate(fields):
        if isinstance(field, np.ndarray):
            rows[f"v{i}"] = field
    return _Blocks(payload)


class _Blocks:
    """A read-only file over a buffer, handing out copies of the blocks asked for:
    ``io.BytesIO`` would first copy all of it (2 ms per 32k rows)."""

    def __init__(self, data: bytearray) -> None:
        self._data = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(self._at + size, len(self._data))
        block = self._data[self._at : end].tobytes()
        self._at = end
        return block


def _values(chunk: CandleChunk) -> dict[str, Column]:
    return {f: getattr(chunk, f) for f in FIELDS}


class Stage:
    """A temporary table holding rows until they are checked and merged, made on first use."""

    def __init__(self) -> None:
        self.created = False
        self.rows = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def create(self) -> None:
        if self.created:
            return
        self.created = True
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {STAGE}")
            cur.execute(
                f"CREATE TEMPORARY TABLE {STAGE} (ts bigint NOT NULL, line bigint NOT NULL, "
                + ", ".join(f"{f} double precision NOT NULL" for f in FIELDS)
                + ")"
            )

    def write(self, chunk: CandleChunk) -> None:
        self.create()
        append_rows(
            STAGE, {"ts": chunk.open_time, "line": chunk.line, **_values(chunk)}, len(chunk)
        )
        self.added(len(chunk), int(chunk.open_time.min()), int(chunk.open_time.max()))

    def added(self, rows: int, first_ts: int, last_ts: int) -> None:
        self.rows += rows
        self.first_ts = first_ts if self.first_ts is None else min(first_ts, self.first_ts)
        self.last_ts = last_ts if self.last_ts is None else max(last_ts, self.last_ts)

    def drop(self) -> None:
        if self.created:
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE {STAGE}")


class Direct:
    """Chunks written straight into the candle table: no staging write, no INSERT … SELECT.

    Only chunks over a time range where nothing of the market and interval is stored,
    so nothing there can be a duplicate or a conflict. Their times and lines are kept
    (16 bytes a row) in case a later chunk repeats some: then they move to the stage.
    """

    def __init__(self, market: Market, interval: Interval) -> None:
        self.market, self.interval = market, interval
        self.key: list[Any] = [market.pk, interval.seconds]
        self.times: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []
        self.rows = 0
        # The first stored open time at or after ``_looked_from`` (None: none stored), as
        # one query found it: a rising stream then asks once, not once per chunk.
        self._looked_from: int | None = None
        self._next_stored: int | None = None

    def write(self, chunk: CandleChunk) -> bool:
        """Write a chunk that is in time order after the previous ones, if nothing is stored
        in its time range; False (nothing written) otherwise."""
        if self.stored_between(int(chunk.open_time[0]), int(chunk.open_time[-1])):
            return False
        columns: dict[str, Column] = {"market_id": self.market.pk, IV: self.interval.seconds}
        columns |= {"open_time": chunk.open_time, **_values(chunk)}
        try:
            with transaction.atomic():
                append_rows(Candle._meta.db_table, columns, len(chunk), seconds="open_time")
        except IntegrityError:  # a concurrent writer stored some of them since the check
            return False
        self.times.append(chunk.open_time)
        self.lines.append(chunk.line)
        self.rows += len(chunk)
        return True

    def stored_between(self, first: int, last: int) -> bool:
        """Whether a candle of the market and interval is stored from ``first`` to ``last``.

        Candles this object wrote lie before ``first`` (the stream rises), so what one
        query found after an earlier ``first`` still holds; a candle a concurrent writer
        stores since then is caught by the primary key when the chunk is written.
        """
        if (
            self._looked_from is None
            or first < self._looked_from
            or (self._next_stored is not None and self._next_stored < first)
        ):
            found = (
                Candle.objects.filter(
                    market=self.market, interval=self.interval.code, open_time__gte=utc(first)
                )
                .order_by("open_time")
                .values_list("open_time", flat=True)
                .first()
            )
            self._looked_from = first
            self._next_stored = None if found is None else int(found.timestamp())
        return self._next_stored is not None and self._next_stored <= last

    def move_to(self, stage: Stage) -> None:
        """Take the rows written so far back out of the candle table, into the stage."""
        if not self.rows:
            return
        times, lines = np.concatenate(self.times), np.concatenate(self.lines)
        stage.create()
        table, when = Candle._meta.db_table, time_sql("d.ts")
        mine = f"c.market_id = %s AND c.{IV} = %s AND c.open_time = {when}"
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {DEMOTED}")
            cur.execute(
                f"CREATE TEMPORARY TABLE {DEMOTED} (ts bigint NOT NULL, line bigint NOT NULL)"
            )
            append_rows(DEMOTED, {"ts": times, "line": lines}, times.size)
            cur.execute(
                f"INSERT INTO {STAGE} (ts, line, {', '.join(FIELDS)}) "
                f"SELECT d.ts, d.line, {', '.join('c.' + f for f in FIELDS)} "
                f"FROM {DEMOTED} d {stage_join()} {table} c ON {mine}",
                self.key,
            )
            cur.execute(
                f"DELETE FROM {table} WHERE market_id = %s AND {IV} = %s AND open_time IN "
                f"(SELECT {when} FROM {DEMOTED} d)",
                self.key,
            )
            cur.execute(f"DROP TABLE {DEMOTED}")
        stage.added(times.size, int(times.min()), int(times.max()))
        self.times, self.lines, self.rows = [], [], 0
