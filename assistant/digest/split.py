"""Splitting text to a platform's limits without losing any of it.

Renderers split *raw* text (before escaping or markup) and measure each piece as it will be
sent, so a split never lands inside an escape (`&amp;`, `\\*`) or breaks a bold line or a
quote prefix. Only the whitespace at a split point is dropped.

    >>> split_text("One. Two. Three.", 10)
    ['One. Two.', 'Three.']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Measure = Callable[[str], int]


def text_length(text: str) -> int:
    """Length as chat platforms count it, conservatively: UTF-16 code units.

    Equal to `len()` for Latin and Japanese text; an emoji outside the BMP counts twice, so a
    piece that passes here passes whichever way a platform counts.
    """
    return len(text.encode("utf-16-le")) // 2


# Boundaries, best first. Each pattern's match gives the cut: the end of the head.
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"(?:[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[」』）)\"”’]*)")
_CLAUSE = re.compile(r"[、，,;；:：]")
_SPACE = re.compile(r"\s")
_GLUE = {"\u200d", "\ufe0e", "\ufe0f"}


def split_text(text: str, limit: int, measure: Measure = text_length) -> list[str]:
    """Cut `text` into chunks with `measure(chunk) <= limit`, at the best boundary available.

    Boundaries are tried in order: paragraph, line, sentence (also 。！？), clause, word, and
    only then a hard cut (which never separates a combining mark from its letter). Only
    whitespace at the cuts (and around the whole text) is dropped, so joining the chunks
    with that whitespace gives the text back. `measure` lets a caller count the rendered
    form, e.g. `lambda s: len(escape(s))`; it must not shrink when a chunk grows.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        head, rest = take_prefix(rest, limit, measure)
        if not head:
            raise ValueError(f"{rest[:1]!r} alone is longer than the limit of {limit}")
        chunks.append(head)
    return chunks


def take_prefix(text: str, limit: int, measure: Measure = text_length) -> tuple[str, str]:
    """The longest well-cut head of (stripped) `text` within `limit`, and the rest.

    The head is empty when not even one character fits.
    """
    text = text.strip()
    if measure(text) <= limit:
        return text, ""
    fit = _longest_fitting(text, limit, measure)
    if fit == 0:
        return "", text
    cut = _best_cut(text, fit)
    head = text[:cut].rstrip()
    while head and measure(head) > limit:  # only if `measure` is not monotonic
        cut -= 1
        head = text[:cut].rstrip()
    return head, text[cut:].lstrip()


def _longest_fitting(text: str, limit: int, measure: Measure) -> int:
    lo, hi = 0, len(text)  # measure(text[:lo]) <= limit < measure(text[:hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid
    return lo


def _best_cut(text: str, fit: int) -> int:
    """Where to end the head: a position in 1..fit, at the best boundary found."""
    window = text[: fit + 1]  # the character after the fit counts as a boundary
    # a preferred boundary must keep chunks reasonably full: a paragraph or line break in
    # the last two thirds, a sentence end in the second half
    for pattern, floor, use_end in (
        (_PARAGRAPH, fit // 3, False),
        (_LINE, fit // 3, False),
        (_SENTENCE, fit // 2, True),
    ):
        cut = _last_cut(pattern, window, max(1, floor), fit, use_end)
        if cut:
            return cut
    cut = _last_cut(_SPACE, window, 1, fit, use_end=False)
    if cut:
        return cut
    cut = _last_cut(_CLAUSE, window, max(1, fit // 2), fit, use_end=True)
    if cut:
        return cut
    return _hard_cut(text, fit)


def _last_cut(pattern: re.Pattern[str], window: str, floor: int, fit: int, use_end: bool) -> int:
    best = 0
    for match in pattern.finditer(window):
        cut = match.end() if use_end else match.start()
        if floor <= cut <= fit:
            best = cut
    return best


def _hard_cut(text: str, fit: int) -> int:
    cut = fit
    while cut > 1 and (
        unicodedata.combining(text[cut]) or text[cut] in _GLUE or text[cut - 1] == "\u200d"
    ):
        cut -= 1
    return cut


@dataclass(frozen=True)
class Segment:
    """A run of raw text and how to render a piece of it (escape, bold, quote...).

    `gap` separates it from the previous segment when both share a box; `keep` moves a
    segment whole to the next box rather than splitting it, when it fits in an empty box.
    """

    text: str
    render: Callable[[str], str]
    gap: str = "\n"
    keep: bool = False


def flow(
    segments: Sequence[Segment],
    room: Callable[[int], int],
    measure: Measure = text_length,
) -> list[str]:
    """Lay segments into consecutive boxes (Slack sections, Discord descriptions...).

    Box `i` holds at most `room(i)` (measured) characters. A segment that does not fit in
    what is left of a box is split there (its raw text, so each piece is rendered whole),
    unless it is short (`keep`) or the space left is a sliver. Nothing is dropped but the
    whitespace at a split; a segment with empty text still renders (e.g. a bare label).
    """
    boxes: list[str] = []
    current = ""
    for segment in segments:
        rest = segment.text.strip()
        pending = bool(rest or segment.render(""))
        while pending:
            capacity = room(len(boxes))
            joiner = segment.gap if current else ""
            avail = capacity - measure(current + joiner)
            whole = segment.render(rest)
            if measure(whole) <= avail:
                current += joiner + whole
                pending = False
                continue
            sliver = avail < capacity // 4
            if current and (sliver or (segment.keep and measure(whole) <= capacity)):
                boxes.append(current)
                current = ""
                continue
            head, rest = take_prefix(rest, avail, _rendered(segment.render, measure))
            if not head:
                if not current:
                    raise ValueError(f"not even {rest[:1]!r} fits in a box of {capacity}")
                boxes.append(current)
                current = ""
                continue
            boxes.append(current + joiner + segment.render(head))
            current = ""
            pending = bool(rest)
    if current:
        boxes.append(current)
    return boxes


def _rendered(render: Callable[[str], str], measure: Measure) -> Measure:
    return lambda text: measure(render(text))


def shorten(text: str, limit: int, ellipsis: str = "…", measure: Measure = text_length) -> str:
    """`text` cut at a word to fit `limit`, marked with an ellipsis.

    Only for labels whose full text is shown elsewhere (a fallback notification, a
    continuation marker); content is split, never shortened.
    """
    text = " ".join(text.split())
    if measure(text) <= limit:
        return text
    head, _ = take_prefix(text, limit - measure(ellipsis), measure)
    return head.rstrip(" ,;:") + ellipsis
