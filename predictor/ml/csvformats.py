"""Reading candle CSV files of every layout users bring, streamed in chunks.

Layouts (detected from the first lines, never from the file name alone):

* ``cryptodatadownload``: an optional banner line (URL/credit), then
  ``Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume …`` (or the lower-case
  ``unix,date,symbol,…,Volume BTC,Volume USDT,tradecount``), newest row first. The
  ``Date`` column decides the time: spreadsheets round ``Unix Timestamp`` to six
  digits and some files mix seconds and milliseconds. The rounded unix value is
  still used to tell ``06-12-21`` day-first from month-first.
  Also the headerless variant ``unix_ms,date,symbol,open,high,low,close,vol,…``.
* ``binance-kline``: data.binance.vision dumps, 12 columns, with the futures header
  ``open_time,open,high,low,close,volume,close_time,…`` or none (spot); times in
  ms, or µs in newer spot files.
* ``ohlcv``: ``timestamp,open,high,low,close,volume`` (timestamp in s, ms or µs, or a
  date string), ``date,open,high,low,close,volume``, any column order; and headerless
  ``time,open,high,low,close,volume[,…]`` (e.g. Kraken's).

Every row keeps its physical line number so an error can say file, line and field.
Sources (plain, ``.gz``, ``.zip`` members) and what a file's name says live in
:mod:`predictor.ml.csvsources`; turning time columns into Unix seconds in
:mod:`predictor.ml.csvtimes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.io.parsers import TextFileReader

from predictor.ml.candles import CandleChunk, FloatArray, IntArray
from predictor.ml.csvsources import CORRUPT_ERRORS, CandleFileError, Source
from predictor.ml.csvtimes import TimeParser
from predictor.ml.symbols import split_symbol

DEFAULT_CHUNK_ROWS = 250_000
_BINANCE_KLINE_HEADER = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Layout:
    """What the first lines of a file say about its columns."""

    kind: str  # cryptodatadownload | binance-kline | ohlcv
    skip_lines: int  # lines before the first data row (banner + header)
    columns: tuple[str, ...]  # normalised names, one per field
    time_numeric: str | None  # column with unix times
    time_text: str | None  # column with date strings (decides when present)
    time_extra: str | None  # a separate time-of-day column (date + time layouts)
    volume: str
    volume_is_quote: bool
    symbol_column: str | None
    header_exchange: str | None = None  # what the header itself implies
    notes: tuple[str, ...] = field(default=())


def _first_lines(source: Source, count: int = 4) -> list[str]:
    lines: list[str] = []
    try:
        with source.open() as fh:
            for raw in fh:
                lines.append(raw.decode("utf-8-sig", errors="replace").strip())
                if len(lines) >= count:
                    break
    except CORRUPT_ERRORS as exc:
        raise CandleFileError(source.name, f"the file is truncated or corrupt ({exc})") from None
    except OSError as exc:
        raise CandleFileError(source.name, f"cannot read the file: {exc}") from None
    return lines


def detect_layout(source: Source, *, symbol_hint: str | None = None) -> Layout:
    """Read the first lines of ``source`` and say how to parse it."""
    lines = [line for line in _first_lines(source) if line]
    if not lines:
        raise CandleFileError(source.name, "the file is empty", line=1)
    for index, line in enumerate(lines[:3]):
        fields = [_norm(f) for f in line.split(",")]
        if {"open", "high", "low", "close"} <= set(fields):
            return _layout_from_header(source, fields, index + 1, symbol_hint)
    fields = [f.strip() for f in lines[0].split(",")]
    if fields and _is_number(fields[0]):
        return _headerless_layout(source, fields)
    raise CandleFileError(
        source.name,
        "no header with open/high/low/close columns in the first 3 lines, and the first line "
        f"is not numeric data: {lines[0][:80]!r}",
        line=1,
    )


def _pick(fields: list[str], *candidates: str) -> str | None:
    for name in candidates:
        if name in fields:
            return name
    return None


def _volume_column(
    source: Source, fields: list[str], symbol: str | None
) -> tuple[str, bool, tuple[str, ...]]:
    """The base-asset volume column; quote volume only when nothing else exists."""
    if "volume" in fields:
        return "volume", False, ()
    volumes = [f for f in fields if f.startswith("volume_")]
    if not volumes:
        raise CandleFileError(source.name, "no volume column in the header", line=None)
    base, quote = split_symbol(symbol) if symbol else ("", "")
    for col in volumes:
        if base and col == f"volume_{base.lower()}":
            return col, False, ()
    quote_like = [c for c in volumes if c.removeprefix("volume_").upper() in _QUOTE_SET]
    base_like = [
        c for c in volumes if c not in quote_like and (not quote or c != f"volume_{quote.lower()}")
    ]
    if base_like:
        return base_like[0], False, ()
    note = f"only quote volume ({volumes[0]}) in the file: base volume = quote volume / close"
    return volumes[0], True, (note,)


_QUOTE_SET = {"USD", "USDT", "USDC", "BUSD", "EUR", "GBP", "FDUSD", "TUSD", "DAI"}


def _layout_from_header(
    source: Source, fields: list[str], skip: int, symbol_hint: str | None
) -> Layout:
    if len(set(fields)) != len(fields):
        dupes = sorted({f for f in fields if fields.count(f) > 1})
        raise CandleFileError(source.name, f"duplicate column names {dupes}", line=skip)
    time_numeric = _pick(fields, "unix_timestamp", "unix", "open_time", "timestamp", "time")
    time_text = _pick(fields, "date", "datetime", "date_time")
    if time_numeric is None and time_text is None:
        raise CandleFileError(
            source.name, "no time column (expected unix/timestamp/open_time/date)", line=skip
        )
    time_extra = (
        "time" if time_text == "date" and "time" in fields and time_numeric != "time" else None
    )
    symbol_column = "symbol" if "symbol" in fields else None
    volume, is_quote, notes = _volume_column(source, fields, symbol_hint)
    if "close_time" in fields and "open_time" in fields:
        kind = "binance-kline"
    elif symbol_column or time_numeric in ("unix", "unix_timestamp"):
        kind = "cryptodatadownload"
    else:
        kind = "ohlcv"
    # data.binance.vision spot dumps have no header; the futures dumps carry this one.
    header_exchange = "binance-futures" if tuple(fields) == _BINANCE_KLINE_HEADER else None
    return Layout(
        kind,
        skip,
        tuple(fields),
        time_numeric,
        time_text,
        time_extra,
        volume,
        is_quote,
        symbol_column,
        header_exchange,
        notes,
    )


def _headerless_layout(source: Source, fields: list[str]) -> Layout:
    n = len(fields)
    if n >= 8 and not _is_number(fields[1]) and not _is_number(fields[2]):
        # CryptoDataDownload rows without banner and header: unix, date, symbol, o, h, l, c, vol…
        names = ["unix", "date", "symbol", "open", "high", "low", "close", "volume"]
        names += [f"extra_{i}" for i in range(n - len(names))]
        return Layout(
            "cryptodatadownload", 0, tuple(names), "unix", "date", None, "volume", False, "symbol"
        )
    if n >= 6 and all(_is_number(f) for f in fields[:6]):
        if n == 12:
            names = list(_BINANCE_KLINE_HEADER)
            return Layout(
                "binance-kline",
                0,
                tuple(names),
                "open_time",
                None,
                None,
                "volume",
                False,
                None,
                "binance",
            )
        names = ["time", "open", "high", "low", "close", "volume"]
        names += [f"extra_{i}" for i in range(n - 6)]
        return Layout("ohlcv", 0, tuple(names), "time", None, None, "volume", False, None)
    raise CandleFileError(
        source.name, f"headerless line with {n} fields is no known layout", line=1
    )


def _numbers(frame: pd.DataFrame, name: str, lines: IntArray, source: str) -> FloatArray:
    column = frame[name]
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values)
    if bad.any():
        row = int(np.argmax(bad))
        raw = column.iloc[row]
        what = (
            "is empty"
            if pd.isna(raw) or str(raw).strip() == ""
            else f"{str(raw)[:40]!r} is not a number"
        )
        raise CandleFileError(source, what, line=int(lines[row]), field=name)
    return values


@dataclass
class CandleReader:
    """Streams a source as validated :class:`CandleChunk` s (file order kept).

    Chunks hold ``chunk_rows`` rows; with ``first_chunk_rows`` they start that
    small and double up to ``chunk_rows``, so that a consumer that overlaps
    storing one chunk with parsing the next waits only for a small first one.
    """

    source: Source
    layout: Layout
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    first_chunk_rows: int | None = None
    rows_read: int = 0
    symbols_seen: set[str] = field(default_factory=set)
    _times: TimeParser | None = None

    @property
    def date_corrections(self) -> int:
        return self._times.corrected if self._times else 0

    def chunks(self) -> Iterator[CandleChunk]:
        lay = self.layout
        self._times = TimeParser(self.source.name, lay.time_numeric, lay.time_text, lay.time_extra)
        wanted = {"open", "high", "low", "close", lay.volume}
        wanted |= {
            c for c in (lay.time_numeric, lay.time_text, lay.time_extra, lay.symbol_column) if c
        }
        usecols = [i for i, name in enumerate(lay.columns) if name in wanted]
        first_line = lay.skip_lines + 1
        try:
            with self.source.open() as fh:
                reader = pd.read_csv(
                    fh,
                    header=None,
                    skiprows=lay.skip_lines,
                    usecols=usecols,
                    names=list(lay.columns),
                    chunksize=self.chunk_rows,
                    skip_blank_lines=False,
                    low_memory=False,
                    on_bad_lines="error",
                    engine="c",
                )
                for frame in _frames(reader, self._chunk_sizes()):
                    lines = np.arange(first_line, first_line + len(frame), dtype=np.int64)
                    first_line += len(frame)
                    keep = frame.notna().any(axis=1).to_numpy()  # blank lines
                    if not keep.all():
                        frame, lines = frame[keep], lines[keep]
                    if len(frame):
                        yield self._chunk(frame, lines)
        except CandleFileError:
            raise
        except CORRUPT_ERRORS as exc:
            raise CandleFileError(
                self.source.name, f"the file is truncated or corrupt ({exc})", line=first_line
            ) from None
        except pd.errors.ParserError as exc:
            raise CandleFileError(self.source.name, f"malformed CSV: {exc}") from None
        except (UnicodeDecodeError, OSError) as exc:
            raise CandleFileError(
                self.source.name, f"cannot read the file: {exc}", line=first_line
            ) from None

    def _chunk_sizes(self) -> Iterator[int]:
        size = min(self.first_chunk_rows or self.chunk_rows, self.chunk_rows)
        while True:
            yield size
            size = min(2 * size, self.chunk_rows)

    def _chunk(self, frame: pd.DataFrame, lines: IntArray) -> CandleChunk:
        assert self._times is not None
        name = self.source.name
        if self.layout.symbol_column:
            self.symbols_seen.update(frame[self.layout.symbol_column].dropna().astype(str).unique())
        times = self._times(frame, lines)
        close = _numbers(frame, "close", lines, name)
        volume = _numbers(frame, self.layout.volume, lines, name)
        if self.layout.volume_is_quote:
            volume = volume / close
        chunk = CandleChunk(
            open_time=times,
            open=_numbers(frame, "open", lines, name),
            high=_numbers(frame, "high", lines, name),
            low=_numbers(frame, "low", lines, name),
            close=close,
            volume=volume,
            line=lines,
        )
        problem = chunk.first_invalid()
        if problem is not None:
            row, column, reason = problem
            shown = self.layout.volume if column == "volume" else column
            raise CandleFileError(name, reason, line=int(lines[row]), field=shown)
        self.rows_read += len(chunk)
        return chunk


def _frames(reader: TextFileReader, sizes: Iterator[int]) -> Iterator[pd.DataFrame]:
    """The parser's frames, each as long as the next of ``sizes`` (the last may be shorter)."""
    for size in sizes:
        try:
            frame = reader.get_chunk(size)
        except StopIteration:
            return
        if not len(frame):  # a file without rows: one empty frame, then the end
            return
        yield frame
