"""Copy the embedded index to a Qdrant server (`paperbot index migrate --to-url URL`).

Points keep their IDs, both named vectors and their payloads, and the collection keeps
the metadata naming the embedding model, so the SQLite state stays valid and nothing is
embedded again. Running it again upserts the same points (it is idempotent), so an
interrupted copy is finished by running the same command. At the end the copy is checked:
the same number of points, and the same top hits for a few sample queries.

>>> report = migrate_index(embedded, server, "paperbot_chunks", "http://qdrant:6333")
>>> report.verified
True
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from qdrant_client import QdrantClient, models

from assistant.errors import ConfigError, IndexUnavailableError, NotFoundError
from assistant.index import DENSE, SPARSE, create_payload_indexes, qdrant_errors
from assistant.ingest import NullProgress, Progress

log = logging.getLogger(__name__)

SAMPLE_QUERIES = 3  # points whose own vectors are used as the check's queries
TOP_HITS = 5
EXACT = models.SearchParams(exact=True)  # the embedded engine is always exact


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
    source: QdrantClient,
    destination: QdrantClient,
    collection: str,
    destination_name: str,
    batch: int = 256,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy `collection` from `source` to `destination` (named `destination_name` in
    messages), `batch` points a request, then check the copy."""
    started = time.perf_counter()
    try:
        with qdrant_errors():
            metadata, vectors, sparse = _source_config(source, collection)
            created = _prepare_destination(
                destination, collection, destination_name, metadata, vectors, sparse
            )
            copied, samples = _copy(source, destination, collection, batch, progress)
            source_points = source.count(collection, exact=True).count
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


def _source_config(source: QdrantClient, collection: str) -> tuple[dict[str, Any], Any, Any]:
    """The embedded collection's metadata, dense and sparse vector configuration."""
    if not source.collection_exists(collection):
        raise NotFoundError(
            f"The embedded index has no collection {collection!r}: nothing to migrate. "
            "Ingest papers first, or check QDRANT_COLLECTION and PAPERBOT_DATA_DIR."
        )
    config = source.get_collection(collection).config
    return dict(config.metadata or {}), config.params.vectors, config.params.sparse_vectors


def _prepare_destination(
    destination: QdrantClient,
    collection: str,
    name: str,
    metadata: dict[str, Any],
    vectors: Any,
    sparse: Any,
) -> bool:
    """Create the collection on the server (True), or check the one there matches."""
    created = False
    if destination.collection_exists(collection):
        there = destination.get_collection(collection).config
        theirs = there.metadata or {}
        mismatched = [
            key
            for key in ("embedding_model", "sparse", "dimension")
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
        destination.create_collection(
            collection, vectors_config=vectors, sparse_vectors_config=sparse, metadata=metadata
        )
        created = True
    create_payload_indexes(destination, collection)  # again, in case a run stopped there
    return created


def _copy(
    source: QdrantClient,
    destination: QdrantClient,
    collection: str,
    batch: int,
    progress: Progress | None,
) -> tuple[int, list[models.Record]]:
    """Upsert every point, `batch` at a time; return the count and a few sample points."""
    progress = progress or NullProgress()
    total = source.count(collection, exact=True).count
    progress.begin(f"copying {collection}", total)
    wanted = {0, total // 2, total - 1} if total else set()
    samples: list[models.Record] = []
    copied = 0
    offset: Any = None
    while True:
        records, offset = source.scroll(
            collection, limit=batch, offset=offset, with_payload=True, with_vectors=True
        )
        if records:
            points = [
                models.PointStruct(id=r.id, vector=r.vector, payload=r.payload) for r in records
            ]
            destination.upsert(collection, points=points, wait=True)
        samples += [r for i, r in enumerate(records, start=copied) if i in wanted]
        copied += len(records)
        progress.advance(len(records))
        if offset is None:
            return copied, samples[:SAMPLE_QUERIES]


def _same_top_hits(
    source: QdrantClient, destination: QdrantClient, collection: str, point: models.Record
) -> bool:
    """Whether a point's own dense and sparse vectors find the same top hits on both sides
    (exact search on the server, so the check does not depend on its HNSW graph)."""
    vectors = point.vector if isinstance(point.vector, dict) else {}
    for using in (DENSE, SPARSE):
        query = vectors.get(using)
        if query is None:
            continue
        hits = [
            client.query_points(
                collection,
                query=query,
                using=using,
                limit=TOP_HITS,
                search_params=exact,
            ).points
            for client, exact in ((source, None), (destination, EXACT))
        ]
        if _ranking(hits[0]) != _ranking(hits[1]):
            found = [[(str(p.id), round(p.score, 4)) for p in side] for side in hits]
            log.warning("a sample %s query found other top hits: %s here, %s there", using, *found)
            return False
    return True


def _ranking(hits: list[models.ScoredPoint]) -> tuple[list[float], set[str]]:
    """The scores, and the hits above the last score (ties there may be cut either way)."""
    scores = [round(p.score, 4) for p in hits]
    return scores, {str(p.id) for p, score in zip(hits, scores, strict=True) if score > scores[-1]}
