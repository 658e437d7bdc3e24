from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.arrays import align_markets
from predictor.ml.config import label_reach
from predictor.ml.features import build_features
from predictor.ml.targets import BUY, HOLD, SELL, make_targets, updown_labels


def _market(close: list[float], high: list[float] | None = None, low: list[float] | None = None):
    n = len(close)
    frame = pd.DataFrame(
        {
            "open": close,
            "high": high or close,
            "low": low or close,
            "close": close,
            "volume": [1.0] * n,
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    )
    return align_markets(frame)


def test_updown_labels_on_a_hand_made_path() -> None:
    close = np.array([100, 100.5, 101.2, 100, 99.4, 99.0, 100, 100, 100, 100.0])[:, None]
    labels = updown_labels(close, horizon=3, up=0.01, down=0.005)[:, 0]
    # t=0: +1.2% at k=2 before any -0.5%: buy.
    # t=2 (101.2): falls to 100 (-1.19%) at k=1: sell.
    # t=3 (100): 99.4 is -0.6% at k=1: sell.
    # t=5 (99.0): 100 is +1.01% at k=1: buy.
    # t=6 (100): flat for 3 steps: hold.
    # t=7..9: the horizon runs past the end: no label.
    assert labels[0] == BUY
    assert labels[2] == SELL
    assert labels[3] == SELL
    assert labels[5] == BUY
    assert labels[6] == HOLD
    assert np.isnan(labels[7:]).all()


def test_updown_takes_whichever_threshold_is_crossed_first() -> None:
    down_first = np.array([100, 99.4, 102, 102.0])[:, None]
    up_first = np.array([100, 101.1, 99, 99.0])[:, None]
    assert updown_labels(down_first, 3, 0.01, 0.005)[0, 0] == SELL
    assert updown_labels(up_first, 3, 0.01, 0.005)[0, 0] == BUY


def test_range_targets_by_hand() -> None:
    market = _market(
        close=[100, 102, 99, 101, 100],
        high=[100, 103, 100, 104, 100],
        low=[100, 101, 97, 100, 100],
    )
    values = make_targets(market, "range", horizon=3).values[:, 0, :]
    # From t=0 over t=1..3: max high 104 (+4%), min low 97 (-3%), end 101 (+1%).
    np.testing.assert_allclose(values[0], [4.0, -3.0, 1.0], rtol=1e-5)
    # From t=1 (102) over t=2..4: max high 104, min low 97, end 100.
    np.testing.assert_allclose(
        values[1], [100 * (104 / 102 - 1), 100 * (97 / 102 - 1), 100 * (100 / 102 - 1)], rtol=1e-5
    )
    assert np.isnan(values[2:]).all()


def test_price_return_and_logreturn_with_multi_step_output() -> None:
    market = _market([100, 110, 121, 133.1, 146.41, 161.051])
    price = make_targets(market, "price", horizon=1, output_size=3)
    np.testing.assert_allclose(price.values[0, 0], [110, 121, 133.1], rtol=1e-6)
    assert price.reach == 3
    ret = make_targets(market, "return", horizon=2, output_size=2)
    np.testing.assert_allclose(ret.values[0, 0], [0.21, 0.4641], rtol=1e-5)
    log = make_targets(market, "logreturn", horizon=2, output_size=1)
    np.testing.assert_allclose(log.values[1, 0, 0], np.log(133.1 / 110), rtol=1e-5)


@pytest.mark.parametrize(
    ("kind", "horizon", "output"),
    [("price", 1, 3), ("return", 4, 2), ("updown", 5, 1), ("range", 6, 1)],
)
def test_labels_past_the_data_end_are_nan_not_filled(
    frame: pd.DataFrame, kind: str, horizon: int, output: int
) -> None:
    targets = make_targets(align_markets(frame), kind, horizon, output)
    reach = label_reach(kind, horizon, output)
    assert targets.valid[: len(frame) - reach].all()
    assert not targets.valid[len(frame) - reach :].any()


@pytest.mark.parametrize("kind", ["price", "return", "logreturn", "updown", "range"])
def test_truncate_the_future_leaves_features_and_labels_unchanged(
    long_frame: pd.DataFrame, kind: str
) -> None:
    """Every sample whose label ends before the cut sees identical inputs and labels."""
    market = align_markets(long_frame)
    horizon, output = 7, (2 if kind in ("price", "return", "logreturn") else 1)
    reach = label_reach(kind, horizon, output)
    full_x = build_features(market, ("returns", "trend")).values
    full_y = make_targets(market, kind, horizon, output).values
    for cut in (2300, 2500):
        short = market.truncate(cut)
        x = build_features(short, ("returns", "trend")).values
        y = make_targets(short, kind, horizon, output).values
        keep = cut - reach  # anchors < cut - reach have their whole label before the cut
        np.testing.assert_array_equal(x[:keep], full_x[:keep])
        np.testing.assert_array_equal(y[:keep], full_y[:keep])
        # And the cut data marks what it cannot know, instead of guessing.
        assert np.isnan(y[keep:]).any(axis=(1, 2)).all()


def test_unknown_target_kind_is_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="target: unknown kind"):
        make_targets(align_markets(frame), "volatility", 5)
