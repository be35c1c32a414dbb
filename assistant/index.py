"""The vector index: Qdrant with a dense and a sparse (BM25-style) vector per passage.

Embedded (`QdrantClient(path=...)`) by default; a Qdrant server when `QDRANT_URL` is set.
Hybrid search fuses the dense and the sparse candidates with reciprocal rank fusion.

>>> index = QdrantIndex.open(settings.qdrant, settings.qdrant_path, "all-MiniLM-L6-v2", 384)
>>> hits = index.query(dense, sparse, SearchFilter(week=date(2024, 7, 8)), limit=10)
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol, cast

import httpx
from pydantic import ValidationError
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from assistant.errors import ConfigError, IndexUnavailableError
from assistant.fusion import Fusion, fuse
from assistant.models import Chunk
from assistant.settings import QdrantSettings
from assistant.sparse import SparseVector

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "sparse"
SPARSE_SCHEME = "paperbot-bm25-v1"
PROBE_TIMEOUT = 2.0  # seconds a readiness check waits for the server
PAYLOAD_INDEXES = ("paper_id", "weeks", "categories", "content_hash")  # keyword filters
_POINT_NAMESPACE = uuid.UUID("5b0f7e4e-2d0c-4a5e-9a77-6f1f0d6c2b11")


class SearchMode(StrEnum):
    """Which vectors a query uses."""

    HYBRID = "hybrid"
    DENSE = "dense"
    SPARSE = "sparse"


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


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a query to some papers, a week (its start date) or categories."""

    paper_ids: tuple[str, ...] = ()
    week: date | None = None
    categories: tuple[str, ...] = ()


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
    ) -> list[ChunkHit]:
        """The best passages for a query, best first; hybrid mode fuses the dense and the
        sparse candidates with `fusion`, weighting them by `weights` (dense, sparse)."""
        ...

    def count(self) -> int:
        """How many passages the index holds."""
        ...

    def close(self) -> None:
        """Release the index (the embedded engine holds a folder lock until then)."""
        ...


def point_id(paper_id: str, content_hash: str, ordinal: int) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{paper_id}/{content_hash}/{ordinal}"))


class QdrantIndex:
    """`VectorIndex` on Qdrant (embedded engine or server, the same code)."""

    UPSERT_BATCH = 256  # points a request, about 2.5 MB of JSON at 384 dimensions

    def __init__(self, client: QdrantClient, collection: str, server: bool = False) -> None:
        self._client = client
        self._collection = collection
        self._server = server
        # The embedded engine is plain Python with no locking of its own: one call at a time
        # (connector threads search while the scheduler's digest build writes).
        self._lock: threading.RLock | nullcontext[None] = (
            nullcontext() if server else threading.RLock()
        )

    @classmethod
    def open(
        cls,
        settings: QdrantSettings,
        path: Path,
        model_name: str,
        dimension: int | Callable[[], int],
    ) -> QdrantIndex:
        """Connect, create the collection if needed, and check it was built by this model.

        `dimension` may be a callable, asked only when the collection must be created (so
        opening an existing index does not load the embedding model).
        """
        client = connect(settings, path)
        index = cls(client, settings.collection, server=bool(settings.url))
        try:
            with qdrant_errors():
                index.ensure_collection(model_name, dimension)
        except BaseException:
            client.close()
            raise
        return index

    def ensure_collection(self, model_name: str, dimension: int | Callable[[], int]) -> None:
        if self._client.collection_exists(self._collection):
            meta = self._client.get_collection(self._collection).config.metadata or {}
            built_with = meta.get("embedding_model")
            if built_with != model_name or meta.get("sparse") != SPARSE_SCHEME:
                raise ConfigError(
                    f"The index was built with embedding model {built_with!r}, but "
                    f"{model_name!r} is configured. Run `paperbot index rebuild` to re-embed "
                    "every paper, or set PAPERBOT_EMBEDDING_MODEL back."
                )
            return
        size = dimension() if callable(dimension) else dimension
        try:
            self._client.create_collection(
                self._collection,
                vectors_config={
                    DENSE: models.VectorParams(size=size, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata={
                    "embedding_model": model_name,
                    "dimension": size,
                    "sparse": SPARSE_SCHEME,
                },
            )
        except UnexpectedResponse as exc:  # 409: another replica created it first
            if exc.status_code != 409 or not self._client.collection_exists(self._collection):
                raise
            self.ensure_collection(model_name, dimension)  # check the model it recorded
            return
        if self._server:  # the embedded engine ignores payload indexes (and warns)
            create_payload_indexes(self._client, self._collection)

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        """Write passages in requests of about `UPSERT_BATCH` points; a paper's passages
        always go in one request, so a failure never leaves a paper half written."""
        for batch in _by_paper(items, self.UPSERT_BATCH):
            points = [
                models.PointStruct(
                    id=point_id(i.chunk.paper_id, i.content_hash, i.chunk.ordinal),
                    vector={
                        DENSE: i.dense,
                        SPARSE: models.SparseVector(
                            indices=i.sparse.indices, values=i.sparse.values
                        ),
                    },
                    payload=_payload(i),
                )
                for i in batch
            ]
            with self._lock:
                self._client.upsert(self._collection, points=points, wait=True)

    def delete_stale(self, paper_id: str, keep_hash: str | None) -> None:
        must_not = [] if keep_hash is None else [_match("content_hash", keep_hash)]
        selector = models.FilterSelector(
            filter=models.Filter(must=[_match("paper_id", paper_id)], must_not=must_not)
        )
        with self._lock:
            self._client.delete(self._collection, points_selector=selector, wait=True)

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
    ) -> list[ChunkHit]:
        flt = _filter(where)
        sparse_query = models.SparseVector(indices=sparse.indices, values=sparse.values)
        requests = []
        if mode is not SearchMode.SPARSE and dense:
            requests.append(self._request(dense, DENSE, flt, limit, prefetch, mode))
        if mode is not SearchMode.DENSE and sparse.indices:
            requests.append(self._request(sparse_query, SPARSE, flt, limit, prefetch, mode))
        if not requests:
            return []
        with self._lock:
            responses = self._client.query_batch_points(self._collection, requests=requests)
        lists = [[_hit(p, dense) for p in r.points] for r in responses]
        if len(lists) == 1:
            return lists[0][:limit]
        return _fused(lists, weights, fusion)[:limit]

    @staticmethod
    def _request(
        query: list[float] | models.SparseVector,
        using: str,
        flt: models.Filter | None,
        limit: int,
        prefetch: int,
        mode: SearchMode,
    ) -> models.QueryRequest:
        return models.QueryRequest(
            query=query,
            using=using,
            filter=flt,
            limit=prefetch if mode is SearchMode.HYBRID else limit,
            with_payload=True,
            with_vector=[DENSE],
        )

    def count(self) -> int:
        with self._lock:
            return int(self._client.count(self._collection, exact=True).count)

    def ping(self, timeout: float = PROBE_TIMEOUT) -> None:
        """Ask the server for a cheap answer within `timeout` seconds (the embedded
        engine, being in this process, always answers)."""
        if self._server:
            seconds = max(1, math.ceil(timeout))  # qdrant-client takes whole seconds
            self._client.count(self._collection, exact=False, timeout=seconds)

    def close(self) -> None:
        self._client.close()


@contextmanager
def qdrant_errors() -> Iterator[None]:
    """Turn Qdrant transport failures (unreachable, timed out, 5xx, 429, unreadable answer,
    a missing collection) into `IndexUnavailableError`, and a refused API key into
    `ConfigError`; other errors (a bad request is a bug) pass unchanged."""
    try:
        yield
    except ResponseHandlingException as exc:
        source = exc.source
        if isinstance(source, httpx.TimeoutException):
            reason = "timed out"
        elif isinstance(source, ValidationError):
            reason = "gave an unreadable answer"
        else:
            reason = "unreachable"
        raise _unavailable(reason) from exc
    except json.JSONDecodeError as exc:  # a proxy's error page, say
        raise _unavailable("gave an unreadable answer") from exc
    except ResourceExhaustedResponse as exc:
        raise _unavailable("overloaded") from exc
    except UnexpectedResponse as exc:
        status = exc.status_code or 0
        if status in (401, 403):
            raise ConfigError(
                f"The Qdrant server refused the request (HTTP {status}): set QDRANT_API_KEY "
                "to the server's API key."
            ) from exc
        if status == 404:
            log.error(
                "the collection is missing on the Qdrant server: run `paperbot index rebuild` "
                "or `paperbot index migrate` (%s)",
                exc,
            )
            raise _unavailable("has no collection") from exc
        if status >= 500 or status in (408, 429) or not status:
            raise _unavailable(f"answered HTTP {status}") from exc
        raise


def _unavailable(reason: str) -> IndexUnavailableError:
    return IndexUnavailableError(
        f"The paper index is unavailable right now (Qdrant server {reason}); try again in a minute."
    )


def connect(settings: QdrantSettings, path: Path) -> QdrantClient:
    """A Qdrant client for the server at QDRANT_URL, else the embedded engine at `path`."""
    if settings.url:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return QdrantClient(
            url=settings.url,
            api_key=key,
            timeout=max(1, math.ceil(settings.timeout)),  # whole seconds; 0 would mean none
            check_compatibility=False,
        )
    path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(path))
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise IndexUnavailableError(
            f"The embedded index at {path} is in use by another paperbot process (probably "
            "`paperbot serve`). The embedded engine allows one process at a time: stop that "
            "process and retry, or run a Qdrant server (docker compose up qdrant) and set "
            "QDRANT_URL so that several processes can share it."
        ) from exc


def create_payload_indexes(client: QdrantClient, collection: str) -> None:
    """Index the payload fields searches filter on (a Qdrant server only; harmless again)."""
    for field in PAYLOAD_INDEXES:
        client.create_payload_index(collection, field, models.PayloadSchemaType.KEYWORD)


def drop_collection(settings: QdrantSettings, path: Path) -> None:
    """Delete the collection, whatever model built it (before `paperbot index rebuild`)."""
    client = connect(settings, path)
    try:
        with qdrant_errors():
            if client.collection_exists(settings.collection):
                client.delete_collection(settings.collection)
    finally:
        client.close()


def _by_paper(items: Sequence[IndexedChunk], size: int) -> Iterator[list[IndexedChunk]]:
    """`items` in batches of about `size`, never splitting one paper's run of passages."""
    batch: list[IndexedChunk] = []
    for _, passages in groupby(items, key=lambda i: i.chunk.paper_id):
        run = list(passages)
        if batch and len(batch) + len(run) > size:
            yield batch
            batch = []
        batch += run
    if batch:
        yield batch


def _match(field: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=field, match=models.MatchValue(value=value))


def _filter(where: SearchFilter) -> models.Filter | None:
    must: list[models.Condition] = []
    if where.paper_ids:
        must.append(
            models.FieldCondition(key="paper_id", match=models.MatchAny(any=list(where.paper_ids)))
        )
    if where.week:
        must.append(_match("weeks", where.week.isoformat()))
    if where.categories:
        must.append(
            models.FieldCondition(
                key="categories", match=models.MatchAny(any=list(where.categories))
            )
        )
    return models.Filter(must=must) if must else None


def _payload(item: IndexedChunk) -> dict[str, Any]:
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


def _fused(
    lists: Sequence[Sequence[ChunkHit]], weights: tuple[float, float], method: Fusion
) -> list[ChunkHit]:
    by_key = {_key(h): h for hits in lists for h in hits}
    ranked = [[(_key(h), h.score) for h in hits] for hits in lists]
    return [replace(by_key[key], score=score) for key, score in fuse(ranked, weights, method)]


def _key(hit: ChunkHit) -> tuple[str, int]:
    return (hit.chunk.paper_id, hit.chunk.ordinal)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm if norm else 0.0


def _hit(point: models.ScoredPoint, dense: list[float]) -> ChunkHit:
    p = point.payload or {}
    vectors = point.vector if isinstance(point.vector, dict) else {}
    stored = vectors.get(DENSE)
    similarity = None
    if dense and isinstance(stored, list) and stored and isinstance(stored[0], float):
        similarity = _cosine(dense, cast("list[float]", stored))
    chunk = Chunk(
        paper_id=p["paper_id"],
        ordinal=int(p["ordinal"]),
        kind=p["kind"],
        text=p["text"],
        section=p.get("section"),
        page=p.get("page"),
    )
    return ChunkHit(
        chunk=chunk,
        title=p.get("title", ""),
        url=p.get("url"),
        score=point.score,
        similarity=similarity,
    )
