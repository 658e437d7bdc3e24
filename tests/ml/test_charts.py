"""Chart figures: long lines are LTTB-thinned, gaps dropped, JSON safe inside a script tag."""

from __future__ import annotations

import json

import numpy as np

from predictor.ml.charts import (
    candles_figure,
    curves_figure,
    figure_json,
    forecast_figure,
    loss_figure,
    thin,
    trials_figure,
)
from predictor.ml.downsample import MAX_POINTS

T0 = 1_704_067_200


def _decoded(fig: object) -> dict:
    return json.loads(figure_json(fig))


def test_thin_drops_missing_points_and_keeps_at_most_the_limit() -> None:
    times = T0 + 60 * np.arange(20_000)
    values = np.sin(np.arange(20_000) / 500.0)
    values[100] = np.nan
    t, v, positions = thin(times, values)
    assert len(t) == len(v) == MAX_POINTS
    assert 100 not in positions
    assert positions[0] == 0
    assert positions[-1] == 19_999
    assert t.dtype == np.dtype("datetime64[s]")
    assert str(t[0]) == "2024-01-01T00:00:00"


def test_a_short_line_is_kept_whole() -> None:
    _, v, _ = thin(T0 + 3600 * np.arange(10), np.arange(10.0))
    assert v.tolist() == list(range(10))


def test_curves_of_a_long_backtest_are_thinned_per_series() -> None:
    n = 12_000
    times = T0 + 3600 * np.arange(n)
    fig = curves_figure(
        times,
        {"model": np.linspace(1, 2, n), "buy_and_hold": np.linspace(1, 1.5, n)},
        y_title="equity",
    )
    data = _decoded(fig)["data"]
    assert [trace["name"] for trace in data] == ["model", "buy and hold"]
    assert all(len(trace["x"]) == MAX_POINTS for trace in data)


def test_forecast_figure_marks_the_future_after_the_last_candle() -> None:
    times = T0 + 3600 * np.arange(50)
    future = T0 + 3600 * np.arange(50, 53)
    fig = forecast_figure(
        (times, np.ones(50)),
        (times, np.ones(50)),
        (future, np.full(3, 1.1), future - 3600 * 3, np.full(3, 3)),
        last_candle=np.datetime64(int(times[-1]), "s"),
        y_title="price",
    )
    layout = _decoded(fig)["layout"]
    assert [shape["type"] for shape in layout["shapes"]] == ["rect", "line"]
    assert layout["shapes"][1]["x0"] == "2024-01-03T01:00:00"
    assert fig["data"][2]["customdata"][0] == ["2024-01-02T23:00", "3"]  # made at target - 3 h


def test_candles_come_with_volume_bars_coloured_by_direction() -> None:
    ohlcv = {
        "open": [1.0, 2.0],
        "high": [2.5, 2.5],
        "low": [0.5, 0.5],
        "close": [2.0, 1.0],
        "volume": [3.0, 4.0],
    }
    data = _decoded(candles_figure(T0 + 3600 * np.arange(2), ohlcv))["data"]
    assert [trace["type"] for trace in data] == ["candlestick", "bar", "bar"]
    up, down = data[1], data[2]
    assert (up["marker"]["color"], down["marker"]["color"]) == ("#1a9e6b", "#d64545")
    # The rising bar's volume is in the up trace only, the falling one's in the down trace.
    assert _values(up["y"])[0] == 3.0
    assert np.isnan(_values(up["y"])[1])
    assert np.isnan(_values(down["y"])[0])
    assert _values(down["y"])[1] == 4.0


def test_loss_figure_draws_each_loss_and_skips_other_metrics() -> None:
    history = [{"epoch": 1.0, "loss": 0.5, "val_loss": 0.6, "mae": 0.1}]
    names = [trace["name"] for trace in loss_figure(history)["data"]]
    assert names == ["loss", "val loss"]


def test_figure_json_cannot_close_the_script_tag_it_is_embedded_in() -> None:
    fig = loss_figure([{"epoch": 1.0, "loss": 1.0}], title="</script><script>alert(1)")
    text = figure_json(fig)
    assert "</script>" not in text
    assert "<" not in text
    assert json.loads(text)["layout"]["title"]["text"] == "</script><script>alert(1)"


def _values(y: object) -> np.ndarray:
    """A trace's y as floats, whether plotly wrote a list or a typed array."""
    if isinstance(y, dict) and "bdata" in y:
        import base64

        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y.get("dtype", "f8")).astype(float)
    return np.array([np.nan if v is None else v for v in y], dtype=float)  # type: ignore[union-attr]


def _typed(trace: dict, axis: str) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(trace[axis]["bdata"]), dtype="<f8")


def test_trials_figure_plots_each_objective_and_the_best_so_far_in_trial_order() -> None:
    fig = _decoded(
        trials_figure([2, 0, 1, 3], [0.3, 0.1, None, 0.05], objective="val_ic", minimise=False)
    )
    points, best = fig["data"]
    np.testing.assert_array_equal(_typed(points, "x"), [0, 1, 2, 3])
    np.testing.assert_array_equal(_typed(points, "y"), [0.1, np.nan, 0.3, 0.05])
    np.testing.assert_array_equal(_typed(best, "y"), [0.1, 0.1, 0.3, 0.3])
    lowest = _decoded(
        trials_figure([0, 1, 2], [None, 2.0, 1.0], objective="val_loss", minimise=True)
    )
    np.testing.assert_array_equal(_typed(lowest["data"][1], "y"), [np.nan, 2.0, 1.0])
    assert lowest["layout"]["yaxis"]["title"]["text"] == "val loss"
