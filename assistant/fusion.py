"""Fusing ranked lists from dense and sparse retrieval into one ranking.

Two standard methods, both weighted per query:
- DBSF (distribution-based score fusion, as in Qdrant): each list's scores are scaled by
  their mean ± 3 standard deviations to [0, 1], then summed with weights. It keeps how
  confident each retriever is, which rank-only fusion throws away.
- RRF (reciprocal rank fusion): sum of weight / (k + rank).

`dense_weight` lowers the dense vote for text the embedding model cannot read: the
packaged model is English-only, so a Japanese question's dense vector is mostly noise.

>>> fuse([[("a", 0.9), ("b", 0.5)], [("b", 12.0)]], weights=(1.0, 1.0))
[('b', ...), ('a', ...)]
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Hashable, Sequence
from enum import StrEnum
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

_LETTER = re.compile(r"[^\W\d_]")


class Fusion(StrEnum):
    """How hybrid search merges its dense and sparse candidates."""

    DBSF = "dbsf"
    RRF = "rrf"


def dense_weight(query: str) -> float:
    """The share of the query's letters in Latin script (1.0 for English, ~0.3 for a
    Japanese question that names a model)."""
    letters = _LETTER.findall(query)
    if not letters:
        return 1.0
    return sum(1 for c in letters if c.isascii()) / len(letters)


def _dbsf_scale(scores: Sequence[float]) -> list[float]:
    if len(scores) < 2:
        return [1.0] * len(scores)
    mean, spread = statistics.fmean(scores), statistics.pstdev(scores)
    if spread == 0:
        return [1.0] * len(scores)
    low, high = mean - 3 * spread, mean + 3 * spread
    return [min(1.0, max(0.0, (s - low) / (high - low))) for s in scores]


def fuse(
    ranked: Sequence[Sequence[tuple[K, float]]],
    weights: Sequence[float],
    method: Fusion = Fusion.DBSF,
    rrf_k: int = 2,
) -> list[tuple[K, float]]:
    """Merge best-first lists of (key, score) into one best-first list of (key, fused)."""
    fused: dict[K, float] = {}
    for items, weight in zip(ranked, weights, strict=True):
        if method is Fusion.RRF:
            contributions = [weight / (rrf_k + rank) for rank in range(1, len(items) + 1)]
        else:
            contributions = [weight * s for s in _dbsf_scale([score for _, score in items])]
        seen: set[K] = set()
        for (key, _), value in zip(items, contributions, strict=True):
            if key not in seen:
                seen.add(key)
                fused[key] = fused.get(key, 0.0) + value
    return sorted(fused.items(), key=lambda kv: kv[1], reverse=True)
