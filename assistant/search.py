"""Paper search: hybrid retrieval of passages, one result per paper.

>>> searcher.search("fast exact attention on H100", k=5)
[SearchHit(paper_id='2407.08608', ...)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.embedding import Embedder
from assistant.errors import InvalidInputError
from assistant.fusion import Fusion, dense_weight
from assistant.index import ChunkHit, SearchFilter, SearchMode, VectorIndex
from assistant.models import SearchHit
from assistant.settings import SearchSettings
from assistant.sparse import query_vector, tokenize
from assistant.textclean import visible_text

SNIPPET_CHARS = 280


def validate_query(query: str, max_chars: int) -> str:
    """The query's visible text (no control, zero-width or escape characters), or
    InvalidInputError if that is empty or too long."""
    text = visible_text(query)
    if not text:
        raise InvalidInputError("The query is empty: say what to look for, e.g. `search LoRA`.")
    if len(text) > max_chars:
        raise InvalidInputError(
            f"The query is {len(text):,} characters long; the limit is {max_chars:,}. "
            "Shorten it to the words that matter."
        )
    return text


class Searcher:
    """Finds papers for a query with the hybrid index."""

    def __init__(self, embedder: Embedder, index: VectorIndex, settings: SearchSettings) -> None:
        self._embedder = embedder
        self._index = index
        self._settings = settings

    def passages(
        self,
        query: str,
        limit: int,
        where: SearchFilter | None = None,
        mode: SearchMode = SearchMode.HYBRID,
        fusion: Fusion | None = None,
    ) -> list[ChunkHit]:
        """The best passages for a query (several may come from the same paper)."""
        text = validate_query(query, self._settings.max_query_chars)
        dense = self._embedder.embed([text])[0] if mode is not SearchMode.SPARSE else []
        return self._index.query(
            dense,
            query_vector(text),
            where or SearchFilter(),
            limit=limit,
            mode=mode,
            prefetch=max(self._settings.prefetch, limit),
            weights=(dense_weight(text), 1.0),
            fusion=fusion or self._settings.fusion,
        )

    def search(
        self,
        query: str,
        k: int | None = None,
        where: SearchFilter | None = None,
        mode: SearchMode = SearchMode.HYBRID,
        fusion: Fusion | None = None,
    ) -> list[SearchHit]:
        """The best `k` papers for a query, each with its best passage as the snippet."""
        k = k or self._settings.default_k
        if not 1 <= k <= 100:
            raise InvalidInputError("k must be between 1 and 100.")
        hits = self.passages(query, limit=max(k * 5, 20), where=where, mode=mode, fusion=fusion)
        best: dict[str, ChunkHit] = {}
        for hit in hits:
            best.setdefault(hit.chunk.paper_id, hit)
        terms = set(tokenize(query))
        return [
            SearchHit(
                paper_id=h.chunk.paper_id,
                title=h.title,
                url=h.url,
                score=round(h.score, 6),
                snippet=snippet(h.chunk.text, terms),
                kind=h.chunk.kind,
                section=h.chunk.section,
                page=h.chunk.page,
            )
            for h in list(best.values())[:k]
        ]


def snippet(text: str, terms: set[str], size: int = SNIPPET_CHARS) -> str:
    """The window of `text` around the sentence that shares most terms with the query."""
    flat = " ".join(text.split())
    if len(flat) <= size:
        return flat
    sentences = _sentences(flat)
    scores = [len(terms.intersection(tokenize(s))) for s in sentences]
    start = sum(len(s) + 1 for s in sentences[: scores.index(max(scores))])
    start = max(0, min(start, len(flat) - size))
    cut = flat[start : start + size]
    if start + size < len(flat):
        cut = cut.rsplit(" ", 1)[0] + " …"
    return ("… " if start else "") + cut


def _sentences(text: str) -> Sequence[str]:
    return re.split(r"(?<=[.!?。])\s+", text) or [text]
