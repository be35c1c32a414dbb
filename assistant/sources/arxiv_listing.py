"""A week of new arXiv papers in chosen categories, ranked by relevance to chosen topics.

>>> source = ArxivListingSource(client, date(2024, 7, 8), ["cs.CL"], ["long-context retrieval"],
...                             embedder)
>>> items = list(source.read())
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta

from assistant.embedding import Embedder, dot, unit
from assistant.errors import ConfigError
from assistant.models import Link, Listing, PaperRecord, Problem
from assistant.sources.arxiv_api import ArxivClient, abstract_lead
from assistant.sources.base import SourceItem

log = logging.getLogger(__name__)

# An arXiv category: an archive, maybe with a subject class (cs.LG, stat.ML, hep-th, q-bio.NC).
_CATEGORY = re.compile(r"^[a-z][a-z\-]*(?:\.[A-Za-z][A-Za-z\-]*)?$")


def week_query(categories: Sequence[str], week: date) -> str:
    """The arXiv API `search_query` for papers first submitted in `week` (Monday..Sunday, UTC)
    in any of `categories`.

    >>> week_query(["cs.LG", "cs.CL"], date(2024, 7, 8))
    '(cat:cs.LG OR cat:cs.CL) AND submittedDate:[202407080000 TO 202407142359]'
    """
    monday = week - timedelta(days=week.weekday())
    sunday = monday + timedelta(days=6)
    cats = " OR ".join(f"cat:{category}" for category in categories)
    return f"({cats}) AND submittedDate:[{monday:%Y%m%d}0000 TO {sunday:%Y%m%d}2359]"


class ArxivListingSource:
    """The `top_n` papers of a week's arXiv listings that best match the configured topics.

    Asks the arXiv API for papers first submitted Monday to Sunday (UTC) of `week`'s week in
    any of `categories`, newest first, at most `max_candidates` of them (a `Problem` says so
    when the week had more). Each candidate's title and abstract and each topic are embedded;
    a paper scores its highest cosine similarity to any topic, and the best `top_n` are
    yielded as a ranked list (equal scores: the newer submission first).

    With no topics there is nothing to rank by: the list is the week's `top_n` newest
    submissions, newest first, and nothing is embedded.

    >>> items = list(ArxivListingSource(client, week, ["cs.CL"], ["agents"], embedder).read())
    """

    name = "arxiv-listing"

    def __init__(
        self,
        client: ArxivClient,
        week: date,
        categories: Sequence[str],
        topics: Sequence[str],
        embedder: Embedder,
        top_n: int = 10,
        max_candidates: int = 500,
    ) -> None:
        self.week = week - timedelta(days=week.weekday())
        self.categories = tuple(c.strip() for c in categories if c.strip())
        self.topics = tuple(t.strip() for t in topics if t.strip())
        if not self.categories:
            raise ConfigError(
                "No arXiv categories to list: set PAPERBOT_DIGEST_ARXIV_CATEGORIES, "
                "e.g. cs.LG,cs.CL."
            )
        bad = [c for c in self.categories if not _CATEGORY.match(c)]
        if bad:
            raise ConfigError(
                f"{', '.join(map(repr, bad))} is not an arXiv category (like cs.LG or stat.ML): "
                "fix PAPERBOT_DIGEST_ARXIV_CATEGORIES."
            )
        self._client = client
        self._embedder = embedder
        self._top_n = top_n
        self._max_candidates = max(max_candidates, top_n)

    @property
    def query(self) -> str:
        """The arXiv API `search_query` this source sends."""
        return week_query(self.categories, self.week)

    def read(self) -> Iterator[SourceItem]:
        """Yield the ranked `PaperRecord`s (each with its `listing`), then any `Problem`s."""
        candidates: list[PaperRecord] = []
        problems: list[Problem] = []
        for item in self._client.search(self.query, self._max_candidates):
            if isinstance(item, Problem):
                problems.append(item)
            else:
                candidates.append(item)
        log.info("arXiv listing for the week of %s: %d candidates", self.week, len(candidates))
        for rank, record in enumerate(self._ranked(candidates)[: self._top_n], start=1):
            yield self._listed(record, rank)
        yield from problems

    def _ranked(self, candidates: list[PaperRecord]) -> list[PaperRecord]:
        """Candidates by their best similarity to a topic; in arXiv's order (newest first)
        when there are no topics. The sort is stable, so ties keep the newer paper first."""
        if not self.topics or not candidates:
            return candidates
        vectors = [
            unit(v) for v in self._embedder.embed([*self.topics, *map(_paper_text, candidates)])
        ]
        topics, papers = vectors[: len(self.topics)], vectors[len(self.topics) :]
        scores = [max(dot(paper, topic) for topic in topics) for paper in papers]
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return [candidates[i] for i in order]

    def _listed(self, record: PaperRecord, rank: int) -> PaperRecord:
        links = tuple(
            Link(label, url)
            for label, url in (("Paper", record.url), ("PDF", record.pdf_url))
            if url is not None
        )
        listing = Listing(
            week=self.week,
            rank=rank,
            title=record.title or record.paper_id,
            description=abstract_lead(record.abstract) if record.abstract else "",
            links=links,
        )
        return replace(record, source=self.name, listing=listing)


def _paper_text(record: PaperRecord) -> str:
    return "\n".join(part for part in (record.title, record.abstract) if part)
