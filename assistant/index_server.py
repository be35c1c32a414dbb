"""`VectorIndex` on a Qdrant server (`QDRANT_URL`: docker compose, Qdrant Cloud, a
distributed cluster), through qdrant-client's REST transport.

Every request may fail (the server is another process, maybe another machine): transport
failures become `IndexUnavailableError`, a refused API key a `ConfigError`.

>>> index = ServerIndex.open(settings.qdrant, IndexSchema.single("all-MiniLM-L6-v2", 384))
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic import ValidationError
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from assistant.errors import ConfigError, IndexUnavailableError
from assistant.fusion import Fusion, gated_sparse
from assistant.index import (
    PAYLOAD_INDEXES,
    PROBE_TIMEOUT,
    UPSERT_BATCH,
    ChunkHit,
    DenseQuery,
    IndexedChunk,
    IndexSchema,
    SearchFilter,
    SearchMode,
    by_paper,
    fused,
    hit_from_payload,
    payload,
    point_id,
)
from assistant.settings import QdrantSettings
from assistant.sparse import SparseVector

log = logging.getLogger(__name__)


class ServerIndex:
    """`VectorIndex` on a Qdrant server: one collection, created on first use."""

    UPSERT_BATCH = UPSERT_BATCH

    def __init__(self, client: QdrantClient, collection: str, schema: IndexSchema) -> None:
        self._client = client
        self._collection = collection
        self._schema = schema
        self._dense = schema.primary.name
        self._sparse = schema.sparse

    @classmethod
    def open(cls, settings: QdrantSettings, schema: IndexSchema) -> ServerIndex:
        """Connect, create the collection if needed, and check which models built it."""
        client = connect(settings)
        index = cls(client, settings.collection, schema)
        try:
            with qdrant_errors():
                index.ensure_collection()
        except BaseException:
            client.close()
            raise
        return index

    def ensure_collection(self) -> None:
        if self._client.collection_exists(self._collection):
            meta = self._client.get_collection(self._collection).config.metadata or {}
            problem = self._schema.mismatch(meta)
            if problem is not None:
                raise ConfigError(problem)
            return
        try:
            self._client.create_collection(
                self._collection,
                vectors_config={
                    v.name: models.VectorParams(size=v.size(), distance=models.Distance.COSINE)
                    for v in self._schema.dense
                },
                sparse_vectors_config={
                    self._sparse: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata=self._schema.record(),
            )
        except UnexpectedResponse as exc:  # 409: another replica created it first
            if exc.status_code != 409 or not self._client.collection_exists(self._collection):
                raise
            self.ensure_collection()  # check the models it recorded
            return
        create_payload_indexes(self._client, self._collection)

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        """Write passages in requests of about `UPSERT_BATCH` points; a paper's passages
        always go in one request, so a failure never leaves a paper half written."""
        for batch in by_paper(items, self.UPSERT_BATCH):
            points = [
                models.PointStruct(
                    id=point_id(i.chunk.paper_id, i.content_hash, i.chunk.ordinal),
                    vector={
                        self._dense: i.dense,
                        **i.more_dense,
                        self._sparse: models.SparseVector(
                            indices=i.sparse.indices, values=i.sparse.values
                        ),
                    },
                    payload=payload(i),
                )
                for i in batch
            ]
            self._client.upsert(self._collection, points=points, wait=True)

    def delete_stale(self, paper_id: str, keep_hash: str | None) -> None:
        must_not = [] if keep_hash is None else [_match("content_hash", keep_hash)]
        selector = models.FilterSelector(
            filter=models.Filter(must=[_match("paper_id", paper_id)], must_not=must_not)
        )
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
        sparse_gate: float = 0.0,
        more_dense: Sequence[DenseQuery] = (),
    ) -> list[ChunkHit]:
        flt = server_filter(where)
        sparse_query = models.SparseVector(indices=sparse.indices, values=sparse.values)
        hybrid = mode is SearchMode.HYBRID and bool(dense) and bool(sparse.indices)
        requests, dense_weights = [], []
        if mode is not SearchMode.SPARSE and dense:
            requests.append(self._request(dense, self._dense, flt, limit, prefetch, hybrid))
            dense_weights.append(weights[0])
            for extra in more_dense if hybrid else ():
                requests.append(self._request(extra.vector, extra.name, flt, limit, prefetch, True))
                dense_weights.append(extra.weight)
        if mode is not SearchMode.DENSE and sparse.indices:
            requests.append(self._request(sparse_query, self._sparse, flt, limit, prefetch, hybrid))
        if not requests:
            return []
        responses = self._client.query_batch_points(self._collection, requests=requests)
        lists = [[self._hit(p, dense) for p in r.points] for r in responses]
        if len(lists) == 1:
            return lists[0][:limit]
        sparse_weight = weights[1]
        if sparse_gate > 0 and responses[-1].points:
            best = self._client.retrieve(
                self._collection,
                [responses[-1].points[0].id],
                with_payload=False,
                with_vectors=[self._sparse],
            )
            stored = best[0].vector if best and isinstance(best[0].vector, dict) else {}
            terms = getattr(stored.get(self._sparse), "indices", [])
            sparse_weight = gated_sparse(sparse_weight, sparse_gate, sparse.indices, terms)
        return fused(lists, [*dense_weights, sparse_weight], fusion)[:limit]

    def _request(
        self,
        query: list[float] | models.SparseVector,
        using: str,
        flt: models.Filter | None,
        limit: int,
        prefetch: int,
        hybrid: bool,
    ) -> models.QueryRequest:
        return models.QueryRequest(
            query=query,
            using=using,
            filter=flt,
            limit=max(prefetch, limit) if hybrid else limit,
            with_payload=True,
            with_vector=[self._dense],
        )

    def _hit(self, point: models.ScoredPoint, dense: list[float]) -> ChunkHit:
        vectors = point.vector if isinstance(point.vector, dict) else {}
        stored = vectors.get(self._dense)
        similarity = None
        if dense and isinstance(stored, list) and stored and isinstance(stored[0], float):
            similarity = _cosine(dense, stored)
        return hit_from_payload(point.payload, point.score, similarity)

    def count(self, where: SearchFilter | None = None) -> int:
        flt = server_filter(where or SearchFilter())
        return int(self._client.count(self._collection, count_filter=flt, exact=True).count)

    def optimize(self) -> None:
        """A server optimises its segments by itself."""

    def ping(self, timeout: float = PROBE_TIMEOUT) -> None:
        """Ask the server for a cheap answer within `timeout` seconds."""
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


def connect(settings: QdrantSettings) -> QdrantClient:
    """A client for the Qdrant server at QDRANT_URL."""
    if not settings.url:
        raise ConfigError("Set QDRANT_URL to the Qdrant server, e.g. http://localhost:6333.")
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return QdrantClient(
        url=settings.url,
        api_key=key,
        timeout=max(1, math.ceil(settings.timeout)),  # whole seconds; 0 would mean none
        check_compatibility=False,
    )


def create_payload_indexes(client: QdrantClient, collection: str) -> None:
    """Index the payload fields searches filter on (harmless again)."""
    for field in PAYLOAD_INDEXES:
        client.create_payload_index(collection, field, models.PayloadSchemaType.KEYWORD)


def drop_collection(settings: QdrantSettings) -> None:
    """Delete the collection on the server, whatever model built it (before a rebuild)."""
    client = connect(settings)
    try:
        with qdrant_errors():
            if client.collection_exists(settings.collection):
                client.delete_collection(settings.collection)
    finally:
        client.close()


def _match(field: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=field, match=models.MatchValue(value=value))


def server_filter(where: SearchFilter) -> models.Filter | None:
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
    if where.content_hash:
        must.append(_match("content_hash", where.content_hash))
    must_not: list[models.Condition] = []
    if where.exclude_paper_ids:
        must_not.append(
            models.FieldCondition(
                key="paper_id", match=models.MatchAny(any=list(where.exclude_paper_ids))
            )
        )
    return models.Filter(must=must, must_not=must_not) if must or must_not else None


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm if norm else 0.0


def point_struct(record: Any) -> models.PointStruct:
    """A qdrant-client point from an Edge record (copying the embedded index to a server)."""
    vectors: dict[str, Any] = {}
    for name, vector in (record.vector or {}).items():
        if hasattr(vector, "indices"):
            vectors[name] = models.SparseVector(
                indices=list(vector.indices), values=list(vector.values)
            )
        else:
            vectors[name] = list(vector)
    return models.PointStruct(id=str(record.id), vector=vectors, payload=record.payload)
