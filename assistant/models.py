"""Small platform-neutral types that flow between sources, the store and the index."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Link:
    """A labelled link from a list row, e.g. ("Paper", "https://arxiv.org/abs/2407.08608")."""

    label: str
    url: str


@dataclass(frozen=True)
class Listing:
    """Where a paper was listed: one row of a ranked weekly list."""

    week: date
    rank: int
    title: str
    description: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class PaperRecord:
    """What one source says about one paper. Unknown fields stay None or empty, never invented."""

    paper_id: str
    source: str
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: date | None = None
    updated: date | None = None
    version: int | None = None
    url: str | None = None
    pdf_url: str | None = None
    categories: tuple[str, ...] = ()
    abstract: str | None = None
    listing: Listing | None = None


@dataclass(frozen=True)
class Problem:
    """Input a source could not use: where it was and what was wrong with it."""

    where: str
    message: str

    def __post_init__(self) -> None:
        # A problem quotes the input it could not use: never a whole 50 MB line of it.
        object.__setattr__(self, "where", clip(self.where, PROBLEM_CHARS))
        object.__setattr__(self, "message", clip(self.message, PROBLEM_CHARS))

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


PROBLEM_CHARS = 300


def clip(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


@dataclass(frozen=True)
class Paper:
    """A paper as stored: the merge of every record seen for its key."""

    paper_id: str
    title: str
    authors: tuple[str, ...] = ()
    published: date | None = None
    updated: date | None = None
    version: int | None = None
    url: str | None = None
    pdf_url: str | None = None
    categories: tuple[str, ...] = ()
    abstract: str | None = None
    description: str | None = None
    sources: tuple[str, ...] = ()
    weeks: tuple[date, ...] = ()
    needs_enrichment: bool = False
    listings: tuple[Listing, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class PageText:
    """The text of one PDF page (1-based page number)."""

    page: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A passage of a paper that is embedded and indexed on its own.

    `kind` is "abstract", "description" (a list's summary of the paper) or "body" (full text).
    """

    paper_id: str
    ordinal: int
    kind: str
    text: str
    section: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class SearchHit:
    """One search result: the best passage of one paper for a query."""

    paper_id: str
    title: str
    url: str | None
    score: float
    snippet: str
    kind: str
    section: str | None = None
    page: int | None = None
