"""The source Protocol and the one way sources read a file or a URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx

from assistant.errors import NotFoundError, SourceError, SourceUnavailableError
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


def load_text(location: str | Path, http: httpx.Client | None = None) -> str:
    """Read a local file or fetch an http(s) URL as text, with errors that say what failed."""
    loc = str(location)
    if loc.startswith(("http://", "https://")):
        client = http or httpx.Client(timeout=30.0, follow_redirects=True)
        try:
            response = client.get(loc)
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(f"could not fetch {loc}: {exc}") from exc
        finally:
            if http is None:
                client.close()
        if response.status_code == 404:
            raise NotFoundError(f"{loc} does not exist (HTTP 404).")
        if response.status_code >= 400:
            raise SourceError(f"fetching {loc} failed with HTTP {response.status_code}.")
        return response.text
    path = Path(loc).expanduser()
    if not path.is_file():
        raise NotFoundError(f"No such file: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} is not UTF-8 text: {exc}") from exc
