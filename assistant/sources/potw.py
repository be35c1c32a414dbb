"""Parser for a file of the (AI|ML)-Papers-of-the-Week list: one markdown table of ranked
papers per week, in the old single-file README or in a year file (`years/2026.md`).

>>> source = PotwSource.from_location("README.md", week=date(2024, 7, 8))
>>> records = [item for item in source.read() if isinstance(item, PaperRecord)]

The file is edited by hand, so the parser tolerates its many spellings: `##`/`###` headings,
"Top ML"/"Top AI", full or abbreviated months, weeks that cross a year (the heading's year is the
end date's), older headings without a year (dated from the week listed above them), ranks written
`1)`, `1.` or not at all, bold or (in newer weeks) plain titles, `<br>` and bullet characters,
links in any order, in their own column or in the description. Rows it cannot use become
`Problem`s; parsing always continues.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from assistant.errors import InvalidInputError, NotFoundError
from assistant.ids import abs_url, find_arxiv_id, paper_key, pdf_url
from assistant.models import Link, Listing, PaperRecord, Problem
from assistant.sources.base import SourceItem, load_text

_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_MONTHS = (
    {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
    | {name[:3]: number for number, name in enumerate(_MONTH_NAMES, start=1)}
    | {"sept": 9}
)

_DASH = r"[-–—]"
WEEK_HEADING = re.compile(
    rf"^\s*#{{1,6}}\s*(?:\*\*)?\s*Top\s+(?:ML|AI)\s+Papers\s+of\s+the\s+Week\s*"
    rf"\(\s*(?P<m1>[A-Za-z]+)\.?\s*(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s*{_DASH}+\s*"
    rf"(?:(?P<m2>[A-Za-z]+)\.?\s*)?(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s*(?:,?\s*(?P<y_in>\d{{4}}))?"
    rf"\s*\)(?:\s*(?:{_DASH}|,)?\s*(?P<year>\d{{4}}))?",
    re.IGNORECASE,
)
"""A week heading, e.g. `## Top ML Papers of the Week (July 8 - July 14) - 2024`."""

_ANY_WEEK_HEADING = re.compile(r"^\s*#{1,6}\s.*top\s+\S+\s+papers\s+of\s+the\s+week", re.I)
_HEADING = re.compile(r"^\s*#{1,6}\s")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")
_RANK = re.compile(r"^(?P<rank>\d{1,3})\s*[.)]\s*")
_BOLD = re.compile(
    r"^(?:\*\*(?P<md>.+?)\*\*|<(?P<tag>b|strong)>(?P<html>.+?)</(?P=tag)>)", re.IGNORECASE
)
_PLAIN_TITLE = re.compile(r"^(?P<title>\S.{0,199}?)(?:\s*<br\s*/?>|\s{2,})(?P<rest>.*)$", re.S)
_TITLE_SEPARATOR = re.compile(rf"^\s*(?:(?:{_DASH}|:)\s*)?")
_MD_LINK = re.compile(r"\[(?P<label>[^\]]*)\]\((?P<url>[^)\s]+)\)")
_BARE_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_TRAILING_LINKS = re.compile(r"(?:[\s,;]*\[[^\]]*\]\([^)\s]+\))+[\s,;]*$")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BULLET = re.compile(r"\s*[●•]\s*")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|&<>~])")
_SENTENCE_END = re.compile(r"(?:[.!?:;…][\"'”’)\]]*|https?://\S+)$")


def parse_week_heading(
    line: str, newer: date | None = None, year: int | None = None
) -> date | None:
    """The start date of the week a heading line names, or None if it is not a week heading.

    The year in a heading belongs to the end date: `(Dec 30 - Jan 5) - 2025` starts 2024-12-30.
    A heading without a year (the 2023 weeks) takes `year`, the year of the file it is in
    (`years/2023.md`), as its end date's; without one, it is dated from `newer`, the start of
    the week listed just above it: the latest such date not after `newer`. Else None.

    >>> parse_week_heading("## Top ML Papers of the Week (July 8 - July 14) - 2024")
    datetime.date(2024, 7, 8)
    """
    match = WEEK_HEADING.match(line)
    if match is None:
        return None
    start_month = _MONTHS.get(match["m1"].lower())
    end_month = _MONTHS.get(match["m2"].lower()) if match["m2"] else start_month
    if start_month is None or end_month is None:
        return None
    start_day, end_day = int(match["d1"]), int(match["d2"])
    named = match["year"] or match["y_in"] or (str(year) if year is not None else None)
    if named is not None:
        wraps_month = match["m2"] is None and end_day < start_day
        crosses_year = end_month < start_month or (wraps_month and start_month == 12)
        return _safe_date(int(named) - (1 if crosses_year else 0), start_month, start_day)
    if newer is None:
        return None
    for candidate_year in (newer.year, newer.year - 1):
        start = _safe_date(candidate_year, start_month, start_day)
        if start is not None and start <= newer:
            return start
    return None


_YEAR_FILE = re.compile(r"(?:^|[/\\])(?P<year>(?:19|20)\d\d)\.md$", re.IGNORECASE)
_YEAR_TITLE = re.compile(r"^#\s.*papers\s+of\s+the\s+week\W+(?P<year>(?:19|20)\d\d)\s*$", re.I)


def file_year(origin: str, text: str = "") -> int | None:
    """The year a year file covers, from its name (`years/2023.md`) or its title line
    (`# AI Papers of the Week — 2023`); None for a README.

    >>> file_year("https://raw.githubusercontent.com/o/r/main/years/2023.md")
    2023
    """
    named = _YEAR_FILE.search(origin.split("?", 1)[0].split("#", 1)[0])
    if named is not None:
        return int(named["year"])
    for line in text.splitlines()[:5]:
        titled = _YEAR_TITLE.match(line.strip())
        if titled is not None:
            return int(titled["year"])
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Row:
    rank: int | None
    title: str
    description: str
    links: tuple[Link, ...]


class _MalformedRowError(ValueError):
    """A table row that is not a paper row; the message says why."""


class PotwSource:
    """PaperSource for one file of weeks: the old single-file README, or a year file
    (`years/2026.md`) of the AI-Papers-of-the-Week list (`PotwList` follows the index).

    >>> for item in PotwSource(text, origin="README.md").read(): ...

    Yields one `PaperRecord` per table row (of `week` only, if given), in file order, and a
    `Problem` for each row it skips. `week` may be any day of a listed week. `year` is the
    file's year, for headings that name none (see `parse_week_heading`).
    """

    name = "potw"

    def __init__(
        self,
        text: str,
        origin: str = "<potw>",
        week: date | None = None,
        year: int | None = None,
    ) -> None:
        self.origin = origin
        self.week = week
        self.year = year
        self._lines = text.splitlines()

    @classmethod
    def from_location(
        cls, location: str | Path, week: date | None = None, http: httpx.Client | None = None
    ) -> PotwSource:
        """Read a file of weeks from a local path or an http(s) URL (see `load_text`)."""
        text = load_text(location, http)
        return cls(text, origin=str(location), week=week, year=file_year(str(location), text))

    def weeks(self) -> list[date]:
        """Every week start date in the file, in file order (newest first in the real file)."""
        found: list[date] = []
        for _, start in self._headings():
            if start is not None and start not in found:
                found.append(start)
        return found

    def read(self) -> Iterator[SourceItem]:
        """Yield records and problems; raise NotFoundError now if `week` is not in the file."""
        target = self._resolve_week(self.week) if self.week is not None else None
        return self._walk(target)

    def _resolve_week(self, day: date) -> date:
        weeks = self.weeks()
        if day in weeks:
            return day
        for start in weeks:
            if start <= day <= start + timedelta(days=6):
                return start
        if not weeks:
            raise NotFoundError(f"{self.origin} has no week headings, so no week {day}.")
        nearest = sorted(weeks, key=lambda start: abs((start - day).days))[:3]
        shown = ", ".join(start.isoformat() for start in sorted(nearest, reverse=True))
        raise NotFoundError(f"No week starting {day} in {self.origin}. Nearest weeks: {shown}.")

    def _headings(self) -> Iterator[tuple[int, date | None]]:
        """(line number, start date or None if undatable) of each week heading."""
        newer: date | None = None
        for line_no, line in enumerate(self._lines, start=1):
            if _ANY_WEEK_HEADING.match(line):
                start = parse_week_heading(line, newer, self.year)
                newer = start or newer
                yield line_no, start

    def _walk(self, target: date | None) -> Iterator[SourceItem]:
        headings = dict(self._headings())
        week: date | None = None
        position = 0
        seen: set[str] = set()
        for line_no, line in enumerate(self._lines, start=1):
            if _HEADING.match(line):
                week, position, seen = headings.get(line_no), 0, set()
                if line_no in headings and week is None and target is None:
                    yield self._problem(
                        line_no,
                        f"week heading {line.strip()!r} has no date "
                        "this parser understands; its rows are skipped",
                    )
                continue
            if week is None or not line.lstrip().startswith("|"):
                continue
            if target is not None and week != target:
                continue
            try:
                row = _parse_row(line)
            except _MalformedRowError as exc:
                position += 1
                yield self._problem(line_no, f"malformed row: {exc}")
                continue
            if row is not None:
                position += 1
                yield self._item(row, week, row.rank or position, line_no, seen)

    def _item(self, row: _Row, week: date, rank: int, line_no: int, seen: set[str]) -> SourceItem:
        link = _paper_link(row.links)
        if link is None:
            return self._problem(line_no, f"row '{row.title}' has no paper link; skipped")
        try:
            record = _record(row, week, rank, link)
        except InvalidInputError as exc:
            return self._problem(line_no, f"row '{row.title}': bad paper link: {exc}")
        if record.paper_id in seen:
            return self._problem(
                line_no,
                f"row '{row.title}' repeats paper {record.paper_id} in week {week}; skipped",
            )
        seen.add(record.paper_id)
        return record

    def _problem(self, line_no: int, message: str) -> Problem:
        return Problem(where=f"{self.origin}:{line_no}", message=message)


def _record(row: _Row, week: date, rank: int, link: str) -> PaperRecord:
    """Build the record for a row whose paper link is `link` (raises InvalidInputError)."""
    listing = Listing(week, rank, row.title, row.description, row.links)
    arxiv = find_arxiv_id(link)
    if arxiv is not None:
        return PaperRecord(
            paper_id=arxiv.id,
            source="potw",
            title=row.title,
            version=arxiv.version,
            url=abs_url(arxiv.id),
            pdf_url=pdf_url(arxiv),
            listing=listing,
        )
    is_pdf = urlsplit(link).path.lower().endswith(".pdf")
    return PaperRecord(
        paper_id=paper_key(link),
        source="potw",
        title=row.title,
        url=link,
        pdf_url=link if is_pdf else None,
        listing=listing,
    )


def _paper_link(links: tuple[Link, ...]) -> str | None:
    """The link labelled Paper, else the first arXiv link in the row, else None."""
    for link in links:
        if link.label.lower().startswith("paper"):
            return link.url
    for link in links:
        if find_arxiv_id(link.url) is not None:
            return link.url
    return None


def _parse_row(line: str) -> _Row | None:
    """Parse one table line; None for header and separator rows; raise if it is no paper row."""
    cells = _split_cells(line)
    if all(_SEPARATOR_CELL.match(cell) for cell in cells if cell) and any(cells):
        return None
    if cells and cells[0].replace("*", "").strip().lower() in {"paper", "papers"}:
        return None
    if not any(cells):
        raise _MalformedRowError("the row is empty")
    if len(cells) > 2:
        raise _MalformedRowError(
            f"expected 2 cells (paper | links) but found {len(cells)}; "
            "is there an unescaped '|' in the text?"
        )
    rank, title, rest = _split_title(cells[0])
    description_links = _links_in(rest)
    cell_links = _links_in(cells[1]) if len(cells) == 2 else ()
    links = tuple({link.url: link for link in cell_links + description_links}.values())
    description = _clean_text(_TRAILING_LINKS.sub("", rest))
    return _Row(rank, title, description, links)


def _split_cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.replace("\\|", "|").strip() for cell in _CELL_SPLIT.split(body)]


def _split_title(cell: str) -> tuple[int | None, str, str]:
    """Split a paper cell into (rank, title, rest of the text)."""
    rank_match = _RANK.match(cell)
    rank = int(rank_match["rank"]) if rank_match else None
    text = cell[rank_match.end() :] if rank_match else cell
    bold = _BOLD.match(text)
    if bold is not None:
        title, rest = bold["md"] or bold["html"], text[bold.end() :]
    else:
        # Newer weeks write "1) Title  Description <br>● ..." without bold; only trust that
        # shape when a rank says this is a paper row.
        plain = _PLAIN_TITLE.match(text) if rank is not None else None
        if plain is None:
            raise _MalformedRowError("no bold **title** at the start of the paper cell")
        title, rest = plain["title"], plain["rest"]
    title = _clean_inline(title).rstrip(" :-–—")
    if not title:
        raise _MalformedRowError("the bold title is empty")
    return rank, title, _TITLE_SEPARATOR.sub("", rest, count=1)


def _links_in(text: str) -> tuple[Link, ...]:
    """Markdown links in `text`, then bare URLs (labelled Paper if arXiv, else Link)."""
    links = [Link(_clean_inline(m["label"]) or "Link", m["url"]) for m in _MD_LINK.finditer(text)]
    for url in _BARE_URL.findall(_MD_LINK.sub(" ", text)):
        url = url.rstrip(".,;:")
        links.append(Link("Paper" if find_arxiv_id(url) else "Link", url))
    return tuple(links)


def _clean_inline(text: str) -> str:
    """Markdown/HTML text as plain text on one line."""
    text = _MD_LINK.sub(r"\g<label>", text)
    text = _TAG.sub(" ", text).replace("**", "")
    text = html.unescape(_MD_ESCAPE.sub(r"\1", text))
    return " ".join(text.split())


def _clean_text(text: str) -> str:
    """A description as plain sentences, one line per paragraph or bullet point."""
    text = _BULLET.sub("\n", _BR.sub("\n", text))
    lines = (_clean_inline(part) for part in text.split("\n"))
    return "\n".join(_as_sentence(line) for line in lines if line)


def _as_sentence(line: str) -> str:
    return line if _SENTENCE_END.search(line) else f"{line}."
