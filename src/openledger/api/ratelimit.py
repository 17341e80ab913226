"""Rate limits: a token bucket per key (a client address, an API key, an account).

A limit is written ``N/SECONDS`` (``"30/60"``: 30 requests a minute, in bursts of up to 30);
``"0"`` turns it off. Over the limit a request gets 429 with ``Retry-After``: the whole
seconds until the next request would pass. The buckets live in the API process's memory:
with several API processes each enforces the limit on its own share of the traffic.

What is limited (``Limits``): sign-in messages and sign-ins per client address
(``rate_signin``); API keys created per account (``rate_keys``) and per client address
(``rate_keys_ip``); paid requests per API key, or per account for a web session
(``rate_paid``), and per client address (``rate_paid_ip``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import Request

from openledger.errors import ConfigError, RateLimitedError

if TYPE_CHECKING:
    from openledger.config import Settings

MAX_KEYS = 100_000  # buckets kept before the full (idle) ones are dropped


def parse_rate(text: str, field: str) -> tuple[int, float] | None:
    """``"N/SECONDS"`` as (N, SECONDS); None for ``"0"`` (off)."""
    raw = text.strip()
    if raw in ("0", "", "off"):
        return None
    count, sep, period = raw.partition("/")
    try:
        n, seconds = int(count), float(period) if sep else 0.0
    except ValueError:
        n, seconds = 0, 0.0
    if n < 1 or not seconds > 0 or not math.isfinite(seconds):
        raise ConfigError(
            f"Rate limit {field} = {text!r} is not N/SECONDS.",
            field=field,
            value=text,
            fix='write e.g. "30/60" (30 a minute), or "0" for no limit.',
        )
    return n, seconds


class RateLimiter:
    def __init__(
        self, rate: tuple[int, float] | None, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.what = what
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def hit(self, key: str, *, take: bool = True) -> None:
        """Take one request from ``key``'s bucket; RateLimitedError (429) if it is empty.
        With ``take=False`` only check that one is there (a request limited by several
        buckets takes from none of them when one of them refuses it)."""
        if self.rate is None:
            return
        capacity, period = self.rate
        per_s = capacity / period
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(capacity), now))
            tokens = min(float(capacity), tokens + (now - at) * per_s)
            if tokens >= 1.0:
                if not take:
                    return
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > MAX_KEYS:
                    self._prune(now, per_s, capacity)
                return
            self._buckets[key] = (tokens, now)
        wait = max(1, math.ceil((1.0 - tokens) / per_s))
        raise RateLimitedError(
            f"Too many {self.what}: at most {capacity} every {period:g} s.",
            retry_after=wait,
            field="rate",
            value=f"{capacity}/{period:g}",
            fix=f"wait {wait} s (Retry-After) and send fewer requests.",
        )

    def _prune(self, now: float, per_s: float, capacity: int) -> None:
        self._buckets = {
            k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * per_s < capacity
        }


class Limits:
    """The node's limits, from its settings (see the module docstring)."""

    def __init__(
        self,
        signin: str,
        keys: str,
        paid: str,
        keys_ip: str = "0",
        paid_ip: str = "0",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signin = RateLimiter(parse_rate(signin, "rate_signin"), "sign-in requests", clock)
        self.keys = RateLimiter(parse_rate(keys, "rate_keys"), "API keys created", clock)
        self.keys_ip = RateLimiter(
            parse_rate(keys_ip, "rate_keys_ip"), "API keys created from this address", clock
        )
        self.paid = RateLimiter(parse_rate(paid, "rate_paid"), "paid requests", clock)
        self.paid_ip = RateLimiter(
            parse_rate(paid_ip, "rate_paid_ip"), "paid requests from this address", clock
        )

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits a node's settings name (``rate_*``)."""
        return cls(
            settings.rate_signin,
            settings.rate_keys,
            settings.rate_paid,
            settings.rate_keys_ip,
            settings.rate_paid_ip,
        )

    def sign_in(self, request: Request) -> None:
        self.signin.hit(client_address(request))

    def key_created(self, request: Request, account: str) -> None:
        _both(self.keys, account.lower(), self.keys_ip, client_address(request))

    def paid_request(self, request: Request, who: str) -> None:
        """``who``: the API key's id, or the account of a web session."""
        _both(self.paid, who, self.paid_ip, client_address(request))


def _both(a: RateLimiter, key_a: str, b: RateLimiter, key_b: str) -> None:
    """One request from both buckets, or (429) from neither."""
    a.hit(key_a, take=False)
    b.hit(key_b, take=False)
    a.hit(key_a)
    b.hit(key_b)


def client_address(request: Request) -> str:
    """The address the request came from (the proxy's, behind a reverse proxy)."""
    return request.client.host if request.client else "?"
