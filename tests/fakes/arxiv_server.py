"""A fake arXiv API: real HTTP on 127.0.0.1, Atom answers built from an in-memory dict.

It answers `GET /api/query?id_list=...&start=...&max_results=...` the way export.arxiv.org
does, and `search_query=...` too for the subset of the query language paperbot sends
(`cat:`, `submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM]`, `AND`, `OR`, `ANDNOT`, brackets),
sorted by `sortBy`/`sortOrder`. Any other query is answered with HTTP 400. It records every
request (to assert batching and politeness), and can be told to fail.

>>> with FakeArxivServer([FakePaper("2407.08608", version=2, title="...")]) as server:
...     settings = ArxivSettings(api_url=server.url, delay_seconds=0)
"""

from __future__ import annotations

import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import FakeHandler, LocalServer

ATOM = "http://www.w3.org/2005/Atom"
ARXIV = "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
ET.register_namespace("", ATOM)
ET.register_namespace("arxiv", ARXIV)
ET.register_namespace("opensearch", OPENSEARCH)

_VERSIONED = re.compile(r"^(?P<id>.+?)(?:v(?P<version>\d+))?$")


@dataclass(frozen=True)
class FakePaper:
    """One paper the fake API knows, at its newest version."""

    arxiv_id: str
    version: int = 1
    title: str = "A made-up title"
    summary: str = "Made-up words about a made-up method."
    authors: tuple[str, ...] = ("Ada Example",)
    published: datetime = datetime(2024, 7, 11, 15, 44, 48, tzinfo=UTC)
    updated: datetime = datetime(2024, 7, 12, 17, 57, 21, tzinfo=UTC)
    categories: tuple[str, ...] = ("cs.LG",)  # the first is the primary category


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received: when (time.monotonic()), its path and query parameters."""

    at: float
    path: str
    params: dict[str, str]

    @property
    def id_list(self) -> list[str]:
        value = self.params.get("id_list", "")
        return value.split(",") if value else []

    @property
    def search_query(self) -> str:
        return self.params.get("search_query", "")


@dataclass(frozen=True)
class _Trouble:
    """How to spoil one answer: wait first, and/or answer `status` (None: answer normally)."""

    status: int | None
    retry_after: str | None = None
    body: bytes = b""
    content_type: str = "text/plain"
    stall_seconds: float = 0.0
    empty_page: bool = False


class FakeArxivServer(LocalServer):
    """The fake arXiv API server. Use as a context manager; `url` is the query endpoint.

    `count_missing_in_total` emulates the API counting unknown IDs in totalResults
    (lukasschwab/arxiv.py#82), which makes the client ask for a page past the end.
    """

    def __init__(
        self, papers: Iterable[FakePaper] = (), count_missing_in_total: bool = False
    ) -> None:
        self.papers = {paper.arxiv_id: paper for paper in papers}
        self.pdfs: dict[str, bytes] = {}  # "2407.08608v2" -> bytes, served at /pdf/<name>
        self.count_missing_in_total = count_missing_in_total
        self.requests: list[RecordedRequest] = []
        self._troubles: list[_Trouble] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/query"

    @property
    def pdf_base_url(self) -> str:
        """Where PDFs are served: `pdf_base_url + "2407.08608v2"`."""
        return self.url.removesuffix("api/query") + "pdf/"

    def fail_next(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next `count` requests with `status` (and a Retry-After header if given)."""
        with self._lock:
            self._troubles.extend(_Trouble(status, retry_after) for _ in range(count))

    def answer_html_next(self, count: int) -> None:
        """Answer the next `count` requests with status 200 and an HTML page, as proxies do."""
        page = b"<html><body>Service temporarily in maintenance</body></html>"
        with self._lock:
            self._troubles.extend(_Trouble(200, None, page, "text/html") for _ in range(count))

    def answer_empty_page_next(self, count: int) -> None:
        """Answer the next `count` requests with a feed that has the right totalResults but no
        entries, as export.arxiv.org now and then does in the middle of a long search."""
        with self._lock:
            self._troubles.extend(_Trouble(None, empty_page=True) for _ in range(count))

    def stall_next(self, count: int, seconds: float) -> None:
        """Wait `seconds` before answering each of the next `count` requests."""
        with self._lock:
            self._troubles.extend(_Trouble(None, stall_seconds=seconds) for _ in range(count))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def _record(self, path: str, params: dict[str, str]) -> _Trouble | None:
        with self._lock:
            self.requests.append(RecordedRequest(time.monotonic(), path, params))
            return self._troubles.pop(0) if self._troubles else None

    def _feed(self, params: dict[str, str], empty_page: bool = False) -> bytes:
        requested = [i for i in params.get("id_list", "").split(",") if i]
        query = params.get("search_query", "")
        if requested or not query:
            entries = [entry for i in requested if (entry := self._lookup(i)) is not None]
        else:
            entries = [(paper, paper.version) for paper in self.papers.values()]
        if query:
            matches = parse_search_query(query)
            entries = _sorted([e for e in entries if matches(e[0])], params)
        total = len(requested) if self.count_missing_in_total else len(entries)
        start = int(params.get("start", "0"))
        max_results = int(params.get("max_results", "10"))
        page = [] if empty_page else entries[start : start + max_results]
        return atom_feed(page, total=total, start=start)

    def _lookup(self, requested: str) -> tuple[FakePaper, int] | None:
        match = _VERSIONED.match(requested)
        assert match is not None
        paper = self.papers.get(match.group("id"))
        if paper is None:
            return None
        version = int(match.group("version") or paper.version)
        return (paper, version) if version <= paper.version else None


def _handler_for(server: FakeArxivServer) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            trouble = server._record(parts.path, params)
            if trouble is not None and trouble.stall_seconds:
                time.sleep(trouble.stall_seconds)
            if trouble is not None and trouble.status is not None:
                headers = {"Retry-After": trouble.retry_after} if trouble.retry_after else {}
                self._send(trouble.status, trouble.body, trouble.content_type, headers)
            elif parts.path.startswith("/pdf/"):
                pdf = server.pdfs.get(parts.path.removeprefix("/pdf/"))
                if pdf is None:
                    self._send(404, b"no such PDF", "text/plain")
                else:
                    self._send(200, pdf, "application/pdf")
            elif parts.path != "/api/query":
                self._send(404, b"not found", "text/plain")
            else:
                empty_page = trouble is not None and trouble.empty_page
                try:
                    feed = server._feed(params, empty_page)
                except ValueError as exc:
                    self._send(400, str(exc).encode(), "text/plain")
                    return
                self._send(200, feed, "application/atom+xml; charset=utf-8")

    return Handler


Matcher = Callable[[FakePaper], bool]
_QUERY_TOKEN = re.compile(r"\(|\)|\w+:\[[^\]]*\]|[^\s()]+")
_DATE_RANGE = re.compile(r"^\[(\d{12}) TO (\d{12})\]$")


def parse_search_query(query: str) -> Matcher:
    """A predicate for the part of arXiv's query language paperbot uses; ValueError otherwise.

    OR binds loosest, then AND and ANDNOT, as in Lucene; brackets group.
    """
    tokens = _QUERY_TOKEN.findall(query)
    matcher, rest = _parse_or(tokens)
    if rest:
        raise ValueError(f"unexpected {rest[0]!r} in search_query {query!r}")
    return matcher


def _parse_or(tokens: list[str]) -> tuple[Matcher, list[str]]:
    left, tokens = _parse_and(tokens)
    while tokens and tokens[0] == "OR":
        right, tokens = _parse_and(tokens[1:])
        left = (lambda a, b: lambda p: a(p) or b(p))(left, right)
    return left, tokens


def _parse_and(tokens: list[str]) -> tuple[Matcher, list[str]]:
    left, tokens = _parse_term(tokens)
    while tokens and tokens[0] in ("AND", "ANDNOT"):
        negate = tokens[0] == "ANDNOT"
        right, tokens = _parse_term(tokens[1:])
        left = (lambda a, b, n: lambda p: a(p) and (b(p) != n))(left, right, negate)
    return left, tokens


def _parse_term(tokens: list[str]) -> tuple[Matcher, list[str]]:
    if not tokens:
        raise ValueError("search_query ends too early")
    if tokens[0] == "(":
        inner, rest = _parse_or(tokens[1:])
        if not rest or rest[0] != ")":
            raise ValueError("unbalanced brackets in search_query")
        return inner, rest[1:]
    field, _, value = tokens[0].partition(":")
    if field == "cat" and value:
        return (lambda p: value in p.categories), tokens[1:]
    dates = _DATE_RANGE.match(value)
    if field == "submittedDate" and dates:
        low, high = dates.groups()
        return (lambda p: low <= p.published.strftime("%Y%m%d%H%M") <= high), tokens[1:]
    raise ValueError(f"the fake arXiv API does not understand {tokens[0]!r}")


def _sorted(
    entries: list[tuple[FakePaper, int]], params: dict[str, str]
) -> list[tuple[FakePaper, int]]:
    sort_by = params.get("sortBy", "relevance")
    if sort_by == "relevance":
        return entries
    if sort_by not in ("submittedDate", "lastUpdatedDate"):
        raise ValueError(f"unknown sortBy {sort_by!r}")
    field = "published" if sort_by == "submittedDate" else "updated"
    descending = params.get("sortOrder", "descending") == "descending"
    return sorted(entries, key=lambda e: getattr(e[0], field), reverse=descending)


def atom_feed(entries: list[tuple[FakePaper, int]], total: int, start: int = 0) -> bytes:
    """An arXiv API Atom feed for (paper, version) pairs, shaped like export.arxiv.org's."""
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}title", type="html").text = "ArXiv Query: fake"
    ET.SubElement(feed, f"{{{ATOM}}}id").text = "http://arxiv.org/api/fake"
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = "2024-07-20T00:00:00-04:00"
    ET.SubElement(feed, f"{{{OPENSEARCH}}}totalResults").text = str(total)
    ET.SubElement(feed, f"{{{OPENSEARCH}}}startIndex").text = str(start)
    ET.SubElement(feed, f"{{{OPENSEARCH}}}itemsPerPage").text = str(len(entries))
    for paper, version in entries:
        _add_entry(feed, paper, version)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _add_entry(feed: ET.Element, paper: FakePaper, version: int) -> None:
    versioned = f"{paper.arxiv_id}v{version}"
    entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
    ET.SubElement(entry, f"{{{ATOM}}}id").text = f"http://arxiv.org/abs/{versioned}"
    ET.SubElement(entry, f"{{{ATOM}}}updated").text = _stamp(paper.updated)
    ET.SubElement(entry, f"{{{ATOM}}}published").text = _stamp(paper.published)
    ET.SubElement(entry, f"{{{ATOM}}}title").text = paper.title
    ET.SubElement(entry, f"{{{ATOM}}}summary").text = paper.summary
    for name in paper.authors:
        author = ET.SubElement(entry, f"{{{ATOM}}}author")
        ET.SubElement(author, f"{{{ATOM}}}name").text = name
    ET.SubElement(
        entry,
        f"{{{ATOM}}}link",
        href=f"http://arxiv.org/abs/{versioned}",
        rel="alternate",
        type="text/html",
    )
    ET.SubElement(
        entry,
        f"{{{ATOM}}}link",
        title="pdf",
        href=f"http://arxiv.org/pdf/{versioned}",
        rel="related",
        type="application/pdf",
    )
    scheme = "http://arxiv.org/schemas/atom"
    primary = paper.categories[0] if paper.categories else "cs.LG"
    ET.SubElement(entry, f"{{{ARXIV}}}primary_category", term=primary, scheme=scheme)
    for category in paper.categories:
        ET.SubElement(entry, f"{{{ATOM}}}category", term=category, scheme=scheme)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
