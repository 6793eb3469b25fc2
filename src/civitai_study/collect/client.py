"""A polite HTTP client for CivitAI's API: rate limit, retries with backoff, clear errors.

CivitAI publishes no rate limit; Cloudflare answers 429 and the API answers 503 with
``Retry-After`` under load (``../shared/docs/civitai-api.md`` §1.1). So every request waits for the
rate limiter, transient failures (429, 5xx, timeouts, dropped connections, truncated JSON) are
retried with exponential backoff and jitter or the server's ``Retry-After``, and any other 4xx
stops the crawl with the URL (secrets removed), the status and the server's message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .. import __version__
from .scrub_secrets import api_key, redact

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://civitai.com/api/v1"
#: Default requests per second: polite for a crawl that runs for days.
DEFAULT_RATE = 1.0


class ApiError(RuntimeError):
    """A request that failed for good; the message carries no secret."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(redact(message))
        self.status = status


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested pause in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RateLimiter:
    """At most ``rate`` requests per second (``None`` or 0: unlimited), shared by threads."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate if rate else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), cap)


def _message(response: httpx.Response) -> str:
    """The server's own explanation from an error body (``error`` or ``message``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, dict):
        for key in ("error", "message"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0


class ApiClient:
    """GET JSON from the API with rate limiting and retries; see the module docstring."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, rate: float | None = DEFAULT_RATE,
                 timeout: float = 60.0, max_attempts: int = 10, backoff_initial: float = 1.0,
                 backoff_max: float = 30.0, max_retry_after: float = 300.0,
                 transport: httpx.BaseTransport | None = None):
        headers = {"User-Agent": f"civitai-study/{__version__} (research crawler)",
                   "Accept": "application/json"}
        key = api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.authenticated = key is not None
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  follow_redirects=True, transport=transport)
        self.limiter = RateLimiter(rate)
        self.stats = ClientStats()
        self._max_retry_after = max_retry_after
        self._backoff = wait_exponential_jitter(multiplier=backoff_initial, max=backoff_max,
                                                jitter=backoff_initial)
        self._attempts = max_attempts

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return error.retry_after
        return self._backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("retry %d after %s; waiting %.1f s", state.attempt_number,
                    redact(error), wait)

    def get_json(self, path: str, params: dict[str, Any], expect: str | None = None) -> Any:
        """GET ``path`` and return the decoded JSON, retrying transient failures.

        With ``expect``, a 200 whose JSON is not an object with a list under that key counts as
        a truncated or garbled answer and is retried too.
        """
        retrying = Retrying(stop=stop_after_attempt(self._attempts), wait=self._wait,
                            retry=retry_if_exception_type(TransientError),
                            before_sleep=self._before_sleep, reraise=True)
        try:
            return retrying(self._once, path, params, expect)
        except TransientError as err:
            url = redact(self._http.build_request("GET", path, params=params).url)
            raise ApiError(f"GET {url} still failing after {self._attempts} attempts "
                           f"({err.reason}); re-run the same command to resume") from None

    def _once(self, path: str, params: dict[str, Any], expect: str | None) -> Any:
        self.limiter.wait()
        self.stats.requests += 1
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException:
            raise TransientError("timeout") from None
        except httpx.ConnectError as err:
            if self.stats.requests == 1 and self.stats.retries == 0:
                # Nothing has answered yet: a wrong --base-url or no network, not a hiccup.
                raise ApiError(f"cannot connect to {self.base_url} ({err or 'connection refused'})"
                               "; check --base-url and the network, then re-run") from None
            raise TransientError(f"connection error ({type(err).__name__})") from None
        except httpx.TransportError as err:
            raise TransientError(f"connection error ({type(err).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"),
                                            self._max_retry_after)
            raise TransientError(f"HTTP {status}: {redact(_message(response))}", retry_after)
        if status >= 400:
            raise ApiError(f"GET {redact(response.request.url)} failed with HTTP {status}: "
                           f"{_message(response)}", status)
        try:
            payload = response.json()
        except ValueError:
            raise TransientError("malformed JSON in a 200 response") from None
        if expect and not (isinstance(payload, dict) and isinstance(payload.get(expect), list)):
            raise TransientError(f"200 response without an {expect!r} list")
        return payload
