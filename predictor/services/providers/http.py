"""One HTTP client for every market-data API: shared session, timeouts, bounded retries.

Retried: timeouts, connection errors, 5xx, 429 and 418. The wait doubles each
attempt with jitter, and both the number of attempts and the total time spent
are capped, so a scheduled update never hangs behind a dead API. 429/418 wait
exactly what ``Retry-After`` asks (Binance bans an IP that ignores it); if that
is longer than the time left, the client gives up at once instead of sleeping.

A provider may pass ``error_hook`` to turn its own error responses into a
specific exception first (CoinAPI's exhausted quota is not worth retrying).
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import requests


def _version() -> str:
    try:
        return metadata.version("cryptooracle")
    except metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"CryptoOracle/{_version()}"
RETRY_STATUSES = frozenset({418, 429, 500, 502, 503, 504})


class ProviderError(Exception):
    """A market-data request that failed; names the provider and the request."""

    def __init__(self, provider: str, url: str, message: str) -> None:
        self.provider = provider
        self.url = url
        self.message = message
        super().__init__(f"{provider}: {message} (request: {url})")


class ProviderUnavailable(ProviderError):
    """Still failing after the retries allowed: timeouts, 5xx, rate limits."""


class NetworkUnreachable(ProviderUnavailable):
    """Every attempt failed to connect at all."""


class ProviderRejected(ProviderError):
    """A 4xx answer that retrying cannot fix (unknown symbol, bad key...)."""

    def __init__(self, provider: str, url: str, message: str, status: int) -> None:
        self.status = status
        super().__init__(provider, url, message)


class QuotaExhausted(ProviderError):
    """The API key's request quota is used up; retrying before it resets is pointless."""


class MalformedPayload(ProviderError):
    """A 2xx answer whose content is not what the API documents."""

    def __init__(self, provider: str, url: str, field: str, problem: str) -> None:
        self.field = field
        super().__init__(provider, url, f"malformed response, field {field}: {problem}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: at most ``attempts`` requests within ``total_seconds``."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.total_seconds <= 0:
            raise ValueError("RetryPolicy delays must be >= 0 and total_seconds > 0")

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Wait before retry number ``attempt`` (1-based): exponential, half of it jittered."""
        cap = min(self.max_delay, self.base_delay * float(2 ** (attempt - 1)))
        return cap / 2 + rng() * cap / 2


ErrorHook = Callable[[requests.Response, str], ProviderError | None]

_local = threading.local()


def shared_session() -> requests.Session:
    """One keep-alive session per thread (requests' Session is not thread-safe)."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        _local.session = session
    return session


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds, or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _describe(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] if text else (response.reason or "")


class HttpClient:
    """GET with the retry rules above, for one named provider."""

    def __init__(
        self,
        provider: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        error_hook: ErrorHook | None = None,
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session = session
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self.error_hook = error_hook

    @property
    def session(self) -> requests.Session:
        return self._session or shared_session()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """A successful (2xx) response, or an exception naming the provider and request."""
        full_url = requests.Request("GET", url, params=params).prepare().url or url
        started = self.clock()
        connect_failures = 0
        for attempt in range(1, self.retry.attempts + 1):
            wait: float | None = None
            try:
                response = self.session.get(
                    url,
                    params=params,
                    headers=dict(headers or {}),
                    timeout=self.timeout,
                    stream=stream,
                )
            except requests.Timeout as exc:
                reason = f"timed out ({exc.__class__.__name__})"
            except requests.ConnectionError as exc:
                connect_failures += 1
                reason = f"cannot connect ({_root_cause(exc)})"
            else:
                if response.ok:
                    return response
                hooked = self.error_hook(response, full_url) if self.error_hook else None
                if hooked is not None:
                    response.close()
                    raise hooked
                if response.status_code not in RETRY_STATUSES:
                    message = (
                        f"request rejected (HTTP {response.status_code}): {_describe(response)}"
                    )
                    response.close()
                    raise ProviderRejected(self.provider, full_url, message, response.status_code)
                reason = f"HTTP {response.status_code}: {_describe(response)}"
                if response.status_code in (418, 429):
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                response.close()
            if attempt == self.retry.attempts:
                break
            delay = wait if wait is not None else self.retry.backoff(attempt, self.rng)
            elapsed = self.clock() - started
            if elapsed + delay > self.retry.total_seconds:
                raise ProviderUnavailable(
                    self.provider,
                    full_url,
                    f"{reason}; giving up after {attempt} attempt(s): waiting {delay:.1f} s more "
                    f"would exceed the {self.retry.total_seconds:.0f} s retry budget",
                )
            self.sleep(delay)
        if connect_failures == self.retry.attempts:
            host = urlsplit(full_url).netloc
            raise NetworkUnreachable(
                self.provider, full_url, f"no network: cannot reach {host} ({reason})"
            )
        raise ProviderUnavailable(
            self.provider, full_url, f"{reason}; giving up after {self.retry.attempts} attempts"
        )

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, str]:
        """The decoded JSON body and the exact URL requested."""
        response = self.get(url, params=params, headers=headers)
        try:
            return response.json(), response.url
        except ValueError:
            raise MalformedPayload(
                self.provider, response.url, "body", f"not JSON: {response.text[:80]!r}"
            ) from None


def _root_cause(exc: BaseException) -> str:
    for _ in range(10):  # the innermost of a short chain: urllib3's reason, not requests' wrapper
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    text = str(exc)
    return text[-160:] if len(text) > 160 else text
