"""Candle intervals: one canonical spelling, parsed from every spelling users know.

Canonical codes follow the exchanges (``1m``, ``5m``, ``1h``, ``1d``, ``1w``).
Accepted on input as well: the original Crypto Oracle's ``M``/``H``/``D``
(minute, hour, day — *not* pandas' month-end ``M``) and pandas offsets such as
``5min``, ``15T``, ``4h``, ``1D``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Monday 1970-01-05: weekly bars start on Mondays, as on Binance.
_WEEK_ANCHOR_S = 4 * 86400

CANONICAL_INTERVALS: tuple[str, ...] = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
)
INTERVAL_CHOICES: list[tuple[str, str]] = [(code, code) for code in CANONICAL_INTERVALS]

_LEGACY = {"M": "1m", "H": "1h", "D": "1d", "W": "1w"}
_PANDAS_UNITS = {
    "s": "s",
    "sec": "s",
    "second": "s",
    "seconds": "s",
    "t": "m",
    "min": "m",
    "minute": "m",
    "minutes": "m",
    "m": "m",
    "h": "h",
    "hr": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "w": "w",
    "week": "w",
    "weeks": "w",
}
_PATTERN = re.compile(r"^\s*(\d*)\s*([A-Za-z]+)\s*$")


class IntervalError(ValueError):
    """An interval string that no known spelling matches."""


@dataclass(frozen=True, slots=True)
class Interval:
    """A bar length, with helpers to move between spellings."""

    seconds: int

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise IntervalError(f"interval must be positive, got {self.seconds} s")

    @property
    def code(self) -> str:
        """The canonical code, e.g. ``15m``; multiples without a code read ``900s``."""
        for unit in ("w", "d", "h", "m", "s"):
            size = _UNIT_SECONDS[unit]
            if self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        raise AssertionError("unreachable: every interval is a whole number of seconds")

    @property
    def pandas_freq(self) -> str:
        return f"{self.seconds}s"

    @property
    def anchor_seconds(self) -> int:
        """Grid origin in Unix seconds: bars start at ``anchor + k * seconds``."""
        return _WEEK_ANCHOR_S if self.seconds % _UNIT_SECONDS["w"] == 0 else 0

    def on_grid(self, unix_seconds: np.ndarray) -> np.ndarray:
        """Boolean mask of the times that fall on this interval's grid."""
        mask: np.ndarray = ((unix_seconds - self.anchor_seconds) % self.seconds) == 0
        return mask

    def __str__(self) -> str:
        return self.code


def parse_interval(text: str) -> Interval:
    """Parse ``M``/``H``/``D``, ``1m``, ``5min``, ``4h``, ``1D``, ``15T``… into an Interval."""
    if not isinstance(text, str) or not text.strip():
        raise IntervalError("interval is empty")
    return _parse(text)


def as_interval(value: Interval | str | int) -> Interval:
    """An Interval from itself, a code (anything :func:`parse_interval` reads) or whole
    seconds."""
    if isinstance(value, Interval):
        return value
    if isinstance(value, int):
        return Interval(value)
    return parse_interval(value)


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Interval:
    """Pure and called dozens of times a page (choices, forms): remembered."""
    stripped = text.strip()
    if stripped in _LEGACY:
        return Interval(_UNIT_SECONDS[_LEGACY[stripped][-1]])
    match = _PATTERN.match(stripped)
    if not match:
        raise IntervalError(f"cannot read interval {text!r}; use e.g. 1m, 5min, 4h, 1D, or M/H/D")
    count = int(match.group(1) or 1)
    unit_text = match.group(2)
    # Upper-case M alone is the seed's minute; pandas' month-end makes no sense for candles.
    if unit_text in ("ME", "MS", "Y", "YE", "Q", "QE"):
        raise IntervalError(
            f"calendar interval {text!r} is not supported; candles need a fixed length"
        )
    unit = _PANDAS_UNITS.get(unit_text.lower()) if unit_text != "M" else "m"
    if unit is None:
        raise IntervalError(f"unknown interval unit in {text!r}; use s, m/min, h, d or w")
    if count <= 0:
        raise IntervalError(f"interval {text!r} must be positive")
    return Interval(count * _UNIT_SECONDS[unit])


def infer_interval(unix_seconds: np.ndarray) -> Interval:
    """The bar length of a series of open times: its most common spacing.

    The most common, so that gaps (larger spacings) and a stray off-grid row
    (which the grid check then reports with its line) do not mislead it; ties
    go to the smaller spacing.
    """
    # Sort and drop the zero steps (repeated times) rather than np.unique the times:
    # numpy's unique hashes, 25-50 ms on a month of minutes where this takes 1 ms.
    # The spacings have few distinct values, so unique is cheap on them.
    steps = np.diff(np.sort(np.asarray(unix_seconds, dtype=np.int64)))
    steps = steps[steps > 0]
    if steps.size == 0:
        raise IntervalError("need at least two distinct timestamps to infer the interval")
    spacings, counts = np.unique(steps, return_counts=True)
    return Interval(int(spacings[np.argmax(counts)]))
