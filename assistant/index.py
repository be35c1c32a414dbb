"""The vector index: a dense and a sparse (BM25-style) vector per passage, in Qdrant.

Two engines behind one Protocol, chosen by `open_index`:
- embedded (the default): Qdrant Edge, Qdrant's engine in this process, in a folder under
  the data dir (`assistant.index_edge.EdgeIndex`);
- a Qdrant server when `QDRANT_URL` is set: Docker, Qdrant Cloud or a cluster
  (`assistant.index_server.ServerIndex`, through qdrant-client).

Hybrid search fuses the dense and the sparse candidates (distribution-based score fusion
by default), weighting them per query.

>>> schema = IndexSchema.single("all-MiniLM-L6-v2", 384)
>>> index = open_index(settings.qdrant, settings.index_path, schema)
>>> hits = index.query(dense, sparse, SearchFilter(week=date(2024, 7, 8)), limit=10)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol

from assistant.errors import IndexDamagedError
from assistant.fusion import Fusion, fuse
from assistant.models import Chunk
from assistant.settings import QdrantSettings
from assistant.sparse import SparseVector

DENSE = "dense"
SPARSE = "sparse"
SPARSE_SCHEME = "paperbot-bm25-v1"
PROBE_TIMEOUT = 2.0  # seconds a readiness check waits for the server
PAYLOAD_INDEXES = ("paper_id", "weeks", "categories", "content_hash")  # keyword filters
UPSERT_BATCH = 256  # points a write request (about 2.5 MB of JSON at 384 dimensions)
_POINT_NAMESPACE = uuid.UUID("5b0f7e4e-2d0c-4a5e-9a77-6f1f0d6c2b11")


class SearchMode(StrEnum):
    """Which vectors a query uses."""

    HYBRID = "hybrid"
    DENSE = "dense"
    SPARSE = "sparse"


@dataclass(frozen=True)
class DenseVector:
    """One named dense vector of every passage, and the embedding model that fills it.

    `dimension` may be a callable, asked only when the index must be created (so opening
    an existing index does not load the embedding model).
    """

    name: str
    model: str
    dimension: int | Callable[[], int] = field(compare=False)

    def size(self) -> int:
        return self.dimension() if callable(self.dimension) else self.dimension


@dataclass(frozen=True)
class IndexSchema:
    """What the index stores per passage: its named dense vectors (each with its model)
    and the sparse vector. This is the one place that names them; the record it writes
    with the index is how a later start knows which models built it.

    The first dense vector is the primary one (dense-only search uses it). A second model
    (the English one beside e5, `assistant.embedding.SecondVector`) is a second
    `DenseVector` in `Runtime.index_schema`: both engines create every named vector of the
    schema and record each one's model; `IndexedChunk.more_dense` carries its vectors and
    `query(more_dense=...)` fuses its candidates. An index recorded without the new vector is
    refused with the rebuild message (`mismatch`), so `paperbot index rebuild` fills it.
    """

    dense: tuple[DenseVector, ...]
    sparse: str = SPARSE
    sparse_scheme: str = SPARSE_SCHEME

    @classmethod
    def single(cls, model: str, dimension: int | Callable[[], int]) -> IndexSchema:
        """The schema of one embedding model in the `dense` vector (today's default)."""
        return cls((DenseVector(DENSE, model, dimension),))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> IndexSchema:
        """The schema an index's model record describes (to copy an index as it is)."""
        named = record.get("dense_vectors")
        if not isinstance(named, dict) or not named:
            named = {DENSE: {"model": record.get("embedding_model"), "dimension": 0}}
        dense = tuple(
            DenseVector(str(name), str(v.get("model")), int(v.get("dimension") or 0))
            for name, v in named.items()
        )
        return cls(dense, sparse_scheme=str(record.get("sparse")))

    @property
    def primary(self) -> DenseVector:
        return self.dense[0]

    def record(self) -> dict[str, Any]:
        """The model record stored with the index. The flat keys describe the primary
        vector, as collections written before named-vector records did."""
        primary = self.primary
        return {
            "embedding_model": primary.model,
            "dimension": primary.size(),
            "sparse": self.sparse_scheme,
            "dense_vectors": {
                v.name: {"model": v.model, "dimension": v.size(), "distance": "cosine"}
                for v in self.dense
            },
        }

    def mismatch(self, record: Mapping[str, Any] | None) -> str | None:
        """Why an index with this `record` cannot serve this schema, or None if it can."""
        record = record or {}
        built = recorded_models(record)
        for vector in self.dense:
            if built.get(vector.name) != vector.model:
                return (
                    f"The index was built with embedding model {built.get(vector.name)!r} "
                    f"(vector {vector.name!r}), but {vector.model!r} is configured. Run "
                    "`paperbot index rebuild` to re-embed every paper, or set "
                    "PAPERBOT_EMBEDDING_MODEL back."
                )
        if record.get("sparse") != self.sparse_scheme:
            return (
                f"The index holds sparse vectors of scheme {record.get('sparse')!r}, this "
                f"version writes {self.sparse_scheme!r}: run `paperbot index rebuild`."
            )
        return None


def recorded_models(record: Mapping[str, Any]) -> dict[str, str | None]:
    """Dense vector name -> the model a record says built it."""
    named = record.get("dense_vectors")
    if isinstance(named, dict):
        return {str(k): (v.get("model") if isinstance(v, dict) else None) for k, v in named.items()}
    return {DENSE: record.get("embedding_model")}


@dataclass(frozen=True)
class IndexedChunk:
    """A passage ready for the index: its vectors and the payload search results need."""

    chunk: Chunk
    title: str
    url: str | None
    weeks: tuple[str, ...]
    categories: tuple[str, ...]
    content_hash: str
    dense: list[float]
    sparse: SparseVector
    more_dense: Mapping[str, list[float]] = field(default_factory=dict)  # name -> vector


@dataclass(frozen=True)
class DenseQuery:
    """A query's vector for one more named dense vector of the schema, and its vote in
    hybrid fusion (the primary vector's list comes first, with `weights[0]`)."""

    name: str
    vector: list[float]
    weight: float


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a query (or a count) to some papers, a week (its start date), categories,
    one version of the passages (`content_hash`), or leave some papers out."""

    paper_ids: tuple[str, ...] = ()
    week: date | None = None
    categories: tuple[str, ...] = ()
    content_hash: str | None = None
    exclude_paper_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunkHit:
    """A passage found by a query, with its paper's title and link."""

    chunk: Chunk
    title: str
    url: str | None
    score: float
    similarity: float | None = None  # cosine of query and passage embeddings, if known


class VectorIndex(Protocol):
    """Stores passages with their vectors and finds them again."""

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        """Add or replace passages (the same paper, hash and ordinal replace in place)."""
        ...

    def delete_stale(self, paper_id: str, keep_hash: str | None) -> None:
        """Remove a paper's passages except those of `keep_hash` (None removes all)."""
        ...

    def query(
        self,
        dense: list[float],
        sparse: SparseVector,
        where: SearchFilter,
        limit: int,
        mode: SearchMode = SearchMode.HYBRID,
        prefetch: int = 50,
        weights: tuple[float, float] = (1.0, 1.0),
        fusion: Fusion = Fusion.DBSF,
        sparse_gate: float = 0.0,
        more_dense: Sequence[DenseQuery] = (),
    ) -> list[ChunkHit]:
        """The best passages for a query, best first; hybrid mode fuses the dense and the
        sparse candidates with `fusion`, weighting them by `weights` (dense, sparse), the
        sparse weight first scaled by `assistant.fusion.gated_sparse` with `sparse_gate`
        and the sparse list's best passage. `more_dense` adds the candidates of other
        named dense vectors to hybrid fusion, each with its own weight."""
        ...

    def count(self, where: SearchFilter | None = None) -> int:
        """How many passages the index holds (that match `where`)."""
        ...

    def optimize(self) -> None:
        """After a bulk write: make searches fast again (the embedded engine merges its
        segments and builds its search graphs; a server does this by itself)."""
        ...

    def close(self) -> None:
        """Release the index (the embedded engine holds its folder until then)."""
        ...


class OpenIndex(VectorIndex, Protocol):
    """An opened index, as the process that owns it sees it."""

    def ping(self, timeout: float = PROBE_TIMEOUT) -> None:
        """Ask the engine for a cheap answer within `timeout` seconds."""
        ...


def open_index(
    settings: QdrantSettings, path: Path, schema: IndexSchema, holder: str = "paperbot"
) -> OpenIndex:
    """The Qdrant server at QDRANT_URL, else the embedded engine in the folder `path`
    (`holder` names this process to others that find the folder in use)."""
    if settings.url:
        from assistant.index_server import ServerIndex

        return ServerIndex.open(settings, schema)
    from assistant.index_edge import EdgeIndex

    return EdgeIndex.open(path, schema, holder)


def point_id(paper_id: str, content_hash: str, ordinal: int) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{paper_id}/{content_hash}/{ordinal}"))


def by_paper(items: Sequence[IndexedChunk], size: int) -> Iterator[list[IndexedChunk]]:
    """`items` in batches of about `size`, never splitting one paper's run of passages
    (so a failed write never leaves a paper half written)."""
    batch: list[IndexedChunk] = []
    for _, passages in groupby(items, key=lambda i: i.chunk.paper_id):
        run = list(passages)
        if batch and len(batch) + len(run) > size:
            yield batch
            batch = []
        batch += run
    if batch:
        yield batch


def payload(item: IndexedChunk) -> dict[str, Any]:
    """What a point carries besides its vectors."""
    chunk = item.chunk
    return {
        "paper_id": chunk.paper_id,
        "ordinal": chunk.ordinal,
        "kind": chunk.kind,
        "text": chunk.text,
        "section": chunk.section,
        "page": chunk.page,
        "title": item.title,
        "url": item.url,
        "weeks": list(item.weeks),
        "categories": list(item.categories),
        "content_hash": item.content_hash,
    }


def hit_from_payload(
    data: Mapping[str, Any] | None, score: float, similarity: float | None
) -> ChunkHit:
    """A search hit from a point's payload; a payload that is not one of ours (a damaged
    index) raises IndexDamagedError."""
    p = data or {}
    try:
        chunk = Chunk(
            paper_id=str(p["paper_id"]),
            ordinal=int(p["ordinal"]),
            kind=p["kind"],
            text=str(p["text"]),
            section=p.get("section"),
            page=p.get("page"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexDamagedError(
            f"The index returned a passage it cannot read ({type(exc).__name__}: {exc}): "
            "it is damaged. Run `paperbot index rebuild` to rebuild it from the stored "
            "papers."
        ) from exc
    return ChunkHit(chunk, str(p.get("title", "")), p.get("url"), score, similarity)


def fused(
    lists: Sequence[Sequence[ChunkHit]], weights: Sequence[float], method: Fusion
) -> list[ChunkHit]:
    """Merge best-first hit lists into one (see `assistant.fusion.fuse`); a hit keeps the
    similarity any of the lists knew."""
    by_key: dict[tuple[str, int], ChunkHit] = {}
    for hits in lists:
        for hit in hits:
            known = by_key.get(_key(hit))
            if known is None or known.similarity is None:
                by_key[_key(hit)] = hit
    ranked = [[(_key(h), h.score) for h in hits] for hits in lists]
    return [replace(by_key[key], score=score) for key, score in fuse(ranked, weights, method)]


def _key(hit: ChunkHit) -> tuple[str, int]:
    return (hit.chunk.paper_id, hit.chunk.ordinal)
