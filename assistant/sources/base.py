"""The source Protocol and the one way sources read a file or a URL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol

import httpx

from assistant.errors import (
    InvalidInputError,
    NotFoundError,
    SourceError,
    SourceUnavailableError,
)
from assistant.models import PaperRecord, Problem

SourceItem = PaperRecord | Problem


class PaperSource(Protocol):
    """A source of papers: yields what it knows of each paper, and problems it skipped.

    >>> for item in source.read(): ...
    """

    name: str

    def read(self) -> Iterator[SourceItem]:
        """Yield one `PaperRecord` per paper found, or a `Problem` for input it could not use."""
        ...


# A weekly list or an ID list is a few hundred kB (the whole weekly list is ~2 MB); the
# 100,000-row list of the scale benchmark is 28 MB. A bigger "list" is not one, and parsing
# it would take many minutes and gigabytes.
MAX_TEXT_BYTES = 64 * 1024 * 1024


def load_text(
    location: str | Path, http: httpx.Client | None = None, max_bytes: int = MAX_TEXT_BYTES
) -> str:
    """Read a local file or fetch an http(s) URL as text, with errors that say what failed;
    text longer than `max_bytes` is refused (InvalidInputError)."""
    loc = str(location)
    if loc.startswith(("http://", "https://")):
        return _fetch_text(loc, http, max_bytes)
    path = Path(loc).expanduser()
    if not path.is_file():
        raise NotFoundError(f"No such file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise InvalidInputError(_too_big(str(path), size, max_bytes))
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} is not UTF-8 text: {exc}") from exc


def _fetch_text(url: str, http: httpx.Client | None, max_bytes: int) -> str:
    client = http or httpx.Client(timeout=30.0, follow_redirects=True)
    try:
        with client.stream("GET", url) as response:
            if response.status_code == 404:
                raise NotFoundError(f"{url} does not exist (HTTP 404).")
            if response.status_code >= 400:
                raise SourceError(f"fetching {url} failed with HTTP {response.status_code}.")
            body = bytearray()
            for piece in response.iter_bytes():
                body += piece
                if len(body) > max_bytes:
                    raise InvalidInputError(_too_big(url, None, max_bytes))
            return body.decode(response.encoding or "utf-8", errors="replace")
    except httpx.HTTPError as exc:
        raise SourceUnavailableError(f"could not fetch {url}: {exc}") from exc
    finally:
        if http is None:
            client.close()


def _too_big(where: str, size: int | None, limit: int) -> str:
    how_big = f"{size / 2**20:,.1f} MB" if size is not None else "bigger than that"
    return (
        f"{where} is {how_big}; a paper list is at most {limit / 2**20:,.0f} MB. "
        "Split it, or use `paperbot ingest arxiv-dump` for metadata dumps."
    )


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP Retry-After header as seconds from now (it may be a number or an HTTP date;
    a date without a zone is UTC); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
