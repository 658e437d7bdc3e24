"""Candles as columns of numpy arrays: the unit every reader and writer passes on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OHLCV_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


def unix_seconds(index: pd.DatetimeIndex) -> IntArray:
    """Whole Unix seconds; pandas 3 indexes may be in s, ms, us or ns units."""
    return np.asarray(index.as_unit("s").asi8, dtype=np.int64)


class CandleInputError(ValueError):
    """Bad candle input, located by source (file or request), line and field."""

    def __init__(
        self, source: str, message: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        self.source, self.line, self.field, self.reason = source, line, field, message
        where = source
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class CandleChunk:
    """A batch of candles in file (or API) order.

    ``open_time`` is the bar's **open** time in whole Unix seconds (UTC).
    ``line`` says where each row came from (a 1-based line of a file, or the
    row's position in an API page) so that errors can point at it.
    """

    open_time: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    line: IntArray

    def __post_init__(self) -> None:
        n = self.open_time.shape[0]
        for name in (*OHLCV_FIELDS, "line"):
            if getattr(self, name).shape != (n,):
                raise ValueError(
                    f"CandleChunk column {name} has shape {getattr(self, name).shape}, expected ({n},)"
                )

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    def take(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> CandleChunk:
        """The rows selected by a boolean mask or an index array."""
        return CandleChunk(
            open_time=self.open_time[index],
            open=self.open[index],
            high=self.high[index],
            low=self.low[index],
            close=self.close[index],
            volume=self.volume[index],
            line=self.line[index],
        )

    def first_invalid(self) -> tuple[int, str, str] | None:
        """The first row breaking a value rule, as (row index, field, reason), or None.

        Rules: every number finite; prices strictly positive; ``high >= low``;
        volume not negative.
        """
        checks: list[tuple[str, npt.NDArray[np.bool_], str]] = []
        for name in OHLCV_FIELDS:
            checks.append((name, ~np.isfinite(getattr(self, name)), "missing or not a number"))
        for name in ("open", "high", "low", "close"):
            checks.append((name, getattr(self, name) <= 0, "price must be positive"))
        checks.append(("high", self.high < self.low, "high is below low"))
        checks.append(("volume", self.volume < 0, "volume is negative"))
        first: tuple[int, str, str] | None = None
        for name, bad, reason in checks:
            if bad.any():
                row = int(np.argmax(bad))
                if first is None or row < first[0]:
                    first = (row, name, reason)
        return first

    @classmethod
    def empty(cls) -> CandleChunk:
        f = np.empty(0, dtype=np.float64)
        i = np.empty(0, dtype=np.int64)
        return cls(i, f, f, f, f, f, i)


@dataclass(frozen=True)
class CandleWindow:
    """Posted candles for one forecast: ``values[n, 5]`` (OHLCV) and open times in Unix
    seconds, if given."""

    values: npt.NDArray[np.float64]
    times: npt.NDArray[np.int64] | None

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def to_plain(self) -> dict[str, Any]:
        """As JSON a Celery message carries: lists of floats (repr round-trips float64) and ints."""
        times = None if self.times is None else [int(t) for t in self.times]
        return {"values": self.values.tolist(), "times": times}

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> CandleWindow:
        values = np.asarray(plain["values"], dtype=np.float64).reshape(-1, len(OHLCV_FIELDS))
        times = plain.get("times")
        return cls(values, None if times is None else np.asarray(times, dtype=np.int64))
