"""Copy the embedded index to a Qdrant server (`paperbot index migrate --to-url URL`).

Points keep their IDs, both named vectors and their payloads, and the collection keeps
the metadata naming the embedding model, so the SQLite state stays valid and nothing is
embedded again. Running it again upserts the same points (it is idempotent), so an
interrupted copy is finished by running the same command. At the end the copy is checked:
the same number of points, and the same top hits for a few sample queries.

The copy is a scroll of the Edge shard and batched upserts to the server (Edge can restore
a server's shard snapshot, but not write one).

>>> report = migrate_index(edge_index, server_client, "paperbot_chunks", "http://qdrant:6333")
>>> report.verified
True
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import qdrant_edge as edge
from qdrant_client import QdrantClient, models

from assistant.errors import ConfigError, IndexUnavailableError
from assistant.index_edge import EdgeIndex
from assistant.index_server import create_payload_indexes, point_struct, qdrant_errors
from assistant.ingest import NullProgress, Progress

log = logging.getLogger(__name__)

SAMPLE_QUERIES = 3  # points whose own vectors are used as the check's queries
TOP_HITS = 5
EXACT = models.SearchParams(exact=True)  # the check must not depend on an HNSW graph


@dataclass
class MigrationReport:
    """What a migration did, and whether the copy checked out."""

    collection: str
    destination: str
    created: bool  # the destination collection was created (not there before)
    copied: int
    source_points: int
    destination_points: int
    sample_queries: int
    matching_queries: int
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return (
            self.destination_points == self.source_points
            and self.matching_queries == self.sample_queries
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verified": self.verified}


def migrate_index(
    source: EdgeIndex,
    destination: QdrantClient,
    collection: str,
    destination_name: str,
    batch: int = 256,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy the embedded index `source` to `collection` on `destination` (named
    `destination_name` in messages), `batch` points a request, then check the copy."""
    started = time.perf_counter()
    try:
        with qdrant_errors():
            created = _prepare_destination(destination, collection, destination_name, source)
            copied, samples = _copy(source, destination, collection, batch, progress)
            source_points = source.count()
            destination_points = destination.count(collection, exact=True).count
            matching = sum(_same_top_hits(source, destination, collection, p) for p in samples)
    except IndexUnavailableError as exc:
        raise IndexUnavailableError(
            f"Copying to the Qdrant server at {destination_name} stopped: {exc} Run the same "
            "command again to finish: points already copied are simply written again."
        ) from exc
    return MigrationReport(
        collection,
        destination_name,
        created,
        copied,
        source_points,
        destination_points,
        len(samples),
        matching,
        time.perf_counter() - started,
    )


def _prepare_destination(
    destination: QdrantClient, collection: str, name: str, source: EdgeIndex
) -> bool:
    """Create the collection on the server (True), or check the one there matches."""
    metadata = source.record()
    created = False
    if destination.collection_exists(collection):
        there = destination.get_collection(collection).config
        theirs = there.metadata or {}
        mismatched = [
            key
            for key in ("embedding_model", "sparse", "dimension", "dense_vectors")
            if theirs.get(key) != metadata.get(key)
        ]
        if mismatched:
            raise ConfigError(
                f"The collection {collection!r} on {name} was built with embedding model "
                f"{theirs.get('embedding_model')!r} ({theirs.get('dimension')} dimensions), "
                f"the embedded index with {metadata.get('embedding_model')!r} "
                f"({metadata.get('dimension')} dimensions): they cannot be merged. Set "
                "QDRANT_COLLECTION to another name, or delete that collection on the server."
            )
    else:
        schema = source.schema
        destination.create_collection(
            collection,
            vectors_config={
                v.name: models.VectorParams(size=v.size(), distance=models.Distance.COSINE)
                for v in schema.dense
            },
            sparse_vectors_config={
                schema.sparse: models.SparseVectorParams(modifier=models.Modifier.IDF)
            },
            metadata=metadata,
        )
        created = True
    create_payload_indexes(destination, collection)  # again, in case a run stopped there
    return created


def _copy(
    source: EdgeIndex,
    destination: QdrantClient,
    collection: str,
    batch: int,
    progress: Progress | None,
) -> tuple[int, list[models.PointStruct]]:
    """Upsert every point, `batch` at a time; return the count and a few sample points."""
    progress = progress or NullProgress()
    total = source.count()
    progress.begin(f"copying {collection}", total)
    wanted = {0, total // 2, total - 1} if total else set()
    samples: list[models.PointStruct] = []
    copied = 0
    for records in source.records(batch):
        points = [point_struct(r) for r in records]
        destination.upsert(collection, points=points, wait=True)
        samples += [p for i, p in enumerate(points, start=copied) if i in wanted]
        copied += len(points)
        progress.advance(len(points))
    return copied, samples[:SAMPLE_QUERIES]


def _same_top_hits(
    source: EdgeIndex, destination: QdrantClient, collection: str, point: models.PointStruct
) -> bool:
    """Whether a point's own dense and sparse vectors find the same top hits on both sides
    (exact search on both, so the check does not depend on either's HNSW graph)."""
    vectors = point.vector if isinstance(point.vector, dict) else {}
    for using, query in vectors.items():
        here = source.exact_top(_edge_vector(query), using, TOP_HITS)
        there = [
            (str(p.id), p.score)
            for p in destination.query_points(
                collection, query=query, using=using, limit=TOP_HITS, search_params=EXACT
            ).points
        ]
        if _ranking(here) != _ranking(there):
            found = [[(i, round(s, 4)) for i, s in side] for side in (here, there)]
            log.warning("a sample %s query found other top hits: %s here, %s there", using, *found)
            return False
    return True


def _edge_vector(query: Any) -> Any:
    if isinstance(query, models.SparseVector):
        return edge.SparseVector(list(query.indices), list(query.values))
    return query


def _ranking(hits: list[tuple[str, float]]) -> tuple[list[float], set[str]]:
    """The scores, and the hits above the last score (ties there may be cut either way)."""
    scores = [round(score, 4) for _, score in hits]
    return scores, {i for (i, _), score in zip(hits, scores, strict=True) if score > scores[-1]}
