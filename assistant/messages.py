"""What flows between the core and the chat connectors: small, frozen, platform-neutral.

A connector turns a platform event into an `IncomingMessage`, hands it to the core, and
renders the `Reply` it gets back (text plus structured parts) in its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal


@dataclass(frozen=True)
class IncomingMessage:
    """A message or command from a user, as the core sees it.

    `thread` is the platform's thread id (None for a top-level message); the triple
    (platform, channel, thread) names a conversation.
    """

    platform: str
    user: str
    channel: str
    text: str
    thread: str | None = None
    is_admin: bool = False
    message_id: str | None = None


@dataclass(frozen=True)
class Citation:
    """Where an answer comes from: a retrieved passage, quoted."""

    number: int
    paper_id: str
    title: str
    url: str | None
    section: str | None
    page: int | None
    quote: str

    def as_dict(self) -> dict[str, object]:
        return {
            "paper_id": self.paper_id,
            "title": self.title,
            "url": self.url,
            "section": self.section,
            "page": self.page,
            "quote": self.quote,
        }


@dataclass(frozen=True)
class PaperCard:
    """A paper's metadata for display; unknown fields are None and render as "unknown"."""

    paper_id: str
    title: str
    url: str | None
    authors: tuple[str, ...] = ()
    published: date | None = None
    updated: date | None = None
    categories: tuple[str, ...] = ()
    summary: str | None = None
    rank: int | None = None
    week: date | None = None


@dataclass(frozen=True)
class ResultItem:
    """One search result line."""

    paper_id: str
    title: str
    url: str | None
    snippet: str
    score: float


@dataclass(frozen=True)
class ResultList:
    """Search results or a week's list, in order."""

    heading: str
    items: tuple[ResultItem, ...]


ReplyPart = PaperCard | ResultList | Citation


@dataclass(frozen=True)
class Reply:
    """What the core answers. `text` is Markdown-ish plain text every connector can show;
    `parts` carry structure for richer rendering. `ephemeral` replies go only to the asker
    where the platform allows it."""

    text: str
    parts: tuple[ReplyPart, ...] = ()
    ephemeral: bool = False
    kind: Literal["answer", "search", "paper", "digest", "help", "error", "info"] = "info"
    mode: Literal["llm", "extractive", "none"] | None = None
    language: str = "en"
    scope_paper_ids: tuple[str, ...] = field(default=())

    @property
    def citations(self) -> tuple[Citation, ...]:
        return tuple(p for p in self.parts if isinstance(p, Citation))
