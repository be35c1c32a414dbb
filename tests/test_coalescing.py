"""Concurrent query embeddings share model calls, and each caller gets its own vectors."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from assistant.coalescing import CoalescingEmbedder
from tests.fakes.embedder import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    """Takes `seconds` a call, like a model's fixed cost per forward pass."""

    def __init__(self, seconds: float = 0.05) -> None:
        super().__init__()
        self.seconds = seconds
        self.fail_on: str | None = None

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        time.sleep(self.seconds)
        if self.fail_on in texts:
            raise RuntimeError("the model failed")
        return super().embed(texts)


def embed_at_once(embedder: CoalescingEmbedder, texts: list[str]) -> dict[str, object]:
    results: dict[str, object] = {}
    start = threading.Barrier(len(texts))

    def one(text: str) -> None:
        start.wait()
        try:
            results[text] = embedder.embed([text])[0]
        except RuntimeError as exc:
            results[text] = exc

    threads = [threading.Thread(target=one, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_eight_concurrent_queries_take_far_fewer_model_calls_and_get_their_own_vectors() -> None:
    inner = SlowEmbedder()
    texts = [f"query about topic {n}" for n in range(8)]
    results = embed_at_once(CoalescingEmbedder(inner), texts)
    assert len(inner.calls) <= 3 and sum(inner.calls) == 8
    reference = FakeEmbedder()
    assert all(results[t] == reference.embed([t])[0] for t in texts)


def test_a_lone_query_is_embedded_at_once_alone() -> None:
    inner = SlowEmbedder(seconds=0)
    embedder = CoalescingEmbedder(inner)
    assert embedder.embed(["one"]) == FakeEmbedder().embed(["one"])
    assert embedder.embed([]) == []
    assert inner.calls == [1] and embedder.name == inner.name


def test_a_failed_model_call_fails_its_callers_and_the_next_call_works() -> None:
    inner = SlowEmbedder()
    inner.fail_on = "poison"
    embedder = CoalescingEmbedder(inner, max_texts=1)  # one text a call: only its caller fails
    results = embed_at_once(embedder, ["poison", "fine a", "fine b"])
    assert isinstance(results["poison"], RuntimeError)
    assert isinstance(results["fine a"], list) and isinstance(results["fine b"], list)
    with pytest.raises(RuntimeError):
        embedder.embed(["poison"])
    assert embedder.embed(["fine c"]) == FakeEmbedder().embed(["fine c"])
