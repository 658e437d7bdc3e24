"""From an empty database to every page with content: the steps ``quickstart`` runs.

Each step is one call into the services that already do the work (the
Binance archive download of ``import_stocks --download``, ``stocks_import``,
``run_start``/``run_here``, ``session_forecast``, ``session_evaluate``);
what lives here is the default dataset, the small model, and the rules that make
a second run reuse what the first one made.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
from django.conf import settings
from django.db.models import Max, Min
from django.urls import reverse

from predictor.ml.config import TrainConfig
from predictor.ml.intervals import parse_interval
from predictor.models import Candle, Market, SessionMode, SessionStatus, TrainingSession
from predictor.services.downloads import NoNetwork, binance_archive_download, months_between
from predictor.services.importing import FileImportResult, stocks_import
from predictor.services.providers.http import HttpClient
from predictor.services.runs import RunRequest, run_start

EXCHANGE = "binance"
DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
DEFAULT_INTERVAL = "1h"
DEFAULT_MONTHS = 24
DEFAULT_EPOCHS = 5
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class QuickstartError(Exception):
    """A step cannot go on; the message says why and what to do."""


class Offline(QuickstartError):
    """The download site cannot be reached; nothing was written."""


def last_complete_months(count: int, today: dt.date | None = None) -> tuple[str, str]:
    """The first and last of the ``count`` months before the current one (UTC), as YYYY-MM.

    A month's archive is published only once the month is over, so the current
    month never counts: on 2025-03-10, ``count=2`` gives 2025-01 … 2025-02.
    """
    if count < 1:
        raise QuickstartError(f"--months: {count} is too few (at least 1)")
    today = today or dt.datetime.now(dt.UTC).date()
    current = today.year * 12 + today.month - 1  # months since year 0, zero-based
    last, first = current - 1, current - count

    def name(index: int) -> str:
        return f"{index // 12:04d}-{index % 12 + 1:02d}"

    return name(first), name(last)


def quickstart_config(
    symbols: Sequence[str], interval: str, *, epochs: int, evaluation: bool
) -> TrainConfig:
    """A small LSTM on the markets' returns that trains in minutes on a laptop CPU.

    Returns and the next day's log-return rather than prices: a network fed raw
    prices mostly learns the last price, which says nothing on the evaluation page.
    """
    return TrainConfig(
        arch="lstm",
        target="logreturn",
        features=("returns",),
        scaler="standard",
        horizon=24,
        window=48,
        units=32,
        dropout=0.1,
        batch_size=256,
        epochs=epochs,
        interval=interval,
        evaluation=evaluation,
        markets=tuple(s.upper() for s in symbols),
    )


def _created_dirs(path: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create for ``path``, deepest first."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    return missing


def quickstart_download(
    symbols: Sequence[str],
    interval: str,
    month_from: str,
    month_to: str,
    *,
    dest_dir: Path,
    base_url: str | None = None,
    client: HttpClient | None = None,
    on_month: Callable[[str, str], None] | None = None,
) -> Archives:
    """Each market's verified monthly archives in ``dest_dir``, fetched when not there yet.

    Month by month so that ``on_month(symbol, month)`` can drive a progress bar.
    Without a network it raises :class:`Offline` and removes the folders it made:
    an archive is only ever kept whole and checked (see ``binance_archive_download``).
    """
    new_dirs = _created_dirs(Path(dest_dir))
    paths: dict[str, list[Path]] = {}
    fetched: set[Path] = set()
    try:
        for symbol in symbols:
            paths[symbol] = []
            for month in months_between(month_from, month_to):
                before = _stamp(
                    Path(dest_dir) / f"{symbol}-{parse_interval(interval).code}-{month}.zip"
                )
                (path,) = binance_archive_download(
                    symbol,
                    interval,
                    month,
                    month,
                    dest_dir=dest_dir,
                    base_url=base_url,
                    client=client,
                )
                paths[symbol].append(path)
                if _stamp(path) != before:
                    fetched.add(path)
                if on_month is not None:
                    on_month(symbol, month)
    except NoNetwork:
        for folder in new_dirs:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        host = urlsplit(base_url or settings.BINANCE_VISION_URL).netloc
        raise Offline(
            f"No network: cannot reach {host} to download the default dataset. "
            f"To start from local files instead, put candle files (.csv, .csv.gz, Binance "
            f".zip) in {settings.DATA_DIR}, run `python manage.py import_stocks`, then "
            f"`python manage.py quickstart --skip-download`."
        ) from None
    return Archives(paths, frozenset(fetched))


def _stamp(path: Path) -> tuple[int, int] | None:
    """Size and modification time: what tells a file the download replaced from one it kept."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _archive_rows(path: Path) -> int:
    """Candle rows in a kline zip (a header line, as newer archives carry, is not one)."""
    with zipfile.ZipFile(path) as archive:
        return sum(
            sum(1 for line in archive.read(name).splitlines() if line[:1].isdigit())
            for name in archive.namelist()
        )


def _month_stored(symbol: str, interval: str, path: Path) -> bool:
    """Whether every candle of this month's archive is stored already."""
    month = pd.Period(path.stem[-7:], "M")  # SYMBOL-1h-YYYY-MM
    start = month.start_time.tz_localize("UTC").to_pydatetime()
    end = (month + 1).start_time.tz_localize("UTC").to_pydatetime()
    stored = Candle.objects.filter(
        market__exchange=EXCHANGE,
        market__symbol=symbol,
        interval=parse_interval(interval),
        open_time__gte=start,
        open_time__lt=end,
    ).count()
    return stored > 0 and stored == _archive_rows(path)


@dataclass(frozen=True)
class Archives:
    by_symbol: dict[str, list[Path]]
    fetched: frozenset[Path]  # new or replaced by this download; the others were kept


@dataclass(frozen=True)
class MarketImport:
    results: list[FileImportResult]
    skipped: int  # archives kept from an earlier run whose candles are all stored


def quickstart_import(
    archives: Archives,
    interval: str,
    progress: Callable[[str], Callable[[int], None]] | None = None,
) -> dict[str, MarketImport]:
    """Import each market's archives, except kept ones whose month is stored whole.

    Re-reading a stored month adds nothing (the import is idempotent). The test is
    the month's candle count rather than the file record ``import_stocks
    --if-present`` keeps, because a month whose candles were deleted since must be
    read again although its archive did not change.
    """
    done: dict[str, MarketImport] = {}
    for symbol, files in archives.by_symbol.items():
        todo = [
            path
            for path in files
            if path in archives.fetched or not _month_stored(symbol, interval, path)
        ]
        results = stocks_import(
            todo, exchange=EXCHANGE, symbol=symbol, interval=interval, progress=progress
        )
        done[symbol] = MarketImport(results, skipped=len(files) - len(todo))
    return done


def _markets(symbols: Sequence[str]) -> list[Market]:
    found = {m.symbol: m for m in Market.objects.filter(exchange=EXCHANGE, symbol__in=symbols)}
    missing = [s for s in symbols if s not in found]
    if missing:
        raise QuickstartError(
            f"no {EXCHANGE} candles of {', '.join(missing)} are stored: run quickstart without "
            "--skip-download, or import them with `python manage.py import_stocks`"
        )
    return [found[s] for s in symbols]


def training_range(
    symbols: Sequence[str],
    interval: str,
    *,
    month_from: str | None = None,
    month_to: str | None = None,
    months: int | None = None,
) -> tuple[dt.datetime, dt.datetime]:
    """First and last open time that every market has stored candles for, at ``interval``.

    Within the months ``month_from`` … ``month_to`` when given; else the last
    ``months`` months of what is stored (``--skip-download``).
    """
    code = parse_interval(interval)
    low = high = None
    if month_from and month_to:
        low = dt.datetime.fromisoformat(f"{month_from}-01").replace(tzinfo=dt.UTC)
        year, month = (int(part) for part in month_to.split("-"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        high = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    spans = []
    for market in _markets(symbols):
        candles = Candle.objects.filter(market=market, interval=code)
        if low is not None and high is not None:
            candles = candles.filter(open_time__gte=low, open_time__lt=high)
        span = candles.aggregate(first=Min("open_time"), last=Max("open_time"))
        if span["first"] is None:
            where = f" in {month_from} … {month_to}" if low else ""
            raise QuickstartError(f"{market}: no {code.code} candles stored{where}")
        spans.append((span["first"], span["last"]))
    first, last = max(s[0] for s in spans), min(s[1] for s in spans)
    if months is not None and low is None:
        first = max(first, (pd.Timestamp(last) - pd.DateOffset(months=months)).to_pydatetime())
    if first >= last:
        raise QuickstartError(
            f"the markets' stored candles do not overlap ({', '.join(symbols)} at {code.code})"
        )
    return first, last


@dataclass(frozen=True)
class SessionPick:
    session: TrainingSession
    reused: bool


def quickstart_session(
    config: TrainConfig, symbols: Sequence[str], start: dt.datetime, end: dt.datetime
) -> SessionPick:
    """The succeeded session with this config, markets and data range, else a new queued one.

    The range is explicit (not "up to the last candle") so that a second run on
    the same data finds the first run's session instead of training a copy.
    """
    wanted = replace(config, markets=tuple(symbols))
    mode = SessionMode.EVALUATION if config.evaluation else SessionMode.PRODUCTION
    candidates = TrainingSession.objects.filter(
        mode=mode,
        status=SessionStatus.SUCCEEDED,
        exchange=EXCHANGE,
        interval=config.interval,
        requested_start=start,
        requested_end=end,
    ).order_by("-created")
    for session in candidates:
        if session.symbols == list(symbols) and TrainConfig.from_dict(session.config) == wanted:
            return SessionPick(session, reused=True)
    given = {k: v for k, v in config.to_dict().items() if k != "markets"}
    request = RunRequest(given=given, symbols=symbols, exchange=EXCHANGE, start=start, end=end)
    return SessionPick(run_start(request, queue=False), reused=False)


def quickstart_urls(
    base_url: str, evaluation: TrainingSession, production: TrainingSession
) -> list[tuple[str, str]]:
    """(page, URL) of every page, showing these sessions."""
    base = base_url.rstrip("/")
    return [
        ("Markets", base + reverse("predictor:index")),
        ("Forecast", f"{base}{reverse('predictor:forecast')}?session={production.pk}"),
        ("Evaluation", f"{base}{reverse('predictor:evaluation')}?session={evaluation.pk}"),
        ("Training", base + reverse("predictor:training_list")),
        (
            "  evaluation session",
            base + reverse("predictor:training_detail", args=[evaluation.pk]),
        ),
        (
            "  production session",
            base + reverse("predictor:training_detail", args=[production.pk]),
        ),
    ]


def candles_missing() -> bool:
    """True while no candle is stored at all (a fresh database)."""
    return not Candle.objects.exists()
