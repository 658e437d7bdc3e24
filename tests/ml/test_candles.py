"""The candle fields are written out once, in ``predictor.ml.candles.OHLCV_FIELDS``."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

from predictor.ml.candles import OHLCV_FIELDS, CandleWindow

ROOT = Path(__file__).resolve().parents[2]
# Migrations are frozen history; csvformats spells out external files' column layouts.
EXEMPT = ("migrations", "csvformats.py")


def _spelled_out(path: Path) -> list[int]:
    """Lines where a tuple or list literal spells out the five fields in a row."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Tuple | ast.List):
            names = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            n = len(OHLCV_FIELDS)
            if any(tuple(names[i : i + n]) == OHLCV_FIELDS for i in range(len(names) - n + 1)):
                lines.append(node.lineno)
    return lines


def test_no_module_of_the_app_spells_out_the_ohlcv_fields() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for package in ("predictor", "cryptooracle")
        for path in sorted((ROOT / package).rglob("*.py"))
        if not any(part in EXEMPT for part in path.parts)
        if (lines := _spelled_out(path)) and path != ROOT / "predictor/ml/candles.py"
    }
    assert found == {}, f"use predictor.ml.candles.OHLCV_FIELDS instead: {found}"


def test_the_check_finds_a_spelled_out_tuple(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('FIELDS = ("open_time", "open", "high", "low", "close", "volume")\n')
    assert _spelled_out(sample) == [1]


def test_a_candle_window_survives_a_json_message_bit_for_bit() -> None:
    """The predict task gets its candles as JSON: every float64 and open time comes back."""
    rng = np.random.default_rng(3)
    values = rng.lognormal(4.0, 2.0, size=(40, 5))  # 17 significant digits, none round
    values[0, 4] = 0.0  # a zero volume stays zero
    timed = CandleWindow(values, 1_704_067_200 + 3600 * np.arange(40, dtype=np.int64))
    back = CandleWindow.from_plain(json.loads(json.dumps(timed.to_plain())))
    assert back.values.dtype == np.float64
    assert back.values.shape == (40, 5)
    assert np.array_equal(back.values, values)
    assert back.times is not None
    assert np.array_equal(back.times, timed.times)
    untimed = CandleWindow.from_plain(json.loads(json.dumps(CandleWindow(values, None).to_plain())))
    assert untimed.times is None
    assert np.array_equal(untimed.values, values)
