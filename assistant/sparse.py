"""Our own BM25-style sparse vectors: a tokenizer that splits Latin from CJK script.

Latin text becomes lower-cased words (hyphenated names kept whole *and* split, camel
case split too, light plural stripping); CJK text becomes character bigrams. So
"FlashAttention-3は" yields `flashattention-3`, `flashattention`, `flash`, `attention`,
`3` and no Japanese noise glued to the name. Qdrant applies IDF (`Modifier.IDF`); we
store BM25's saturated, length-normalised term frequency for documents and 1.0 per
query term.

>>> tokenize("FlashAttention-3の貢献")
['flashattention-3', 'flashattention', 'flash', 'attention', '3', 'の貢', '貢献']
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

K1 = 1.2
B = 0.75
AVERAGE_LENGTH = 120.0

_CJK = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\u31f0-\u31ff\uff66-\uff9f"  # katakana extensions, half-width katakana
)
_TOKENS = re.compile(rf"(?P<latin>[^\W_]+(?:[-'.+][^\W_]+)*)|(?P<cjk>[{_CJK}]+)")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_CJK_SPLIT = re.compile(rf"([{_CJK}]+)")
# Words seen before are looked up, not derived again: text follows Zipf's law, so a
# passage's words are mostly in the cache (each entry is a word and its few terms).
WORD_CACHE = 1 << 16
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_STOPWORDS = frozenset(
    """a an and are as at be been but by can do does for from has have how i in into is it
    its of on or our than that the their them then there these they this to was we what
    when where which while who why will with you your""".split()
)


def _stem(word: str) -> str:
    """Light English plural stripping: 'models' -> 'model', 'studies' -> 'study'."""
    if len(word) > 4 and word.isalpha():
        if word.endswith("ies"):
            return word[:-3] + "y"
        if word.endswith("s") and not word.endswith(("ss", "us", "is")):
            return word[:-1]
    return word


def _latin_terms(raw: str) -> list[str]:
    raw = re.sub(r"'s$", "", raw.strip("'."))
    lowered = raw.lower()
    terms = [_stem(lowered)]
    parts = [p for p in re.split(r"[-'.+]", raw) if p]
    for part in parts:
        if len(parts) > 1 and (len(part) > 1 or part.isdigit()):
            terms.append(_stem(part.lower()))
        camel = _CAMEL.findall(part)
        # "FlashAttention" -> flash, attention; but not "LoRA" -> lo, ra.
        if len(camel) > 1 and all(len(c) >= 3 for c in camel):
            terms.extend(_stem(c.lower()) for c in camel)
    return [t for t in dict.fromkeys(terms) if t and t not in _STOPWORDS]


def _cjk_terms(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def tokenize(text: str) -> list[str]:
    """Split text into index terms (see the module docstring)."""
    terms: list[str] = []
    for latin, cjk in _TOKENS.findall(unicodedata.normalize("NFKC", text)):
        terms.extend(_word_terms(latin) if latin else _cjk_terms(cjk))
    return terms


@lru_cache(maxsize=WORD_CACHE)
def _word_terms(word: str) -> tuple[str, ...]:
    """The terms of one Latin token (\\w also matches CJK: a mixed run is split at
    script changes)."""
    terms: list[str] = []
    for piece in _CJK_SPLIT.split(word):
        if not piece:
            continue
        if _CJK_RUN.fullmatch(piece):
            terms.extend(_cjk_terms(piece))
        else:
            terms.extend(_latin_terms(piece))
    return tuple(terms)


@lru_cache(maxsize=WORD_CACHE)
def _word_indices(word: str) -> tuple[int, ...]:
    return tuple(term_index(t) for t in _word_terms(word))


def _term_indices(text: str) -> list[int]:
    """`term_index` of each term of `tokenize(text)`, in order."""
    indices: list[int] = []
    for latin, cjk in _TOKENS.findall(unicodedata.normalize("NFKC", text)):
        if latin:
            indices.extend(_word_indices(latin))
        else:
            indices.extend(term_index(t) for t in _cjk_terms(cjk))
    return indices


def term_index(term: str) -> int:
    """A stable 32-bit index for a term (Qdrant sparse indices are uint32)."""
    return zlib.crc32(term.encode("utf-8"))


@dataclass(frozen=True)
class SparseVector:
    """Parallel lists of term indices and weights."""

    indices: list[int]
    values: list[float]


def document_vector(text: str) -> SparseVector:
    """BM25 term-frequency weights for a passage (IDF is applied by the index)."""
    terms = _term_indices(text)
    counts = Counter(terms)
    norm = K1 * (1 - B + B * len(terms) / AVERAGE_LENGTH)
    indices = sorted(counts)
    values = [counts[i] * (K1 + 1) / (counts[i] + norm) for i in indices]
    return SparseVector(indices, values)


def query_vector(text: str) -> SparseVector:
    """One unit weight per distinct query term."""
    indices = sorted(set(_term_indices(text)))
    return SparseVector(indices, [1.0] * len(indices))
