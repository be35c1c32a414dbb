"""Choosing the exact words to quote from a passage.

Quotes are always exact substrings of the passage text, so any citation can be checked
against the passage it came from.
"""

from __future__ import annotations

import re

from assistant.sparse import tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of `text`."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def best_quote(text: str, terms: set[str], max_chars: int = 320) -> str:
    """The run of whole sentences (at most `max_chars`) sharing most terms with the query.

    Ties go to the earlier sentence; an overlong single sentence is cut at a word.
    """
    spans = sentence_spans(text)
    if not spans:
        return text[:max_chars].strip()
    scores = [len(terms.intersection(tokenize(text[a:b]))) for a, b in spans]
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    start, end = spans[best]
    for nxt in range(best + 1, len(spans)):  # extend while the quote stays short
        if spans[nxt][1] - start > max_chars:
            break
        if scores[nxt] == 0 and end - start > max_chars // 2:
            break
        end = spans[nxt][1]
    quote = text[start:end]
    if len(quote) > max_chars:
        cut = quote[:max_chars]
        quote = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return quote.strip()
