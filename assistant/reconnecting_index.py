"""The index as a long-running process needs it: connected on first use, and again once
Qdrant is back after an outage, with every failure to reach it turned into a message users
can be shown (`paperbot serve` keeps running while Qdrant is down)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from assistant.errors import ConfigError, IndexUnavailableError
from assistant.fusion import Fusion
from assistant.index import (
    PROBE_TIMEOUT,
    ChunkHit,
    IndexedChunk,
    QdrantIndex,
    SearchFilter,
    SearchMode,
    qdrant_errors,
)
from assistant.sparse import SparseVector

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReconnectingIndex:
    """`VectorIndex` that connects on first use, and again once Qdrant is back.

    Every failure to reach Qdrant becomes an `IndexUnavailableError`, a message users can
    be shown; the details go to the log once per outage. For `retry_seconds` after a
    failure (or a `ConfigError` such as a refused API key), calls fail at once instead of
    asking Qdrant again; `ready()` always asks, so a readiness probe is what notices first
    that Qdrant is back.

    >>> index = ReconnectingIndex(lambda: QdrantIndex.open(...), "http://qdrant:6333")
    >>> index.ready()
    (False, 'The paper index is unavailable right now (Qdrant server unreachable); ...')
    """

    def __init__(
        self,
        opener: Callable[[], QdrantIndex],
        where: str,
        retry_seconds: float = 2.0,
        probe_timeout: float = PROBE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._opener = opener
        self._where = where
        self._retry_seconds = retry_seconds
        self._probe_timeout = probe_timeout
        self._clock = clock
        self._index: QdrantIndex | None = None
        self._opening = threading.Lock()
        self._failure: IndexUnavailableError | ConfigError | None = None
        self._retry_at = 0.0

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        self._call(lambda index: index.upsert(items))

    def delete_stale(self, paper_id: str, keep_hash: str | None) -> None:
        self._call(lambda index: index.delete_stale(paper_id, keep_hash))

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
        return self._call(
            lambda index: index.query(dense, sparse, where, limit, mode, prefetch, weights, fusion)
        )

    def count(self) -> int:
        return self._call(lambda index: index.count())

    def ready(self) -> tuple[bool, str]:
        """(True, "ok") when the index answers within `probe_timeout` seconds (once it is
        open), else (False, why); never raises."""
        try:
            self._call(lambda index: index.ping(self._probe_timeout), probing=True)
        except Exception as exc:  # a readiness check reports, it does not fail
            if not isinstance(exc, ConfigError | IndexUnavailableError):
                log.exception("checking the vector index failed")
            return False, str(exc) or type(exc).__name__
        return True, "ok"

    def close(self) -> None:
        with self._opening:
            index, self._index = self._index, None
        if index is not None:
            index.close()

    def _call(self, operation: Callable[[QdrantIndex], T], probing: bool = False) -> T:
        failure = self._failure
        if failure is not None and not probing and self._clock() < self._retry_at:
            raise type(failure)(str(failure))
        index = self._index or self._open()
        result = self._guarded(lambda: operation(index))
        if self._failure is not None:
            self._failure = None
            log.info("the vector index at %s answers again", self._where)
        return result

    def _open(self) -> QdrantIndex:
        with self._opening:
            if self._index is None:
                self._index = self._guarded(self._opener)
            return self._index

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            with qdrant_errors():
                return call()
        except (IndexUnavailableError, ConfigError) as exc:  # a wrong model or key, too
            if self._failure is None:
                log.warning(
                    "the vector index at %s is unavailable: %s", self._where, exc.__cause__ or exc
                )
            self._failure = exc
            self._retry_at = self._clock() + self._retry_seconds
            raise
