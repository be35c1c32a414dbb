"""A brute-force `VectorIndex` in numpy, for benchmarks that compare retrieval designs.

It reproduces what the Qdrant index does for a query: the best `prefetch` passages by
cosine similarity of the dense vectors, the best `prefetch` by sparse dot product with
BM25's IDF applied to the query weights (`Modifier.IDF`, the formula Qdrant uses:
ln((N - df + 0.5) / (df + 0.5) + 1)), passages with no shared term left out, then the
two lists fused client side with `assistant.fusion.fuse`. Exact search, so its rankings
are those of the embedded engine, without its per-query overhead.

It also holds more than one dense vector per passage (`extra`: name -> vectors), to
measure named-vector designs before the index stores them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.fusion import Fusion, fuse, gated_sparse
from assistant.index import ChunkHit, DenseQuery, IndexedChunk, SearchFilter, SearchMode
from assistant.sparse import SparseVector


@dataclass
class NumpyIndex:
    """`VectorIndex` over numpy arrays (append-only except `delete_stale`)."""

    items: list[IndexedChunk] = field(default_factory=list)
    _dense: np.ndarray | None = None
    _postings: dict[int, list[tuple[int, float]]] | None = None

    def upsert(self, items: Sequence[IndexedChunk]) -> None:
        keys = {
            (i.chunk.paper_id, i.content_hash, i.chunk.ordinal): n for n, i in enumerate(self.items)
        }
        for item in items:
            key = (item.chunk.paper_id, item.content_hash, item.chunk.ordinal)
            if key in keys:
                self.items[keys[key]] = item
            else:
                keys[key] = len(self.items)
                self.items.append(item)
        self._dense = self._postings = None

    def delete_stale(self, paper_id: str, keep_hash: str | None) -> None:
        self.items = [
            i for i in self.items if i.chunk.paper_id != paper_id or i.content_hash == keep_hash
        ]
        self._dense = self._postings = None

    def count(self) -> int:
        return len(self.items)

    def close(self) -> None:
        pass

    def _build(self) -> None:
        if self._dense is None:
            self._dense = np.asarray([i.dense for i in self.items], dtype=np.float32)
            postings: dict[int, list[tuple[int, float]]] = defaultdict(list)
            for row, item in enumerate(self.items):
                for index, value in zip(item.sparse.indices, item.sparse.values, strict=True):
                    postings[index].append((row, value))
            self._postings = dict(postings)

    def _allowed(self, where: SearchFilter) -> np.ndarray:
        ok = np.ones(len(self.items), dtype=bool)
        for row, item in enumerate(self.items):
            if (
                (where.paper_ids and item.chunk.paper_id not in where.paper_ids)
                or (where.week and where.week.isoformat() not in item.weeks)
                or (where.categories and not set(where.categories) & set(item.categories))
            ):
                ok[row] = False
        return ok

    def dense_scores(self, vector: Sequence[float], name: str | None = None) -> np.ndarray:
        self._build()
        assert self._dense is not None
        matrix = self._dense if name is None else self._named(name)
        return matrix @ np.asarray(vector, dtype=np.float32)

    def _named(self, name: str) -> np.ndarray:
        """The vectors of a named dense vector other than the primary one."""
        return np.asarray([i.more_dense[name] for i in self.items], dtype=np.float32)

    def sparse_scores(self, sparse: SparseVector) -> np.ndarray:
        """Sparse dot products with IDF; -inf where no term is shared."""
        self._build()
        assert self._postings is not None
        scores = np.full(len(self.items), -np.inf, dtype=np.float64)
        total = len(self.items)
        for index, value in zip(sparse.indices, sparse.values, strict=True):
            posting = self._postings.get(index, [])
            if not posting:
                continue
            idf = math.log((total - len(posting) + 0.5) / (len(posting) + 0.5) + 1)
            for row, doc_value in posting:
                base = 0.0 if scores[row] == -np.inf else scores[row]
                scores[row] = base + value * idf * doc_value
        return scores

    def top(self, scores: np.ndarray, allowed: np.ndarray, k: int) -> list[tuple[int, float]]:
        masked = np.where(allowed, scores, -np.inf)
        order = np.argsort(-masked, kind="stable")[:k]
        return [(int(r), float(masked[r])) for r in order if masked[r] != -np.inf]

    def hit(self, row: int, score: float, dense: Sequence[float]) -> ChunkHit:
        item = self.items[row]
        similarity = float(np.dot(item.dense, dense)) if len(dense) else None
        return ChunkHit(item.chunk, item.title, item.url, score, similarity)

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
        allowed = self._allowed(where)
        hybrid = mode is SearchMode.HYBRID and bool(dense) and bool(sparse.indices)
        depth = prefetch if hybrid else limit
        lists: list[list[tuple[int, float]]] = []
        list_weights: list[float] = []
        if mode is not SearchMode.SPARSE and dense:
            lists.append(self.top(self.dense_scores(dense), allowed, depth))
            list_weights.append(weights[0])
            for extra in more_dense if hybrid else ():
                lists.append(self.top(self.dense_scores(extra.vector, extra.name), allowed, depth))
                list_weights.append(extra.weight)
        if mode is not SearchMode.DENSE and sparse.indices:
            lists.append(self.top(self.sparse_scores(sparse), allowed, depth))
            best = self.items[lists[-1][0][0]].sparse.indices if lists[-1] else []
            list_weights.append(gated_sparse(weights[1], sparse_gate, sparse.indices, best))
        if not lists:
            return []
        if len(lists) == 1:
            return [self.hit(r, s, dense) for r, s in lists[0][:limit]]
        fused = fuse(lists, list_weights, fusion)[:limit]
        return [self.hit(r, s, dense) for r, s in fused]
