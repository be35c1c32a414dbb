"""The chat-model seam and the OpenAI embedder against a fake OpenAI server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from assistant.embedding import OpenAIEmbedder, build_embedder
from assistant.errors import ConfigError
from assistant.llm import (
    ChatMessage,
    LLMUnavailableError,
    OpenAIChatModel,
    build_chat_model,
    estimate_tokens,
)
from assistant.settings import EmbeddingSettings, LLMSettings, OpenAISettings
from tests.fakes.openai_server import FakeOpenAIServer

KEY = "sk-test-do-not-leak-4242"
SYSTEM = ChatMessage("system", "Answer only from the numbered passages.\n[1] FlashAttention-3 ...")
HISTORY = [
    ChatMessage("user", "What does the paper propose?"),
    ChatMessage("assistant", "A faster attention kernel for Hopper GPUs [1]."),
]
QUESTION = ChatMessage("user", "How much faster is it than FlashAttention-2?")
CONVERSATION = [SYSTEM, *HISTORY, QUESTION]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key=KEY) as fake:
        yield fake


def openai_settings(server: FakeOpenAIServer, **overrides: Any) -> OpenAISettings:
    values: dict[str, Any] = {"base_url": server.base_url, "api_key": KEY, "timeout": 5.0}
    values.update(overrides)
    return OpenAISettings(**values)


def chat_model(server: FakeOpenAIServer, **overrides: Any) -> OpenAIChatModel:
    llm = LLMSettings(model="fake-chat", max_tokens=200, temperature=0.3)
    model = build_chat_model(openai_settings(server, **overrides), llm)
    assert isinstance(model, OpenAIChatModel)
    return model


def test_a_plain_completion_returns_the_text_and_the_server_usage(
    server: FakeOpenAIServer,
) -> None:
    server.reply = lambda body: "Up to 1.5-2.0x faster in FP16 [1]."

    completion = chat_model(server).complete(CONVERSATION)

    assert completion.text == "Up to 1.5-2.0x faster in FP16 [1]."
    prompt_words = sum(len(m.content.split()) for m in CONVERSATION)
    assert completion.prompt_tokens == prompt_words
    assert completion.completion_tokens == 7
    assert completion.model == "fake-chat"


def test_the_request_carries_the_conversation_and_the_settings(
    server: FakeOpenAIServer,
) -> None:
    chat_model(server).complete(CONVERSATION)

    (request,) = server.chat_requests
    assert request.authorized
    assert request.messages == [{"role": m.role, "content": m.content} for m in CONVERSATION]
    assert request.json["model"] == "fake-chat"
    assert request.json["max_tokens"] == 200
    assert request.json["temperature"] == 0.3
    assert not request.json.get("stream")


def test_max_tokens_given_to_complete_overrides_the_setting(server: FakeOpenAIServer) -> None:
    server.reply = lambda body: "one two three four five six seven eight"

    completion = chat_model(server).complete([QUESTION], max_tokens=20)

    assert server.chat_requests[0].json["max_tokens"] == 20
    assert completion.text == "one two three four five six seven eight"


def test_streaming_calls_on_delta_in_order_and_the_pieces_make_the_text(
    server: FakeOpenAIServer,
) -> None:
    deltas: list[str] = []

    completion = chat_model(server).complete(CONVERSATION, on_delta=deltas.append)

    assert len(deltas) > 3
    assert "".join(deltas) == completion.text
    assert completion.text.startswith("According to the passages, the answer is in [1].")
    assert completion.completion_tokens == len(completion.text.split())
    (request,) = server.chat_requests
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}
    assert request.messages[-1]["content"] == QUESTION.content


def test_streaming_without_server_usage_estimates_the_tokens() -> None:
    with FakeOpenAIServer(stream_usage=False) as server:
        server.reply = lambda body: "ten words " * 5

        completion = chat_model(server).complete([QUESTION], on_delta=lambda piece: None)

    assert completion.completion_tokens == estimate_tokens(10) == 13
    assert completion.prompt_tokens == estimate_tokens(len(QUESTION.content.split()))


def test_the_first_piece_arrives_before_the_answer_is_finished() -> None:
    with FakeOpenAIServer(stream_chunk_delay=0.1) as server:
        server.reply = lambda body: "one two three four five"
        arrivals: list[float] = []
        start = time.monotonic()

        chat_model(server).complete(
            [QUESTION], on_delta=lambda _: arrivals.append(time.monotonic())
        )

    total = time.monotonic() - start
    assert len(arrivals) == 5
    assert arrivals[0] - start < total / 2


def test_an_error_raised_by_on_delta_is_not_disguised(server: FakeOpenAIServer) -> None:
    def refuse(piece: str) -> None:
        raise ValueError("the connector broke")

    with pytest.raises(ValueError, match="the connector broke"):
        chat_model(server).complete([QUESTION], on_delta=refuse)


def test_a_server_failing_every_try_is_unavailable_after_the_retries(
    server: FakeOpenAIServer,
) -> None:
    server.fail_next(10, status=500, retry_after_ms=10)

    with pytest.raises(LLMUnavailableError, match="try again"):
        chat_model(server, max_retries=2).complete([QUESTION])

    assert len(server.chat_requests) == 3


def test_a_single_server_error_is_retried(server: FakeOpenAIServer) -> None:
    server.fail_next(1, status=503, retry_after_ms=10)

    completion = chat_model(server, max_retries=2).complete([QUESTION])

    assert "[1]" in completion.text
    assert len(server.chat_requests) == 2


def test_rate_limited_after_the_retries_is_unavailable(server: FakeOpenAIServer) -> None:
    server.fail_next(2, status=429, retry_after_ms=10)

    with pytest.raises(LLMUnavailableError, match="busy"):
        chat_model(server, max_retries=1).complete([QUESTION])

    assert len(server.chat_requests) == 2


def test_a_slow_server_times_out_quickly(server: FakeOpenAIServer) -> None:
    server.delay_next(1, 2.0)
    model = chat_model(server, timeout=0.5, max_retries=0)
    start = time.monotonic()

    with pytest.raises(LLMUnavailableError, match="too long"):
        model.complete([QUESTION])

    assert time.monotonic() - start < 1.5
    assert len(server.chat_requests) == 1


def test_a_stalled_stream_times_out() -> None:
    with FakeOpenAIServer(stream_chunk_delay=1.0) as server:
        model = chat_model(server, timeout=0.3, max_retries=0)

        with pytest.raises(LLMUnavailableError, match="too long"):
            model.complete([QUESTION], on_delta=lambda piece: None)


def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = OpenAISettings(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    model = build_chat_model(settings, LLMSettings())
    assert model is not None

    with pytest.raises(LLMUnavailableError, match="cannot be reached"):
        model.complete([QUESTION])


@pytest.mark.parametrize("content_type", ["text/html", "application/json"])
def test_a_garbage_body_is_unavailable(server: FakeOpenAIServer, content_type: str) -> None:
    server.garbage_next(1, content_type=content_type)

    with pytest.raises(LLMUnavailableError, match="could not be read"):
        chat_model(server).complete([QUESTION])


def test_a_garbage_stream_is_unavailable(server: FakeOpenAIServer) -> None:
    server.garbage_next(1)

    with pytest.raises(LLMUnavailableError):
        chat_model(server).complete([QUESTION], on_delta=lambda piece: None)


@pytest.mark.parametrize("streamed", [False, True])
def test_an_empty_answer_is_unavailable(server: FakeOpenAIServer, streamed: bool) -> None:
    server.reply = lambda body: "  "
    on_delta = (lambda piece: None) if streamed else None

    with pytest.raises(LLMUnavailableError, match="empty"):
        chat_model(server).complete([QUESTION], on_delta=on_delta)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_refused_key_is_a_config_error_that_does_not_show_the_key(streamed: bool) -> None:
    with FakeOpenAIServer(api_key="sk-the-right-one") as server:
        on_delta = (lambda piece: None) if streamed else None

        with pytest.raises(ConfigError, match="OPENAI_API_KEY") as caught:
            chat_model(server).complete([QUESTION], on_delta=on_delta)

    assert KEY not in str(caught.value)
    assert len(server.requests) == 1  # a refused key is not retried
    assert not server.requests[0].authorized


def test_an_unknown_model_is_a_config_error_naming_the_setting() -> None:
    with (
        FakeOpenAIServer(models={"llama3"}) as server,
        pytest.raises(ConfigError, match="PAPERBOT_LLM_MODEL") as caught,
    ):
        chat_model(server).complete([QUESTION])

    assert "fake-chat" in str(caught.value)


def test_logs_carry_neither_the_key_nor_the_prompt(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="assistant")
    model = chat_model(server)
    model.complete(CONVERSATION)
    model.complete(CONVERSATION, on_delta=lambda piece: None)
    server.fail_next(1, status=401)
    with pytest.raises(ConfigError):
        model.complete(CONVERSATION)

    logged = caplog.text
    assert KEY not in logged
    assert QUESTION.content not in logged
    assert "[1]" not in logged  # nor the answer


def test_build_chat_model_is_none_without_a_server() -> None:
    assert build_chat_model(OpenAISettings(), LLMSettings()) is None


def test_build_chat_model_reads_the_environment(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("PAPERBOT_LLM_MODEL", "env-model")

    model = build_chat_model(OpenAISettings(), LLMSettings())

    assert model is not None and model.name == "env-model"
    assert "[1]" in model.complete([QUESTION]).text
    assert server.chat_requests[0].authorized


def test_the_openai_embedder_returns_unit_vectors_of_the_server_dimension(
    server: FakeOpenAIServer,
) -> None:
    embedder = build_embedder(
        EmbeddingSettings(backend="openai", model="fake-embed", batch_size=2),
        openai_settings(server),
    )
    assert isinstance(embedder, OpenAIEmbedder)

    texts = ["flash attention kernel", "attention kernel on GPUs", "protein folding"]
    vectors = embedder.embed(texts)

    assert embedder.dimension == 32
    assert len(vectors) == 3
    assert all(len(v) == 32 for v in vectors)
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-5 for v in vectors)
    close = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    far = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    assert close > far
    batches = [r.json["input"] for r in server.requests if r.path == "/v1/embeddings"]
    assert batches == [texts[:2], texts[2:]]
    assert all(r.json["model"] == "fake-embed" for r in server.requests)


def test_the_openai_embedder_turns_a_refused_key_into_a_config_error() -> None:
    with FakeOpenAIServer(api_key="sk-the-right-one") as server:
        embedder = build_embedder(EmbeddingSettings(backend="openai"), openai_settings(server))

        with pytest.raises(ConfigError, match="OPENAI_API_KEY") as caught:
            embedder.embed(["a passage"])

    assert KEY not in str(caught.value)
