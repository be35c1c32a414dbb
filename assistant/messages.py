"""What flows between the core and the chat connectors: small, frozen, platform-neutral.

A connector hands the core a typed command (`assistant.commands`) with its `Origin`, or a
thread message as an `IncomingMessage`, and renders the `Reply` it gets back (text, rich
text, structured parts, who sees it, whether it opens a thread) in its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from assistant.rich import RichText

Visibility = Literal["public", "private"]


@dataclass(frozen=True)
class Origin:
    """Who runs a command, and where: (platform, channel, thread) names a conversation.

    `thread` is the platform's thread id (None at the top level); `message_id` the
    message that carries the command or, for `ask`, the message its answer goes in.
    """

    platform: str
    user: str
    channel: str
    thread: str | None = None
    is_admin: bool = False
    message_id: str | None = None


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

    @property
    def origin(self) -> Origin:
        return Origin(
            self.platform, self.user, self.channel, self.thread, self.is_admin, self.message_id
        )


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
    """What the core answers.

    `text` is the whole reply as plain text (an answer as written, quoting papers; a log
    line). `rich` is the core's own formatting of it (help, errors, notices, lists): when
    set, connectors render it, else they show `text` literally. `parts` carry structure
    for richer rendering. `visibility` says who sees it ("private": only the asker, where
    the platform allows it); `opens_thread`, that its message roots a thread that carries
    the conversation on; `share`, the command that shows these private results to everyone.
    """

    text: str
    parts: tuple[ReplyPart, ...] = ()
    visibility: Visibility = "public"
    kind: Literal["answer", "search", "paper", "digest", "help", "error", "info"] = "info"
    mode: Literal["llm", "extractive", "none"] | None = None
    language: str = "en"
    scope_paper_ids: tuple[str, ...] = field(default=())
    rich: RichText | None = None
    opens_thread: bool = False
    share: str | None = None

    @property
    def private(self) -> bool:
        return self.visibility == "private"

    @property
    def ephemeral(self) -> bool:
        """The older name of `private`."""
        return self.private

    @property
    def citations(self) -> tuple[Citation, ...]:
        return tuple(p for p in self.parts if isinstance(p, Citation))

    @classmethod
    def formatted(cls, body: RichText, **fields: object) -> Reply:
        """A reply of the core's own words: `text` is `body` without its styles."""
        return cls(body.plain, rich=body, **fields)  # type: ignore[arg-type]
