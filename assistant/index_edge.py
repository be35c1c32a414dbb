"""`VectorIndex` on Qdrant Edge: Qdrant's own engine, embedded in this process.

Same data model and query model as a Qdrant server (named dense + sparse vectors with the
IDF modifier, keyword payload indexes, prefetch + fusion in the engine, filters), with
no server to run. Writes go through Edge's write-ahead log, so a process killed mid-write
loses at most the write in flight, never a half of one.

Threads: an `EdgeShard` serialises its own writes (the WAL behind a mutex) and lets reads
run beside them (segments behind a read-write lock); qdrant-edge-py 0.9 also holds the
GIL for each call. So searches need no lock of ours, and run while ingest writes. What
needs guarding is closing: `close()` takes the shard away, so it waits for calls in flight.

>>> schema = IndexSchema.single("all-MiniLM-L6-v2", 384)
>>> index = EdgeIndex.open(settings.index_path, schema, "paperbot serve")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import qdrant_edge as edge

from assistant.errors import ConfigError, IndexUnavailableError
from assistant.fusion import Fusion, fuse, gated_sparse
from assistant.index import (
    PAYLOAD_INDEXES,
    PROBE_TIMEOUT,
    ChunkHit,
    DenseQuery,
    IndexedChunk,
    IndexSchema,
    SearchFilter,
    SearchMode,
    by_paper,
    hit_from_payload,
    payload,
    point_id,
)
from assistant.index_folder import IndexFolder, damaged, in_use_error, legacy_error, legacy_index
from assistant.sparse import SparseVector

log = logging.getLogger(__name__)

T = TypeVar("T")

WRITE_BATCH = 1024  # points an update operation (one WAL record each)
RRF_K = 2  # as assistant.fusion


class EdgeIndex:
    """The embedded index. Build it with `open` (or `create_empty` for a rebuild)."""

    def __init__(self, folder: IndexFolder, shard: edge.EdgeShard, schema: IndexSchema) -> None:
        self._folder = folder
        self._shard: edge.EdgeShard | None = shard
        self._schema = schema
        self._dense = schema.primary.name
        self._sparse = schema.sparse
        self._calls = 0  # calls in flight; close() waits for them
        # Fuse in the engine (one query with two prefetches) instead of here. Edge's DBSF
        # takes no weights, so the per-query dense weight is lost (Japanese questions MRR@10
        # 0.881 instead of 0.941 on bench/data); kept for the benchmarks that compare the
        # two (bench/run.py, bench/scale.py; docs/benchmarks.md).
        self.fusion_in_engine = False
        self._idle = threading.Condition()

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, schema: IndexSchema, holder: str) -> EdgeIndex:
        """Open the index in folder `path` (creating it if there is none), for the process
        `holder`. Raises IndexUnavailableError naming the process that has it open,
        IndexDamagedError if it cannot be read or was written by qdrant-client's local
        mode, ConfigError if another embedding model built it."""
        folder = IndexFolder(path)
        legacy = legacy_index(path.parent)
        if legacy is not None and not folder.has_shard():
            raise legacy_error(legacy)
        folder.lock(holder)
        try:
            return cls(folder, _load_or_create(folder, schema), schema)
        except BaseException:
            folder.unlock()
            raise

    @classmethod
    def open_as_recorded(cls, path: Path, holder: str) -> EdgeIndex:
        """Open an existing index with the models its record names, whatever is configured
        (to copy it elsewhere)."""
        folder = IndexFolder(path)
        folder.lock(holder)
        try:
            record = folder.read_record()
            if record is None or not folder.has_shard():
                raise damaged(path, "it has no model record or no engine files")
            schema = IndexSchema.from_record(record)
            return cls(folder, _load_or_create(folder, schema), schema)
        except BaseException:
            folder.unlock()
            raise

    @classmethod
    def create_empty(cls, path: Path, schema: IndexSchema, holder: str) -> EdgeIndex:
        """A new, empty index in folder `path`, whatever was there before: damaged files,
        a deleted shard, another model's index (for `paperbot index rebuild`)."""
        folder = IndexFolder(path)
        folder.lock(holder)
        try:
            folder.wipe()
            return cls(folder, _create(folder, schema), schema)
        except BaseException:
            folder.unlock()
            raise

    @property
    def path(self) -> Path:
        return self._folder.path

    # -- writing ------------------------------------------------------------------------

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        """Write passages, a paper's passages always in one operation (one WAL record),
        so a crash never leaves a paper half written."""
        for batch in by_paper(items, WRITE_BATCH):
            points = [
                edge.Point(
                    point_id(i.chunk.paper_id, i.content_hash, i.chunk.ordinal),
                    {
                        self._dense: i.dense,
                        **i.more_dense,
                        self._sparse: edge.SparseVector(i.sparse.indices, i.sparse.values),
                    },
                    payload(i),
                )
                for i in batch
            ]
            self._write("write passages", edge.UpdateOperation.upsert_points(points))

    def delete_stale(self, paper_id: str, keep_hash: str | None) -> None:
        must_not: list[Any] = [] if keep_hash is None else [_match("content_hash", keep_hash)]
        selector = edge.Filter(must=[_match("paper_id", paper_id)], must_not=must_not)
        self._write("delete passages", edge.UpdateOperation.delete_points_by_filter(selector))

    def _write(self, action: str, operation: edge.UpdateOperation) -> None:
        self._call(action, lambda shard: shard.update(operation))

    def optimize(self) -> None:
        """Merge segments and build the search graphs (after a bulk write; it blocks for
        about a minute at 100k passages)."""
        self._call("optimize", lambda shard: shard.optimize())

    # -- reading ------------------------------------------------------------------------

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
        flt = _filter(where)
        use_dense = mode is not SearchMode.SPARSE and bool(dense)
        use_sparse = mode is not SearchMode.DENSE and bool(sparse.indices)
        if use_dense and use_sparse:
            lists = [DenseQuery(self._dense, dense, weights[0]), *more_dense]
            with self._using("search") as shard:
                return self._hybrid(
                    shard,
                    lists,
                    sparse,
                    flt,
                    limit,
                    max(prefetch, limit),
                    weights[1],
                    fusion,
                    sparse_gate,
                )
        if not (use_dense or use_sparse):
            return []
        vector: Any = dense if use_dense else edge.SparseVector(sparse.indices, sparse.values)
        request = edge.QueryRequest(
            limit=limit,
            query=edge.Query.Nearest(vector, using=self._dense if use_dense else self._sparse),
            filter=flt,
            with_payload=True,
            with_vector=[self._dense] if dense and not use_dense else False,
        )
        points = self._call("search", lambda shard: shard.query(request))
        if use_dense:  # the score is the cosine similarity
            return [hit_from_payload(p.payload, p.score, p.score) for p in points]
        return self._hits(points, dense)

    def _hybrid(
        self,
        shard: edge.EdgeShard,
        dense: Sequence[DenseQuery],
        sparse: SparseVector,
        flt: edge.Filter | None,
        limit: int,
        prefetch: int,
        sparse_weight: float,
        fusion: Fusion,
        sparse_gate: float = 0.0,
    ) -> list[ChunkHit]:
        """Every candidate list from one planned batch (each dense vector's, then the
        sparse one), fused here with per-query weights (Edge's DBSF takes no weights; see
        docs/benchmarks.md for the comparison), then the payloads of the winners only."""
        sparse_query = edge.SparseVector(sparse.indices, sparse.values)
        nearest = [(q.vector, q.name) for q in dense] + [(sparse_query, self._sparse)]
        if self.fusion_in_engine:
            weights = [q.weight for q in dense] + [sparse_weight]
            return self._engine_fused(
                shard, nearest, dense[0].vector, flt, limit, prefetch, weights, fusion
            )
        searches = edge.QueryBatchRequest(
            [
                edge.QueryRequest(
                    limit=prefetch, query=edge.Query.Nearest(vector, using=using), filter=flt
                )
                for vector, using in nearest
            ]
        )
        lists = shard.query_batch(searches)
        ranked = [[(str(p.id), p.score) for p in points] for points in lists]
        if sparse_gate > 0 and lists[-1]:
            best = shard.retrieve([lists[-1][0].id], with_payload=False, with_vector=[self._sparse])
            stored: Any = best[0].vector if best else {}
            terms = getattr(stored.get(self._sparse), "indices", [])
            sparse_weight = gated_sparse(sparse_weight, sparse_gate, sparse.indices, terms)
        weights = [q.weight for q in dense] + [sparse_weight]
        winners = fuse(ranked, weights, fusion)[:limit]
        if not winners:
            return []
        ids: list[Any] = [key for key, _ in winners]
        records = shard.retrieve(ids, with_payload=True, with_vector=[self._dense])
        by_id = {str(r.id): r for r in records}
        found = [(by_id[key], score) for key, score in winners if key in by_id]
        similarities = _cosines([r for r, _ in found], self._dense, dense[0].vector)
        return [
            hit_from_payload(record.payload, score, similarity)
            for (record, score), similarity in zip(found, similarities, strict=True)
        ]

    def _engine_fused(
        self,
        shard: edge.EdgeShard,
        nearest: Sequence[tuple[Any, str]],
        dense: list[float],
        flt: edge.Filter | None,
        limit: int,
        prefetch: int,
        weights: Sequence[float],
        fusion: Fusion,
    ) -> list[ChunkHit]:
        """Prefetch and fusion in the engine: DBSF unweighted, RRF weighted."""
        method: Any = (
            edge.Fusion.Dbsf()
            if fusion is Fusion.DBSF
            else edge.Fusion.Rrf(k=RRF_K, weights=list(weights))
        )
        request = edge.QueryRequest(
            limit=limit,
            prefetches=[
                edge.Prefetch(
                    limit=prefetch, query=edge.Query.Nearest(vector, using=using), filter=flt
                )
                for vector, using in nearest
            ],
            query=method,
            with_payload=True,
            with_vector=[self._dense],
        )
        return self._hits(shard.query(request), dense)

    def _hits(self, points: Sequence[Any], dense: list[float]) -> list[ChunkHit]:
        similarities = _cosines(points, self._dense, dense) if dense else [None] * len(points)
        return [
            hit_from_payload(p.payload, p.score, s)
            for p, s in zip(points, similarities, strict=True)
        ]

    def count(self, where: SearchFilter | None = None) -> int:
        request = edge.CountRequest(exact=True, filter=_filter(where or SearchFilter()))
        return int(self._call("count passages", lambda shard: shard.count(request)))

    def records(self, batch: int = 256) -> Iterator[list[edge.Record]]:
        """Every point with its payload and vectors, `batch` at a time (for copying the
        index to a server)."""
        offset: Any = None
        while True:
            records, offset = self._scroll(offset, batch)
            if records:
                yield records
            if offset is None:
                return

    def _scroll(self, offset: Any, limit: int) -> tuple[list[edge.Record], Any]:
        request = edge.ScrollRequest(
            offset=offset, limit=limit, with_payload=True, with_vector=True
        )
        return self._call("read passages", lambda shard: shard.scroll(request))

    def exact_top(self, vector: Any, using: str, limit: int) -> list[tuple[str, float]]:
        """(id, score) of the exact nearest points to a vector (for checking a copy)."""
        request = edge.QueryRequest(
            limit=limit,
            query=edge.Query.Nearest(vector, using=using),
            params=edge.SearchParams(exact=True),
        )
        return [(str(p.id), p.score) for p in self._call("search", lambda s: s.query(request))]

    @property
    def schema(self) -> IndexSchema:
        return self._schema

    def record(self) -> dict[str, Any]:
        """The model record written with the index."""
        return self._folder.read_record() or {}

    def ping(self, timeout: float = PROBE_TIMEOUT) -> None:
        """The engine is in this process: it answers if it is open."""
        self._call("answer", lambda shard: shard.info())

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Flush and release the index (and its folder), once calls in flight are done."""
        with self._idle:
            shard, self._shard = self._shard, None
            self._idle.wait_for(lambda: self._calls == 0, timeout=60)
        if shard is not None:
            try:
                with _edge_errors(self.path, "flush"):
                    shard.close()  # flushes the WAL and the segments
            finally:
                self._folder.unlock()

    def _call(self, action: str, operation: Callable[[edge.EdgeShard], T]) -> T:
        with self._using(action) as shard:
            return operation(shard)

    @contextmanager
    def _using(self, action: str) -> Iterator[edge.EdgeShard]:
        """The shard, for the calls of one operation (close() waits until it is done)."""
        with self._idle:
            shard = self._shard
            if shard is None:
                raise IndexUnavailableError("The paper index was closed; try again.")
            self._calls += 1
        try:
            with _edge_errors(self.path, action):
                yield shard
        finally:
            with self._idle:
                self._calls -= 1
                self._idle.notify_all()


def _load_or_create(folder: IndexFolder, schema: IndexSchema) -> edge.EdgeShard:
    """The shard in `folder`, checked against `schema`; a new one if there is none."""
    record = folder.read_record()
    if not folder.has_shard():
        return _create(folder, schema)
    with _edge_errors(folder.path, "load", on_load=True):
        shard = edge.EdgeShard.load(str(folder.shard_path))
    try:
        if record is None:  # a create that stopped before writing the record
            if shard.count(edge.CountRequest(exact=True)) > 0:
                raise damaged(folder.path, "its model record index.json is missing")
            folder.write_record(schema.record())
            return shard
        problem = schema.mismatch(record)
        if problem is not None:
            raise ConfigError(problem)
        return shard
    except BaseException:
        shard.close()
        raise


def _create(folder: IndexFolder, schema: IndexSchema) -> edge.EdgeShard:
    config = edge.EdgeConfig(
        vectors={
            v.name: edge.EdgeVectorParams(size=v.size(), distance=edge.Distance.Cosine)
            for v in schema.dense
        },
        sparse_vectors={schema.sparse: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
    )
    with _edge_errors(folder.path, "create"):
        shard = edge.EdgeShard.create(str(folder.shard_path), config)
        for field in PAYLOAD_INDEXES:
            shard.update(
                edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword)
            )
    folder.write_record(schema.record())
    return shard


@contextmanager
def _edge_errors(path: Path, action: str, on_load: bool = False) -> Iterator[None]:
    """Edge's errors (plain `Exception`s, and panics) as messages users can act on."""
    try:
        yield
    except BaseException as exc:
        if type(exc) is not Exception and type(exc).__name__ != "PanicException":
            raise
        text = str(exc)
        if "WouldBlock" in text:  # the write-ahead log is locked by another process
            raise in_use_error(path, "another process") from exc
        if on_load:
            raise damaged(path, f"it cannot be loaded: {text}") from exc
        log.error("the embedded index at %s failed to %s: %s", path, action, text)
        raise IndexUnavailableError(
            f"The embedded index at {path} failed to {action} ({text}). If the disk is full "
            "or read-only, fix that and retry; if the index is damaged, `paperbot index "
            "rebuild` rebuilds it from the stored papers."
        ) from exc


def _match(field: str, value: str) -> edge.FieldCondition:
    return edge.FieldCondition(key=field, match=edge.MatchValue(value))


def _filter(where: SearchFilter) -> edge.Filter | None:
    must: list[Any] = []
    if where.paper_ids:
        must.append(edge.FieldCondition(key="paper_id", match=edge.MatchAny(list(where.paper_ids))))
    if where.week:
        must.append(_match("weeks", where.week.isoformat()))
    if where.categories:
        must.append(
            edge.FieldCondition(key="categories", match=edge.MatchAny(list(where.categories)))
        )
    if where.content_hash:
        must.append(_match("content_hash", where.content_hash))
    must_not: list[Any] = []
    if where.exclude_paper_ids:
        must_not.append(
            edge.FieldCondition(key="paper_id", match=edge.MatchAny(list(where.exclude_paper_ids)))
        )
    return edge.Filter(must=must, must_not=must_not) if must or must_not else None


def _cosines(points: Sequence[Any], using: str, query: list[float]) -> list[float | None]:
    """Cosine similarity of `query` and each point's stored vector (Edge stores cosine
    vectors normalised; the query is unit length from the embedder, but is normalised
    here too)."""
    if not points:
        return []
    vectors = [p.vector.get(using) if isinstance(p.vector, dict) else None for p in points]
    q = np.asarray(query, dtype=np.float32)
    norm = float(np.linalg.norm(q))
    if norm == 0:
        return [None] * len(points)
    q /= norm
    out: list[float | None] = []
    for vector in vectors:
        out.append(float(np.dot(np.asarray(vector, dtype=np.float32), q)) if vector else None)
    return out
