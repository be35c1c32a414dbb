"""Katakana and acronyms in a question find the paper names they stand for."""

from __future__ import annotations

import time

import pytest

from assistant.names import (
    NameIndex,
    NameLexicon,
    acronym_matches,
    english_keys,
    katakana_key,
)

PAPERS = [
    ("2407.07071", "Lookback Lens", "A detector for contextual hallucinations."),
    ("2407.07061", "Internet of Agents: Weaving a Web of Heterogeneous Agents", "Agents team up."),
    ("2401.04088", "Mixtral of Experts", "A sparse mixture-of-experts model."),
    ("2310.06825", "Mistral 7B", "A 7B model with sliding-window attention."),
    ("2302.05543", "Adding Conditional Control to Text-to-Image Diffusion Models (ControlNet)", ""),
    ("2207.12598", "Classifier-Free Diffusion Guidance", "Guidance without a classifier."),
    ("2212.08073", "Constitutional AI", "Harmlessness from AI feedback."),
    ("2402.14740", "Back to Basics", "REINFORCE Leave-One-Out (RLOO) beats PPO."),
    *[(f"0000.000{i}", f"Paper {i}", "a model of attention with a transformer") for i in range(9)],
]


@pytest.fixture(scope="module")
def names() -> NameIndex:
    return NameIndex.build(PAPERS)


@pytest.mark.parametrize(
    ("katakana", "english"),
    [
        ("ルックバック", "lookback"),
        ("フラッシュアテンション", "flashattention"),
        ("ミクストラル", "mixtral"),
        ("マンバ", "mamba"),
        ("ジェマ", "gemma"),
        ("チンチラ", "chinchilla"),
        ("トランスフォーマー", "transformer"),
    ],
)
def test_katakana_and_its_english_source_sound_the_same(katakana: str, english: str) -> None:
    assert katakana_key(katakana) in english_keys(english)


def test_a_katakana_name_finds_the_title_it_spells(names: NameIndex) -> None:
    assert names.expand("ルックバック・レンズって何？") == ["Lookback Lens"]
    assert names.expand("コントロールネットのゼロ畳み込み") == ["ControlNet"]


def test_similar_names_are_told_apart(names: NameIndex) -> None:
    assert names.expand("ミクストラルのエキスパート数") == ["Mixtral"]
    assert names.expand("ミストラルの窓アテンション") == ["Mistral"]


def test_an_everyday_loanword_is_left_to_the_embedding_model(names: NameIndex) -> None:
    # model, attention and transformer are in most papers: common vocabulary, not names
    assert names.expand("モデルのアテンションとトランスフォーマー") == []


@pytest.mark.parametrize(
    ("question", "phrase"),
    [
        ("IoAで異なるエージェントはどう協調する？", "Internet of Agents"),
        ("CFGの強さの決め方", "Classifier Free Diffusion Guidance"),
        ("CAIの教師ありフェーズ", "Constitutional AI"),
    ],
)
def test_an_acronym_finds_the_title_it_abbreviates(
    names: NameIndex, question: str, phrase: str
) -> None:
    assert names.expand(question) == [phrase]


def test_an_acronym_the_papers_spell_out_is_left_to_bm25(names: NameIndex) -> None:
    assert names.expand("RLOOとPPOの違い") == []


def test_a_generic_acronym_names_no_paper() -> None:
    papers = [(str(i), f"Mixture of Experts {i}", "") for i in range(4)]
    assert NameIndex.build(papers).expand("MoEの利点") == []


def test_acronym_matching_rules() -> None:
    assert acronym_matches("IoA", ["Internet", "of", "Agents"])
    assert acronym_matches("CFG", ["Classifier", "Free", "Diffusion", "Guidance"])
    assert acronym_matches("S2A", ["System", "2", "Attention"])
    assert not acronym_matches("BN", ["Batch", "Renormalization", "Network"])  # 2 letters: no skip
    assert not acronym_matches("XYZ", ["Internet", "of", "Agents"])


def test_english_questions_are_not_expanded(names: NameIndex) -> None:
    assert names.expand("how does the lookback ratio detect hallucinations?") == []


def test_the_lexicon_is_rebuilt_when_the_catalog_changes() -> None:
    papers = [("1", "Lookback Lens", "")]
    version = [1]
    lexicon = NameLexicon(lambda: list(papers), lambda: version[0])
    assert lexicon().expand("IoAとは") == []
    papers.append(("2", "Internet of Agents", ""))
    assert lexicon().expand("IoAとは") == []  # same version: the cached index
    version[0] = 2
    assert lexicon().expand("IoAとは") == ["Internet of Agents"]


def test_hyphenated_names_and_generic_acronyms_are_not_expanded() -> None:
    names = NameIndex.build(
        [
            ("1", "Segment Anything", ""),
            ("2", "Lost in the Middle", ""),
            ("3", "Mixtral of Experts", ""),
        ]
    )
    assert names.expand("Segment Anything SA-1B") == []  # part of a name
    assert names.expand("a small LM that writes code") == []  # two letters, four words
    assert names.expand("MoEの利点") == []  # an acronym of the trade


def test_acronyms_are_looked_up_by_first_letter_with_the_same_results_as_a_full_scan() -> None:
    """At 100k papers a scan of every phrase took ~3 s a query; the index by first letter
    must find exactly what the scan finds, for every acronym the bench corpus can spell."""
    from pathlib import Path

    from assistant.models import PaperRecord
    from assistant.names import _initials
    from assistant.sources.potw import PotwSource

    root = Path(__file__).resolve().parent.parent / "bench" / "data"
    papers = [
        (r.paper_id, r.title or "", (r.listing.description if r.listing else None) or "")
        for name in ("corpus_potw.md", "corpus_extra.md")
        for r in PotwSource.from_location(root / name).read()
        if isinstance(r, PaperRecord)
    ]
    index = NameIndex.build(papers)
    acronyms = {"".join(c[0][0] for c in _initials(p)).upper() for _, _, p in index.phrases}
    acronyms |= {  # the same with a leading function word left out ("The ..." -> not T)
        "".join(c[0][0] for c in _initials(p[1:])).upper()
        for _, _, p in index.phrases
        if len(p) > 3 and "" in _initials(p)[0]
    }
    acronyms |= {"IoA", "CFG", "RLOO", "ToT", "LLM2", "FA3"}
    full = NameIndex.build(papers)
    full.by_initial = {"": list(range(len(full.phrases)))}  # one bucket: a full scan
    full.letters = [frozenset("abcdefghijklmnopqrstuvwxyz0123456789")] * len(full.phrases)

    def scan(acronym: str) -> list[str]:
        saved, full.by_initial = full.by_initial, {acronym[0].lower(): full.by_initial[""]}
        try:
            return full._find_acronym(acronym)
        finally:
            full.by_initial = saved

    assert len(papers) > 400 and len(acronyms) > 300
    assert any(index._match_acronym(a) for a in acronyms)
    for acronym in sorted(a for a in acronyms if a):
        assert index._match_acronym(acronym) == scan(acronym), acronym


def test_the_catalog_version_is_asked_at_most_every_max_age_seconds() -> None:
    asked: list[int] = []
    version = [1]

    def current() -> int:
        asked.append(version[0])
        return version[0]

    papers = [("1", "Internet of Agents", "")]
    lexicon = NameLexicon(lambda: list(papers), current, max_age=0.2)
    assert lexicon().expand("IoAとは") == ["Internet of Agents"]
    papers.append(("2", "Lookback Lens", "")), version.__setitem__(0, 2)
    for _ in range(50):
        lexicon()
    assert len(asked) == 1  # searches within max_age do not ask
    assert lexicon().expand("LLとは") == []  # not seen yet
    time.sleep(0.25)
    assert lexicon().expand("LLとは") == ["Lookback Lens"] and len(asked) == 2  # rebuilt
    assert lexicon().papers == 2
