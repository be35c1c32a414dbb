"""Paper search: hybrid retrieval of passages, one result per paper.

>>> searcher.search("fast exact attention on H100", k=5)
[SearchHit(paper_id='2407.08608', ...)]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from assistant.embedding import Embedder, SecondVector
from assistant.errors import InvalidInputError
from assistant.fusion import Fusion, hybrid_weights, latin_share, second_dense_weight
from assistant.index import ChunkHit, DenseQuery, SearchFilter, SearchMode, VectorIndex
from assistant.models import SearchHit
from assistant.names import NameIndex
from assistant.settings import SearchSettings
from assistant.sparse import query_vector, tokenize
from assistant.textclean import visible_text

log = logging.getLogger(__name__)

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
    """Finds papers for a query with the hybrid index.

    A query is embedded in the query role, and the names its katakana and acronyms stand
    for (`names`, the stored papers' `NameIndex`) are added to it, so that "ルックバック・
    レンズ" and "IoA" reach BM25 as "Lookback Lens" and "Internet of Agents". Dense and
    sparse candidates are fused with `hybrid_weights`; BM25's vote shrinks when its best
    passage holds little of the query (`gated_sparse`), and a second model's vector
    (`second`, the English model next to e5) votes with `second_dense_weight`.
    """

    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        settings: SearchSettings,
        names: Callable[[], NameIndex] | None = None,
        second: Sequence[SecondVector] = (),
    ) -> None:
        self._embedder = embedder
        self._index = index
        self._settings = settings
        self._names = names
        self._second = tuple(second)

    def expanded(self, query: str) -> str:
        """The query with the Latin names its katakana and acronyms stand for appended."""
        found = self._names().expand(query) if self._names is not None else []
        if found:
            log.debug("query names: %s", found)
        return " ".join([query, *found])

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
        full = self.expanded(text)
        dense = (
            self._embedder.embed([full], role="query")[0] if mode is not SearchMode.SPARSE else []
        )
        sparse = query_vector(full)
        fused = mode is SearchMode.HYBRID and bool(sparse.indices)  # else no list is fused
        more = [
            DenseQuery(
                s.name,
                s.embedder.embed([full], role="query")[0],
                second_dense_weight(text, s.embedder.multilingual),
            )
            for s in (self._second if fused else ())
        ]
        return self._index.query(
            dense,
            sparse,
            where or SearchFilter(),
            limit=limit,
            mode=mode,
            prefetch=max(self._settings.prefetch, limit),
            weights=hybrid_weights(text, self._embedder.multilingual),
            fusion=fusion or self._settings.fusion,
            sparse_gate=latin_share(text),
            more_dense=more,
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
        terms = set(tokenize(self.expanded(query)))
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
