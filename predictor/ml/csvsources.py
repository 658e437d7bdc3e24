"""Where candle files come from: a plain, ``.gz`` or ``.zip`` source, its errors, and
what its name says (exchange, symbol). ``.gz`` files inflate with ISA-L."""

from __future__ import annotations

import contextlib
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from isal import igzip, igzip_lib

from predictor.ml.candles import CandleInputError
from predictor.ml.symbols import split_symbol

EXCHANGE_NAMES = (
    "binance-futures",
    "binance",
    "gemini",
    "bitstamp",
    "kraken",
    "coinbase",
    "bitfinex",
)
# What inflating a truncated or damaged .gz or .zip raises (isal's stub types its
# error as an instance, hence the cast).
CORRUPT_ERRORS: tuple[type[Exception], ...] = (
    EOFError,
    zlib.error,
    cast(type[Exception], igzip_lib.IsalError),
    igzip.BadGzipFile,
    zipfile.BadZipFile,
)


class CandleFileError(CandleInputError):
    """Bad input in a candle file, located by file, line and field."""


@dataclass(frozen=True, slots=True)
class Source:
    """One readable CSV: a plain file, a ``.gz`` file, or one member of a ``.zip``."""

    path: Path
    member: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @property
    def stem(self) -> str:
        base = Path(self.member).name if self.member else self.path.name
        for suffix in (".gz", ".zip", ".csv", ".txt"):
            base = base.removesuffix(suffix)
        return base

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        if self.member is not None:
            with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as fh:
                yield fh
        elif self.path.name.endswith(".gz"):
            # ISA-L's inflate: 3x zlib's, a third of the import's parsing time
            # (docs/benchmarks.md); the same file API, errors and GIL release.
            with igzip.open(self.path, "rb") as gz:  # type: ignore[no-untyped-call]
                yield gz
        else:
            with open(self.path, "rb") as fh:
                yield fh


def sources_in(path: Path) -> list[Source]:
    """The CSV sources of a path (a ``.zip`` may hold several)."""
    if path.name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
        except zipfile.BadZipFile as exc:
            raise CandleFileError(str(path), f"not a readable zip archive ({exc})") from None
        if not members:
            raise CandleFileError(str(path), "the zip archive holds no .csv file")
        return [Source(path, member) for member in sorted(members)]
    return [Source(path)]


def exchange_from_name(source: Source) -> str | None:
    """An exchange named in the file or folder name (``gemini_BTCUSD_1hr.csv``)."""
    parts = [source.stem, *(p for p in reversed(source.path.parent.parts[-3:]))]
    for part in parts:
        tokens = re.split(r"[^a-z0-9\-]+|_", part.lower())
        for exchange in EXCHANGE_NAMES:
            if exchange in tokens:
                return exchange
    return None


def symbol_from_name(source: Source) -> str | None:
    """The symbol in a file name: ``BTCUSDT-1m-2024-01``, ``gemini_BTCUSD_1hr``, ``BTCUSDT_5m``."""
    for token in re.split(r"[_\-\s.]+", source.stem):
        upper = token.upper()
        if (
            len(upper) >= 5
            and upper.isalnum()
            and not upper[0].isdigit()
            and split_symbol(upper)[0]
        ):
            return upper
    return None
