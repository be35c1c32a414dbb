"""Hugging Face daily papers: the week's most upvoted papers as a ranked weekly list.

>>> with httpx.Client(timeout=30.0) as http:
...     items = list(HfDailySource(date(2024, 7, 8), http).read())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from assistant.errors import SourceUnavailableError
from assistant.ids import abs_url, find_arxiv_id, pdf_url
from assistant.models import Link, Listing, PaperRecord, Problem
from assistant.sources.arxiv_api import abstract_lead
from assistant.sources.base import SourceItem

log = logging.getLogger(__name__)

# A Retry-After longer than this is not waited out in full.
_MAX_RETRY_AFTER_SECONDS = 60.0


class _DayFailed(Exception):
    """A day whose papers could not be read; `transient` failures are worth another try."""

    def __init__(self, reason: str, transient: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


@dataclass
class _Candidate:
    """A paper seen on one or more days of the week."""

    paper_id: str
    title: str
    authors: tuple[str, ...]
    published: date | None
    abstract: str | None
    upvotes: int
    first_day: date


class HfDailySource:
    """The `top_n` most upvoted Hugging Face daily papers of the week starting `week`.

    `week` may be any day: the list covers Monday to Sunday of its week. The `date` HF's
    API takes is the day HF *listed* a paper (often days after arXiv published it), so the
    week is the days of listing; a record's `published` date is the paper's own (arXiv's,
    as HF gives it), never the day of listing, and arXiv enrichment replaces it. Each day is fetched
    from `{base_url}/api/daily_papers?date=YYYY-MM-DD`, requests at least `delay_seconds`
    apart. A paper listed on several days counts with its highest upvotes; ties go to the
    paper listed first in the week, then to the smaller arXiv ID. A day with no papers
    (HTTP 404 or an empty list: weekends, holidays) is normal. A day that fails (429, 5xx,
    timeout, not JSON) is retried `max_retries` times with doubling backoff, then becomes a
    `Problem` and the other days still count. When days failed and no other day gave a paper
    (every day failed, or the weekdays failed and the weekend was empty), `read` raises
    `SourceUnavailableError` rather than pass off an outage as an empty week. Entries it
    cannot use become `Problem`s.

    >>> items = list(HfDailySource(date(2024, 7, 8), http, top_n=10).read())
    """

    name = "hf"

    def __init__(
        self,
        week: date,
        http: httpx.Client,
        base_url: str = "https://huggingface.co",
        top_n: int = 10,
        delay_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 2,
        backoff_seconds: float = 2.0,
    ) -> None:
        self.week = week - timedelta(days=week.weekday())
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._top_n = top_n
        self._delay_seconds = delay_seconds
        self._sleep = sleep
        self._max_retries = max_retries
        self._backoff_seconds = backoff_seconds
        self._last_request: float | None = None

    def read(self) -> Iterator[SourceItem]:
        """Yield the ranked `PaperRecord`s (each with its `listing`), then any `Problem`s."""
        candidates: dict[str, _Candidate] = {}
        problems: list[Problem] = []
        failures: list[str] = []
        for day in (self.week + timedelta(days=n) for n in range(7)):
            try:
                entries = self._fetch_day(day)
            except _DayFailed as exc:
                log.warning("HF daily papers %s: %s", day, exc.reason)
                failures.append(exc.reason)
                problems.append(Problem(where=day.isoformat(), message=exc.reason))
                continue
            for index, entry in enumerate(entries):
                parsed = _parse_entry(entry, day, index)
                if isinstance(parsed, Problem):
                    problems.append(parsed)
                else:
                    _merge(candidates, parsed)
        if failures and not candidates:
            raise SourceUnavailableError(
                f"Hugging Face daily papers at {self._base_url} failed for {len(failures)} of "
                f"the 7 days of the week of {self.week} and no other day listed a paper "
                f"(last: {failures[-1]}). Try again later, or check PAPERBOT_DIGEST_HF_URL."
            )
        ranked = sorted(candidates.values(), key=lambda c: (-c.upvotes, c.first_day, c.paper_id))
        for rank, candidate in enumerate(ranked[: self._top_n], start=1):
            yield self._record(candidate, rank)
        yield from problems

    def _fetch_day(self, day: date) -> list[Any]:
        """The day's entries; [] for a day without papers. Raises `_DayFailed`."""
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            try:
                return self._fetch_day_once(day)
            except _DayFailed as exc:
                if not exc.transient:
                    raise
                if attempt + 1 == attempts:
                    raise _DayFailed(
                        f"Hugging Face daily papers failed {attempts} time(s) in a row "
                        f"(last: {exc.reason})."
                    ) from exc
                wait = self._backoff_seconds * 2**attempt
                if exc.retry_after is not None:
                    wait = min(exc.retry_after, _MAX_RETRY_AFTER_SECONDS)
                log.info("HF daily papers %s: %s; retry in %.1f s", day, exc.reason, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")

    def _fetch_day_once(self, day: date) -> list[Any]:
        self._wait_politely()
        url = f"{self._base_url}/api/daily_papers"
        try:
            response = self._http.get(url, params={"date": day.isoformat()})
        except httpx.TransportError as exc:
            raise _DayFailed(f"{type(exc).__name__}: {exc}", transient=True) from exc
        except httpx.HTTPError as exc:
            raise _DayFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._last_request = time.monotonic()
        status = response.status_code
        if status == 404:
            return []
        if status == 429 or status >= 500:
            retry_after = _seconds(response.headers.get("Retry-After"))
            raise _DayFailed(f"HTTP {status}", transient=True, retry_after=retry_after)
        if status >= 400:
            raise _DayFailed(f"Hugging Face refused {response.url} with HTTP {status}.")
        try:
            data = response.json()
        except ValueError as exc:
            raise _DayFailed("the answer was not JSON", transient=True) from exc
        if not isinstance(data, list):
            raise _DayFailed(f"expected a JSON list of papers, got {type(data).__name__}.")
        return data

    def _wait_politely(self) -> None:
        if self._last_request is None:
            return
        remaining = self._delay_seconds - (time.monotonic() - self._last_request)
        if remaining > 0:
            self._sleep(remaining)

    def _record(self, candidate: _Candidate, rank: int) -> PaperRecord:
        paper_url = abs_url(candidate.paper_id)
        listing = Listing(
            week=self.week,
            rank=rank,
            title=candidate.title,
            description=abstract_lead(candidate.abstract) if candidate.abstract else "",
            links=(
                Link("Paper", paper_url),
                Link("HF", f"{self._base_url}/papers/{candidate.paper_id}"),
            ),
        )
        return PaperRecord(
            paper_id=candidate.paper_id,
            source=self.name,
            title=candidate.title,
            authors=candidate.authors,
            published=candidate.published,
            url=paper_url,
            pdf_url=pdf_url(candidate.paper_id),
            abstract=candidate.abstract,
            listing=listing,
        )


def _parse_entry(entry: Any, day: date, index: int) -> _Candidate | Problem:
    """One entry of a day's list, or a `Problem` saying why it cannot be used."""
    where = f"{day.isoformat()} entry {index + 1}"
    paper = entry.get("paper") if isinstance(entry, dict) else None
    if not isinstance(paper, dict):
        return Problem(where=where, message="the entry has no `paper` object; skipped.")
    raw_id = paper.get("id")
    arxiv_id = find_arxiv_id(raw_id) if isinstance(raw_id, str) else None
    if arxiv_id is None:
        return Problem(where=where, message=f"paper id {raw_id!r} is not an arXiv ID; skipped.")
    title = _text(paper.get("title")) or _text(entry.get("title"))
    if not title:
        return Problem(where=f"{where} ({arxiv_id.id})", message="the paper has no title; skipped.")
    return _Candidate(
        paper_id=arxiv_id.id,
        title=title,
        authors=_authors(paper.get("authors")),
        # the paper's own date (arXiv's); the entry's `publishedAt` is when HF listed it
        published=_day(paper.get("publishedAt")),
        abstract=_text(paper.get("summary")) or None,
        upvotes=_upvotes(paper.get("upvotes"), entry.get("upvotes")),
        first_day=day,
    )


def _merge(candidates: dict[str, _Candidate], seen: _Candidate) -> None:
    """Keep the first listing of a paper, with the highest upvotes of all its listings."""
    known = candidates.get(seen.paper_id)
    if known is None:
        candidates[seen.paper_id] = seen
    else:
        known.upvotes = max(known.upvotes, seen.upvotes)
        known.abstract = known.abstract or seen.abstract
        known.authors = known.authors or seen.authors
        known.published = known.published or seen.published


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _authors(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = (_text(a.get("name") if isinstance(a, dict) else a) for a in value)
    return tuple(name for name in names if name)


def _upvotes(*values: Any) -> int:
    counts = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0]
    return max(counts, default=0)


def _day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
