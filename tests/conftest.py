"""Shared fixtures. Test data files are written by the tests themselves; the
real exchange files in ../shared/data are read by path when that folder exists."""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write text as .csv, .csv.gz or inside a .zip, and return the path."""

    def write(name: str, text: str, *, member: str | None = None) -> Path:
        path = tmp_path / name
        data = text.encode()
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(data))
        elif name.endswith(".zip"):
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr(member or name.removesuffix(".zip") + ".csv", data)
        else:
            path.write_bytes(data)
        return path

    return write


@pytest.fixture(autouse=True)
def _no_page_caches(settings: Any) -> None:
    """Pages cache candle coverage, charts and resampled bars; a test's rolled-back rows must
    not leak into the next (tests of the caches turn them back on)."""
    settings.COVERAGE_CACHE_SECONDS = 0
    settings.CANDLE_CACHE_SECONDS = 0
