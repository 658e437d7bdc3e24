"""Plotly figures for the pages, built from arrays; the browser draws them with Plotly.js.

Pure: numpy in, a figure out, no Django. A figure is the plain ``{"data": [...],
"layout": {...}}`` mapping Plotly.js takes, built directly rather than through
``plotly.graph_objects``, whose per-property validation cost 60-150 ms a chart
(most of an index page's time). Numbers go in Plotly's typed-array form
(``{"dtype": "f8", "bdata": <base64>}``), exact and with NaN kept as a gap; times
as ISO strings. Every line is thinned to at most
:data:`~predictor.ml.downsample.MAX_POINTS` points with LTTB; candles arrive
already resampled to an interval that fits. Times are UTC and the axes say so.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.downsample import MAX_POINTS, lttb_indices

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]
Figure = dict[str, Any]

UP, DOWN = "#1a9e6b", "#d64545"
ACTUAL, PREDICTED, FUTURE = "#1d2330", "#2457d6", "#e07b00"
BASELINE_COLOURS = ("#8a94a6", "#b07cc6", "#3aa7a3", "#c9a227")
_GRID = {"gridcolor": "#eef0f4", "linecolor": "#c9ced8", "zeroline": False}
# The house look, small: Plotly's default template adds ~8 kB of JSON to every figure.
LAYOUT: dict[str, Any] = {
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#ffffff",
    "colorway": [PREDICTED, FUTURE, UP, DOWN, *BASELINE_COLOURS],
    "hovermode": "x unified",
    # The pages caption charts in HTML (it wraps on phones); a title, when given, takes
    # the first line of the top margin and the legend the second, above the plot.
    "legend": {"orientation": "h", "y": 1.01, "yanchor": "bottom", "x": 0, "xanchor": "left"},
    "margin": {"l": 56, "r": 16, "t": 36, "b": 40},
}


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


def numbers(values: npt.ArrayLike) -> dict[str, str]:
    """A float array as a Plotly typed array: little-endian float64, base64; NaN stays NaN."""
    raw = np.ascontiguousarray(np.asarray(values, dtype="<f8")).tobytes()
    return {"dtype": "f8", "bdata": base64.b64encode(raw).decode("ascii")}


def time_strings(values: npt.ArrayLike) -> list[str]:
    """UTC instants as ISO strings to the second, the form Plotly's date axes read."""
    return [str(s) for s in np.datetime_as_string(as_times(values), unit="s")]


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {**_GRID, "title": {"text": title}, **extra}


def _figure(title: str | None, height: int, *, top: int = 76) -> Figure:
    layout: dict[str, Any] = {**LAYOUT, "height": height}
    if title:
        layout["title"] = {
            "text": title, "x": 0.01, "xanchor": "left", "y": 0.985, "yanchor": "top",
            "yref": "container",
        }  # fmt: skip
        layout["margin"] = {**LAYOUT["margin"], "t": top}
    return {"data": [], "layout": layout}


def _line(t: TimeArray, v: FloatArray, name: str, **style: Any) -> dict[str, Any]:
    return {
        "type": "scatter", "x": time_strings(t), "y": numbers(v), "mode": "lines",
        "name": name, **style,
    }  # fmt: skip


def candles_figure(
    times: npt.ArrayLike,
    ohlcv: Mapping[str, npt.ArrayLike],
    *,
    title: str | None = None,
    style: str = "candles",
    max_points: int = MAX_POINTS,
) -> Figure:
    """Price (candlesticks, or the close as a line) above volume bars, one shared time axis.

    Candles are expected at most ``max_points`` bars long (resample them first);
    the close line is LTTB-thinned if longer.
    """
    t = as_times(times)
    o, h, lo, c, vol = (np.asarray(ohlcv[k], dtype=np.float64) for k in OHLCV_FIELDS)
    fig = _figure(title, 500, top=48)
    layout = fig["layout"]
    if not title:
        layout["margin"] = {**LAYOUT["margin"], "t": 16}
    # Two rows sharing the time axis: price on 74 % of the height, volume below.
    layout.update(
        xaxis={**_GRID, "anchor": "y", "matches": "x2", "showticklabels": False,
               "rangeslider": {"visible": False}},
        yaxis={**_GRID, "anchor": "x", "domain": [0.2896, 1.0], "title": {"text": "price"}},
        xaxis2=_axis("time (UTC)", anchor="y2"),
        yaxis2={**_GRID, "anchor": "x2", "domain": [0.0, 0.2496], "title": {"text": "volume"}},
        barmode="overlay", showlegend=False, hovermode="x",
    )  # fmt: skip
    if style == "line":
        lt, lc, _ = thin(t, c, max_points)
        fig["data"].append(_line(lt, lc, "close", line={"color": PREDICTED}, xaxis="x", yaxis="y"))
    else:
        x = time_strings(t)
        fig["data"].append(
            {
                "type": "candlestick", "x": x, "open": numbers(o), "high": numbers(h),
                "low": numbers(lo), "close": numbers(c), "name": "price", "xaxis": "x",
                "yaxis": "y", "increasing": {"line": {"color": UP}},
                "decreasing": {"line": {"color": DOWN}},
            }
        )  # fmt: skip
    # Two single-colour traces, not one colour per bar: a colour list is ~20 bytes a bar.
    x = time_strings(t)
    up = c >= o
    for name, mask, colour in (("volume up", up, UP), ("volume down", ~up, DOWN)):
        fig["data"].append(
            {
                "type": "bar", "x": x, "y": numbers(np.where(mask, vol, np.nan)), "name": name,
                "marker": {"color": colour}, "opacity": 0.7, "xaxis": "x2", "yaxis": "y2",
            }
        )  # fmt: skip
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
) -> Figure:
    """Actual vs predicted by target time, and the forecasts past the last candle.

    ``future`` is ``(target_time, predicted, issued_at, horizon)``; those points
    get their own colour, a shaded region and a line at the last candle.
    """
    fig = _figure(title, 420)
    at, av, _ = thin(*actual, max_points=max_points)
    pt, pv, _ = thin(*predicted, max_points=max_points)
    fig["data"] += [
        _line(at, av, "actual", line={"color": ACTUAL}),
        _line(pt, pv, "predicted", line={"color": PREDICTED}),
    ]
    ft, fv = as_times(future[0]), np.asarray(future[1], dtype=np.float64)
    if len(ft):
        issued = np.datetime_as_string(as_times(future[2]), unit="m").tolist()
        horizons = [str(h) for h in np.asarray(future[3]).tolist()]
        fig["data"].append(
            {
                **_line(ft, fv, "forecast past the last candle"),
                "mode": "lines+markers",
                "line": {"color": FUTURE, "dash": "dot"},
                "marker": {"size": 8, "symbol": "diamond"},
                "customdata": [list(pair) for pair in zip(issued, horizons, strict=True)],
                "hovertemplate": "%{y}<br>made %{customdata[0]} UTC, horizon "
                "%{customdata[1]} bar(s)<extra>future</extra>",
            }
        )
    layout = fig["layout"]
    if last_candle is not None:
        edge = str(np.asarray(last_candle).astype("datetime64[s]"))
        end = str(ft.max()) if len(ft) else edge
        on_x = {"xref": "x", "yref": "paper", "y0": 0, "y1": 1}
        layout["shapes"] = [
            {"type": "rect", **on_x, "x0": edge, "x1": end, "fillcolor": FUTURE,
             "opacity": 0.08, "line": {"width": 0}, "layer": "below"},
            {"type": "line", **on_x, "x0": edge, "x1": edge,
             "line": {"color": FUTURE, "dash": "dash", "width": 1}},
        ]  # fmt: skip
        layout["annotations"] = [
            {"x": edge, "y": 1, "xref": "x", "yref": "paper", "text": "last candle",
             "showarrow": False, "xanchor": "right"}
        ]  # fmt: skip
    layout.update(xaxis=_axis("time (UTC)"), yaxis=_axis(y_title))
    return fig


def actual_vs_predicted_figure(
    times: npt.ArrayLike,
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    *,
    title: str | None = None,
    y_title: str,
    max_points: int = MAX_POINTS,
) -> Figure:
    fig = _figure(title, 360)
    for name, values, colour in (("actual", actual, ACTUAL), ("predicted", predicted, PREDICTED)):
        t, v, _ = thin(times, values, max_points)
        fig["data"].append(_line(t, v, name, line={"color": colour}))
    fig["layout"].update(xaxis=_axis("time (UTC)"), yaxis=_axis(y_title))
    return fig


def curves_figure(
    times: npt.ArrayLike,
    curves: Mapping[str, npt.ArrayLike],
    *,
    title: str | None = None,
    y_title: str,
    percent: bool = False,
    max_points: int = MAX_POINTS,
) -> Figure:
    """Several curves on one time axis: the first is the model, drawn strongest."""
    fig = _figure(title, 360)
    for i, (name, values) in enumerate(curves.items()):
        t, v, _ = thin(times, values, max_points)
        colour = PREDICTED if i == 0 else BASELINE_COLOURS[(i - 1) % len(BASELINE_COLOURS)]
        trace = _line(
            t, v, name.replace("_", " "), line={"color": colour, "width": 2.2 if i == 0 else 1.4}
        )
        if percent and i == 0:
            trace["fill"] = "tozeroy"
        fig["data"].append(trace)
    y_axis = _axis(y_title, tickformat=".1%") if percent else _axis(y_title)
    fig["layout"].update(xaxis=_axis("time (UTC)"), yaxis=y_axis)
    return fig


def loss_figure(
    history: Sequence[Mapping[str, float | None]], *, title: str | None = None
) -> Figure:
    """One line per loss in the Keras history (``loss``, ``val_loss``…) by epoch."""
    fig = _figure(title, 300)
    names = [k for k in (history[0] if history else {}) if k != "epoch" and "loss" in k]
    epochs = np.array([row.get("epoch") or i + 1 for i, row in enumerate(history)], dtype=float)
    for name in names:
        values = np.array(
            [np.nan if row.get(name) is None else row[name] for row in history], dtype=float
        )
        fig["data"].append(
            {
                "type": "scatter", "x": numbers(epochs), "y": numbers(values),
                "mode": "lines+markers", "name": name.replace("_", " "),
            }
        )  # fmt: skip
    x_axis = _axis("epoch", tick0=1)
    if len(history) <= 20:
        x_axis["dtick"] = 1
    fig["layout"].update(xaxis=x_axis, yaxis=_axis("loss", rangemode="tozero"))
    return fig


def trials_figure(
    trial_numbers: Sequence[int],
    values: Sequence[float | None],
    *,
    objective: str,
    minimise: bool,
    title: str | None = None,
) -> Figure:
    """A sweep's objective by trial number (a trial without one is left out) and the best so far."""
    fig = _figure(title, 300)
    x = np.asarray(trial_numbers, dtype=float)
    y = np.array([np.nan if v is None else v for v in values], dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    scored = np.where(np.isfinite(y), y, np.inf if minimise else -np.inf)
    best = np.minimum.accumulate(scored) if minimise else np.maximum.accumulate(scored)
    best[~np.isfinite(best)] = np.nan
    fig["data"] = [
        {
            "type": "scatter", "x": numbers(x), "y": numbers(y), "mode": "markers",
            "name": objective.replace("_", " "), "marker": {"size": 9},
        },
        {
            "type": "scatter", "x": numbers(x), "y": numbers(best), "mode": "lines",
            "name": "best so far", "line": {"shape": "hv", "dash": "dot"},
        },
    ]  # fmt: skip
    x_axis = _axis("trial", tick0=0)
    if len(x) <= 20:
        x_axis["dtick"] = 1
    fig["layout"].update(xaxis=x_axis, yaxis=_axis(objective.replace("_", " ")), hovermode="closest")  # fmt: skip
    return fig


_HTML_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def figure_json(fig: Figure) -> str:
    """The figure as JSON that is safe inside ``<script type="application/json">``.

    ``allow_nan=False``: a bare NaN is not JSON; numbers that may be NaN travel as
    typed arrays (:func:`numbers`).
    """
    text = json.dumps(fig, separators=(",", ":"), allow_nan=False)
    return text.translate(_HTML_ESCAPES)
