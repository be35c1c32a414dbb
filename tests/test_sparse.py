from __future__ import annotations

from assistant.sparse import (
    AVERAGE_LENGTH,
    K1,
    B,
    document_vector,
    query_vector,
    term_index,
    tokenize,
)


def test_latin_names_are_split_from_attached_japanese() -> None:
    terms = tokenize("FlashAttention-3は何ですか？")
    assert "flashattention-3" in terms
    assert "flashattention" in terms
    assert not any("は" in t and t.isascii() for t in terms)
    assert "は何" in terms  # CJK becomes character bigrams


def test_cjk_is_indexed_as_bigrams() -> None:
    assert tokenize("長い系列") == ["長い", "い系", "系列"]
    assert tokenize("と") == ["と"]


def test_camel_case_and_hyphens_give_their_parts_but_not_noise() -> None:
    assert {"flash", "attention"} <= set(tokenize("FlashAttention"))
    assert tokenize("LoRA") == ["lora"]
    assert {"mixture-of-experts", "mixture", "expert"} <= set(tokenize("Mixture-of-Experts"))


def test_stopwords_plurals_and_fullwidth_are_normalised() -> None:
    assert tokenize("the models of the transformers") == ["model", "transformer"]
    assert tokenize("ＬｏＲＡ") == ["lora"]


def test_document_weights_saturate_and_queries_are_binary() -> None:
    once = document_vector("lora")
    many = document_vector("lora " * 20)
    assert once.indices == many.indices == [term_index("lora")]
    assert many.values[0] > once.values[0]
    assert many.values[0] < 20 * once.values[0]
    q = query_vector("LoRA LoRA adapters")
    assert sorted(q.values) == [1.0, 1.0]


def test_empty_text_has_no_terms() -> None:
    assert query_vector("  ?? ").indices == []


def test_document_vectors_from_cached_words_match_the_tokenizer() -> None:
    # Words are looked up in a cache after their first passage: a passage must weigh the
    # same terms (and as many) as tokenize() gives, whether its words are cached or not.
    passages = [
        "FlashAttention-3 speeds up attention; FlashAttention-3の貢献は大きい。",
        "The models' LoRA adapters, ＬｏＲＡ and QLoRA's studies of Mixture-of-Experts.",
        "GPT-4o-mini vs. Llama-3.1-8B: 12.5% fewer tokens, e.g. on MMLU-Pro 長い系列",
    ]
    for _ in range(2):  # cold, then warm
        for text in passages:
            terms = tokenize(text)
            counts = {term_index(t): terms.count(t) for t in terms}
            vector = document_vector(text)
            assert vector.indices == sorted(counts)
            norm = K1 * (1 - B + B * len(terms) / AVERAGE_LENGTH)
            weights = [counts[i] * (K1 + 1) / (counts[i] + norm) for i in vector.indices]
            assert vector.values == weights
            assert query_vector(text).indices == sorted(counts)
