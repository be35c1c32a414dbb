"""Sliding-window rate limits per key (a user, a channel), in memory.

>>> limiter = RateLimiter(limit=10, window_seconds=60)
>>> limiter.check("slack:U1")  # None when allowed, else seconds to wait
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Allows `limit` events per key within any `window_seconds`."""

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float | None:
        """Record an event for `key`; return None if allowed, else seconds until it would be."""
        now = self._clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and now - events[0] >= self._window:
                events.popleft()
            if len(events) >= self._limit:
                return self._window - (now - events[0])
            events.append(now)
            if len(self._events) > self._max_keys:
                self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._events.items() if not v or now - v[-1] >= self._window]
        for key in idle:
            del self._events[key]
