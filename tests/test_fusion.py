from __future__ import annotations

import pytest

from assistant.fusion import Fusion, fuse, gated_sparse, hybrid_weights, latin_share


def test_latin_share_counts_letters_only() -> None:
    assert latin_share("how does LoRA work") == 1.0
    assert latin_share("") == 1.0
    assert 0.3 < latin_share("LoRAの仕組みは？") < 0.7
    assert latin_share("注意機構の高速化") == 0.0


def test_an_english_only_model_gets_no_say_on_a_question_all_in_japanese() -> None:
    assert hybrid_weights("注意機構の高速化", multilingual=False) == (0.0, 1.0)
    assert hybrid_weights("how does LoRA work", multilingual=False) == (1.0, 1.0)


def test_a_multilingual_model_keeps_its_vote_and_bm25_grows_with_latin_names() -> None:
    japanese = hybrid_weights("注意機構の高速化", multilingual=True)
    named = hybrid_weights("FlashAttention-3の新しさは？", multilingual=True)
    english = hybrid_weights("what is new in FlashAttention-3", multilingual=True)
    assert japanese[0] == named[0] == english[0] == 1.0
    assert 0 < japanese[1] < named[1] < english[1] < 1.0


@pytest.mark.parametrize("method", list(Fusion))
def test_agreement_wins_and_every_key_appears_once(method: Fusion) -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    sparse = [("b", 9.0), ("d", 3.0), ("b", 2.0)]
    fused = fuse([dense, sparse], weights=(1.0, 1.0), method=method)
    keys = [k for k, _ in fused]
    assert keys[0] == "b"
    assert sorted(keys) == ["a", "b", "c", "d"]


def test_dbsf_keeps_confidence_that_rrf_throws_away() -> None:
    # sparse is sure of "x" (a huge gap); dense mildly prefers "y"
    dense = [("y", 0.52), ("x", 0.50), ("z", 0.49), ("w", 0.48)]
    sparse = [("x", 30.0), ("y", 2.0), ("z", 1.9), ("w", 1.8)]
    assert fuse([dense, sparse], (1.0, 1.0), Fusion.DBSF)[0][0] == "x"


def test_a_zero_weight_silences_a_list() -> None:
    dense = [("noise", 0.9), ("paper", 0.1)]
    sparse = [("paper", 5.0), ("noise", 0.5)]
    for method in Fusion:
        assert fuse([dense, sparse], (0.0, 1.0), method)[0][0] == "paper"


def test_single_and_empty_lists() -> None:
    assert fuse([[("a", 1.0)], []], (1.0, 1.0)) == [("a", 1.0)]
    assert fuse([[], []], (1.0, 1.0)) == []


def test_bm25s_vote_shrinks_with_the_share_of_the_query_its_best_passage_covers() -> None:
    query = list(range(10))
    assert gated_sparse(1.0, 1.0, query, [0, 1, 2, 3]) == 1.0  # 40%: the full vote
    assert gated_sparse(1.0, 1.0, query, [0, 1, 99]) == 0.5  # 20%: half
    assert gated_sparse(1.0, 1.0, query, [99]) == 0.0  # nothing shared
    assert gated_sparse(1.0, 1.0, [], [99]) == 0.0


def test_the_gate_acts_on_the_latin_part_of_the_query_only() -> None:
    query, best = list(range(10)), [99]
    assert gated_sparse(1.0, 0.0, query, best) == 1.0  # all CJK: untouched
    assert gated_sparse(1.0, 0.3, query, best) == 0.7
    assert gated_sparse(0.6, 1.0, query, query) == 0.6
