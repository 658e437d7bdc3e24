"""Candle times from CSV columns: Unix seconds, milliseconds or microseconds (mixed in
one file), and date strings in the formats exchanges and spreadsheets write."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from predictor.ml.candles import FloatArray, IntArray
from predictor.ml.csvsources import CandleFileError

DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d %I-%p",
    "%d-%m-%y %H:%M:%S",
    "%m-%d-%y %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M",
)


def unix_to_seconds(values: FloatArray) -> FloatArray:
    """Unix times in s, ms or µs (decided per value, so mixed files work) → seconds."""
    out = values.astype(np.float64, copy=True)
    micro = out >= 1e14
    milli = (out >= 1e11) & ~micro
    out[micro] /= 1e6
    out[milli] /= 1e3
    return out


def _parse_dates(text: pd.Series, fmt: str) -> FloatArray:
    parsed = pd.to_datetime(text.astype(str), format=fmt, errors="coerce", utc=True)
    seconds: FloatArray = pd.DatetimeIndex(parsed).as_unit("s").asi8.astype(np.float64)
    # NaT comes back as the int64 minimum; mark it missing.
    seconds[parsed.isna().to_numpy()] = np.nan
    return seconds


def choose_date_format(text: pd.Series, unix_hint: FloatArray | None) -> str | None:
    """The date format that parses the most rows, ties broken by agreement with unix."""
    best: tuple[int, float, str] | None = None
    sample = text.iloc[:2000]
    hint = unix_hint[:2000] if unix_hint is not None else None
    for fmt in DATE_FORMATS:
        seconds = _parse_dates(sample, fmt)
        ok = int(np.isfinite(seconds).sum())
        if ok == 0:
            continue
        distance = 0.0
        if hint is not None:
            both = np.isfinite(seconds) & np.isfinite(hint)
            if both.any():
                distance = float(np.median(np.abs(seconds[both] - hint[both])))
        key = (-ok, distance, fmt)
        if best is None or key[:2] < best[:2]:
            best = key
    return None if best is None else best[2]


@dataclass(slots=True)
class TimeParser:
    """Turns a chunk's time columns into whole Unix seconds, Date first."""

    source: str
    time_numeric: str | None  # column with unix times
    time_text: str | None  # column with date strings (decides when present)
    time_extra: str | None = None  # a separate time-of-day column
    date_format: str | None = None
    corrected: int = 0  # rows where the unix column disagreed with Date
    timestamp_is_text: bool | None = None  # the unix column holds date strings instead

    def __call__(self, frame: pd.DataFrame, lines: IntArray) -> IntArray:
        unix: FloatArray | None = None
        if self.time_numeric is not None:
            column = frame[self.time_numeric]
            numeric = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            if self.timestamp_is_text is None:
                # Decided once per file, on its first chunk: a "timestamp" column of date
                # strings (plain OHLCV files) has mostly non-numbers; a numeric one with a
                # few bad rows must report those rows, not be read as dates.
                textual = not pd.api.types.is_numeric_dtype(column.dtype)  # object/str/string
                self.timestamp_is_text = textual and bool(np.isnan(numeric).mean() > 0.5)
            if self.time_text is None and self.timestamp_is_text:
                # A "timestamp" column holding date strings (plain OHLCV files).
                return self._from_text(column, None, lines, self.time_numeric)
            unix = unix_to_seconds(numeric)
        if self.time_text is None:
            assert unix is not None
            assert self.time_numeric is not None
            return self._whole_seconds(unix, lines, self.time_numeric)
        text = frame[self.time_text].astype(str)
        if self.time_extra is not None:
            text = text + " " + frame[self.time_extra].astype(str)
        return self._from_text(text, unix, lines, self.time_text)

    def _from_text(
        self, text: pd.Series, unix: FloatArray | None, lines: IntArray, name: str
    ) -> IntArray:
        if self.date_format is None:
            self.date_format = choose_date_format(text, unix)
        seconds = (
            _parse_dates(text, self.date_format) if self.date_format else np.full(len(text), np.nan)
        )
        missing = np.isnan(seconds)
        for fmt in DATE_FORMATS:  # rows in another format (files that join two exports)
            if not missing.any():
                break
            if fmt != self.date_format:
                seconds[missing] = _parse_dates(text[missing], fmt)
                missing = np.isnan(seconds)
        if unix is not None:
            both = ~np.isnan(seconds) & ~np.isnan(unix)
            self.corrected += int((np.abs(seconds[both] - unix[both]) >= 1).sum())
            seconds = np.where(np.isnan(seconds), unix, seconds)
        return self._whole_seconds(seconds, lines, name)

    def _whole_seconds(self, seconds: FloatArray, lines: IntArray, name: str) -> IntArray:
        bad = ~np.isfinite(seconds)
        if bad.any():
            row = int(np.argmax(bad))
            raise CandleFileError(
                self.source, "time is missing or not readable", line=int(lines[row]), field=name
            )
        rounded = np.round(seconds)
        off = np.abs(seconds - rounded) > 1e-3
        if off.any():
            row = int(np.argmax(off))
            raise CandleFileError(
                self.source,
                f"time {seconds[row]!r} is not a whole second",
                line=int(lines[row]),
                field=name,
            )
        return rounded.astype(np.int64)
