from __future__ import annotations

import pytest

from assistant.fusion import Fusion, dense_weight, fuse


def test_dense_weight_follows_the_share_of_latin_letters() -> None:
    assert dense_weight("how does LoRA work") == 1.0
    assert dense_weight("") == 1.0
    mixed = dense_weight("LoRAの仕組みは？")
    assert 0.3 < mixed < 0.7
    assert dense_weight("注意機構の高速化") == 0.0


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
