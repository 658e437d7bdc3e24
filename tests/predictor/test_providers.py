"""Provider clients against a local fake of Binance and CoinAPI: paging, faults, wire format."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest
from werkzeug import Response

from predictor.ml.intervals import CANONICAL_INTERVALS, parse_interval
from predictor.models import Market
from predictor.services.providers import (
    BinanceProvider,
    CoinApiProvider,
    HttpClient,
    MalformedPayload,
    MarketMismatch,
    NetworkUnreachable,
    ProviderRejected,
    ProviderUnavailable,
    QuotaExhausted,
    RetryPolicy,
)
from predictor.services.providers.coinapi import PERIOD_IDS, coinapi_error_hook
from predictor.services.providers.http import USER_AGENT, retry_after_seconds
from tests.predictor.fake_exchange import (
    COINAPI_KEY,
    FakeExchange,
    binance_error,
    coinapi_error,
    synthetic_candle,
)

MINUTE = parse_interval("1m")


@dataclass
class FakeTime:
    """Injected clock and sleep: retries wait in fake time, tests do not."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake(httpserver):
    exchange = FakeExchange()
    exchange.install(httpserver)
    return exchange


@pytest.fixture
def fake_time():
    return FakeTime()


def _client(name, fake_time, *, attempts=4, total=60.0, timeout=(1.0, 2.0), hook=None):
    return HttpClient(
        name,
        timeout=timeout,
        retry=RetryPolicy(attempts=attempts, base_delay=0.5, max_delay=8.0, total_seconds=total),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rng=lambda: 0.5,
        error_hook=hook,
    )


def _binance(httpserver, fake_time, **kwargs):
    base = httpserver.url_for("/").rstrip("/")
    return BinanceProvider(
        spot_url=base, futures_url=base, client=_client("binance", fake_time, **kwargs)
    )


def _coinapi(httpserver, fake_time, key=COINAPI_KEY, **kwargs):
    base = httpserver.url_for("/").rstrip("/")
    client = _client("coinapi", fake_time, hook=coinapi_error_hook("coinapi"), **kwargs)
    return CoinApiProvider(base_url=base, api_key=key, client=client)


def _spot() -> Market:
    return Market(pk=1, exchange="binance", symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT")


def _gemini(symbol_id: str = "GEMINI_SPOT_BTC_USD") -> Market:
    return Market(pk=2, exchange="gemini", symbol="BTCUSD", coinapi_symbol_id=symbol_id)


def _collect(provider, market, start, end, now):
    pages = list(provider.pages(market, MINUTE, start, end, now=now))
    times = np.concatenate([p.chunk.open_time for p in pages]) if pages else np.array([])
    return pages, times


# --- paging and the open candle ------------------------------------------------------------


def test_binance_pages_through_a_server_capped_page_size(httpserver, fake, fake_time):
    fake.page_cap = 40
    pages, times = _collect(
        _binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end
    )
    assert [len(p.chunk) for p in pages] == [40, 40, 20]
    assert times.tolist() == fake.open_times
    assert [int(r["startTime"]) // 1000 for r in fake.requests] == [
        fake.start,
        fake.start + 40 * 60,
        fake.start + 80 * 60,
    ]
    assert all(r["limit"] == "1000" and r["symbol"] == "BTCUSDT" for r in fake.requests)
    first = pages[0].chunk
    assert (first.open[0], first.high[0], first.low[0], first.close[0], first.volume[0]) == (
        pytest.approx(synthetic_candle(fake.start))
    )


def test_binance_stops_on_an_empty_last_page(httpserver, fake, fake_time):
    fake.page_cap = 50
    now = fake.end + 600  # the exchange has nothing for the last ten minutes
    _pages, times = _collect(_binance(httpserver, fake_time), _spot(), fake.start, now, now)
    assert len(times) == 100
    assert len(fake.requests) == 3
    assert int(fake.requests[-1]["startTime"]) // 1000 == fake.end


def test_binance_never_returns_the_still_open_candle(httpserver, fake, fake_time):
    now = fake.end - 30  # the series' last bar opened 30 s ago
    _pages, times = _collect(_binance(httpserver, fake_time), _spot(), fake.start, now + 3600, now)
    assert times.tolist() == fake.open_times[:-1]
    assert int(fake.requests[0]["endTime"]) == now * 1000 - 1


def test_binance_futures_use_fapi_with_its_larger_page(httpserver, fake, fake_time):
    market = Market(pk=3, exchange="binance-futures", symbol="BTCUSDT")
    _pages, times = _collect(
        _binance(httpserver, fake_time), market, fake.start, fake.end, fake.end
    )
    assert len(times) == 100
    assert fake.requests[0]["path"] == "/fapi/v1/klines"
    assert fake.requests[0]["limit"] == "1500"


def test_coinapi_pages_maps_period_start_to_open_time_and_sends_the_key(
    httpserver, fake, fake_time
):
    fake.page_cap = 30
    now = fake.end - 10
    pages, times = _collect(_coinapi(httpserver, fake_time), _gemini(), fake.start, now, now)
    assert times.tolist() == fake.open_times[:-1]  # the open period is dropped
    assert [len(p.chunk) for p in pages] == [30, 30, 30, 9]
    first = fake.requests[0]
    assert first["path"] == "/v1/ohlcv/GEMINI_SPOT_BTC_USD/history"
    assert (first["period_id"], first["time_start"]) == ("1MIN", "2024-01-01T00:00:00")
    assert first["user_agent"] == USER_AGENT
    assert USER_AGENT.startswith("CryptoOracle/")


def test_coinapi_has_a_period_id_for_every_canonical_interval():
    for code in CANONICAL_INTERVALS:
        assert parse_interval(code).seconds in PERIOD_IDS, code
    assert [PERIOD_IDS[60], PERIOD_IDS[3600], PERIOD_IDS[604800]] == ["1MIN", "1HRS", "7DAY"]


# --- faults --------------------------------------------------------------------------------


def test_429_waits_exactly_retry_after_then_succeeds(httpserver, fake, fake_time):
    fake.inject(binance_error(429, -1003, "Too many requests.", **{"Retry-After": "7"}))
    _pages, times = _collect(
        _binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end
    )
    assert fake_time.slept == [7.0]
    assert len(times) == 100


def test_418_ban_honours_retry_after(httpserver, fake, fake_time):
    fake.inject(
        binance_error(418, -1003, "Way too many requests; IP banned.", **{"Retry-After": "3"})
    )
    _collect(_binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end)
    assert fake_time.slept == [3.0]


def test_500_then_success_backs_off_once(httpserver, fake, fake_time):
    fake.inject(Response("upstream exploded", status=500))
    _pages, times = _collect(
        _binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end
    )
    assert len(times) == 100
    assert fake_time.slept == [pytest.approx(0.375)]  # base 0.5, half jittered (rng 0.5)


def test_a_timeout_is_retried(httpserver, fake):
    slept: list[float] = []

    def stall(request):
        time.sleep(0.5)  # longer than the client's 0.2 s read timeout

    def real_sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)  # the fake server is single-threaded: let it finish the stall

    fake.inject(stall)
    base = httpserver.url_for("/").rstrip("/")
    client = HttpClient(
        "binance",
        timeout=(1.0, 0.2),
        retry=RetryPolicy(attempts=3, base_delay=1.0, total_seconds=10.0),
        sleep=real_sleep,
        rng=lambda: 0.5,
    )
    provider = BinanceProvider(spot_url=base, futures_url=base, client=client)
    _pages, times = _collect(provider, _spot(), fake.start, fake.end, fake.end)
    assert len(times) == 100
    assert slept == [0.75]
    assert len(fake.requests) == 2


def test_retries_are_bounded_in_count_with_growing_waits(httpserver, fake, fake_time):
    fake.outage = Response("maintenance", status=503)
    with pytest.raises(ProviderUnavailable, match=r"HTTP 503.*giving up after 4 attempts"):
        _collect(_binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end)
    assert len(fake.requests) == 4
    assert fake_time.slept == pytest.approx([0.375, 0.75, 1.5])


def test_retries_are_bounded_in_time(httpserver, fake, fake_time):
    fake.outage = binance_error(429, -1003, "Too many requests.", **{"Retry-After": "500"})
    with pytest.raises(ProviderUnavailable, match="retry budget") as caught:
        _collect(
            _binance(httpserver, fake_time, total=60.0), _spot(), fake.start, fake.end, fake.end
        )
    assert fake_time.slept == []  # gave up at once instead of sleeping past the budget
    assert str(caught.value).startswith("binance: HTTP 429")
    assert "/api/v3/klines?symbol=BTCUSDT" in str(caught.value)


def test_an_unknown_symbol_is_rejected_without_retrying(httpserver, fake, fake_time):
    market = Market(pk=4, exchange="binance", symbol="NOPEUSDT")
    with pytest.raises(ProviderRejected, match="Invalid symbol"):
        _collect(_binance(httpserver, fake_time), market, fake.start, fake.end, fake.end)
    assert len(fake.requests) == 1


def test_a_closed_port_reads_as_no_network(fake_time):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _client("binance", fake_time, attempts=2)
    with pytest.raises(NetworkUnreachable, match=f"no network: cannot reach 127.0.0.1:{port}"):
        client.get(f"http://127.0.0.1:{port}/api/v3/klines")


def test_coinapi_quota_exhaustion_is_reported_plainly_and_not_retried(httpserver, fake, fake_time):
    fake.outage = coinapi_error(429, "You have exceeded your API key rate limits")
    with pytest.raises(QuotaExhausted, match="CoinAPI request limit reached"):
        _collect(_coinapi(httpserver, fake_time), _gemini(), fake.start, fake.end, fake.end)
    assert len(fake.requests) == 1
    assert fake_time.slept == []


def test_coinapi_403_quota_is_quota_exhausted(httpserver, fake, fake_time):
    fake.outage = coinapi_error(403, "Forbidden - daily quota exceeded")
    with pytest.raises(QuotaExhausted, match="quota exhausted"):
        _collect(_coinapi(httpserver, fake_time), _gemini(), fake.start, fake.end, fake.end)


def test_coinapi_wrong_key_names_the_setting(httpserver, fake, fake_time):
    provider = _coinapi(httpserver, fake_time, key="wrong")
    with pytest.raises(ProviderRejected, match="COINAPI_KEY"):
        _collect(provider, _gemini(), fake.start, fake.end, fake.end)


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("12") == 12.0
    now = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Mon, 01 Jan 2024 00:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


# --- malformed payloads --------------------------------------------------------------------


def test_a_garbage_body_names_provider_request_and_field(httpserver, fake, fake_time):
    fake.inject(Response("<html>Bad gateway</html>", status=200, content_type="text/html"))
    with pytest.raises(MalformedPayload) as caught:
        _collect(_binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end)
    message = str(caught.value)
    assert message.startswith("binance: malformed response, field body: not JSON")
    assert "/api/v3/klines?symbol=BTCUSDT" in message
    assert fake_time.slept == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda body: body[3].__setitem__(2, "n/a"), "high (row 3)"),
        (lambda body: body[1].__setitem__(0, "yesterday"), "open_time (row 1)"),
        (lambda body: body.__setitem__(2, body[2][:4]), "kline (row 2)"),
        (lambda body: body[0].__setitem__(3, "999999"), "high (row 0)"),  # low above high
    ],
)
def test_malformed_binance_klines_name_the_field(httpserver, fake, fake_time, mutate, field):
    body = fake.binance_body()
    mutate(body)
    fake.inject(Response(json.dumps(body), content_type="application/json"))
    with pytest.raises(MalformedPayload) as caught:
        _collect(_binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end)
    assert caught.value.field == field
    assert caught.value.provider == "binance"
    assert "/api/v3/klines?" in caught.value.url


def test_binance_wrong_json_shape_is_malformed(httpserver, fake, fake_time):
    fake.inject(Response('{"klines": []}', content_type="application/json"))
    with pytest.raises(MalformedPayload, match="expected a JSON array of klines"):
        _collect(_binance(httpserver, fake_time), _spot(), fake.start, fake.end, fake.end)


def test_coinapi_missing_field_is_named(httpserver, fake, fake_time):
    body = fake.coinapi_body()
    del body[4]["price_close"]
    fake.inject(Response(json.dumps(body), content_type="application/json"))
    with pytest.raises(MalformedPayload) as caught:
        _collect(_coinapi(httpserver, fake_time), _gemini(), fake.start, fake.end, fake.end)
    assert caught.value.field == "price_close (row 4)"
    assert "GEMINI_SPOT_BTC_USD" in str(caught.value)


@pytest.mark.parametrize("provider", ["binance", "coinapi"])
def test_a_page_that_does_not_advance_is_refused_not_fetched_for_ever(
    httpserver, fake, fake_time, provider
):
    fake.page_cap = 40
    if provider == "binance":
        client, market, body, field = _binance, _spot(), fake.binance_body(), "open_time"
    else:
        client, market, body, field = _coinapi, _gemini(), fake.coinapi_body(), "time_period_start"
    # The second request, for the bars from the 41st on, gets the first page again.
    fake.inject(
        lambda request: None, Response(json.dumps(body[:40]), content_type="application/json")
    )
    with pytest.raises(MalformedPayload, match="does not advance") as caught:
        _collect(client(httpserver, fake_time), market, fake.start, fake.end, fake.end)
    assert (caught.value.provider, caught.value.field) == (provider, field)
    assert len(fake.requests) == 2


# --- which markets a provider quotes ---------------------------------------------------------


def test_binance_refuses_a_gemini_market():
    provider = BinanceProvider(spot_url="http://127.0.0.1:9", futures_url="http://127.0.0.1:9")
    with pytest.raises(MarketMismatch, match="binance provider quotes only binance"):
        provider.check_market(_gemini(), MINUTE)


@pytest.mark.parametrize(
    ("symbol_id", "message"),
    [
        ("BINANCE_SPOT_BTC_USDT", "quotes exchange BINANCE"),
        ("GEMINI_SPOT_ETH_USD", "is ETH/USD"),
        ("GEMINI_PERP_BTC_USD", "quotes exchange GEMINI \\(PERP\\)"),
        ("gemini btc", "is not EXCHANGE_TYPE_BASE_QUOTE"),
    ],
)
def test_coinapi_symbol_id_must_match_the_markets_exchange_and_symbol(symbol_id, message):
    provider = CoinApiProvider(base_url="http://127.0.0.1:9", api_key="k")
    with pytest.raises(MarketMismatch, match=message):
        provider.check_market(_gemini(symbol_id), MINUTE)


def test_coinapi_derives_the_symbol_id_from_exchange_and_assets():
    provider = CoinApiProvider(base_url="http://127.0.0.1:9", api_key="k")
    market = Market(exchange="kraken", symbol="XBTUSD", base_asset="BTC", quote_asset="USD")
    assert provider.symbol_id(market) == "KRAKEN_SPOT_BTC_USD"
    futures = Market(exchange="binance-futures", symbol="BTCUSDT", coinapi_symbol_id="")
    with pytest.raises(MarketMismatch, match="set its coinapi_symbol_id"):
        provider.symbol_id(futures)


def test_coinapi_429_with_retry_after_is_a_rate_limit_not_the_quota(httpserver, fake, fake_time):
    fake.inject(coinapi_error(429, "Too many concurrent requests", **{"Retry-After": "2"}))
    _pages, times = _collect(
        _coinapi(httpserver, fake_time), _gemini(), fake.start, fake.end, fake.end
    )
    assert fake_time.slept == [2.0]
    assert len(times) == 100
