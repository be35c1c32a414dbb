"""Split papers into passages for retrieval: full text section by section, short texts whole.

>>> chunks = chunk_pages("2407.08608", extract_pages(pdf), chunk_words=180, overlap=30)
>>> chunks[0].section, chunks[0].page
('Abstract', 1)

A passage never crosses a section heading, prefers to end at a sentence end, and shares
`overlap` words with the passage before it. Running heads, footers and page numbers are
left out, and so is the bibliography; an appendix after it is indexed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from assistant.models import Chunk, PageText

MIN_WORDS = 15
"""Passages shorter than this are merged into a neighbour."""

_MAX_HEADING_CHARS = 80
_MAX_TITLE_WORDS = 12
_LETTER_BASE = 100  # appendix "A" sorts after every numbered section: A -> 100, B -> 101...

# Well-known unnumbered headings, lowercase -> how they are shown, and what they mean.
_ABSTRACT = {"abstract": "Abstract"}
_REFERENCES = {"references": "References", "bibliography": "Bibliography"}
_NAMED = {
    name.lower(): name
    for name in (
        "Introduction",
        "Related Work",
        "Related Works",
        "Preliminaries",
        "Conclusion",
        "Conclusions",
        "Conclusion and Future Work",
        "Conclusions and Future Work",
        "Future Work",
        "Limitations",
        "Broader Impact",
        "Broader Impacts",
        "Ethics Statement",
        "Acknowledgment",
        "Acknowledgments",
        "Acknowledgement",
        "Acknowledgements",
    )
}
# Names also seen alone on a line as table or figure labels: trusted only in papers
# whose sections are not numbered.
_AMBIGUOUS = {
    name.lower(): name
    for name in (
        "Background",
        "Method",
        "Methods",
        "Methodology",
        "Approach",
        "Experiments",
        "Evaluation",
        "Results",
        "Discussion",
        "Analysis",
    )
}
_KNOWN = {**_ABSTRACT, **_REFERENCES, **_NAMED, **_AMBIGUOUS}
_BACK_MATTER = ("appendix", "appendices", "supplementary material", "supplementary materials")

_NUMBERED = re.compile(r"(?P<number>(?:\d{1,2}|[A-Z])(?:\.\d{1,2}){0,3})\.?\s+(?P<title>.+)")
_APPENDIX = re.compile(
    r"(?P<label>(?i:appendix|appendices|supplementary materials?))"
    r"(?:\s+(?P<letter>[A-Z](?:\.\d{1,2})*)\b)?[\s:.\-–—]*(?P<rest>.*)"
)
_SMALL_CAPS = re.compile(r"\b([A-Z]) (?=[A-Z]{2,}\b)")  # "I NTRODUCTION" -> "INTRODUCTION"
_NUMERIC = re.compile(r"[(±+\-–]?\d[\d.,%)×x±]*")
_INITIAL = re.compile(r"[A-Z]\.,?")  # author initials, as in reference lists
_NOT_IN_TITLES = re.compile(r"[=<>≤≥^{}\[\]|@$\\]")
_SENTENCE_STARTS = frozenset({"We", "It", "They", "Let", "Here", "Note", "Then", "Thus", "Hence"})
_SENTENCE_VERBS = frozenset({"we", "is", "are", "was", "were", "has", "have", "will"})
_SMALL_WORDS = frozenset("a an and as at by for in of on or the to vs via with".split())

# A line (numbers aside) at the top or bottom of this many pages is a running head or foot.
_RUNNING_MIN_PAGES = 3
_DIGITS = re.compile(r"\d+")

_CLOSERS = "\"')]}”’"
_ABBREVIATIONS = frozenset(
    "e.g. i.e. al. fig. figs. eq. eqs. sec. secs. tab. vs. cf. resp. approx. ref. refs. no. "
    "app. appx. thm. def.".split()
)


# What a heading means for the outline: "named" is a well-known section name, "ambiguous"
# one that is also a common table label, "plain" any other numbered title.
_Kind = Literal["abstract", "references", "appendix", "named", "ambiguous", "plain"]


@dataclass(frozen=True)
class _Heading:
    """A line that reads like a section heading. `number` is the sort key of "2.3" or "B.1"."""

    text: str
    number: tuple[int, ...] | None
    kind: _Kind


def detect_heading(line: str) -> str | None:
    """The normalised section heading on this line, or None if it reads like body text.

    >>> detect_heading("2.3  TRAINING DETAILS")
    '2.3 Training Details'
    >>> detect_heading("1 2 3 4") is None
    True
    """
    heading = _parse_heading(line)
    return heading.text if heading else None


def _parse_heading(line: str) -> _Heading | None:
    text = " ".join(line.split())
    if not text or len(text) > _MAX_HEADING_CHARS or not (text[0].isdigit() or text[0].isupper()):
        return None
    return _parse_unnumbered(text) or _parse_numbered(text)


def _parse_unnumbered(text: str) -> _Heading | None:
    joined = _join_small_caps(text)
    key = joined.rstrip(":.").strip().lower()
    if key in _KNOWN:
        return _Heading(_KNOWN[key], None, _kind_of(key))
    match = _APPENDIX.fullmatch(joined)
    if match is None:
        return None
    label = " ".join(filter(None, (match["label"].title(), match["letter"])))
    rest = match["rest"]
    if not rest:
        return _Heading(label, None, "appendix")
    if not _plausible_title(rest):
        return None
    return _Heading(f"{label}: {_tidy(rest)}", None, "appendix")


def _parse_numbered(text: str) -> _Heading | None:
    match = _NUMBERED.fullmatch(text)
    if match is None:
        return None
    title = _join_small_caps(match["title"])
    if not _plausible_title(title):
        return None
    key = title.rstrip(":").lower()
    kind = _kind_of(key)
    if kind == "ambiguous":  # a number makes "4 Results" trustworthy
        kind = "named"
    elif kind == "plain" and key.startswith(_BACK_MATTER):
        kind = "appendix"
    number = match["number"]
    return _Heading(f"{number} {_KNOWN.get(key) or _tidy(title)}", _number_key(number), kind)


def _kind_of(key: str) -> _Kind:
    if key in _ABSTRACT:
        return "abstract"
    if key in _REFERENCES:
        return "references"
    if key in _NAMED:
        return "named"
    return "ambiguous" if key in _AMBIGUOUS else "plain"


def _plausible_title(title: str) -> bool:
    """False for what only looks like a title: sentences, table rows, formulas, author lists."""
    words = title.split()
    if not words or len(words) > _MAX_TITLE_WORDS:
        return False
    if not (title[0].isupper() or (title[0].isdigit() and not words[0].isdigit())):
        return False  # "3D Reconstruction" and "4-bit Weights" are fine, "2 3 4" is not
    if title[-1] in ".,;" or _NOT_IN_TITLES.search(title):
        return False
    letters = sum(char.isalpha() for char in title)
    digits = sum(char.isdigit() for char in title)
    if letters < 3 or digits * 2 > letters:
        return False
    if sum(1 for word in words if _NUMERIC.fullmatch(word)) >= 2:
        return False
    if words[0] in _SENTENCE_STARTS or any(word in _SENTENCE_VERBS for word in words[1:]):
        return False
    if any(_INITIAL.fullmatch(word) for word in words):
        return False
    capitalised = sum(1 for word in words if word[0].isupper())
    return len(words) <= 7 or capitalised * 2 >= len(words)


def _join_small_caps(text: str) -> str:
    """Undo how small capitals often come out of PDFs: "R ELATED W ORK" -> "RELATED WORK".

    A lone "A" or "I" may be a real word ("APPENDIX A PROOFS"), so when those are the only
    lone letters, they are joined only if that spells a well-known heading ("A BSTRACT").
    """
    if any(char.islower() for char in text):
        return text
    joined = _SMALL_CAPS.sub(r"\1", text)
    if any(match[1] not in "AI" for match in _SMALL_CAPS.finditer(text)):
        return joined
    key = joined.rstrip(":.").strip().lower()
    return joined if key in _KNOWN or key in _BACK_MATTER else text


def _tidy(title: str) -> str:
    """Title Case for titles set in capitals; others are left as written."""
    if any(char.islower() for char in title):
        return title
    words = title.lower().split()
    return " ".join(
        word
        if index and word in _SMALL_WORDS
        else "-".join(p.capitalize() for p in word.split("-"))
        for index, word in enumerate(words)
    )


def _number_key(number: str) -> tuple[int, ...]:
    first, *rest = number.split(".")
    top = int(first) if first.isdigit() else _LETTER_BASE + ord(first) - ord("A")
    return (top, *(int(part) for part in rest))


@dataclass
class _Outline:
    """Which heading-like lines are real headings, given the ones accepted before.

    Numbers move forward (a list item "2 ..." inside section 5 is not a heading), by at
    most two top-level steps; lettered appendix sections only come after the references
    or an appendix heading. Text after "References" is skipped until an appendix starts.
    """

    last: tuple[int, ...] = ()
    in_back_matter: bool = False
    skipping: bool = False

    def accept(self, heading: _Heading) -> bool:
        if heading.kind == "references":
            self.in_back_matter = self.skipping = True
            self.last = max(self.last, heading.number or ())
            return True
        if heading.kind in ("abstract", "appendix"):
            self.last = heading.number or ()  # numbering starts again
            if heading.kind == "appendix":
                self.in_back_matter, self.skipping = True, False
            return True
        if heading.number is None:
            return heading.kind == "named" or (heading.kind == "ambiguous" and not self.last)
        if heading.kind != "named" and not self._follows(heading.number):
            return False
        self.last = heading.number
        if heading.number[0] >= _LETTER_BASE:
            self.skipping = False
        return True

    def _follows(self, number: tuple[int, ...]) -> bool:
        lettered = number[0] >= _LETTER_BASE
        if lettered and not self.in_back_matter:
            return False
        base = self.last[0] if self.last else 0
        if lettered and base < _LETTER_BASE:
            base = _LETTER_BASE - 1  # the first appendix section is A (or B)
        return number > self.last and number[0] <= base + 2


@dataclass
class _Section:
    """The words of one section, each with the page it is on."""

    title: str | None
    indexed: bool = True
    words: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)

    def add(self, words: list[str], page: int) -> None:
        if words and self.words and _is_broken_word(self.words[-1], words[0]):
            self.words[-1] = self.words[-1][:-1] + words[0]  # "atten-" + "tion", over a page
            words = words[1:]
        self.words.extend(words)
        self.pages.extend([page] * len(words))

    def followed_by(self, other: _Section) -> _Section:
        return _Section(other.title, True, self.words + other.words, self.pages + other.pages)


@dataclass
class _Draft:
    section: str | None
    page: int | None
    words: list[str]


def chunk_pages(
    paper_id: str,
    pages: Sequence[PageText],
    chunk_words: int,
    overlap: int,
    start_ordinal: int = 0,
) -> list[Chunk]:
    """Split a paper's full text into `kind="body"` passages of about `chunk_words` words.

    Each chunk carries its section heading (None before the first one) and the page it
    starts on. A section shorter than `MIN_WORDS` is merged into the next one (into the
    previous one when nothing indexed follows). `overlap` is capped at half a chunk.
    """
    size, overlap = _sizes(chunk_words, overlap)
    drafts: list[_Draft] = []
    carry: _Section | None = None
    for section in _sections(pages):
        if not section.indexed:
            _merge_back(drafts, carry)
            carry = None
            continue
        if carry is not None:
            section = carry.followed_by(section)
        if len(section.words) < MIN_WORDS:
            carry = section
            continue
        carry = None
        for start, end in _spans(section.words, size, overlap):
            drafts.append(_Draft(section.title, section.pages[start], section.words[start:end]))
    _merge_back(drafts, carry)
    return _to_chunks(paper_id, drafts, "body", start_ordinal)


def chunk_text(
    paper_id: str,
    text: str,
    kind: str,
    chunk_words: int,
    overlap: int,
    start_ordinal: int,
    section: str | None = None,
) -> list[Chunk]:
    """Passages of a short text such as an abstract or a list's description: usually one.

    >>> chunk_text("2407.08608", abstract, "abstract", 180, 30, start_ordinal=0)
    """
    size, overlap = _sizes(chunk_words, overlap)
    words = text.split()
    drafts = [
        _Draft(section, None, words[start:end]) for start, end in _spans(words, size, overlap)
    ]
    return _to_chunks(paper_id, drafts, kind, start_ordinal)


def _sections(pages: Sequence[PageText]) -> Iterator[_Section]:
    """The paper cut at its headings; sections in the bibliography come with indexed=False."""
    outline = _Outline()
    current = _Section(title=None)
    running = _running_lines(pages)
    for page in pages:
        for line in _body_lines(page.text, running):
            heading = _parse_heading(line)
            if heading is not None and outline.accept(heading):
                yield current
                current = _Section(heading.text, indexed=not outline.skipping)
                line = heading.text
            if current.indexed:
                current.add(line.split(), page.page)
    yield current


def _running_lines(pages: Sequence[PageText]) -> frozenset[str]:
    """Lines at the top or bottom of many pages: running heads, footers and page numbers."""
    if len(pages) < _RUNNING_MIN_PAGES:
        return frozenset()
    counts: Counter[str] = Counter()
    for page in pages:
        lines = page.text.splitlines()
        counts.update({_running_key(lines[index]) for index in _edge_indexes(lines)})
    return frozenset(key for key, count in counts.items() if count >= _RUNNING_MIN_PAGES)


def _body_lines(text: str, running: frozenset[str]) -> list[str]:
    lines = text.splitlines()
    if not running:
        return lines
    edges = _edge_indexes(lines)
    return [
        line
        for index, line in enumerate(lines)
        if index not in edges or _running_key(line) not in running
    ]


def _edge_indexes(lines: list[str]) -> set[int]:
    """The first two and last two non-blank lines of a page."""
    filled = [index for index, line in enumerate(lines) if line.strip()]
    return set(filled[:2] + filled[-2:])


def _running_key(line: str) -> str:
    """A line with its numbers blanked: "Page 3 of 9" and "Page 4 of 9" are the same line."""
    return _DIGITS.sub("#", " ".join(line.split()).lower())


def _merge_back(drafts: list[_Draft], section: _Section | None) -> None:
    """Append a too-short section to the passage before it (or keep it, if it is alone)."""
    if section is None or not section.words:
        return
    if drafts:
        drafts[-1].words.extend(section.words)
    else:
        drafts.append(_Draft(section.title, section.pages[0], section.words))


def _spans(words: list[str], size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) word ranges of about `size` words, neighbours sharing `overlap` words."""
    spans: list[tuple[int, int]] = []
    start, total = 0, len(words)
    while start < total:
        end = total if total - start <= size else _break_point(words, start, size)
        if total - end < MIN_WORDS:
            end = total  # a tail this short joins this passage instead of making its own
        spans.append((start, end))
        start = total if end == total else end - overlap
    return spans


def _break_point(words: list[str], start: int, size: int) -> int:
    """The last sentence end in the final quarter of a full-size passage, or its full size."""
    target = start + size
    for end in range(target, start + max(1, size * 3 // 4) - 1, -1):
        if _ends_sentence(words[end - 1], words[end]):
            return end
    return target


def _ends_sentence(word: str, next_word: str) -> bool:
    core = word.rstrip(_CLOSERS)
    if not core or core[-1] not in ".!?":
        return False
    if core.lower() in _ABBREVIATIONS or _INITIAL.fullmatch(core):
        return False
    return not next_word[0].islower()


def _is_broken_word(word: str, next_word: str) -> bool:
    return len(word) > 1 and word[-1] == "-" and word[-2].isalpha() and next_word[0].islower()


def _sizes(chunk_words: int, overlap: int) -> tuple[int, int]:
    if chunk_words < 1:
        raise ValueError(f"chunk_words must be at least 1, not {chunk_words}")
    return chunk_words, max(0, min(overlap, chunk_words // 2))


def _to_chunks(paper_id: str, drafts: list[_Draft], kind: str, start_ordinal: int) -> list[Chunk]:
    return [
        Chunk(paper_id, start_ordinal + n, kind, " ".join(d.words), d.section, d.page)
        for n, d in enumerate(drafts)
    ]
