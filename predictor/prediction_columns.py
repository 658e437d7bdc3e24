"""Where a stored Prediction's fields become the columns of frames, CSV downloads and the API.

One table names each column and the ORM lookup it is read from; each reader picks the
columns it shows, in this order, so a renamed or added field changes every reader at once.
"""

from __future__ import annotations

from collections.abc import Iterable

# Column name -> the ORM lookup on Prediction that fills it.
PREDICTION_COLUMNS: dict[str, str] = {
    "id": "id",
    "session": "session_id",
    "market": "market_id",
    "exchange": "market__exchange",
    "symbol": "market__symbol",
    "anchor_time": "anchor_time",
    "issued_at": "issued_at",
    "target_time": "target_time",
    "step": "step",
    "horizon": "horizon",
    "split": "split",
    "predicted": "predicted",
    "actual": "actual",
    "values": "values",
    "actual_values": "actual_values",
}
TIME_COLUMNS: tuple[str, ...] = ("anchor_time", "issued_at", "target_time")
# The selectors' DataFrame: one row per forecast, scalars only.
FRAME_COLUMNS: tuple[str, ...] = (
    "symbol", *TIME_COLUMNS, "step", "horizon", "split", "predicted", "actual",
)  # fmt: skip
# The forecast page's CSV download: the frame's columns, the exchange and every output.
CSV_COLUMNS: tuple[str, ...] = ("exchange", *FRAME_COLUMNS, "values")
# The prediction list API: every stored field, with the row's keys.
API_COLUMNS: tuple[str, ...] = (
    "id",
    "session",
    "market",
    *FRAME_COLUMNS,
    "values",
    "actual_values",
)


def prediction_lookups(columns: Iterable[str]) -> tuple[str, ...]:
    """The ORM lookups that read ``columns``, in their order (``values_list(*lookups)``)."""
    return tuple(PREDICTION_COLUMNS[name] for name in columns)
