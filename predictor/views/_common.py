"""Helpers the page modules share: chart embedding, ranges and labels."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from predictor.ml.charts import figure_json
from predictor.ml.intervals import Interval

DEFAULT_SPAN = dt.timedelta(days=7)
TARGET_UNITS: dict[str, str] = {
    "price": "price",
    "return": "return over the horizon",
    "logreturn": "log return over the horizon",
    "updown": "class (down / flat / up)",
    "range": "change over the horizon",
}


def chart(fig: Any) -> SafeString:
    """A figure as JSON for ``<script type="application/json">``; ``figure_json`` escapes it."""
    return mark_safe(figure_json(fig))  # <, > and & are escaped as \\uXXXX


def default_range(
    last_open: dt.datetime,
    interval: Interval,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    span: dt.timedelta = DEFAULT_SPAN,
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end): what was asked, else the ``span`` up to the end of the last bar."""
    stop = end or last_open + dt.timedelta(seconds=interval.seconds)
    return start or stop - span, stop


def interval_text(interval: Interval, bars: int = 1) -> str:
    """``3 bars of 1h (3:00:00)``-style wording for horizons."""
    total = dt.timedelta(seconds=interval.seconds * bars)
    return f"{bars} bar{'s' if bars != 1 else ''} of {interval.code} ({total})"
