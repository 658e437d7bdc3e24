"""Real candles with a hole of months: no training or evaluation sample reads the hole.

Binance's ALGOUSDT 1-minute files for 2024-02 and 2024-09, imported through
``import_stocks`` into the test database, leave March to August (about seven
months, 300k minutes) without a candle — the shape of the hole in the issue.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from predictor.ml.arrays import align_markets
from predictor.ml.config import TrainConfig
from predictor.ml.features import feature_lookback
from predictor.ml.training import prepare_data, sample_reach
from predictor.models import Market
from predictor.selectors.candles import candles_frame
from predictor.services.sessions import session_create
from predictor.services.split_inputs import usable_anchors
from predictor.services.training import session_run

pytestmark = [pytest.mark.django_db, pytest.mark.realdata, pytest.mark.slow]
FILES = (
    "owlacar-dotcom__isda/ALGOUSDT-1m-2024-02.csv.gz",
    "owlacar-dotcom__isda/ALGOUSDT-1m-2024-09.csv.gz",
)
HOLE_START, HOLE_END = pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2024-09-01", tz="UTC")


def test_no_sample_of_a_real_file_with_a_hole_of_months_reads_the_hole(shared_data: Path) -> None:
    for relative in FILES:
        call_command("import_stocks", "--file", str(shared_data / relative), stdout=io.StringIO())
    market = Market.objects.get(symbol="ALGOUSDT")
    frame = candles_frame(market, interval="1m")[["open", "high", "low", "close", "volume"]]
    assert len(frame) == 41_760 + 43_200
    config = TrainConfig(
        arch="zero", target="return", horizon=15, window=60, interval="1m", features=("returns",)
    )
    prep = prepare_data(frame, config)
    index = prep.market.index
    hole = np.flatnonzero((index >= HOLE_START) & (index < HOLE_END))
    assert len(hole) == 184 * 1440  # March..August: every bar of it was filled in
    assert prep.filled is not None
    assert np.flatnonzero(prep.filled).tolist() == hole.tolist()
    before, after = sample_reach(config, feature_lookback(config.features))
    for name in ("train", "validation", "test"):
        anchors = getattr(prep.split, name).anchors
        assert len(anchors), name
        first_read, last_read = anchors - before, anchors + after
        assert not ((last_read >= hole[0]) & (first_read <= hole[-1])).any(), name
    # Before, these ~265k complete windows of flat bars were training samples.
    gaps = prep.split.gaps
    assert gaps is not None
    assert gaps.windows_dropped == len(hole) + before + after
    assert [p.windows_kept for p in gaps.parts.values()] == [
        len(prep.split.train),
        len(prep.split.validation),
        len(prep.split.test),
    ]
    assert gaps.parts["train"].filled_bars == len(hole)  # the hole lies in the training span

    # The evaluation applies the same rule to stored forecasts: none reading the hole scores.
    array = align_markets({market.symbol: frame}, "1m")
    usable = usable_anchors(config, array)
    rows = np.arange(len(usable))
    touches = (rows + after >= hole[0]) & (rows - before <= hole[-1])
    assert not usable[touches].any()
    assert usable[~touches & np.isin(rows, prep.anchors)].all()

    # A session stores the counts the command, page and API show.
    session = session_run(session_create(config, symbols=["ALGOUSDT"]).pk)
    assert session.status == "succeeded", session.error
    assert session.split["gaps"]["filled_bars"] == len(hole)
    assert session.split["gaps"]["windows_dropped"] == gaps.windows_dropped
    stored = session.split["train"]
    assert stored["windows_kept"] == session.samples["train"]
