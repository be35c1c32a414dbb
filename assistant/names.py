"""Paper names written another way: katakana (ルックバック・レンズ) and acronyms (IoA).

Japanese questions often name a paper in katakana, or by an acronym that its title never
spells out. BM25 cannot match either against English text, and a multilingual embedding
model only knows the names it saw in training. `NameIndex` holds the words and phrases of
the stored papers' titles and descriptions and finds, for a question, the Latin words it
refers to, so that search can add them to its query:

>>> names = NameIndex.build([("2407.07071", "Lookback Lens", "")])
>>> names.expand("ルックバック・レンズって何？")
['Lookback Lens']

Katakana is matched by sound, not spelling: both sides are reduced to a consonant skeleton
(ルックバック -> r k b k, "lookback" -> l=r k b k) and compared with an edit distance of at
most one (two for long names, none for short ones; s/z and j/z cost half). Words that many
papers use (model, attention) are common vocabulary: a katakana word that sounds like one
is an ordinary loanword, left to the embedding model. Acronyms match the initials of a
title's words in order (function words may count or not, hyphenated parts count, an
acronym inside the title counts letter by letter, and one other word may be skipped):
IoA -> "Internet of Agents", CFG -> "Classifier-Free (Diffusion) Guidance".
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_EXPANSIONS = 4  # phrases added to one query
MAX_ACRONYM_PAPERS = 2  # an acronym matching more papers than this is generic (MoE, RL)
COMMON_SHARE = 0.02  # a word in more than 2% of the papers is common vocabulary...
COMMON_MIN_PAPERS = 2  # ... and in more than 2 of them, however small the corpus
VOWEL_WEIGHT = 0.5  # a vowel edit counts half a consonant edit

_FUNCTION_WORDS = frozenset(
    "a an and as at by for from in into is of on or the to via vs with without".split()
)
# Acronyms of the trade, which name a field or a kind of model, not one paper.
_KNOWN_WORDS = frozenset(
    """ai api apis cnn cot cpu gan gpu gpus gpt kv llm llms lm lms ml mllm moe nlp ok qa rag
    rl rlhf rnn sft ssm ssms vlm vlms""".split()
)
_KATAKANA_RUN = re.compile(r"[\u30a1-\u30fa\u30fc\u30fb\uff66-\uff9f]+")
# A token of 2-6 letters and digits with two capitals (or a capital and a digit), not part of
# a longer name (SA-1B, MT-Bench, T5-XXL are names, not acronyms to expand).
_ACRONYM = re.compile(
    r"(?<![A-Za-z0-9_.-])(?=[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z0-9])[A-Za-z0-9]{2,6}(?![A-Za-z0-9_-])"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_CAPITALIZED_PHRASE = re.compile(
    r"(?:[A-Z][\w-]*(?:\s+(?:of|and|for|the|to|in|with)\s+|\s+))+[A-Z][\w-]*"
)

# -- katakana -> sounds --------------------------------------------------------------------

_ROWS = {
    "k": "カキクケコ",
    "g": "ガギグゲゴ",
    "s": "サスセソシ",
    "z": "ザズゼゾ",
    "j": "ジヂ",
    "t": "タテトツ",
    "c": "チ",
    "d": "ダデドヅ",
    "n": "ナニヌネノ",
    "h": "ハヒヘホ",
    "f": "フ",
    "b": "バビブベボヴ",
    "p": "パピプペポ",
    "m": "マミムメモ",
    "r": "ラリルレロ",
    "": "アイウエオヤユヨワヲァィゥェォャュョヮッー・",
    "N": "ン",
}
_SMALL = "ァィゥェォャュョヮ"
_KANA_CONSONANT = {kana: sound for sound, row in _ROWS.items() for kana in row}
_VOWEL_OF = {
    **{k: "a" for k in "アカガサザタダナハバパマヤラワァャヮ"},
    **{k: "i" for k in "イキギシジチヂニヒビピミリィ"},
    **{k: "u" for k in "ウクグスズツヅヌフブプムユルゥュヴ"},
    **{k: "e" for k in "エケゲセゼテデネヘベペメレェ"},
    **{k: "o" for k in "オコゴソゾトドノホボポモヨロヲォョ"},
}


def katakana_key(text: str) -> str:
    """The consonant skeleton of a katakana word: フラッシュアテンション -> 'frstnsn'."""
    sounds = [_KANA_CONSONANT.get(ch, "?") for ch in unicodedata.normalize("NFKC", text)]
    out = []
    for i, sound in enumerate(sounds):
        if sound == "N":  # ン sounds m before b, p, m
            following = next((s for s in sounds[i + 1 :] if s), "")
            sound = "m" if following in ("b", "p", "m") else "n"
        out.append(sound)
    return _collapse("".join(out))


def katakana_vowels(text: str) -> str:
    """The vowels of a katakana word, to tell apart names with the same consonants
    (a small kana replaces the vowel before it: ジャ is ja)."""
    vowels: list[str] = []
    for ch in unicodedata.normalize("NFKC", text):
        vowel = _VOWEL_OF.get(ch, "")
        if ch in _SMALL and vowels:
            vowels[-1] = vowel
        elif vowel:
            vowels.append(vowel)
    return _collapse("".join(vowels))


# -- English spelling -> sounds ------------------------------------------------------------

# Digraphs become upper-case placeholders first, so later rules do not rewrite them.
_SPELLING = (
    (r"tion|ssion|sion", "SN"),
    (r"ture", "CR"),
    (r"ph", "F"),
    (r"th|sh", "S"),
    (r"t?ch", "C"),
    (r"ck", "K"),
    (r"wh", "W"),
    (r"gh", ""),
    (r"^kn", "N"),
    (r"qu|q", "K"),
    (r"x", "KS"),
    (r"c(?=[eiy])", "S"),
    (r"c", "K"),
    (r"v", "B"),
)


def english_keys(word: str) -> set[str]:
    """Consonant skeletons a Japanese speaker may hear in an English word.

    'lookback' -> {'rkbk'}; 'gemma' -> {'jm', 'gm'} (soft or hard g); 'orca' -> {'rk', 'k'}
    (an r before a consonant is often silent in katakana: transformer -> トランスフォーマー).
    """
    spelled = word.lower()
    variants = {spelled}
    if re.search(r"g(?=[eiy])", spelled):
        variants.add(re.sub(r"g(?=[eiy])", "j", spelled))
    keys: set[str] = set()
    for variant in variants:
        for pattern, sound in _SPELLING:
            variant = re.sub(pattern, sound, variant)
        for drop_r in (False, True):
            text = re.sub(r"r(?![aeiouy])", "", variant) if drop_r else variant
            text = text.replace("l", "r").replace("y", "").lower()
            text = re.sub(r"(?<=[bcdfgjkmnprstz])h", "", text)  # h after a consonant is silent
            skeleton = re.sub(r"[^bcdfghjkmnprstz]", "", text)
            skeleton = re.sub(r"n(?=[bpm])", "m", _collapse(skeleton))
            keys.add(_collapse(skeleton))
    return {k for k in keys if k}


def english_vowels(word: str) -> str:
    """The vowels a word is likely to keep in katakana: -er/-or become a long a (ー), a
    silent final e goes, y is i."""
    text = re.sub(r"[eo]r(?![aeiouy])", "a", word.lower())
    text = re.sub(r"(?<=[^aeiou])e$", "", text)
    return _collapse(re.sub(r"[^aeiou]", "", text.replace("y", "i")))


def vowel_distance(a: str, b: str) -> float:
    """Edit distance of vowel strings; a u costs little (katakana adds one after most
    consonants: ル in オルカ)."""
    previous = [0.0]
    for ch in b:
        previous.append(previous[-1] + (0.3 if ch == "u" else 1.0))
    for ca in a:
        gap = 0.3 if ca == "u" else 1.0
        current = [previous[0] + gap]
        for j, cb in enumerate(b, start=1):
            gap_b = 0.3 if cb == "u" else 1.0
            current.append(
                min(previous[j] + gap, current[j - 1] + gap_b, previous[j - 1] + (ca != cb))
            )
        previous = current
    return previous[-1]


def _collapse(text: str) -> str:
    return re.sub(r"(.)\1+", r"\1", text)


# -- comparing skeletons -------------------------------------------------------------------

_NEAR = frozenset({("s", "z"), ("z", "s"), ("j", "z"), ("z", "j")})


def sound_distance(a: str, b: str) -> float:
    """Edit distance where s/z and j/z substitutions cost half an edit."""
    previous = [float(i) for i in range(len(b) + 1)]
    for i, ca in enumerate(a, start=1):
        current = [float(i)]
        for j, cb in enumerate(b, start=1):
            swap = 0.0 if ca == cb else 0.5 if (ca, cb) in _NEAR else 1.0
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + swap))
        previous = current
    return previous[-1]


def allowed_distance(key: str) -> float:
    """Edits tolerated: half a near one for short skeletons, more for long ones."""
    return 0.5 if len(key) <= 3 else 1.0 if len(key) <= 7 else 2.0


def _deletions(key: str, depth: int) -> set[str]:
    found = {key}
    frontier = {key}
    for _ in range(depth):
        frontier = {k[:i] + k[i + 1 :] for k in frontier for i in range(len(k))}
        found |= frontier
    return found


def _depth(key: str) -> int:
    return max(1, int(allowed_distance(key)))


def _splits(text: str) -> Iterator[tuple[str, str]]:
    """Two-part splits of a katakana word, longest first part first, each part with three
    consonants or more, never before a small kana or a long-vowel mark."""
    for cut in range(len(text) - 2, 1, -1):
        head, tail = text[:cut], text[cut:]
        if (
            tail[0] not in "ーッャュョァィゥェォ"
            and min(len(katakana_key(head)), len(katakana_key(tail))) >= 2
        ):
            yield head, tail


# -- acronyms ------------------------------------------------------------------------------


def _initials(words: Sequence[str]) -> list[list[str]]:
    """Per word, the letters it may contribute to an acronym ('' = left out)."""
    options = []
    for word in words:
        lower = word.lower()
        choices = [word] if word.isdigit() else [lower[0]]
        if sum(c.isupper() for c in word) >= 2:  # "AI" counts as "ai", "LLMs" as "llm"
            choices.append("".join(c for c in word if c.isupper() or c.isdigit()).lower())
        if lower in _FUNCTION_WORDS:
            choices.append("")
        options.append(choices)
    return options


def acronym_matches(acronym: str, words: Sequence[str], skips: int = 1) -> bool:
    """Whether `acronym` spells the initials of `words` in order: function words may be
    left out, and `skips` other inner words when the acronym has three letters or more.

    >>> acronym_matches("CFG", ["Classifier", "Free", "Diffusion", "Guidance"])
    True
    """
    target = acronym.lower()
    options = _initials(words)
    if len(target) < 3:  # two letters say little: two words, no word left out (BN, LN)
        options = [[c for c in choices if c] for choices in options]
        skips = 0
    allowed = skips

    def match(i: int, pos: int, skipped: int) -> bool:
        if i == len(options):
            return pos == len(target)
        if 0 < i < len(options) - 1 and skipped < allowed and match(i + 1, pos, skipped + 1):
            return True
        return any(
            target.startswith(choice, pos) and match(i + 1, pos + len(choice), skipped)
            for choice in options[i]
        )

    return match(0, 0, 0)


def _first_letters(options: Sequence[Sequence[str]]) -> set[str]:
    """The letters an acronym of a phrase may start with, from its words' `_initials`
    (see `acronym_matches`): the first word's initials, and the next word's too while the
    words before it are function words, which an acronym may leave out."""
    letters: set[str] = set()
    for choices in options:
        letters.update(choice[0] for choice in choices if choice)
        if "" not in choices:
            break
    return letters


def _phrases(title: str, description: str) -> Iterator[tuple[bool, list[str]]]:
    """Word sequences an acronym may abbreviate, and whether they come from the title:
    the title before its colon, the whole title, its parenthesized parts, and the
    capitalized phrases of the description."""
    for part in (title.split(":")[0], title, *re.findall(r"\(([^)]*)\)", title)):
        words = _split_words(part)
        if words:
            yield True, words
    for phrase in _CAPITALIZED_PHRASE.findall(description):
        yield False, _split_words(phrase)


def _split_words(text: str) -> list[str]:
    return [part for word in _WORD.findall(text) for part in word.split("-") if part]


def _words_of(text: str) -> tuple[set[str], set[str]]:
    """Distinct words of a text (3+ letters), and the camel-case fragments of its words
    (Flash, Attention in FlashAttention) that do not stand on their own."""
    whole, parts = set(), set()
    for word in _WORD.findall(text):
        whole.add(word)
        whole.update(p for p in re.split(r"[-']", word) if p)
        parts.update(_CAMEL.findall(word))

    def keep(w: str) -> bool:
        return len(w) >= 3 and w.lower() not in _FUNCTION_WORDS and not w.isdigit()

    return {w for w in whole if keep(w)}, {w for w in parts - whole if keep(w)}


# -- the index -----------------------------------------------------------------------------


@dataclass
class _Candidate:
    word: str
    in_title: bool
    fragment: bool
    vowels: str


@dataclass
class NameIndex:
    """Latin words and phrases of the stored papers, findable by sound and by acronym."""

    papers: int = 0
    frequency: dict[str, int] = field(default_factory=dict)  # lower-cased word -> papers
    words: dict[str, list[_Candidate]] = field(default_factory=lambda: defaultdict(list))
    deletions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    phrases: list[tuple[str, bool, list[str]]] = field(default_factory=list)
    # the phrases an acronym's first letter may start (an index into `phrases`), and the
    # acronyms already resolved: a query scans a few hundred phrases, not every paper's
    by_initial: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    letters: list[frozenset[str]] = field(default_factory=list)  # per phrase: what it may spell
    acronyms: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, papers: Iterable[tuple[str, str, str]]) -> NameIndex:
        """From (paper id, title, description) of every stored paper."""
        index = cls()
        frequency: dict[str, int] = defaultdict(int)
        forms: dict[str, str] = {}
        in_titles: set[str] = set()
        whole_words: set[str] = set()
        for paper_id, title, description in papers:
            index.papers += 1
            title_whole, title_parts = _words_of(title)
            text_whole, text_parts = _words_of(f"{title} {description}")
            for word in text_whole | text_parts:
                frequency[word.lower()] += 1
                forms.setdefault(word.lower(), word)
            whole_words.update(w.lower() for w in text_whole)
            in_titles.update(w.lower() for w in title_whole | title_parts)
            index._add_phrases(paper_id, title, description)
        index.frequency = dict(frequency)
        for lower, word in forms.items():
            if not word.isupper():  # acronyms are read letter by letter, not as katakana
                vowels = english_vowels(word)
                index._add_word(
                    _Candidate(word, lower in in_titles, lower not in whole_words, vowels)
                )
        return index

    def _add_phrases(self, paper_id: str, title: str, description: str) -> None:
        seen = set()
        for in_title, phrase in _phrases(title, description):
            if 2 <= len(phrase) <= 8 and tuple(phrase) not in seen:
                seen.add(tuple(phrase))
                options = _initials(phrase)
                for initial in _first_letters(options):
                    self.by_initial[initial].append(len(self.phrases))
                self.letters.append(frozenset("".join(c for o in options for c in o)))
                self.phrases.append((paper_id, in_title, phrase))

    def _add_word(self, candidate: _Candidate) -> None:
        for key in english_keys(candidate.word):
            if len(key) >= 2:
                self.words[key].append(candidate)
                for deleted in _deletions(key, _depth(key)):
                    self.deletions[deleted].add(key)

    @property
    def common_above(self) -> int:
        """Words in more papers than this are common vocabulary, not names."""
        return max(COMMON_MIN_PAPERS, round(self.papers * COMMON_SHARE))

    def expand(self, query: str) -> list[str]:
        """Latin words and phrases the query's katakana and acronyms stand for."""
        found: list[str] = []
        for run in _KATAKANA_RUN.findall(query):
            words = [w for part in run.split("・") if part for w in self._match_katakana(part)]
            if words:
                found.append(" ".join(words))
        for acronym in dict.fromkeys(_ACRONYM.findall(query)):
            found.extend(self._match_acronym(acronym))
        return list(dict.fromkeys(found))[:MAX_EXPANSIONS]

    def _match_katakana(self, text: str) -> list[str]:
        """The name a katakana word sounds like; failing that, the best split in two."""
        whole = self._lookup(text) if len(text) >= 2 else None
        if whole is not None or len(text) < 6:
            return whole or []
        for head, tail in _splits(text):
            first, second = self._lookup(head), self._lookup(tail)
            if first and second:
                return first + second
        return []

    def _lookup(self, text: str) -> list[str] | None:
        """The name that sounds like a katakana word: [] when it sounds like common
        vocabulary (a loanword such as モデル), None when it sounds like nothing known."""
        key = katakana_key(text)
        if len(key) < 2:
            return None
        limit = allowed_distance(key)
        keys: set[str] = set()
        for deleted in _deletions(key, _depth(key)):
            keys |= self.deletions.get(deleted, set())
        vowels = katakana_vowels(text)
        scored = []
        for k in keys:
            consonants = sound_distance(key, k)
            if consonants <= limit:
                for c in self.words[k]:
                    vowel = VOWEL_WEIGHT * vowel_distance(vowels, c.vowels)
                    scored.append((consonants + vowel, consonants, c))
        if not scored:
            return None
        best, exact = min((score, consonants) for score, consonants, _ in scored)
        found = [c for score, _, c in scored if score <= best + 0.25]
        if any(self.frequency.get(c.word.lower(), 0) > self.common_above for c in found):
            return []  # a loanword of everyday vocabulary
        if len(key) <= 2:  # two consonants say little: a name in a title, vowels alike
            found = [c for c in found if c.in_title and not c.fragment] if best <= 0.3 else []
        if best > limit + 0.5 or (exact > 0 and self._compound_of_common(text)):
            return None
        found.sort(
            key=lambda c: (c.fragment, not c.in_title, -self.frequency.get(c.word.lower(), 0))
        )
        return [found[0].word] if found else None

    def _compound_of_common(self, text: str) -> bool:
        """Whether the word splits into two everyday loanwords (モデル + サイズ)."""
        return len(text) >= 5 and any(
            self._lookup_common(head) and self._lookup_common(tail) for head, tail in _splits(text)
        )

    def _lookup_common(self, text: str) -> bool:
        key = katakana_key(text)
        if len(key) < 2:
            return False
        keys: set[str] = set()
        for deleted in _deletions(key, _depth(key)):
            keys |= self.deletions.get(deleted, set())
        return any(
            self.frequency.get(c.word.lower(), 0) > self.common_above
            for k in keys
            if sound_distance(key, k) <= allowed_distance(key)
            for c in self.words[k]
        )

    def _match_acronym(self, acronym: str) -> list[str]:
        """Phrases an acronym abbreviates, unless the papers use it as a word themselves
        (BM25 finds it then) or it fits more than a couple of papers (MoE, RL)."""
        found = self.acronyms.get(acronym)
        if found is None:
            found = self.acronyms[acronym] = self._find_acronym(acronym)
        return found

    def _find_acronym(self, acronym: str) -> list[str]:
        lower = acronym.lower()
        if acronym.isdigit() or lower in _KNOWN_WORDS or lower in self.frequency:
            return []
        letters = len(acronym) - sum(c.isdigit() for c in acronym)
        spelled = set(lower)  # every letter of an acronym is some word's initial(s)
        matches = [
            (paper_id, in_title, " ".join(phrase))
            for paper_id, in_title, phrase in (
                self.phrases[i]
                for i in self.by_initial.get(lower[0], ())
                if spelled <= self.letters[i]
            )
            if (in_title or letters >= 3)
            and len(phrase) >= letters - 1
            and acronym_matches(acronym, phrase)
        ]
        if any(in_title for _, in_title, _ in matches):  # a title says it best
            matches = [m for m in matches if m[1]]
        if len({paper_id for paper_id, _, _ in matches}) > MAX_ACRONYM_PAPERS:
            return []
        return list(dict.fromkeys(phrase for _, _, phrase in matches))


class NameLexicon:
    """The `NameIndex` of the stored papers, rebuilt when they change.

    `papers` lists (paper id, title, description) of every stored paper; `version`
    changes whenever papers are added or edited (the store's catalog version). It is
    asked at most every `max_age` seconds: at 100k papers it costs ~45 ms, more than the
    rest of a search, so a paper stored meanwhile is found by its acronym a few seconds
    later. Call the lexicon to get the current index; searches on other threads share it.

    >>> names = NameLexicon(lambda: [("2407.07061", "Internet of Agents", "")], lambda: 1)
    >>> names().expand("IoAとは")
    ['Internet of Agents']
    """

    def __init__(
        self,
        papers: Callable[[], Iterable[tuple[str, str, str]]],
        version: Callable[[], Hashable],
        max_age: float = 0.0,
    ) -> None:
        self._papers = papers
        self._version = version
        self._max_age = max_age
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self._built: tuple[Hashable, NameIndex] | None = None

    def __call__(self) -> NameIndex:
        built, now = self._built, time.monotonic()
        if built is not None and now - self._checked < self._max_age:
            return built[1]
        version = self._version()
        self._checked = now
        with self._lock:
            if self._built is None or self._built[0] != version:
                started = time.perf_counter()
                index = NameIndex.build(self._papers())
                log.info(
                    "name index of %d papers built in %.2f s",
                    index.papers,
                    time.perf_counter() - started,
                )
                self._built = (version, index)
            return self._built[1]
