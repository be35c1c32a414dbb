"""The benchmark's labelled sets keep the rules bench/data/README.md states for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.recall_overlap import LIMIT, overlap, paper_texts

DATA = Path(__file__).resolve().parent.parent / "bench" / "data"


def lines(name: str) -> list[dict[str, object]]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def papers(rows: list[dict[str, object]]) -> set[str]:
    return {str(p) for row in rows for p in row["relevant"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["qrels.jsonl", "qrels_recall_dev.jsonl"])
def test_recall_queries_share_at_most_a_quarter_of_their_words_with_their_paper(
    name: str,
) -> None:
    texts = paper_texts()
    recall = [r for r in lines(name) if r.get("kind") == "recall"]
    assert len(recall) >= 60
    for row in recall:
        (paper,) = row["relevant"]  # type: ignore[misc]
        assert overlap(str(row["query"]), texts[paper]) <= LIMIT, row["query"]


def test_no_dev_paper_is_the_answer_to_a_test_query() -> None:
    test = papers([r for r in lines("qrels.jsonl") if r.get("kind") == "recall"])
    test |= papers(lines("qrels_multilingual_test.jsonl"))
    dev = papers(lines("qrels_recall_dev.jsonl"))
    assert len(dev) == 80
    assert not dev & test
    assert dev <= set(paper_texts())
