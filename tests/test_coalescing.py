"""Concurrent query embeddings share model calls, and each caller gets its own vectors."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from assistant.coalescing import CoalescingEmbedder
from assistant.embedding import Role
from tests.fakes.embedder import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    """Takes `seconds` a call, like a model's fixed cost per forward pass."""

    def __init__(self, seconds: float = 0.05) -> None:
        super().__init__()
        self.seconds = seconds
        self.fail_on: str | None = None
        self.batches: list[tuple[str, list[str]]] = []

    def embed(self, texts: Sequence[str], role: str = "passage") -> list[list[float]]:
        time.sleep(self.seconds)
        self.batches.append((role, list(texts)))
        if self.fail_on in texts:
            raise RuntimeError("the model failed")
        return super().embed(texts, role)


def embed_at_once(
    embedder: CoalescingEmbedder, texts: list[str], roles: dict[str, Role] | None = None
) -> dict[str, object]:
    results: dict[str, object] = {}
    start = threading.Barrier(len(texts))

    def one(text: str) -> None:
        start.wait()
        try:
            results[text] = embedder.embed([text], role=(roles or {}).get(text, "query"))[0]
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


def test_queries_and_passages_are_never_embedded_in_one_call() -> None:
    """A model with roles (e5: `query: ` / `passage: `) embeds each call in one role, so
    concurrent callers of different roles go to different calls."""
    inner = SlowEmbedder()
    texts = [f"text {n}" for n in range(8)]
    roles: dict[str, Role] = {t: "query" if n % 2 else "passage" for n, t in enumerate(texts)}
    embed_at_once(CoalescingEmbedder(inner), texts, roles)
    assert sum(inner.calls) == 8 and len(inner.calls) <= 5
    assert all(roles[t] == role for role, batch in inner.batches for t in batch)
    assert len(inner.calls) < 8  # queued texts of one role still share calls
    assert CoalescingEmbedder(FakeEmbedder(multilingual=True)).multilingual
