"""Bulk history: Binance's monthly kline archives and CryptoDataDownload's CSVs.

These only download; importing is ``stocks_import``'s job. How
``import_stocks --download`` / ``--source cryptodatadownload`` use them::

    from predictor.services.downloads import (
        DownloadError, binance_archive_download, cryptodatadownload_download)

    try:
        paths = binance_archive_download(
            "BTCUSDT", "1m", "2024-01", "2024-06",
            market_type="spot",                     # "futures" for USDⓈ-M, exchange binance-futures
            dest_dir=settings.DATA_DIR / "binance",
        )
        # or: paths = [cryptodatadownload_download("gemini", "BTCUSD", "1h", settings.DATA_DIR)]
    except DownloadError as exc:  # NoNetwork, ChecksumMismatch, a missing archive...
        raise CommandError(str(exc)) from None
    results = stocks_import(paths, exchange="binance", symbol="BTCUSDT", interval="1m")

Each archive is checked against its published ``.CHECKSUM`` (SHA-256) before it
is kept; a file already in ``dest_dir`` with the right checksum is not fetched
again. Files are written under a ``.part`` name and renamed when complete, so an
interrupted download never leaves a truncated archive behind.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date
from pathlib import Path

import requests
from django.conf import settings

from predictor.ml.intervals import parse_interval
from predictor.services.providers.binance import FUTURES_INTERVALS, SPOT_INTERVALS
from predictor.services.providers.http import (
    HttpClient,
    NetworkUnreachable,
    ProviderError,
    ProviderRejected,
    RetryPolicy,
)

_ARCHIVE_PATHS = {"spot": "data/spot/monthly/klines", "futures": "data/futures/um/monthly/klines"}
_CDD_EXCHANGES = {
    "gemini": "Gemini",
    "binance": "Binance",
    "bitstamp": "Bitstamp",
    "kraken": "Kraken",
    "coinbase": "Coinbase",
    "bitfinex": "Bitfinex",
}
_CDD_SUFFIXES = {"1d": "d", "1h": "1h", "1m": "minute"}
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A symbol becomes part of a file name and a URL path: no separators, no "..", no hidden files.
_SYMBOL = re.compile(r"^[A-Z0-9_-][A-Z0-9._-]{0,63}$")


class DownloadError(Exception):
    """A bulk download that failed; nothing incomplete was left in ``dest_dir``."""


class NoNetwork(DownloadError):
    """The download site cannot be reached at all."""


class ChecksumMismatch(DownloadError):
    """The archive's SHA-256 differs from its published CHECKSUM; the file was discarded."""


def safe_symbol(symbol: str) -> str:
    """``symbol`` upper-cased, or DownloadError unless it is letters, digits and ``._-``."""
    text = symbol.strip().upper()
    if not _SYMBOL.match(text):
        raise DownloadError(
            f"symbol {symbol!r} may hold only letters, digits, '.', '_' and '-' "
            "(at most 64, not starting with '.'), e.g. BTCUSDT"
        )
    return text


def months_between(month_from: str, month_to: str) -> list[str]:
    """``"2024-01", "2024-03"`` -> ``["2024-01", "2024-02", "2024-03"]``."""
    first, last = _month(month_from), _month(month_to)
    if last < first:
        raise DownloadError(f"--to {month_to} is before --from {month_from}")
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _month(text: str) -> date:
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise DownloadError(f"month {text!r} is not YYYY-MM")
    return date(int(match.group(1)), int(match.group(2)), 1)


def _client(name: str, client: HttpClient | None) -> HttpClient:
    return client or HttpClient(
        name, timeout=(5.0, 120.0), retry=RetryPolicy(attempts=4, total_seconds=60.0)
    )


def binance_archive_download(
    symbol: str,
    interval: str,
    month_from: str,
    month_to: str,
    *,
    market_type: str = "spot",
    dest_dir: Path,
    base_url: str | None = None,
    client: HttpClient | None = None,
) -> list[Path]:
    """Download and verify the monthly kline zips of data.binance.vision; their paths, in order."""
    if market_type not in _ARCHIVE_PATHS:
        raise DownloadError(f"market_type must be spot or futures, not {market_type!r}")
    code = parse_interval(interval).code
    allowed = SPOT_INTERVALS if market_type == "spot" else FUTURES_INTERVALS
    if code not in allowed:
        raise DownloadError(f"Binance {market_type} archives have no {code} klines")
    symbol = safe_symbol(symbol)
    http = _client("binance-vision", client)
    base = (base_url or settings.BINANCE_VISION_URL).rstrip("/")
    folder = f"{base}/{_ARCHIVE_PATHS[market_type]}/{symbol}/{code}"
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for month in months_between(month_from, month_to):
        name = f"{symbol}-{code}-{month}.zip"
        expected = _published_sha256(http, f"{folder}/{name}.CHECKSUM", name)
        target = dest_dir / name
        if target.exists() and _sha256(target) == expected:
            paths.append(target)
            continue
        _fetch(http, f"{folder}/{name}", target, expected)
        paths.append(target)
    return paths


def cryptodatadownload_download(
    exchange: str,
    symbol: str,
    interval: str,
    dest_dir: Path,
    base_url: str | None = None,
    *,
    year: int | None = None,
    client: HttpClient | None = None,
) -> Path:
    """Download CryptoDataDownload's CSV of one market (``1d``, ``1h``; ``1m`` per ``year``)."""
    symbol = safe_symbol(symbol)
    cdd_exchange = _CDD_EXCHANGES.get(exchange.strip().lower())
    if cdd_exchange is None:
        raise DownloadError(
            f"CryptoDataDownload exchange {exchange!r} unknown; one of {', '.join(_CDD_EXCHANGES)}"
        )
    code = parse_interval(interval).code
    if code not in _CDD_SUFFIXES:
        raise DownloadError(f"CryptoDataDownload has no {code} files; use 1d, 1h or 1m")
    suffix = _CDD_SUFFIXES[code]
    if code == "1m":
        if year is None:
            raise DownloadError("CryptoDataDownload splits minute files by year: pass a year")
        suffix = f"{year}_{suffix}"
    name = f"{cdd_exchange}_{symbol}_{suffix}.csv"
    base = (base_url or settings.CRYPTODATADOWNLOAD_URL).rstrip("/")
    url = f"{base}/cdd/{name}"
    target = Path(dest_dir) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    _fetch(_client("cryptodatadownload", client), url, target, None)
    head = target.read_bytes()[:2048].decode("utf-8", "replace").lower()
    lines = head.splitlines()[:3]
    if not any("open" in line and "close" in line and "," in line for line in lines):
        target.unlink()
        raise DownloadError(
            f"{url} is not a CryptoDataDownload CSV (no open/close header in its first lines)"
        )
    return target


def _published_sha256(http: HttpClient, url: str, name: str) -> str:
    """The digest in a ``<sha256>  <file name>`` CHECKSUM file."""
    text = _get(http, url).text.strip()
    parts = text.split()
    if len(parts) != 2 or not _SHA256.match(parts[0].lower()) or parts[1].lstrip("*") != name:
        raise DownloadError(f"{url}: not a CHECKSUM for {name}: {text[:120]!r}")
    return parts[0].lower()


def _fetch(http: HttpClient, url: str, target: Path, expected_sha256: str | None) -> None:
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    response = _get(http, url, stream=True)
    try:
        with partial.open("wb") as out:
            for block in response.iter_content(chunk_size=1 << 20):
                digest.update(block)
                out.write(block)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: download interrupted: {exc}") from exc
    finally:
        response.close()
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{url}: SHA-256 {digest.hexdigest()} differs from the published CHECKSUM "
            f"{expected_sha256}; the file was discarded"
        )
    os.replace(partial, target)


def _get(http: HttpClient, url: str, *, stream: bool = False) -> requests.Response:
    try:
        return http.get(url, stream=stream)
    except NetworkUnreachable as exc:
        raise NoNetwork(exc.message + f" (while fetching {url})") from exc
    except ProviderRejected as exc:
        if exc.status == 404:
            raise DownloadError(
                f"{url} does not exist (HTTP 404): check the symbol and interval; "
                "a month's archive appears only after the month has ended"
            ) from exc
        raise DownloadError(str(exc)) from exc
    except ProviderError as exc:
        raise DownloadError(str(exc)) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
