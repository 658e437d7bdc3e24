"""The candle fields are written out once, in ``predictor.ml.candles.OHLCV_FIELDS``."""

from __future__ import annotations

import ast
from pathlib import Path

from predictor.ml.candles import OHLCV_FIELDS

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
