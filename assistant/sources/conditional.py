"""HTTP GETs that cost almost nothing when nothing changed.

The validators a server sends (`ETag`, `Last-Modified`) are remembered in SQLite with the
body; the next GET of the same URL sends them back (`If-None-Match`, `If-Modified-Since`)
and a `304 Not Modified` answer gives the stored body, with no download. GitHub's raw file
host answers that way, so the weekly check of the paper list is two tiny requests.

>>> fetched = ConditionalFetcher(store, http).get(README_URL)
>>> fetched.not_modified
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from assistant.errors import NotFoundError, SourceError, SourceUnavailableError
from assistant.sources.base import retry_after_seconds
from assistant.state import StateStore

log = logging.getLogger(__name__)

_MAX_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Fetched:
    """A fetched text, and whether the server said it had not changed (HTTP 304)."""

    url: str
    text: str
    not_modified: bool = False


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ConditionalFetcher:
    """GETs text with conditional requests, retrying 429, 5xx and dropped connections.

    A 429 or 5xx is retried `max_retries` times, waiting `backoff_seconds * 2**attempt` or
    the server's Retry-After (at most a minute); then `SourceUnavailableError`. A 404 is
    `NotFoundError`; any other error status is `SourceError`.
    """

    def __init__(
        self,
        store: StateStore,
        http: httpx.Client,
        max_retries: int = 3,
        backoff_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._http = http
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._sleep = sleep

    def get(self, url: str) -> Fetched:
        """The text at `url`: downloaded, or the stored copy if the server says unchanged."""
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            try:
                return self._get_once(url)
            except _Transient as exc:
                if attempt + 1 == attempts:
                    raise SourceUnavailableError(
                        f"could not fetch {url}: {exc.reason} ({attempts} tries). Try again "
                        "later, or give a local copy with --file."
                    ) from exc
                wait = self._backoff * 2**attempt
                if exc.retry_after is not None:
                    wait = min(exc.retry_after, _MAX_RETRY_AFTER_SECONDS)
                log.info("fetching %s: %s; retry in %.1f s", url, exc.reason, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")

    def _get_once(self, url: str) -> Fetched:
        cached = self._cached(url)
        headers: dict[str, str] = {}
        if cached is not None:
            etag, modified, _ = cached
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
        try:
            response = self._http.get(url, headers=headers)
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"could not fetch {url}: {exc}") from exc
        status = response.status_code
        if status == 304 and cached is not None:
            return Fetched(url, cached[2], not_modified=True)
        if status == 404:
            raise NotFoundError(f"{url} does not exist (HTTP 404).")
        if status == 429 or status >= 500:
            raise _Transient(
                f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After"))
            )
        if status != 200:
            raise SourceError(f"fetching {url} failed with HTTP {status}.")
        self._remember(url, response)
        return Fetched(url, response.text)

    def _cached(self, url: str) -> tuple[str | None, str | None, str] | None:
        rows = self._store.query(
            "SELECT etag, last_modified, body FROM http_cache WHERE url = ?", (url,)
        )
        return (rows[0]["etag"], rows[0]["last_modified"], rows[0]["body"]) if rows else None

    def _remember(self, url: str, response: httpx.Response) -> None:
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        with self._store.transaction() as conn:
            if not etag and not modified:  # nothing to ask with next time
                conn.execute("DELETE FROM http_cache WHERE url = ?", (url,))
                return
            conn.execute(
                "INSERT OR REPLACE INTO http_cache (url, etag, last_modified, body, fetched_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (url, etag, modified, response.text, datetime.now(UTC).isoformat()),
            )
