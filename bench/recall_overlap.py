"""Check the overlap rule of English `recall` queries (bench/data/README.md).

A recall query may share at most 25% of its content words with its paper's title and list
description: lowercased words of 3+ letters, English stopwords and "paper"/"model(s)"/
"method(s)" ignored, plain plurals stripped. Run on a qrels file to print each recall
query's overlap and the average; exits 1 if a query breaks the rule.

    python bench/recall_overlap.py bench/data/qrels.jsonl
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
CORPUS = (DATA / "corpus_potw.md", DATA / "corpus_extra.md")
LIMIT = 0.25

STOPWORDS = frozenset(
    """
    the and but for nor yet with without from into onto upon over under about above below
    across after before during through between among against along around behind beyond
    this that these those there here where when while which who whom whose what why how
    are was were been being has have had having does did doing done can could would should
    will shall may might must its it's their theirs them they you your yours our ours his her
    hers him she one ones not all any both each few more most other some such only own same
    than too very just also even ever still again once then thus hence therefore rather
    quite really much many lot lots way ways thing things like get gets got make makes made
    use used uses using per via let lets well instead whether either neither every
    paper papers model models method methods
    """.split()
)

_ROW = re.compile(
    r"^\|\s*\d+\)\s*\*\*(?P<title>.+?)\*\*\s*-\s*(?P<description>.*?)\|(?P<links>.*)$"
)
_ARXIV = re.compile(r"arxiv\.org/(?:abs|pdf)/(\d{4}\.\d{4,5})")


def content_words(text: str) -> set[str]:
    """Lowercased words of 3+ letters, stopwords dropped, plain plurals stripped."""
    out = set()
    for word in re.findall(r"[a-z]{3,}", text.lower()):
        if word in STOPWORDS:
            continue
        if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            word = word[:-1]
        out.add(word)
    return out


def paper_texts(files: tuple[Path, ...] = CORPUS) -> dict[str, str]:
    """arXiv id -> title + list description, for every row of the corpus files."""
    texts: dict[str, str] = {}
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            row, arxiv = _ROW.match(line), _ARXIV.search(line)
            if row and arxiv:
                texts[arxiv.group(1)] = f"{row['title']} {row['description']}"
    return texts


def overlap(query: str, paper_text: str) -> float:
    words = content_words(query)
    return len(words & content_words(paper_text)) / len(words) if words else 0.0


def main(paths: list[str]) -> int:
    texts = paper_texts()
    values, broken = [], 0
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            if q.get("lang") != "en" or (q.get("kind") or q.get("ref")) != "recall":
                continue
            value = max(overlap(q["query"], texts[p]) for p in q["relevant"])
            values.append(value)
            flag = "BREAKS" if value > LIMIT else "ok"
            broken += value > LIMIT
            print(f"{value:.2f} {flag:6} {q['query']}")
    if values:
        print(
            f"{len(values)} recall queries, mean overlap {statistics.fmean(values):.3f}, "
            f"max {max(values):.2f}, {broken} over {LIMIT:.0%}"
        )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
