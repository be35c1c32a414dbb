"""A plain list of papers, one per line: arXiv IDs or URLs, or the URL of any other paper.

    # Lines starting with # and blank lines are ignored; words after the first are notes.
    2407.08608
    https://arxiv.org/abs/1706.03762v7   the transformer paper
    https://example.org/papers/some-paper.pdf

arXiv papers come out as minimal records (ID, links, version): the ingest pipeline fetches
their metadata. Other papers are keyed by their URL and have no title until enriched.

>>> items = list(IdListSource.from_location("papers.txt").read())
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from assistant.errors import InvalidInputError
from assistant.ids import abs_url, canonical_url, find_arxiv_id, paper_key, pdf_url
from assistant.models import PaperRecord, Problem
from assistant.sources.base import SourceItem, load_text

MAX_LINE_CHARS = 4_000  # an ID or a URL, and a note


class IdListSource:
    """The papers named in a text list, one ID or URL per line; repeats are read once.

    >>> items = list(IdListSource("2407.08608\\nhttps://example.org/a.pdf", "inline").read())
    """

    name = "list"

    def __init__(self, text: str, origin: str = "<list>") -> None:
        self.text = text
        self.origin = origin

    @classmethod
    def from_location(cls, location: str | Path, http: httpx.Client | None = None) -> IdListSource:
        """The list in a local file or at an http(s) URL."""
        return cls(load_text(location, http), origin=str(location))

    def read(self) -> Iterator[SourceItem]:
        """Yield a `PaperRecord` per paper listed, or a `Problem` per line that names none."""
        seen: set[str] = set()
        for line_no, line in enumerate(self.text.splitlines(), start=1):
            item = _read_line(line, f"{self.origin}:{line_no}")
            if isinstance(item, PaperRecord):
                if item.paper_id in seen:
                    continue
                seen.add(item.paper_id)
            if item is not None:
                yield item


def _read_line(line: str, where: str) -> SourceItem | None:
    """The record or problem for one line; None for a blank or comment line."""
    text = line.lstrip("\ufeff").strip()
    if not text or text.startswith("#"):
        return None
    if len(text) > MAX_LINE_CHARS:
        return Problem(where, f"the line is {len(text):,} characters long: one paper per line.")
    token = text.split()[0]
    arxiv_id = find_arxiv_id(token)
    if arxiv_id is not None:
        return PaperRecord(
            paper_id=arxiv_id.id,
            source="list",
            version=arxiv_id.version,
            url=abs_url(arxiv_id.id),
            pdf_url=pdf_url(arxiv_id),
        )
    if not token.lower().startswith(("http://", "https://")):
        return Problem(
            where,
            f"{token!r} is not an arXiv ID or a URL. Write one paper per line, like "
            "2407.08608, https://arxiv.org/abs/2407.08608 or https://example.org/paper.pdf.",
        )
    try:
        url = canonical_url(token)
    except InvalidInputError as exc:
        return Problem(where, str(exc))
    parts = urlsplit(url)
    if (parts.hostname or "").endswith("arxiv.org"):
        return Problem(where, f"{token} is an arXiv page but not a paper's page.")
    return PaperRecord(
        paper_id=paper_key(url),
        source="list",
        url=url,
        pdf_url=url if parts.path.lower().endswith(".pdf") else None,
    )
