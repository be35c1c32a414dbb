"""Following the AI-Papers-of-the-Week list where it lives now.

Since mid-2025 the list's README.md is only an index: each line links to a week's section
in a year file, `- [Top AI Papers of the Week (June 21 - June 28)](years/2026.md#top-ai-...)`.
`PotwList` reads the index, fetches only the year files it needs (the newest week: one;
`--all`: every one) and parses them with `PotwSource`. A README of the old layout, with the
weeks' tables in the file itself, still works, as does a year file on its own.

Locations are URLs (year files are found relative to the README's URL) or local paths: a
README.md, a year file, or the folder of a clone holding both.

>>> potw = PotwList.open(settings.ingest.potw_url, ListDocuments(fetcher))
>>> potw.week = max(potw.weeks())  # the newest week: the README and one year file
>>> items = list(potw.read())
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote, urljoin

from assistant.errors import NotFoundError, SourceError
from assistant.models import Problem
from assistant.sources.base import SourceItem, load_text
from assistant.sources.conditional import ConditionalFetcher, Fetched
from assistant.sources.potw import PotwSource, file_year, parse_week_heading

INDEX_LINE = re.compile(
    r"^\s*[-*+]\s*\[(?P<label>[^\]]*papers\s+of\s+the\s+week[^\]]*)\]\((?P<href>[^)\s]+)\)",
    re.IGNORECASE,
)
"""An index line: `- [Top AI Papers of the Week (June 21 - June 28)](years/2026.md#...)`."""

_ANCHOR_YEAR = re.compile(r"-(?P<year>(?:19|20)\d\d)$")


@dataclass(frozen=True)
class IndexEntry:
    """One week the index lists: its start date and the file (relative link) holding it."""

    start: date
    file: str
    line: int


def parse_index(text: str) -> tuple[list[IndexEntry], list[Problem]]:
    """The weeks an index README links to in other files, in its order, and the index
    lines naming a week that could not be dated. Links within the README itself (the
    old layout's table of contents) are not index entries: those weeks are in the file."""
    entries: list[IndexEntry] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = INDEX_LINE.match(line)
        if match is None:
            continue
        path, _, anchor = match["href"].partition("#")
        path = unquote(path.strip("<>"))
        if not path.lower().endswith(".md") or Path(path).name.lower() == "readme.md":
            continue
        year = file_year(path)
        if year is None and (named := _ANCHOR_YEAR.search(anchor)) is not None:
            year = int(named["year"])
        start = parse_week_heading(f"## {match['label']}", year=year)
        if start is None:
            problems.append(
                Problem(f"index line {number}", f"cannot date the week {match['label']!r}")
            )
            continue
        entries.append(IndexEntry(start, path, number))
    return entries, problems


class ListDocuments:
    """Reads the list's files: local paths as they are, URLs through a conditional fetcher
    (ETag / Last-Modified remembered, 304 costs nothing) when one is given."""

    def __init__(self, fetcher: ConditionalFetcher | None = None) -> None:
        self._fetcher = fetcher

    @staticmethod
    def is_url(location: str) -> bool:
        return location.startswith(("http://", "https://"))

    def get(self, location: str) -> Fetched:
        if self.is_url(location):
            if self._fetcher is None:
                raise SourceError(f"{location} is a URL, but fetching is off here.")
            return self._fetcher.get(location)
        return Fetched(location, load_text(location))

    def resolve(self, base: str, link: str) -> str:
        """Where `link`, written in the file at `base`, points."""
        if self.is_url(base):
            return urljoin(base, link)
        return str(Path(base).parent / link)


class PotwList:
    """PaperSource for the AI-Papers-of-the-Week list: an index README and its year files,
    an old single-file README, or one year file.

    `week` (any day of a listed week) limits reading to that week, and fetches only the
    file holding it; None reads every week of every file. `notes` says afterwards what was
    fetched and what had not changed since the last check.
    """

    name = "potw"

    def __init__(self, location: str, documents: ListDocuments, week: date | None = None):
        self.week = week
        self.origin = location
        self._documents = documents
        self._texts: dict[str, Fetched] = {}
        main = self._fetch(location)
        self._entries, self._index_problems = parse_index(main.text)
        self._own = PotwSource(main.text, location, year=file_year(location, main.text))
        self._own_weeks = self._own.weeks()

    @classmethod
    def open(cls, location: str | Path, documents: ListDocuments) -> PotwList:
        """The list at a URL, a local README.md or year file, or a clone's folder."""
        where = str(location)
        if not ListDocuments.is_url(where) and Path(where).expanduser().is_dir():
            readme = Path(where).expanduser() / "README.md"
            if not readme.is_file():
                raise NotFoundError(
                    f"{where} holds no README.md: give the folder of a clone of the list, its "
                    "README.md, or one year file (years/2026.md)."
                )
            where = str(readme)
        return cls(where, documents)

    @property
    def notes(self) -> list[str]:
        """One line per file read: fetched, or unchanged since the last check (HTTP 304)."""
        if not any(ListDocuments.is_url(f.url) for f in self._texts.values()):
            return []
        return [
            f"{f.url}: unchanged since the last check (HTTP 304)"
            if f.not_modified
            else f"{f.url}: fetched"
            for f in self._texts.values()
        ]

    def weeks(self) -> list[date]:
        """Every listed week's start, newest first (from the index: no year file is read)."""
        return sorted({e.start for e in self._entries} | set(self._own_weeks), reverse=True)

    def read(self) -> Iterator[SourceItem]:
        """Yield records and problems; raise NotFoundError now if `week` is not listed."""
        if self.week is None:
            return self._read_all()
        start, entry = self._locate(self.week)
        if entry is None:
            return self._own_week(start)
        return self._week_in_file(entry)

    def _locate(self, day: date) -> tuple[date, IndexEntry | None]:
        """The start of the listed week containing `day`, and its index entry (None: the
        week is in the file itself)."""
        candidates: list[tuple[date, IndexEntry | None]] = [(s, None) for s in self._own_weeks]
        candidates += [(e.start, e) for e in self._entries]
        for start, entry in sorted(candidates, key=lambda c: c[1] is not None):
            if start <= day <= start + timedelta(days=6):
                return start, entry
        weeks = self.weeks()
        if not weeks:
            raise NotFoundError(f"{self.origin} lists no weeks, so no week {day}.")
        nearest = sorted(weeks, key=lambda start: abs((start - day).days))[:3]
        shown = ", ".join(start.isoformat() for start in sorted(nearest, reverse=True))
        raise NotFoundError(f"No week starting {day} in {self.origin}. Nearest weeks: {shown}.")

    def _own_week(self, start: date) -> Iterator[SourceItem]:
        self._own.week = start
        yield from self._own.read()

    def _week_in_file(self, entry: IndexEntry) -> Iterator[SourceItem]:
        source = self._year_source(entry.file)
        if entry.start not in source.weeks():
            raise NotFoundError(
                f"{self.origin} lists the week of {entry.start} in {entry.file}, but that "
                "file has no section for it."
            )
        source.week = entry.start
        yield from source.read()

    def _read_all(self) -> Iterator[SourceItem]:
        self._own.week = None
        yield from self._own.read()
        yield from self._index_problems
        files = list(dict.fromkeys(e.file for e in self._entries))
        failures: list[SourceError | NotFoundError] = []
        for file in files:
            try:
                source = self._year_source(file)
            except (SourceError, NotFoundError) as exc:
                failures.append(exc)
                yield Problem(file, f"not read: {exc}")
                continue
            yield from source.read()
            found = set(source.weeks())
            for entry in self._entries:
                if entry.file == file and entry.start not in found:
                    yield Problem(
                        f"index line {entry.line}",
                        f"the week of {entry.start} is not in {file}; skipped",
                    )
        if files and len(failures) == len(files) and not self._own_weeks:
            raise failures[-1]  # nothing at all was readable: an outage, not an empty list

    def _year_source(self, file: str) -> PotwSource:
        location = self._documents.resolve(self.origin, file)
        try:
            fetched = self._fetch(location)
        except NotFoundError as exc:
            raise NotFoundError(
                f"{self.origin} links {file}, which is missing ({exc}). Offline, give the "
                "folder of a full clone of the list."
            ) from exc
        return PotwSource(fetched.text, location, year=file_year(location, fetched.text))

    def _fetch(self, location: str) -> Fetched:
        if location not in self._texts:  # read each file once, however often `read` runs
            self._texts[location] = self._documents.get(location)
        return self._texts[location]
