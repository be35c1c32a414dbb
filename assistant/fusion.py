"""Fusing ranked lists from dense and sparse retrieval into one ranking.

Two standard methods, both weighted per query:
- DBSF (distribution-based score fusion, as in Qdrant): each list's scores are scaled by
  their mean ± 3 standard deviations to [0, 1], then summed with weights. It keeps how
  confident each retriever is, which rank-only fusion throws away.
- RRF (reciprocal rank fusion): sum of weight / (k + rank).

`hybrid_weights` weighs each retriever by what it can know about the query: an
English-only embedding model (the packaged all-MiniLM-L6-v2 turns Japanese into `[UNK]`
noise) gets a vote in proportion to the query's share of Latin letters, so none on a
question that is all CJK; a multilingual model reads every language and keeps a full vote.
BM25 matches only the Latin names and numbers of a CJK question (and the names that
`assistant.names` adds for its katakana and acronyms), so next to a multilingual model it
gets a smaller vote that grows with the Latin share: its scores are rescaled to [0, 1] by
fusion, so even a weak match on one generic word would otherwise count as much as a
confident dense match (measured in bench/multilingual.py).

`gated_sparse` applies the same rule to what BM25 found: when its best passage holds only
a small share of the query's terms, as when someone describes a paper in other words than
its own, its list is a guess and its vote shrinks; a query that names the paper's terms keeps
the full vote. The gate acts on the Latin part of the query only, since CJK bigrams rarely
match whatever the question.

>>> fuse([[("a", 0.9), ("b", 0.5)], [("b", 12.0)]], weights=(1.0, 1.0))
[('b', ...), ('a', ...)]
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Collection, Hashable, Sequence
from enum import StrEnum
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

_LETTER = re.compile(r"[^\W\d_]")


class Fusion(StrEnum):
    """How hybrid search merges its dense and sparse candidates."""

    DBSF = "dbsf"
    RRF = "rrf"


# Sparse weight next to a multilingual dense model: base + per_latin * Latin share
# (0.3 for a question all in Japanese, 0.6 for English). Chosen on the dev split of
# bench/data/qrels_multilingual_dev.jsonl, never on the reported test split.
SPARSE_BASE = 0.3
SPARSE_PER_LATIN = 0.3


# The vote of a second dense vector (the English model next to a multilingual one): times
# the query's Latin share, since the English model reads nothing else. Chosen on the dev
# sets (bench/multilingual.py --split dev): 0.5-1.0 all did about as well; 0.75 is between.
SECOND_DENSE_WEIGHT = 0.75

# A BM25 best passage that holds this share of the query's terms (or more) keeps BM25's
# full vote; below it the vote shrinks in proportion. Chosen on the English dev set
# bench/data/qrels_recall_dev.jsonl, never on a reported set.
COVERAGE_FULL = 0.4


def latin_share(query: str) -> float:
    """The share of the query's letters in Latin script (1.0 for English, ~0.3 for a
    Japanese question that names a model)."""
    letters = _LETTER.findall(query)
    if not letters:
        return 1.0
    return sum(1 for c in letters if c.isascii()) / len(letters)


def hybrid_weights(query: str, multilingual: bool) -> tuple[float, float]:
    """(dense, sparse) fusion weights for a query, given whether the dense model reads
    languages other than English.

    >>> hybrid_weights("LoRAの仕組みは？", multilingual=False)
    (0.4444, 1.0)
    >>> hybrid_weights("LoRAの仕組みは？", multilingual=True)
    (1.0, 0.4333)
    """
    share = latin_share(query)
    if not multilingual:
        return round(share, 4), 1.0
    return 1.0, round(SPARSE_BASE + SPARSE_PER_LATIN * share, 4)


def gated_sparse(
    weight: float, gate: float, query_terms: Collection[int], best_terms: Collection[int]
) -> float:
    """The sparse list's `weight`, scaled by how much of the query the list's best passage
    covers: `gate` is how much the vote may depend on that (the query's Latin share);
    `query_terms` and `best_terms` are the sparse term ids of both.

    >>> gated_sparse(1.0, 1.0, [1, 2, 3, 4, 5], [1, 9])
    0.5
    >>> gated_sparse(1.0, 1.0, [1, 2, 3, 4, 5], [1, 2, 3])
    1.0
    >>> gated_sparse(1.0, 0.3, [1, 2, 3, 4, 5], [])
    0.7
    """
    if gate <= 0:
        return weight
    terms = set(query_terms)
    coverage = len(terms.intersection(best_terms)) / len(terms) if terms else 0.0
    return round(weight * ((1 - gate) + gate * min(1.0, coverage / COVERAGE_FULL)), 4)


def second_dense_weight(query: str, multilingual: bool) -> float:
    """The vote of a second dense vector's list for this query.

    >>> second_dense_weight("how does LoRA work", multilingual=False)
    0.75
    >>> second_dense_weight("注意機構の高速化", multilingual=False)
    0.0
    """
    return round(SECOND_DENSE_WEIGHT * (1.0 if multilingual else latin_share(query)), 4)


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
