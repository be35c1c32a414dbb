"""Building a week's digest from the papers a source listed that week, and storing it.

>>> digest, report = builder.build_week(date(2024, 7, 8), "potw", "ja")
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from assistant.digest.cards import CardWriter
from assistant.digest.model import Digest, digest_from_dict, digest_to_dict
from assistant.errors import NotFoundError
from assistant.settings import DigestSettings
from assistant.state import StateStore

# How each digest source names its listings in the store.
LISTING_SOURCES = {"potw": "potw", "hf": "hf", "arxiv": "arxiv-listing"}


@dataclass
class BuildReport:
    """What building a digest cost."""

    cards: int = 0
    from_cache: int = 0
    llm_calls: int = 0
    llm_tokens: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


class DigestBuilder:
    """Chooses the week's papers (the source's ranking), writes their cards, stores it."""

    def __init__(self, store: StateStore, cards: CardWriter, settings: DigestSettings) -> None:
        self._store = store
        self._cards = cards
        self._settings = settings

    def latest_week(self, source: str) -> date | None:
        weeks = self._store.weeks(LISTING_SOURCES[source])
        return weeks[0][0] if weeks else None

    def resolve_week(self, source: str, day: date | None) -> date:
        """The listed week containing `day` (default: the newest listed week)."""
        listed = LISTING_SOURCES[source]
        if day is None:
            weeks = self._store.weeks(listed)
            if not weeks:
                raise NotFoundError(
                    f"No week has been ingested from {source!r} yet: run `paperbot digest "
                    f"build --source {source}` with a file or online first."
                )
            return weeks[0][0]
        return self._store.week_containing(day, listed) or monday_of(day)

    def build_week(self, week: date, source: str, language: str) -> tuple[Digest, BuildReport]:
        """Write the cards of the week's top papers, in the source's order, and store them."""
        started = time.perf_counter()
        report = BuildReport()
        papers = self._store.papers(week=week, source=LISTING_SOURCES[source])
        cards = []
        for rank, paper in enumerate(papers[: self._settings.top_n], start=1):
            card, cost = self._cards.write(paper, rank, language)
            cards.append(card)
            report.cards += 1
            report.from_cache += int(cost.cached)
            report.llm_calls += cost.calls
            report.llm_tokens += cost.tokens
        if not cards:
            report.notes.append(f"no papers are listed by {source!r} for the week of {week}")
        digest = Digest(
            week,
            language,
            source,
            tuple(cards),
            generator="llm" if self._cards.generator == "llm" else "extractive",
            built_at=datetime.now(UTC),
        )
        self.save(digest)
        report.seconds = time.perf_counter() - started
        return digest, report

    def save(self, digest: Digest) -> None:
        payload = json.dumps(digest_to_dict(digest), ensure_ascii=False)
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)",
                (
                    digest.week.isoformat(),
                    digest.language,
                    digest.source,
                    payload,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )

    def load(self, week: date | None, language: str, source: str | None = None) -> Digest:
        """A stored digest (the newest week when `week` is None). Each source has its own
        digest of a week; without `source`, the configured one's is preferred, then the
        one built last."""
        preferred = source or self._settings.source
        rows = self._store.query(
            "SELECT digest FROM digests WHERE language = ? AND (? IS NULL OR week = ?) "
            "AND (? IS NULL OR source = ?) ORDER BY week DESC, source = ? DESC, built_at DESC "
            "LIMIT 1",
            (language, _day(week), _day(week), source, source, preferred),
        )
        if not rows:
            which = f"the week of {week}" if week else "any week"
            of = f" from {source!r}" if source else ""
            raise NotFoundError(
                f"No {language} digest{of} has been built for {which}: run `paperbot digest build`."
            )
        return digest_from_dict(json.loads(rows[0][0]))

    def load_with_cards(self, week: date | None, language: str) -> Digest:
        """The week's digest, with the cards of the week's other digests after its own: a
        card button names a week and a paper, and the paper's card may come from any
        source's digest posted that week (what connectors look card buttons up in)."""
        digest = self.load(week, language)
        rows = self._store.query(
            "SELECT digest FROM digests WHERE language = ? AND week = ? AND source != ? "
            "ORDER BY built_at DESC",
            (language, digest.week.isoformat(), digest.source),
        )
        cards = list(digest.cards)
        seen = {c.paper_id for c in cards}
        for row in rows:
            for card in digest_from_dict(json.loads(row[0])).cards:
                if card.paper_id not in seen:
                    seen.add(card.paper_id)
                    cards.append(card)
        return replace(digest, cards=tuple(cards))


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None
