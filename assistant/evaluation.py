"""Retrieval evaluation: Recall@k and MRR@10 over a labelled query set (qrels).

A qrels file has one JSON object per line: `{"query": "...", "relevant": ["2407.08608"]}`;
other keys (e.g. "lang", "kind") are kept for per-group figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import InvalidInputError, NotFoundError

CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class Qrel:
    """One labelled query."""

    query: str
    relevant: frozenset[str]
    tags: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RetrievalScores:
    """Mean metrics over a set of queries."""

    queries: int
    recall: dict[int, float]
    mrr10: float

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"queries": self.queries}
        out.update({f"recall@{k}": round(v, 4) for k, v in self.recall.items()})
        out["mrr@10"] = round(self.mrr10, 4)
        return out


def load_qrels(path: Path) -> list[Qrel]:
    """Read a qrels file, with the line number of any malformed line in the error."""
    if not path.is_file():
        raise NotFoundError(f"No such qrels file: {path}")
    qrels = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            query, relevant = data["query"], data["relevant"]
            if not isinstance(query, str) or not isinstance(relevant, list) or not relevant:
                raise ValueError("needs a string 'query' and a non-empty list 'relevant'")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"{path}:{number}: not a qrels line ({exc}).") from exc
        tags = {k: str(v) for k, v in data.items() if k not in ("query", "relevant")}
        qrels.append(Qrel(query, frozenset(map(str, relevant)), tags))
    return qrels


def score_ranking(
    ranked: Sequence[str], relevant: frozenset[str]
) -> tuple[dict[int, float], float]:
    """Recall at each cutoff and the reciprocal rank (within 10) of one ranked list."""
    recall = {k: len(relevant.intersection(ranked[:k])) / len(relevant) for k in CUTOFFS}
    rr = next((1.0 / (i + 1) for i, p in enumerate(ranked[:10]) if p in relevant), 0.0)
    return recall, rr


def evaluate(qrels: Sequence[Qrel], rank: Callable[[str], Sequence[str]]) -> RetrievalScores:
    """Mean Recall@1/5/10 and MRR@10 of `rank` (query -> ranked paper ids)."""
    if not qrels:
        raise InvalidInputError("The qrels file has no queries.")
    totals = dict.fromkeys(CUTOFFS, 0.0)
    mrr = 0.0
    for qrel in qrels:
        recall, rr = score_ranking(rank(qrel.query), qrel.relevant)
        for k in CUTOFFS:
            totals[k] += recall[k]
        mrr += rr
    n = len(qrels)
    return RetrievalScores(n, {k: v / n for k, v in totals.items()}, mrr / n)
