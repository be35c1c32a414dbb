"""The index as a long-running process needs it: opened on first use and checked against
the stored papers, opened again once a Qdrant server is back after an outage (or once a
damaged embedded index was rebuilt), with every failure turned into a message users can
be shown (`paperbot serve` keeps running meanwhile)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from assistant.errors import ConfigError, IndexDamagedError, IndexUnavailableError
from assistant.fusion import Fusion
from assistant.index import (
    PROBE_TIMEOUT,
    ChunkHit,
    DenseQuery,
    IndexedChunk,
    OpenIndex,
    SearchFilter,
    SearchMode,
)
from assistant.index_server import qdrant_errors
from assistant.sparse import SparseVector

log = logging.getLogger(__name__)

T = TypeVar("T")

Verify = Callable[[OpenIndex], None]
"""Raises IndexDamagedError when an opened index is not what the stored papers say."""


class ReconnectingIndex:
    """`VectorIndex` that opens on first use, and again after a failure.

    Every failure to reach the index becomes an `IndexUnavailableError`, a message users
    can be shown; the details go to the log once per outage. For `retry_seconds` after a
    failure (or a `ConfigError` such as a refused API key), calls fail at once instead of
    trying again; `ready()` always tries, so a readiness probe is what notices first that
    the index is back.

    `verify` checks a newly opened index (and every readiness probe) against the stored
    papers. An index that fails it, or turns out damaged, is closed at once: the embedded
    one's folder is free for `paperbot index rebuild`, and is opened again afterwards.

    Nothing here serialises calls: the index engines take concurrent calls themselves.

    >>> index = ReconnectingIndex(lambda: open_index(...), "http://qdrant:6333")
    >>> index.ready()
    (False, 'The paper index is unavailable right now (Qdrant server unreachable); ...')
    """

    def __init__(
        self,
        opener: Callable[[], OpenIndex],
        where: str,
        retry_seconds: float = 2.0,
        probe_timeout: float = PROBE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        verify: Verify | None = None,
    ) -> None:
        self._opener = opener
        self._where = where
        self._retry_seconds = retry_seconds
        self._probe_timeout = probe_timeout
        self._clock = clock
        self._verify = verify
        self._index: OpenIndex | None = None
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
        sparse_gate: float = 0.0,
        more_dense: Sequence[DenseQuery] = (),
    ) -> list[ChunkHit]:
        return self._call(
            lambda index: index.query(
                dense,
                sparse,
                where,
                limit,
                mode,
                prefetch,
                weights,
                fusion,
                sparse_gate,
                more_dense,
            )
        )

    def count(self, where: SearchFilter | None = None) -> int:
        return self._call(lambda index: index.count(where))

    def optimize(self) -> None:
        self._call(lambda index: index.optimize())

    def opened(self) -> OpenIndex:
        """The index itself, opened (and verified) if it was not yet."""
        return self._call(lambda index: index)

    def ready(self) -> tuple[bool, str]:
        """(True, "ok") when the index answers within `probe_timeout` seconds and passes
        `verify`, else (False, why); never raises."""

        def probe(index: OpenIndex) -> None:
            index.ping(self._probe_timeout)
            if self._verify is not None:
                self._verify(index)

        try:
            self._call(probe, probing=True)
        except Exception as exc:  # a readiness check reports, it does not fail
            if not isinstance(exc, ConfigError | IndexUnavailableError):
                log.exception("checking the vector index failed")
            return False, str(exc) or type(exc).__name__
        return True, "ok"

    def close(self) -> None:
        """Close the index; a later call opens it again (at once: failures are forgotten)."""
        with self._opening:
            index, self._index = self._index, None
            self._failure = None
        if index is not None:
            index.close()

    def _call(self, operation: Callable[[OpenIndex], T], probing: bool = False) -> T:
        failure = self._failure
        if failure is not None and not probing and self._clock() < self._retry_at:
            raise type(failure)(str(failure))
        index = self._index or self._open()
        try:
            result = self._guarded(lambda: operation(index))
        except IndexDamagedError:
            self._discard(index)
            raise
        if self._failure is not None:
            self._failure = None
            log.info("the vector index at %s answers again", self._where)
        return result

    def _open(self) -> OpenIndex:
        with self._opening:
            if self._index is None:
                self._index = self._guarded(self._open_verified)
            return self._index

    def _open_verified(self) -> OpenIndex:
        index = self._opener()
        if self._verify is not None:
            try:
                self._verify(index)
            except BaseException:
                index.close()
                raise
        return index

    def _discard(self, index: OpenIndex) -> None:
        """Close an index found damaged (its folder is then free for a rebuild)."""
        with self._opening:
            if self._index is not index:
                return
            self._index = None
        try:
            index.close()
        except Exception:  # closing a damaged index may fail too; the failure is reported
            log.warning("closing the damaged index at %s failed", self._where, exc_info=True)

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            with qdrant_errors():
                return call()
        except (IndexUnavailableError, ConfigError) as exc:  # a wrong model or key, too
            if self._failure is None or str(self._failure) != str(exc):
                log.warning(
                    "the vector index at %s is unavailable: %s", self._where, exc.__cause__ or exc
                )
            self._failure = exc
            self._retry_at = self._clock() + self._retry_seconds
            raise
