"""Papers from the public arXiv metadata snapshot: JSON lines, one paper per line.

The snapshot (`arxiv-metadata-oai-snapshot.json`, several GB) is streamed one line at a time,
plain or gzip-compressed, so it is never held in memory.

>>> source = ArxivDumpSource("arxiv-metadata.json.gz", categories={"cs.LG", "stat."}, limit=500)
>>> records = [item for item in source.read() if isinstance(item, PaperRecord)]
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from assistant.errors import InvalidInputError, NotFoundError
from assistant.ids import ArxivId, abs_url, find_arxiv_id, pdf_url
from assistant.models import PaperRecord, Problem
from assistant.sources.base import SourceItem

_GZIP_MAGIC = b"\x1f\x8b"
_PARENTHESES = re.compile(r"\([^()]*\)")  # affiliations in the `authors` string
_AUTHOR_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")


class ArxivDumpSource:
    """The papers of an arXiv metadata snapshot file (JSON lines, optionally gzipped).

    `categories` keeps a paper if any of its categories matches one of them: "cs.LG" exactly,
    "cs." or "cs" every cs.* category. `limit` stops after that many papers are kept.

    >>> items = list(ArxivDumpSource("snapshot.json", categories={"cs."}, limit=100).read())
    """

    name = "arxiv-dump"

    def __init__(
        self,
        path: str | Path,
        limit: int | None = None,
        categories: Iterable[str] | None = None,
    ) -> None:
        if limit is not None and limit < 0:
            raise InvalidInputError(f"limit must be 0 or more, not {limit}.")
        self.path = Path(path).expanduser()
        self.limit = limit
        self.categories = frozenset(c.strip() for c in categories or () if c.strip()) or None

    def read(self) -> Iterator[SourceItem]:
        """Yield a `PaperRecord` per kept paper, or a `Problem` per line that cannot be used."""
        if not self.path.exists() or self.path.is_dir():
            raise NotFoundError(f"No such file: {self.path}")
        if self.limit == 0:
            return
        kept = 0
        line_no = 0
        with _open_lines(self.path) as stream:
            try:
                for line_no, line in enumerate(stream, start=1):
                    item = self._read_line(line, f"{self.path}:{line_no}")
                    if item is None:
                        continue
                    yield item
                    if isinstance(item, PaperRecord):
                        kept += 1
                        if self.limit is not None and kept >= self.limit:
                            return
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                yield Problem(
                    where=f"{self.path}:{line_no + 1}",
                    message=f"the file is cut short or corrupt ({exc}); stopped reading here.",
                )

    def _read_line(self, line: bytes, where: str) -> SourceItem | None:
        """The record or problem for one line; None for a blank line or a filtered-out paper."""
        if not line.strip():
            return None
        try:
            entry = json.loads(line)
        except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for non-UTF-8 bytes
            return Problem(where, f"not valid JSON, maybe a truncated line ({exc}).")
        if not isinstance(entry, dict):
            return Problem(where, f"expected a JSON object, found {type(entry).__name__}.")
        categories = _categories(entry)
        if self.categories is not None and not _matches(categories, self.categories):
            return None
        return _to_record(entry, categories, where)


@contextmanager
def _open_lines(path: Path) -> Iterator[Iterable[bytes]]:
    """The file as bytes, gunzipped if it starts like gzip. Reads once, so pipes work too."""
    with path.open("rb") as raw:
        if raw.peek(2)[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped
        else:
            yield raw


def _to_record(entry: dict[str, Any], categories: tuple[str, ...], where: str) -> SourceItem:
    raw_id = entry.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return Problem(where, "the line has no `id`.")
    title = _squash(entry.get("title"))
    if not title:
        return Problem(where, f"paper {raw_id} has no `title`.")
    arxiv_id = find_arxiv_id(raw_id)
    if arxiv_id is None:
        return Problem(where, f"{raw_id!r} is not an arXiv ID.")
    versions = _versions(entry.get("versions"))
    version = versions[-1][0] if versions else arxiv_id.version
    first_date = next((day for number, day in versions if number == 1), None)
    last_date = versions[-1][1] if versions else None
    return PaperRecord(
        paper_id=arxiv_id.id,
        source="arxiv-dump",
        title=title,
        authors=_authors(entry),
        published=first_date,
        updated=_iso_date(entry.get("update_date")) or last_date,
        version=version,
        url=abs_url(arxiv_id.id),
        pdf_url=pdf_url(ArxivId(arxiv_id.id, version)),
        categories=categories,
        abstract=_squash(entry.get("abstract")) or None,
    )


def _categories(entry: dict[str, Any]) -> tuple[str, ...]:
    value = entry.get("categories")
    return tuple(dict.fromkeys(value.split())) if isinstance(value, str) else ()


def _matches(categories: tuple[str, ...], wanted: frozenset[str]) -> bool:
    return any(
        category == want or category.startswith(want if want.endswith(".") else want + ".")
        for category in categories
        for want in wanted
    )


def _versions(value: Any) -> list[tuple[int, date | None]]:
    """(number, creation date) of each well-formed version, oldest first."""
    found: list[tuple[int, date | None]] = []
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, dict):
            continue
        label = item.get("version")
        if isinstance(label, str) and re.fullmatch(r"v\d+", label.strip()):
            found.append((int(label.strip()[1:]), _rfc2822_date(item.get("created"))))
    return sorted(found, key=lambda pair: pair[0])


def _rfc2822_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value).date()
    except (TypeError, ValueError):
        return None


def _iso_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _authors(entry: dict[str, Any]) -> tuple[str, ...]:
    """Authors as "First Last": from `authors_parsed` when present, else the `authors` string."""
    parsed = entry.get("authors_parsed")
    if isinstance(parsed, list):
        names = tuple(name for parts in parsed if (name := _parsed_name(parts)))
        if names:
            return names
    raw = entry.get("authors")
    return _split_authors(raw) if isinstance(raw, str) else ()


def _parsed_name(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    last, first, suffix = ([_squash(p) if isinstance(p, str) else "" for p in parts] + [""] * 3)[:3]
    return " ".join(part for part in (first, last, suffix) if part)


def _split_authors(raw: str) -> tuple[str, ...]:
    """Split "A. One, B. Two (Some Univ.) and C. Three" into names, dropping affiliations."""
    text = raw
    while (without := _PARENTHESES.sub(" ", text)) != text:
        text = without
    return tuple(name for part in _AUTHOR_SEPARATOR.split(text) if (name := _squash(part)))


def _squash(value: Any) -> str:
    return re.sub(r"\s+", " ", value).strip() if isinstance(value, str) else ""
