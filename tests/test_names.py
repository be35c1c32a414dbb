"""Katakana and acronyms in a question find the paper names they stand for."""

from __future__ import annotations

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
