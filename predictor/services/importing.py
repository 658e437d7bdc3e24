"""``import_stocks``: CSV files of every known layout into the candle table.

One transaction per file: a bad row stops that file with an error naming file,
line and field, and nothing of it is written (not even its market); other files
go on. A file that imports without an error is recorded (:class:`ImportedFile`:
size, mtime, sha256, the summary), so that a later run can skip it while it is
unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from predictor.ml.candles import CandleChunk
from predictor.ml.csvformats import CandleReader, detect_layout
from predictor.ml.csvsources import (
    CandleFileError,
    Source,
    exchange_from_name,
    sources_in,
    symbol_from_name,
)
from predictor.ml.intervals import Interval, IntervalError, infer_interval, parse_interval
from predictor.ml.prefetch import prefetched
from predictor.ml.symbols import normalise_symbol, split_symbol
from predictor.models import Exchange, ImportedFile, Market
from predictor.services.candle_store import CandleDataError, UpsertResult, candles_upsert

IMPORTABLE_SUFFIXES = (".csv", ".csv.gz", ".zip")
# Chunks start small and double up to IMPORT_CHUNK_ROWS: writing may begin after a short
# parse, and parsing each next chunk (about 3x faster than writing it) hides behind
# writing the one before. Measured in docs/benchmarks.md ("Import").
IMPORT_CHUNK_ROWS = 32_768
IMPORT_FIRST_CHUNK_ROWS = 4_096


@dataclass(frozen=True, slots=True)
class FileImportResult:
    source: str
    market: str | None = None
    interval: str | None = None
    layout: str | None = None
    result: UpsertResult | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    skipped: bool = False  # unchanged since it was imported: not read again

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FileState:
    """What a file is now: compared with its :class:`ImportedFile` row."""

    size: int
    mtime: datetime
    sha256: str


def file_state(path: Path) -> FileState:
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return FileState(
        stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC), digest.hexdigest()
    )


def importable_files(directory: Path) -> list[Path]:
    """Every .csv, .csv.gz and .zip below ``directory``, in name order."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.name.lower().endswith(IMPORTABLE_SUFFIXES)
    )


def stocks_import(
    paths: Iterable[Path],
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    replace: bool = False,
    skip_imported: bool = False,
    progress: Callable[[str], Callable[[int], None]] | None = None,
) -> list[FileImportResult]:
    """Import each file; errors are reported per file, never abort the others.

    ``skip_imported``: a file whose size and sha256 are those of its last error-free
    import is not read again (a result with ``skipped``); ``replace`` imports anyway.
    """
    results: list[FileImportResult] = []
    for path in map(Path, paths):
        try:
            state = file_state(path)
        except OSError as exc:
            results.append(FileImportResult(str(path), error=f"{path}: cannot read: {exc}"))
            continue
        if skip_imported and not replace:
            record = _unchanged_record(path, state)
            if record is not None:
                note = f"unchanged since its import on {record.imported_at:%Y-%m-%d %H:%M} UTC"
                results.append(FileImportResult(str(path), skipped=True, notes=(note,)))
                continue
        try:
            sources = sources_in(path)
        except CandleFileError as exc:
            results.append(FileImportResult(str(path), error=str(exc)))
            continue
        done = []
        for source in sources:
            tick = progress(source.name) if progress else None
            done.append(
                stock_file_import(
                    source,
                    exchange=exchange,
                    symbol=symbol,
                    interval=interval,
                    replace=replace,
                    progress=tick,
                )
            )
        results += done
        if done and all(r.ok for r in done):
            _record_import(path, state, done)
    return results


def _unchanged_record(path: Path, state: FileState) -> ImportedFile | None:
    """The file's record if its content is what it was then. The hash decides, not the
    mtime: ``cp -p``, ``tar`` and ``unzip`` restore old mtimes on new content, while
    hashing (about 1 GB/s) costs little beside the import it saves."""
    record = ImportedFile.objects.filter(path=str(path.resolve())).first()
    if record is None or (record.size, record.sha256) != (state.size, state.sha256):
        return None
    return record


def _record_import(path: Path, state: FileState, results: list[FileImportResult]) -> None:
    stat = path.stat()
    if (stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC)) != (state.size, state.mtime):
        return  # it changed while it was read: what was imported is not what was hashed
    summaries = [r.result for r in results if r.result is not None]
    ImportedFile.objects.update_or_create(
        path=str(path.resolve()),
        defaults={
            "given_path": str(path),
            "size": state.size,
            "mtime": state.mtime,
            "sha256": state.sha256,
            "imported_at": timezone.now(),
            "rows": sum(u.rows for u in summaries),
            "inserted": sum(u.inserted for u in summaries),
            "duplicates": sum(u.duplicates for u in summaries),
            "conflicts": sum(u.conflicts for u in summaries),
            "replaced": sum(u.replaced for u in summaries),
        },
    )


def stock_file_import(
    source: Source,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    replace: bool = False,
    progress: Callable[[int], None] | None = None,
) -> FileImportResult:
    started = time.perf_counter()
    try:
        with transaction.atomic():
            return _import(source, exchange, symbol, interval, replace, progress, started)
    except (CandleFileError, CandleDataError) as exc:
        return FileImportResult(source.name, error=str(exc), seconds=time.perf_counter() - started)


def _import(
    source: Source,
    exchange: str | None,
    symbol: str | None,
    interval_text: str | None,
    replace: bool,
    progress: Callable[[int], None] | None,
    started: float,
) -> FileImportResult:
    name_symbol = symbol_from_name(source)
    layout = detect_layout(source, symbol_hint=symbol or name_symbol)
    reader = CandleReader(
        source, layout, chunk_rows=IMPORT_CHUNK_ROWS, first_chunk_rows=IMPORT_FIRST_CHUNK_ROWS
    )
    # The next chunk is parsed in a thread while this one is written: both spend
    # their time outside the GIL (zlib and pandas' C parser; the COPY).
    with prefetched(_with_symbols(reader), name=f"import {source.stem}") as chunks:
        first = next(chunks, None)
        if first is None:
            raise CandleFileError(source.name, "the file has a header but no rows")
        market = _market(source, first[1], exchange or layout.header_exchange, symbol, name_symbol)
        interval = _interval(source, first[0], interval_text)
        stream = _one_symbol(itertools.chain([first], chunks), source)
        result = candles_upsert(
            market, interval, stream, replace=replace, source=source.name, progress=progress
        )
    notes = list(layout.notes)
    if reader.date_corrections:
        notes.append(
            f"{reader.date_corrections:,} rows: unix timestamp disagreed with Date; Date used"
        )
    if exchange is None and layout.header_exchange is None and exchange_from_name(source) is None:
        notes.append("exchange not in the file or its name")
    return FileImportResult(
        source.name,
        str(market),
        interval.code,
        layout.kind,
        result,
        notes=tuple(notes),
        seconds=time.perf_counter() - started,
    )


def _market(
    source: Source,
    symbols_seen: frozenset[str],
    exchange: str | None,
    symbol: str | None,
    name_symbol: str | None,
) -> Market:
    stated = sorted(normalise_symbol(s) for s in symbols_seen)
    if symbol and stated and normalise_symbol(symbol) not in stated:
        raise CandleFileError(
            source.name,
            f"the file says symbol {stated[0]} but --symbol says {normalise_symbol(symbol)}",
            field="symbol",
        )
    symbol = symbol or (stated[0] if stated else None) or name_symbol
    exchange = exchange or exchange_from_name(source)
    if not symbol:
        raise CandleFileError(
            source.name, "cannot tell the symbol from the file or its name; pass --symbol"
        )
    if not exchange:
        raise CandleFileError(
            source.name, "cannot tell the exchange from the file or its name; pass --exchange"
        )
    if exchange not in Exchange.values:
        raise CandleFileError(
            source.name, f"unknown exchange {exchange!r}; one of " + ", ".join(Exchange.values)
        )
    base, quote = split_symbol(symbol)
    market, _ = Market.objects.get_or_create(
        exchange=exchange,
        symbol=normalise_symbol(symbol),
        defaults={"base_asset": base, "quote_asset": quote},
    )
    return market


def _interval(source: Source, first: CandleChunk, text: str | None) -> Interval:
    try:
        return parse_interval(text) if text else infer_interval(first.open_time)
    except IntervalError as exc:
        raise CandleFileError(
            source.name,
            str(exc) if "--interval" in str(exc) else f"{exc}; pass --interval",
            field="time",
        ) from None


def _with_symbols(reader: CandleReader) -> Iterator[tuple[CandleChunk, frozenset[str]]]:
    """Each chunk with the symbols seen up to it, taken in the thread that reads, so
    that the consumer never looks at the reader's state while it changes."""
    for chunk in reader.chunks():
        yield chunk, frozenset(reader.symbols_seen)


def _one_symbol(
    chunks: Iterator[tuple[CandleChunk, frozenset[str]]], source: Source
) -> Iterator[CandleChunk]:
    for chunk, symbols_seen in chunks:
        symbols = {normalise_symbol(s) for s in symbols_seen}
        if len(symbols) > 1:
            raise CandleFileError(
                source.name,
                f"the file mixes symbols {sorted(symbols)}; import one market per file",
                field="symbol",
            )
        yield chunk
