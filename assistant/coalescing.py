"""Concurrent query embeddings share model calls.

A model call costs about the same for one short query as for eight (the fixed cost of a
forward pass dominates), so when several searches arrive at once their queries are
embedded together. Nobody waits for a batch to fill: a caller that finds the model idle
embeds at once; callers that arrive meanwhile queue, and the first of them embeds the
whole queue as soon as the model is free. One searcher alone sees no change; eight at
once pay for about two model calls instead of eight.

>>> embedder = CoalescingEmbedder(SentenceTransformerEmbedder())
>>> embedder.embed(["fast attention kernels"])  # from any number of threads
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from assistant.embedding import Embedder, Role

MAX_TEXTS = 64  # texts a model call takes at most (the model's own batch size)


class _Request:
    def __init__(self, texts: list[str], role: Role) -> None:
        self.texts = texts
        self.role = role
        self.vectors: list[list[float]] = []
        self.error: BaseException | None = None
        self.done = False
        self.turn = threading.Event()  # set when done, or when it is this caller's turn to lead


class CoalescingEmbedder:
    """An `Embedder` whose concurrent calls are batched into shared model calls."""

    def __init__(self, inner: Embedder, max_texts: int = MAX_TEXTS) -> None:
        self.name = inner.name
        self.multilingual = inner.multilingual
        self._inner = inner
        self._max_texts = max_texts
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._busy = False

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed(self, texts: Sequence[str], role: Role = "passage") -> list[list[float]]:
        if not texts:
            return []
        mine = _Request(list(texts), role)
        with self._lock:
            self._queue.append(mine)
            lead, self._busy = not self._busy, True
        if not lead:
            mine.turn.wait()
        if not mine.done:  # the model is ours: embed what is queued, ours first
            self._embed_queued()
        if mine.error is not None:
            raise mine.error
        return mine.vectors

    def _embed_queued(self) -> None:
        with self._lock:
            batch = [self._queue.pop(0)]
            role, size = batch[0].role, len(batch[0].texts)
            for request in list(self._queue):  # the queued texts of the same role, in order
                if request.role == role and size + len(request.texts) <= self._max_texts:
                    size += len(request.texts)
                    batch.append(request)
                    self._queue.remove(request)
        try:
            texts = [text for request in batch for text in request.texts]
            vectors = self._inner.embed(texts, role=role)
            start = 0
            for request in batch:
                request.vectors = vectors[start : start + len(request.texts)]
                start += len(request.texts)
        except BaseException as exc:  # each caller gets the failure of its own call
            for request in batch:
                request.error = exc
        finally:
            with self._lock:
                for request in batch:
                    request.done = True
                    request.turn.set()
                if self._queue:
                    self._queue[0].turn.set()  # the next caller leads
                else:
                    self._busy = False
