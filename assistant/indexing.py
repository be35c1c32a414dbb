"""Writing papers' passages to the index, at the speed of the embedding model.

Papers to (re)index are collected across the ingest's windows and embedded in large
batches (the model sorts a batch by length, so large batches waste little on padding) in
a worker thread, while the caller goes on reading and storing the next windows and this
thread computes sparse vectors and writes the previous batch. One batch is embedded at a
time; a batch is written in batched upserts, then recorded in SQLite.

Crash safety is per paper, as before: a paper is marked pending in SQLite before its
passages are written and recorded as indexed after, and a paper's passages always go to
the index in one write, so a process killed anywhere leaves no half-indexed paper, and
the next run redoes what was not recorded.

>>> writer = IndexWriter(store, index, embedder, ingestor.passages, report)
>>> writer.add(["2407.08608"]); writer.close()
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.embedding import Embedder, SecondVector, models_name
from assistant.errors import IndexUnavailableError
from assistant.index import IndexedChunk, VectorIndex
from assistant.models import Chunk, Paper
from assistant.sparse import SparseVector, document_vector
from assistant.state import StateStore

if TYPE_CHECKING:
    from assistant.ingest import IngestReport

EMBED_BATCH = 2048  # texts per embedding call


@dataclass
class _Paper:
    paper: Paper
    chunks: list[Chunk]
    digest: str

    @property
    def texts(self) -> list[str]:
        return [embedding_text(self.paper, c) for c in self.chunks]


@dataclass
class _Batch:
    papers: list[_Paper]
    vectors: Future[tuple[list[list[float]], dict[str, list[list[float]]]]]
    sparse: list[SparseVector] = field(default_factory=list)
    ids: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = {p.paper.paper_id for p in self.papers}


class IndexWriter:
    """Embeds and writes the passages of the papers given to `add`; `close` writes the
    rest. Use one per ingest run, from one thread."""

    def __init__(
        self,
        store: StateStore,
        index: VectorIndex,
        embedder: Embedder,
        passages: Callable[[Paper], list[Chunk]],
        report: IngestReport,
        batch_texts: int | None = None,
        second: Sequence[SecondVector] = (),
    ) -> None:
        self._store = store
        self._index = index
        self._embedder = embedder
        self._second = tuple(second)
        self._models = models_name(embedder, self._second)
        self._passages = passages
        self._report = report
        self._batch_texts = batch_texts or EMBED_BATCH
        self._buffer: dict[str, _Paper] = {}
        self._buffered_texts = 0
        self._in_flight: _Batch | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    def add(self, paper_ids: Sequence[str]) -> None:
        """Queue these stored papers for indexing (those whose passages changed, or that
        another model embedded); embed a batch when enough text is queued."""
        for paper in self._store.papers(paper_ids=paper_ids):
            if self._in_flight is not None and paper.paper_id in self._in_flight.ids:
                self._finish()  # its earlier version must be written first
            chunks = self._passages(paper)
            digest = content_hash(paper, chunks)
            status = self._store.index_status(paper.paper_id)
            if status.content_hash == digest and status.embed_model == self._models:
                self._drop(paper.paper_id)
                continue
            self._drop(paper.paper_id)
            self._buffer[paper.paper_id] = _Paper(paper, chunks, digest)
            self._buffered_texts += len(chunks)
            if self._buffered_texts >= self._batch_texts:
                self._submit()

    def close(self) -> None:
        """Embed and write everything queued, then stop the worker."""
        try:
            self._submit()
            self._finish()
        except BaseException:
            self.abandon()
            raise
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abandon(self) -> None:
        """Stop without writing more (after an error): queued papers stay stored but not
        indexed, and the next run indexes them."""
        self._buffer.clear()
        self._in_flight = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _drop(self, paper_id: str) -> None:
        earlier = self._buffer.pop(paper_id, None)
        if earlier is not None:
            self._buffered_texts -= len(earlier.chunks)

    def _submit(self) -> None:
        """Start embedding the queued papers and compute their sparse vectors meanwhile;
        then write the batch embedded before (the worker goes on with this one)."""
        earlier, self._in_flight = self._in_flight, None
        if self._buffer:
            papers = list(self._buffer.values())
            self._buffer.clear()
            self._buffered_texts = 0
            texts = [text for p in papers for text in p.texts]
            batch = _Batch(papers, self._pool.submit(self._embed, texts))
            batch.sparse = [document_vector(text) for text in texts]
            self._in_flight = batch
        if earlier is not None:
            self._write_batch(earlier)

    def _embed(self, texts: list[str]) -> tuple[list[list[float]], dict[str, list[list[float]]]]:
        """Every model's vectors of `texts` (in the worker thread, one model after the other)."""
        more = {s.name: s.embedder.embed(texts) for s in self._second}
        return self._embedder.embed(texts), more

    def _finish(self) -> None:
        """Wait for the batch in flight to be embedded, then write and record it."""
        batch, self._in_flight = self._in_flight, None
        if batch is not None:
            self._write_batch(batch)

    def _write_batch(self, batch: _Batch) -> None:
        primary, more = batch.vectors.result()
        passages = [(p, c) for p in batch.papers for c in p.chunks]
        items = [
            IndexedChunk(
                chunk=c,
                title=p.paper.title,
                url=p.paper.url,
                weeks=tuple(w.isoformat() for w in p.paper.weeks),
                categories=p.paper.categories,
                content_hash=p.digest,
                dense=primary[n],
                sparse=batch.sparse[n],
                more_dense={name: vectors[n] for name, vectors in more.items()},
            )
            for n, (p, c) in enumerate(passages)
        ]
        self._write(batch.papers, items)

    def _write(self, papers: list[_Paper], items: list[IndexedChunk]) -> None:
        stale = [  # a paper never indexed (nor begun) has nothing to clean up
            p for p in papers if self._store.index_status(p.paper.paper_id).may_have_points
        ]
        self._store.mark_pending({p.paper.paper_id: p.digest for p in papers})
        try:
            # New passages go in before old ones go out: a paper is never missing from search.
            self._index.upsert(items)
            for p in stale:
                self._index.delete_stale(p.paper.paper_id, p.digest)
        except IndexUnavailableError as exc:  # the papers stay pending: the next run redoes them
            waiting = len(papers) + len(self._buffer)
            raise IndexUnavailableError(
                f"{exc} {waiting} paper(s) were stored but not indexed yet: run the same "
                "command again once the index is back."
            ) from exc
        name = self._models
        self._store.record_indexed(
            [(p.paper.paper_id, p.digest, name, len(p.chunks)) for p in papers]
        )
        self._report.indexed_papers += len(papers)
        self._report.indexed_chunks += len(items)


def embedding_text(paper: Paper, chunk: Chunk) -> str:
    """What is embedded for a passage: the paper's title gives every passage its context."""
    if chunk.kind == "title":
        return paper.title
    heading = f" ({chunk.section})" if chunk.section and chunk.kind == "body" else ""
    return f"{paper.title}{heading}: {chunk.text}"


def content_hash(paper: Paper, chunks: Sequence[Chunk]) -> str:
    """A digest of everything the index holds for a paper; unchanged digest, no re-embed."""
    payload = {
        "title": paper.title,
        "url": paper.url,
        "weeks": [w.isoformat() for w in paper.weeks],
        "categories": list(paper.categories),
        "chunks": [[c.ordinal, c.kind, c.section, c.page, c.text] for c in chunks],
    }
    encoded = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]
