"""A local fake of Binance's and CoinAPI's candle endpoints, on pytest-httpserver.

It serves one deterministic synthetic candle series in each API's real wire
format: Binance's 12-element kline arrays (spot and USDⓈ-M futures) and
CoinAPI's OHLCV JSON objects. Like the real APIs it pages by start time and
caps a page at a maximum size, serves the candle still trading at the end of
the series, and checks symbol, interval and key. Faults are scripted per
request: ``inject`` queues responses (or callables) served before normal ones.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

START = 1_704_067_200  # 2024-01-01T00:00:00Z
COINAPI_KEY = "test-coinapi-key"
_BINANCE_CODES = {60: "1m", 300: "5m", 3600: "1h", 86400: "1d"}
_COINAPI_PERIODS = {60: "1MIN", 300: "5MIN", 3600: "1HRS", 86400: "1DAY"}

Fault = Response | Callable[[Request], Response | None]


def synthetic_candle(open_time: int) -> tuple[float, float, float, float, float]:
    """Deterministic OHLCV for a bar: a slow wave plus a drift; valid (high >= open, close >= low)."""
    step = open_time // 60
    mid = 40_000.0 + 250.0 * math.sin(step / 37.0) + 0.25 * (step % 10_000)
    open_ = round(mid - 3.0 + (step % 7), 2)
    close = round(mid + 2.0 - (step % 5), 2)
    high = round(max(open_, close) + 5.0 + (step % 3), 2)
    low = round(min(open_, close) - 4.0 - (step % 4), 2)
    volume = round(1.0 + (step % 13) * 0.137, 6)
    return open_, high, low, close, volume


def iso7(unix_seconds: int) -> str:
    """CoinAPI's timestamp spelling: seven fractional digits and a Z."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@dataclass
class FakeExchange:
    """The candle series of one market, served by both fake APIs."""

    start: int = START
    count: int = 100
    interval: int = 60
    binance_symbol: str = "BTCUSDT"
    coinapi_symbol_id: str = "GEMINI_SPOT_BTC_USD"
    page_cap: int = 1000  # the server's own maximum rows per page
    missing: set[int] = field(default_factory=set)  # open times the exchange has no bar for
    faults: deque[Fault] = field(default_factory=deque)
    outage: Fault | None = None  # consulted on every request while set (after queued faults)
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def open_times(self) -> list[int]:
        times = (self.start + i * self.interval for i in range(self.count))
        return [t for t in times if t not in self.missing]

    @property
    def end(self) -> int:
        """One bar past the last candle of the series (that candle may still be open)."""
        return self.start + self.count * self.interval

    def inject(self, *faults: Fault) -> None:
        """Serve these (in order) before any normal answer; a callable returning None passes."""
        self.faults.extend(faults)

    def binance_body(self) -> list[list[Any]]:
        """The whole series as one Binance klines response (for tests that edit it)."""
        return [binance_kline(t, self.interval) for t in self.open_times]

    def coinapi_body(self) -> list[dict[str, Any]]:
        """The whole series as one CoinAPI OHLCV history response."""
        return [coinapi_period(t, self.interval) for t in self.open_times]

    def install(self, server: HTTPServer) -> None:
        server.expect_request("/api/v3/klines").respond_with_handler(self._binance)
        server.expect_request("/fapi/v1/klines").respond_with_handler(self._binance)
        server.expect_request(re.compile(r"^/v1/ohlcv/[^/]+/history$")).respond_with_handler(
            self._coinapi
        )

    # --- handlers -------------------------------------------------------------------------

    def _fault(self, request: Request) -> Response | None:
        self.requests.append(
            {
                "path": request.path,
                "user_agent": request.headers.get("User-Agent", ""),
                **request.args.to_dict(),
            }
        )
        if self.faults:
            fault = self.faults.popleft()
            answer = fault if isinstance(fault, Response) else fault(request)
            if answer is not None:
                return answer
        if self.outage is not None:
            return self.outage if isinstance(self.outage, Response) else self.outage(request)
        return None

    def _rows(self, first: int, last: int, limit: int) -> list[int]:
        """Open times in [first, last], at most ``min(limit, page_cap)``."""
        times = [t for t in self.open_times if first <= t <= last]
        return times[: min(limit, self.page_cap)]

    def _binance(self, request: Request) -> Response:
        fault = self._fault(request)
        if fault is not None:
            return fault
        args = request.args
        if args.get("symbol") != self.binance_symbol:
            return binance_error(400, -1121, "Invalid symbol.")
        if args.get("interval") != _BINANCE_CODES[self.interval]:
            return binance_error(400, -1120, "Invalid interval.")
        limit_max = 1500 if request.path.startswith("/fapi") else 1000
        limit = int(args.get("limit", 500))
        if not 1 <= limit <= limit_max:
            return binance_error(400, -1130, "Invalid limit.")
        first = int(args.get("startTime", 0)) // 1000
        last = int(args.get("endTime", 2**62)) // 1000
        body = [binance_kline(t, self.interval) for t in self._rows(first, last, limit)]
        return Response(json.dumps(body), content_type="application/json")

    def _coinapi(self, request: Request) -> Response:
        fault = self._fault(request)
        if fault is not None:
            return fault
        if request.headers.get("X-CoinAPI-Key") != COINAPI_KEY:
            return coinapi_error(401, "Invalid API key")
        symbol_id = request.path.split("/")[3]
        if symbol_id != self.coinapi_symbol_id:
            return coinapi_error(400, f"Unknown symbol_id {symbol_id}")
        args = request.args
        if args.get("period_id") != _COINAPI_PERIODS[self.interval]:
            return coinapi_error(400, "Invalid period_id")
        first = parse_iso(args["time_start"])
        last = parse_iso(args["time_end"]) - 1 if "time_end" in args else 2**62
        limit = int(args.get("limit", 100))
        body = [coinapi_period(t, self.interval) for t in self._rows(first, last, limit)]
        return Response(json.dumps(body), content_type="application/json")


def binance_kline(open_time: int, interval: int) -> list[Any]:
    o, h, low, c, v = synthetic_candle(open_time)
    return [
        open_time * 1000,
        f"{o:.8f}",
        f"{h:.8f}",
        f"{low:.8f}",
        f"{c:.8f}",
        f"{v:.8f}",
        (open_time + interval) * 1000 - 1,
        f"{v * c:.8f}",
        17,
        f"{v / 2:.8f}",
        f"{v * c / 2:.8f}",
        "0",
    ]


def coinapi_period(open_time: int, interval: int) -> dict[str, Any]:
    o, h, low, c, v = synthetic_candle(open_time)
    return {
        "time_period_start": iso7(open_time),
        "time_period_end": iso7(open_time + interval),
        "time_open": iso7(open_time + 1),
        "time_close": iso7(open_time + interval - 1),
        "price_open": o,
        "price_high": h,
        "price_low": low,
        "price_close": c,
        "volume_traded": v,
        "trades_count": 17,
    }


def binance_error(status: int, code: int, msg: str, **headers: str) -> Response:
    return Response(
        json.dumps({"code": code, "msg": msg}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def coinapi_error(status: int, message: str, **headers: str) -> Response:
    return Response(
        json.dumps({"error": message}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def slow(seconds: float) -> Callable[[Request], None]:
    """A fault that stalls the server past the client's read timeout, then answers normally."""

    def stall(request: Request) -> None:
        time.sleep(seconds)

    return stall


def configure(settings: Any, server: HTTPServer) -> None:
    """Point the provider settings at the local server, with short timeouts for tests."""
    base = server.url_for("/").rstrip("/")
    settings.BINANCE_API_URL = base
    settings.BINANCE_FUTURES_API_URL = base
    settings.COINAPI_URL = base
    settings.COINAPI_KEY = COINAPI_KEY
    settings.BINANCE_VISION_URL = base
    settings.CRYPTODATADOWNLOAD_URL = base
    settings.MARKET_DATA_TIMEOUT_SECONDS = 1
    settings.MARKET_DATA_RETRY_ATTEMPTS = 3
    settings.MARKET_DATA_RETRY_SECONDS = 10
