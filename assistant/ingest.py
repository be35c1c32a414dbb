"""The ingest pipeline: source records -> SQLite -> (arXiv enrichment, full text) -> index.

Records are processed in windows so that a multi-gigabyte dump streams through in
constant memory. Every step is idempotent: a paper whose passages did not change is
not embedded again, and a paper is re-indexed as a whole when they did.

>>> report = ingestor.ingest(PotwSource.from_location("README.md"), offline=True)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Protocol

import httpx

from assistant.chunking import chunk_pages, chunk_text
from assistant.embedding import Embedder, SecondVector
from assistant.errors import (
    InvalidInputError,
    NotFoundError,
    SourceError,
    SourceUnavailableError,
)
from assistant.fulltext import download_pdf, extract_pages
from assistant.ids import is_arxiv_key
from assistant.index import VectorIndex
from assistant.indexing import IndexWriter
from assistant.models import Chunk, Paper, PaperRecord, Problem
from assistant.settings import ArxivSettings, IngestSettings
from assistant.sources.arxiv_api import ArxivClient
from assistant.sources.base import PaperSource
from assistant.state import StateStore
from assistant.versions import VersionLog, fulltext_change

log = logging.getLogger(__name__)

WINDOW = 256


class Progress(Protocol):
    """Where long work reports how far it got (the CLI shows a progress bar)."""

    def begin(self, stage: str, total: int | None) -> None:
        """A new stage starts; `total` is None when unknown."""
        ...

    def advance(self, amount: int = 1) -> None:
        """`amount` more units of the current stage are done."""
        ...


class NullProgress:
    """Progress that shows nothing."""

    def begin(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


@dataclass
class IngestReport:
    """What one ingest run did."""

    records: int = 0
    new_papers: int = 0
    updated_papers: int = 0
    unchanged_papers: int = 0
    enriched: int = 0
    fulltext: int = 0
    indexed_papers: int = 0
    indexed_chunks: int = 0
    new_versions: int = 0
    arxiv_unreachable: bool = False  # arXiv was not asked again for the rest of this run
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        data = {k: v for k, v in vars(self).items() if k not in ("problems", "notes")}
        data["problems"] = [str(p) for p in self.problems]
        data["notes"] = list(self.notes)
        return data


# What a real paper's record stays well within (arXiv caps abstracts at 1,920 characters;
# a list row's description is a paragraph or two). Bigger is broken or hostile input.
MAX_TITLE_CHARS = 1_000
MAX_TEXT_CHARS = 20_000
MAX_AUTHORS = 5_000
MAX_AUTHOR_CHARS = 300


def oversized(record: PaperRecord) -> str | None:
    """Why `record` is too big to store (which field, how big, the limit), or None."""
    fields = [("title", record.title or "", MAX_TITLE_CHARS)]
    fields.append(("abstract", record.abstract or "", MAX_TEXT_CHARS))
    if record.listing is not None:
        fields.append(("list title", record.listing.title, MAX_TITLE_CHARS))
        fields.append(("description", record.listing.description, MAX_TEXT_CHARS))
    fields += [("an author's name", a, MAX_AUTHOR_CHARS) for a in record.authors]
    for name, text, limit in fields:
        if len(text) > limit:
            return f"the {name} is {len(text):,} characters long; the limit is {limit:,}"
    if len(record.authors) > MAX_AUTHORS:
        return f"{len(record.authors):,} authors; the limit is {MAX_AUTHORS:,}"
    return None


def _windows(items: Iterable[object], size: int) -> Iterator[list[object]]:
    iterator = iter(items)
    while window := list(islice(iterator, size)):
        yield window


class Ingestor:
    """Runs sources through the store and the index. Built by the composition root."""

    def __init__(
        self,
        store: StateStore,
        index: VectorIndex,
        embedder: Embedder,
        settings: IngestSettings,
        arxiv_settings: ArxivSettings,
        arxiv: ArxivClient | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        second: Sequence[SecondVector] = (),
    ) -> None:
        self._store = store
        self._index = index
        self._embedder = embedder
        self._second = tuple(second)
        self._settings = settings
        self._arxiv_settings = arxiv_settings
        self._arxiv = arxiv
        self._http = http
        self._sleep = sleep
        self._last_pdf_request = 0.0
        self._versions = VersionLog(store)

    @property
    def store(self) -> StateStore:
        return self._store

    def ingest(
        self,
        source: PaperSource,
        offline: bool = False,
        progress: Progress | None = None,
        total: int | None = None,
    ) -> IngestReport:
        """Store, enrich and index everything `source` yields (`total`: items, if known)."""
        progress = progress or NullProgress()
        report = IngestReport()
        progress.begin(f"ingesting {source.name}", total)
        with self._writer(report) as writer:
            for window in _windows(source.read(), WINDOW):
                touched = self._store_window(window, report)
                if not offline:
                    self._enrich(touched, report)
                    self._fetch_fulltext(touched, report)
                writer.add(touched)
                progress.advance(len(window))
        return report

    def enrich_pending(self, progress: Progress | None = None) -> IngestReport:
        """Fetch arXiv metadata (and full text) for papers ingested offline earlier."""
        progress = progress or NullProgress()
        report = IngestReport()
        pending = self._store.needing_enrichment()
        progress.begin("enriching from arXiv", len(pending))
        with self._writer(report) as writer:
            for window in _windows(pending, WINDOW):
                ids = [str(x) for x in window]
                self._enrich(ids, report)
                self._fetch_fulltext(ids, report)
                writer.add(ids)
                progress.advance(len(ids))
        return report

    def check_versions(
        self, paper_ids: Sequence[str], progress: Progress | None = None
    ) -> IngestReport:
        """Ask arXiv for the newest version of these papers (the posted ones); a newer
        version than arXiv showed before is recorded with what changed (`paper_updates`),
        and its full text fetched and indexed."""
        progress = progress or NullProgress()
        report = IngestReport()
        if self._arxiv is None:
            raise SourceUnavailableError("checking for new versions needs the arXiv API")
        ids = [p for p in paper_ids if is_arxiv_key(p)]
        started = datetime.now(UTC).isoformat(timespec="seconds")
        progress.begin("checking arXiv for new versions", len(ids))
        with self._writer(report) as writer:
            for window in _windows(ids, WINDOW):
                batch = [str(x) for x in window]
                for item in self._arxiv.fetch(batch):
                    if isinstance(item, Problem):
                        report.problems.append(item)
                        continue
                    self._store.upsert_record(item)
                    report.enriched += 1
                self._fetch_fulltext(batch, report)
                writer.add(batch)
                progress.advance(len(batch))
        for update in self._versions.updates(since=started):
            report.new_versions += 1
            report.notes.append(
                f"{update.paper_id}: new version v{update.version} "
                f"({update.updated or 'date unknown'}), was v{update.previous_version}"
            )
        return report

    def attach_pdf(self, paper_id: str, pdf: bytes, version: int | None = None) -> IngestReport:
        """Index a PDF the user supplies for a stored paper (e.g. one not on arXiv)."""
        paper = self._store.get_paper(paper_id)
        if paper is None:
            raise NotFoundError(f"No paper {paper_id!r} is stored; ingest it first.")
        chunks = self._pdf_chunks(paper_id, pdf)  # raises before anything changes
        self._store.replace_fulltext(paper_id, version or paper.version, chunks)
        report = IngestReport(fulltext=1)
        with self._writer(report) as writer:
            writer.add([paper_id])
        return report

    def rebuild(self, progress: Progress | None = None) -> IngestReport:
        """Re-embed every stored paper (after the index was dropped or the model changed)."""
        progress = progress or NullProgress()
        self._store.forget_index()
        report = IngestReport()
        ids = [p.paper_id for p in self._store.papers()]
        progress.begin("re-indexing", len(ids))
        with self._writer(report) as writer:
            for window in _windows(ids, WINDOW):
                writer.add([str(x) for x in window])
                progress.advance(len(window))
        return report

    @contextmanager
    def _writer(self, report: IngestReport) -> Iterator[IndexWriter]:
        """An IndexWriter for one run: everything queued is written at the end, nothing
        more after an error (what was stored but not indexed is indexed next run)."""
        writer = IndexWriter(
            self._store, self._index, self._embedder, self.passages, report, second=self._second
        )
        try:
            yield writer
        except BaseException:
            writer.abandon()
            raise
        writer.close()

    # -- steps ---------------------------------------------------------------

    def _store_window(self, window: Sequence[object], report: IngestReport) -> list[str]:
        touched: dict[str, None] = {}
        for item in window:
            if isinstance(item, Problem):
                report.problems.append(item)
                continue
            assert isinstance(item, PaperRecord)
            too_big = oversized(item)
            if too_big is not None:
                report.problems.append(Problem(f"{item.source} {item.paper_id}", too_big))
                continue
            report.records += 1
            result = self._store.upsert_record(item)
            if result.created:
                report.new_papers += 1
            elif result.changed:
                report.updated_papers += 1
            else:
                report.unchanged_papers += 1
            touched[item.paper_id] = None
        return list(touched)

    def _enrich(self, paper_ids: Sequence[str], report: IngestReport) -> None:
        pending = set(self._store.needing_enrichment())
        wanted = [p for p in paper_ids if p in pending]
        if not wanted or self._arxiv is None or report.arxiv_unreachable:
            return
        try:
            for item in self._arxiv.fetch(wanted):
                if isinstance(item, Problem):
                    report.problems.append(item)
                    continue
                self._store.upsert_record(item)
                report.enriched += 1
        except SourceUnavailableError as exc:
            report.notes.append(
                f"arXiv could not be reached ({exc}); papers were ingested from the list "
                "and marked for enrichment: run `paperbot ingest enrich` later."
            )
            report.arxiv_unreachable = True  # not again for every window of this run

    def _fetch_fulltext(self, paper_ids: Sequence[str], report: IngestReport) -> None:
        if not self._arxiv_settings.download_pdfs or self._http is None:
            return
        for paper in self._store.papers(paper_ids=paper_ids):
            status = self._store.index_status(paper.paper_id)
            if not is_arxiv_key(paper.paper_id) or paper.needs_enrichment:
                continue
            if status.fulltext == "indexed" and status.fulltext_version == paper.version:
                continue
            if status.fulltext == "failed" and status.fulltext_version == paper.version:
                continue
            if self._fetch_one_pdf(paper, report):
                report.fulltext += 1

    def _fetch_one_pdf(self, paper: Paper, report: IngestReport) -> bool:
        assert self._http is not None
        suffix = f"v{paper.version}" if paper.version else ""
        url = f"{self._arxiv_settings.pdf_base_url}{paper.paper_id}{suffix}"
        wait = self._arxiv_settings.delay_seconds - (time.monotonic() - self._last_pdf_request)
        if wait > 0:
            self._sleep(wait)
        self._last_pdf_request = time.monotonic()
        max_bytes = int(self._arxiv_settings.max_pdf_mb * 1024 * 1024)
        try:
            pdf = download_pdf(url, self._http, max_bytes)
            chunks = self._pdf_chunks(paper.paper_id, pdf)
        except SourceUnavailableError as exc:  # passing trouble: try again on the next run
            report.notes.append(f"{paper.paper_id}: full text not fetched this time: {exc}")
            return False
        except (SourceError, InvalidInputError) as exc:
            self._store.record_fulltext_failure(paper.paper_id, paper.version, str(exc))
            report.notes.append(f"{paper.paper_id}: full text not indexed: {exc}")
            return False
        self._note_fulltext_change(paper, chunks)
        self._store.replace_fulltext(paper.paper_id, paper.version, chunks)
        return True

    def _note_fulltext_change(self, paper: Paper, chunks: Sequence[Chunk]) -> None:
        """For a new version, how much its full text differs from the one it replaces."""
        update = self._versions.get(paper.paper_id, paper.version) if paper.version else None
        if update is None or update.fulltext is not None:
            return
        before = [c.text for c in self._store.fulltext_chunks(paper.paper_id)]
        if before:
            change = fulltext_change(before, [c.text for c in chunks])
            self._versions.record_fulltext_change(paper.paper_id, update.version, change)

    def _pdf_chunks(self, paper_id: str, pdf: bytes) -> list[Chunk]:
        pages = extract_pages(pdf)
        s = self._settings
        return chunk_pages(paper_id, pages, s.chunk_words, s.chunk_overlap)

    def passages(self, paper: Paper) -> list[Chunk]:
        """Every passage of a paper: abstract, list descriptions, then full text."""
        s = self._settings
        chunks: list[Chunk] = []
        if paper.abstract:
            chunks += chunk_text(
                paper.paper_id,
                paper.abstract,
                "abstract",
                s.chunk_words,
                s.chunk_overlap,
                len(chunks),
                "Abstract",
            )
        for description in dict.fromkeys(x.description for x in paper.listings):
            if description.strip():
                chunks += chunk_text(
                    paper.paper_id,
                    description,
                    "description",
                    s.chunk_words,
                    s.chunk_overlap,
                    len(chunks),
                )
        if not chunks:
            chunks.append(Chunk(paper.paper_id, 0, "title", paper.title))
        offset = len(chunks)
        for body in self._store.fulltext_chunks(paper.paper_id):
            chunks.append(
                Chunk(
                    paper.paper_id,
                    offset + body.ordinal,
                    "body",
                    body.text,
                    body.section,
                    body.page,
                )
            )
        return chunks
