"""Choosing the exact words to quote from a passage.

Quotes are always exact substrings of the passage text, so any citation can be checked
against the passage it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from assistant.sparse import tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


_CLAUSE = re.compile(r"(?<=;)\s+|,\s+(?=(?:and|while|where|which|so|but)\s)")
LONG_SENTENCE = 200
SHORT_QUOTE = 80


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of `text`."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def quote_spans(text: str) -> list[tuple[int, int]]:
    """Sentences, with long ones split into their clauses (at `;` or `, and` ...)."""
    spans = []
    for a, b in sentence_spans(text):
        if b - a <= LONG_SENTENCE:
            spans.append((a, b))
            continue
        start = a
        for match in _CLAUSE.finditer(text, a, b):
            if match.start() - start >= 40:
                spans.append((start, match.start()))
                start = match.end()
        spans.append((start, b))
    return spans


SentenceScorer = Callable[[Sequence[str]], Sequence[float]]


def best_quote(
    text: str,
    terms: set[str],
    max_chars: int = 320,
    similarity: SentenceScorer | None = None,
) -> str:
    """The run of whole sentences (at most `max_chars`) that best matches the query.

    A sentence scores its similarity to the query (when `similarity` is given) plus a
    little for each query term it contains. Ties go to the earlier sentence; an overlong
    single sentence is cut at a word.
    """
    spans = quote_spans(text)
    if not spans:
        return text[:max_chars].strip()
    overlap = [len(terms.intersection(tokenize(text[a:b]))) for a, b in spans]
    meaning = similarity([text[a:b] for a, b in spans]) if similarity else [0.0] * len(spans)
    scores = [m + 0.05 * o for m, o in zip(meaning, overlap, strict=True)]
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    # a short fragment ("makes FP8 accurate.") says less than a clause that explains it
    longer = [i for i, (a, b) in enumerate(spans) if b - a >= SHORT_QUOTE]
    if spans[best][1] - spans[best][0] < SHORT_QUOTE and longer:
        runner_up = max(longer, key=lambda i: (scores[i], -i))
        if scores[runner_up] >= 0.5 * scores[best]:
            best = runner_up
    start, end = spans[best]
    for nxt in range(best + 1, len(spans)):  # extend while the quote stays short
        if spans[nxt][1] - start > max_chars:
            break
        if overlap[nxt] == 0 and end - start > max_chars // 2:
            break
        end = spans[nxt][1]
    quote = text[start:end]
    if len(quote) > max_chars:
        cut = quote[:max_chars]
        quote = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return quote.strip()
