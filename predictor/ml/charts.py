"""Plotly figures for the pages, built from arrays; the browser draws them with Plotly.js.

Pure: numpy in, ``plotly.graph_objects.Figure`` out, no Django. Every line is
thinned to at most :data:`~predictor.ml.downsample.MAX_POINTS` points with
LTTB; candles arrive already resampled to an interval that fits. Times are
UTC ``datetime64`` values and the axes say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from predictor.ml.downsample import MAX_POINTS, lttb_indices

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]

UP, DOWN = "#1a9e6b", "#d64545"
ACTUAL, PREDICTED, FUTURE = "#1d2330", "#2457d6", "#e07b00"
BASELINE_COLOURS = ("#8a94a6", "#b07cc6", "#3aa7a3", "#c9a227")
# A small template: Plotly's default one adds ~8 kB of JSON to every figure.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "colorway": [PREDICTED, FUTURE, UP, DOWN, *BASELINE_COLOURS],
        "xaxis": {"gridcolor": "#eef0f4", "linecolor": "#c9ced8", "zeroline": False},
        "yaxis": {"gridcolor": "#eef0f4", "linecolor": "#c9ced8", "zeroline": False},
        "hovermode": "x unified",
        # The pages caption charts in HTML (it wraps on phones); a title, when given, takes
        # the first line of the top margin and the legend the second, above the plot.
        "title": {"x": 0.01, "xanchor": "left", "y": 0.985, "yanchor": "top", "yref": "container"},
        "legend": {"orientation": "h", "y": 1.01, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        "margin": {"l": 56, "r": 16, "t": 36, "b": 40},
    }
)


def as_times(values: npt.ArrayLike) -> TimeArray:
    """UTC instants as ``datetime64[s]``; integers are read as Unix seconds."""
    array = np.asarray(values)
    if array.dtype.kind == "O" or isinstance(getattr(values, "dtype", None), pd.DatetimeTZDtype):
        # Aware datetimes or pandas Timestamps: to UTC, then naive.
        aware: Any = values
        array = pd.DatetimeIndex(pd.to_datetime(aware, utc=True)).tz_convert(None).to_numpy()
    return array.astype("datetime64[s]")


def thin(
    times: npt.ArrayLike, values: npt.ArrayLike, max_points: int = MAX_POINTS
) -> tuple[TimeArray, FloatArray, npt.NDArray[np.int64]]:
    """Finite points of a line, LTTB-thinned to ``max_points``: (times, values, positions)."""
    t = as_times(times)
    v = np.asarray(values, dtype=np.float64)
    positions = np.flatnonzero(np.isfinite(v) & ~np.isnat(t))
    t, v = t[positions], v[positions]
    if len(v) > max_points:
        kept = lttb_indices(t.astype(np.int64).astype(np.float64), v, max_points)
        t, v, positions = t[kept], v[kept], positions[kept]
    return t, v, positions.astype(np.int64)


def _title(fig: Any, title: str | None, margin: int = 76) -> None:
    if title:
        fig.update_layout(title_text=title, margin_t=margin)


def _figure(title: str | None, height: int = 360) -> Any:
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, height=height)
    _title(fig, title)
    return fig


def _time_axis(fig: Any, **where: Any) -> None:
    fig.update_xaxes(title_text="time (UTC)", **where)


def candles_figure(
    times: npt.ArrayLike,
    ohlcv: Mapping[str, npt.ArrayLike],
    *,
    title: str | None = None,
    style: str = "candles",
    max_points: int = MAX_POINTS,
) -> Any:
    """Price (candlesticks, or the close as a line) above volume bars, one shared time axis.

    Candles are expected at most ``max_points`` bars long (resample them first);
    the close line is LTTB-thinned if longer.
    """
    t = as_times(times)
    o, h, lo, c, vol = (np.asarray(ohlcv[k], dtype=np.float64) for k in ("open", "high", "low", "close", "volume"))  # fmt: skip
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.74, 0.26]
    )
    fig.update_layout(template=TEMPLATE, height=500, margin_t=16)
    _title(fig, title, 48)
    if style == "line":
        lt, lc, _ = thin(t, c, max_points)
        fig.add_trace(
            go.Scatter(
                _validate=False, x=lt, y=lc, mode="lines", name="close", line={"color": PREDICTED}
            ),
            row=1,
            col=1,
        )
    else:
        fig.add_trace(
            go.Candlestick(
                _validate=False,
                x=t,
                open=o,
                high=h,
                low=lo,
                close=c,
                name="price",
                increasing={"line": {"color": UP}},
                decreasing={"line": {"color": DOWN}},
            ),
            row=1,
            col=1,
        )
    # Two single-colour traces, not one colour string per bar: plotly validates
    # every element of a colour list, which cost ~0.3 s for a week of minutes.
    up = c >= o
    for name, mask, colour in (("volume up", up, UP), ("volume down", ~up, DOWN)):
        fig.add_trace(
            go.Bar(
                _validate=False, x=t, y=np.where(mask, vol, np.nan), name=name,
                marker={"color": colour}, opacity=0.7,
            ),
            row=2,
            col=1,
        )  # fmt: skip
    fig.update_layout(barmode="overlay")
    fig.update_layout(xaxis_rangeslider_visible=False, showlegend=False, hovermode="x")
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    _time_axis(fig, row=2, col=1)
    return fig


def forecast_figure(
    actual: tuple[npt.ArrayLike, npt.ArrayLike],
    predicted: tuple[npt.ArrayLike, npt.ArrayLike],
    future: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
    *,
    last_candle: np.datetime64 | None,
    y_title: str,
    title: str | None = None,
    max_points: int = MAX_POINTS,
) -> Any:
    """Actual vs predicted by target time, and the forecasts past the last candle.

    ``future`` is ``(target_time, predicted, issued_at, horizon)``; those points
    get their own colour, a shaded region and a line at the last candle.
    """
    fig = _figure(title, 420)
    at, av, _ = thin(*actual, max_points=max_points)
    pt, pv, _ = thin(*predicted, max_points=max_points)
    fig.add_trace(
        go.Scatter(_validate=False, x=at, y=av, mode="lines", name="actual", line={"color": ACTUAL})
    )
    fig.add_trace(
        go.Scatter(
            _validate=False, x=pt, y=pv, mode="lines", name="predicted", line={"color": PREDICTED}
        )
    )
    ft, fv = as_times(future[0]), np.asarray(future[1], dtype=np.float64)
    if len(ft):
        issued = np.datetime_as_string(as_times(future[2]), unit="m")
        custom = np.stack([issued, np.asarray(future[3]).astype(str)], axis=-1)
        fig.add_trace(
            go.Scatter(
                _validate=False,
                x=ft,
                y=fv,
                mode="lines+markers",
                name="forecast past the last candle",
                line={"color": FUTURE, "dash": "dot"},
                marker={"size": 8, "symbol": "diamond"},
                customdata=custom,
                hovertemplate="%{y}<br>made %{customdata[0]} UTC, horizon %{customdata[1]} bar(s)"
                "<extra>future</extra>",
            )
        )
    if last_candle is not None:
        edge = str(np.asarray(last_candle).astype("datetime64[s]"))
        end = str(ft.max()) if len(ft) else edge
        fig.add_vrect(x0=edge, x1=end, fillcolor=FUTURE, opacity=0.08, line_width=0)
        fig.add_vline(x=edge, line={"color": FUTURE, "dash": "dash", "width": 1})
        fig.add_annotation(
            x=edge, y=1, yref="paper", text="last candle", showarrow=False, xanchor="right"
        )
    fig.update_yaxes(title_text=y_title)
    _time_axis(fig)
    return fig


def actual_vs_predicted_figure(
    times: npt.ArrayLike,
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    *,
    title: str | None = None,
    y_title: str,
    max_points: int = MAX_POINTS,
) -> Any:
    fig = _figure(title)
    for name, values, colour in (("actual", actual, ACTUAL), ("predicted", predicted, PREDICTED)):
        t, v, _ = thin(times, values, max_points)
        fig.add_trace(
            go.Scatter(_validate=False, x=t, y=v, mode="lines", name=name, line={"color": colour})
        )
    fig.update_yaxes(title_text=y_title)
    _time_axis(fig)
    return fig


def curves_figure(
    times: npt.ArrayLike,
    curves: Mapping[str, npt.ArrayLike],
    *,
    title: str | None = None,
    y_title: str,
    percent: bool = False,
    max_points: int = MAX_POINTS,
) -> Any:
    """Several curves on one time axis: the first is the model, drawn strongest."""
    fig = _figure(title)
    for i, (name, values) in enumerate(curves.items()):
        t, v, _ = thin(times, values, max_points)
        colour = PREDICTED if i == 0 else BASELINE_COLOURS[(i - 1) % len(BASELINE_COLOURS)]
        fig.add_trace(
            go.Scatter(
                _validate=False,
                x=t,
                y=v,
                mode="lines",
                name=name.replace("_", " "),
                line={"color": colour, "width": 2.2 if i == 0 else 1.4},
                fill="tozeroy" if percent and i == 0 else None,
            )
        )
    fig.update_yaxes(title_text=y_title, tickformat=".1%" if percent else None)
    _time_axis(fig)
    return fig


def loss_figure(history: Sequence[Mapping[str, float | None]], *, title: str | None = None) -> Any:
    """One line per loss in the Keras history (``loss``, ``val_loss``…) by epoch."""
    fig = _figure(title, 300)
    names = [k for k in (history[0] if history else {}) if k != "epoch" and "loss" in k]
    epochs = np.array([row.get("epoch") or i + 1 for i, row in enumerate(history)], dtype=float)
    for name in names:
        values = np.array(
            [np.nan if row.get(name) is None else row[name] for row in history], dtype=float
        )
        fig.add_trace(
            go.Scatter(
                _validate=False,
                x=epochs,
                y=values,
                mode="lines+markers",
                name=name.replace("_", " "),
            )
        )
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=1 if len(history) <= 20 else None)
    fig.update_yaxes(title_text="loss", rangemode="tozero")
    return fig


_HTML_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def figure_json(fig: Any) -> str:
    """The figure as JSON that is safe inside ``<script type="application/json">``."""
    text: str = fig.to_json()
    return text.translate(_HTML_ESCAPES)
