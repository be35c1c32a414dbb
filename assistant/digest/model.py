"""The digest model every renderer works from (Markdown, Slack blocks, Discord embeds, JSON).

Unknown metadata stays None (rendered "unknown"); nothing is invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

UNKNOWN = "unknown"


@dataclass(frozen=True)
class QASource:
    """The passage an answer rests on."""

    section: str | None
    page: int | None
    quote: str


@dataclass(frozen=True)
class QAPair:
    """A question a reader would ask, and its answer from the paper.

    `supported` is False when no passage of the paper backs the answer; such a pair is
    shown as "not found in the paper", never as fact.
    """

    question: str
    answer: str
    supported: bool
    source: QASource | None = None


@dataclass(frozen=True)
class EarlierCard:
    """Where a channel already got a paper's card: in a later digest the paper is a
    one-line entry pointing there instead of a second card."""

    posted_on: date
    thread: str  # the card's thread id on its platform
    link: str | None = None  # a URL that opens it (Slack permalink, Discord jump URL)


@dataclass(frozen=True)
class DigestCard:
    """One paper of the week: metadata, a one-line takeaway, a summary and Q&A.

    `already_posted` is set only in the copy of a digest made for one channel that already
    got this paper's card (it is never stored with the digest).
    """

    rank: int
    paper_id: str
    title: str
    url: str | None
    pdf_url: str | None
    authors: tuple[str, ...]
    published: date | None
    updated: date | None
    categories: tuple[str, ...]
    takeaway: str
    summary: str
    qa: tuple[QAPair, ...] = ()
    already_posted: EarlierCard | None = field(default=None, compare=False)

    @property
    def supported_qa(self) -> tuple[QAPair, ...]:
        return tuple(q for q in self.qa if q.supported)


@dataclass(frozen=True)
class VersionNote:
    """A short note for a paper card's thread: arXiv has a new version of the paper.

    What changed is the abstract's changed sentences (`removed`, `added`) or, when the
    abstract did not change, the size of the change in the full text, if it is known.
    """

    paper_id: str
    title: str
    version: int
    previous_version: int
    updated: date | None
    language: str
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    words_after: int | None = None
    changed_words: int | None = None

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.paper_id}v{self.version}"


@dataclass(frozen=True)
class Digest:
    """A week's digest in one language."""

    week: date
    language: str
    source: str
    cards: tuple[DigestCard, ...]
    generator: Literal["llm", "extractive"] = "extractive"
    built_at: datetime | None = field(default=None, compare=False)

    @property
    def week_end(self) -> date:
        return self.week + timedelta(days=6)

    def card(self, rank: int) -> DigestCard:
        return next(c for c in self.cards if c.rank == rank)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def digest_to_dict(digest: Digest) -> dict[str, Any]:
    """The documented JSON shape (`paperbot digest show --format json`)."""
    return {
        "week": digest.week.isoformat(),
        "language": digest.language,
        "source": digest.source,
        "generator": digest.generator,
        "papers": [
            {
                "rank": c.rank,
                "paper_id": c.paper_id,
                "title": c.title,
                "url": c.url,
                "pdf_url": c.pdf_url,
                "authors": list(c.authors),
                "published": _day(c.published),
                "updated": _day(c.updated),
                "categories": list(c.categories),
                "takeaway": c.takeaway,
                "summary": c.summary,
                "qa": [
                    {
                        "question": q.question,
                        "answer": q.answer,
                        "supported": q.supported,
                        "source": None
                        if q.source is None
                        else {
                            "section": q.source.section,
                            "page": q.source.page,
                            "quote": q.source.quote,
                        },
                    }
                    for q in c.qa
                ],
            }
            for c in digest.cards
        ],
    }


def digest_from_dict(data: dict[str, Any]) -> Digest:
    """The inverse of `digest_to_dict` (digests are stored as JSON)."""

    def day(value: str | None) -> date | None:
        return date.fromisoformat(value) if value else None

    cards = tuple(
        DigestCard(
            rank=p["rank"],
            paper_id=p["paper_id"],
            title=p["title"],
            url=p.get("url"),
            pdf_url=p.get("pdf_url"),
            authors=tuple(p.get("authors") or ()),
            published=day(p.get("published")),
            updated=day(p.get("updated")),
            categories=tuple(p.get("categories") or ()),
            takeaway=p["takeaway"],
            summary=p["summary"],
            qa=tuple(
                QAPair(
                    q["question"],
                    q["answer"],
                    bool(q["supported"]),
                    None
                    if q.get("source") is None
                    else QASource(
                        q["source"].get("section"),
                        q["source"].get("page"),
                        q["source"]["quote"],
                    ),
                )
                for q in p.get("qa") or ()
            ),
        )
        for p in data["papers"]
    )
    return Digest(
        week=date.fromisoformat(data["week"]),
        language=data["language"],
        source=data.get("source", "potw"),
        cards=cards,
        generator=data.get("generator", "extractive"),
    )
