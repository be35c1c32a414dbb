"""Prometheus metrics: counted in the core (so every connector is measured the same way),
in the LLM client and in the digest publisher, each test with its own `Metrics`."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from assistant.answering import Answerer
from assistant.conversations import ConversationStore
from assistant.core import Assistant
from assistant.digest.model import Digest, DigestCard
from assistant.digest.publisher import DigestPublisher
from assistant.errors import IndexUnavailableError
from assistant.ingest import Ingestor
from assistant.llm import ChatMessage, LLMUnavailableError, build_chat_model
from assistant.messages import IncomingMessage
from assistant.metrics import Metrics, process_metrics
from assistant.runtime import Runtime
from assistant.search import Searcher
from assistant.settings import LLMSettings, OpenAISettings, Settings
from assistant.sources.potw import PotwSource
from assistant.state import StateStore
from tests.conftest import ROOT
from tests.fakes.chat_channel import FakeChannel, FakePlatform, Killed
from tests.fakes.openai_server import FakeOpenAIServer

SAMPLE = ROOT / "assistant" / "data" / "sample_potw.md"


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def message(text: str, platform: str = "slack", thread: str | None = "t1") -> IncomingMessage:
    return IncomingMessage(platform, "U1", "C1", text, thread=thread)


class BrokenSearcher:
    """A searcher whose index fails: with `error`, or with a bug."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def search(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def assistant(
    ingestor: Ingestor,
    searcher: Searcher,
    store: StateStore,
    settings: Settings,
    metrics: Metrics,
) -> Assistant:
    ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    conversations = ConversationStore(store)
    answerer = Answerer(searcher, None, conversations, settings.answer, settings.llm)
    return Assistant(store, conversations, searcher, answerer, settings.answer, metrics)


def test_requests_are_counted_by_platform_kind_and_outcome(
    assistant: Assistant, metrics: Metrics
) -> None:
    assistant.command(message("search faster attention"))
    assistant.command(message("search faster attention", platform="discord"))
    assistant.command(message("frobnicate the papers"))
    assistant.command(message("show 9999.99999"))
    assistant.ask(message("x" * 5000))
    reply = assistant.follow_up(message("How does FlashAttention-3 use FP8?"))

    requests = "paperbot_requests_total"
    assert value(metrics, requests, platform="slack", kind="search", outcome="ok") == 1
    assert value(metrics, requests, platform="discord", kind="search", outcome="ok") == 1
    assert value(metrics, requests, platform="slack", kind="unknown", outcome="refused") == 1
    assert value(metrics, requests, platform="slack", kind="show", outcome="refused") == 1
    assert value(metrics, requests, platform="slack", kind="ask", outcome="refused") == 1
    assert value(metrics, requests, platform="slack", kind="follow_up", outcome="ok") == 1
    assert reply.mode is not None
    assert value(metrics, "paperbot_answer_seconds_count", mode=reply.mode) == 1
    assert value(metrics, "paperbot_errors_total", where="core") == 0


def test_a_request_the_core_cannot_answer_is_an_error(
    store: StateStore, settings: Settings, metrics: Metrics
) -> None:
    conversations = ConversationStore(store)
    for failure in (IndexUnavailableError("The paper index is unavailable."), KeyError("bug")):
        searcher: Any = BrokenSearcher(failure)
        answerer = Answerer(searcher, None, conversations, settings.answer, settings.llm)
        broken = Assistant(store, conversations, searcher, answerer, settings.answer, metrics)
        if isinstance(failure, IndexUnavailableError):
            assert broken.command(message("search LoRA")).kind == "error"  # said to the user
        else:
            with pytest.raises(KeyError):  # a bug goes on to the connector's error boundary
                broken.command(message("search LoRA"))
    labels = {"platform": "slack", "kind": "search", "outcome": "error"}
    assert value(metrics, "paperbot_requests_total", **labels) == 2
    assert value(metrics, "paperbot_errors_total", where="core") == 2


def test_llm_tokens_and_outages_are_counted(metrics: Metrics) -> None:
    with FakeOpenAIServer(api_key="sk-test") as server:
        settings = OpenAISettings(
            base_url=server.base_url, api_key="sk-test", timeout=5.0, max_retries=0
        )
        model = build_chat_model(settings, LLMSettings(model="fake-chat"), metrics)
        assert model is not None
        completion = model.complete([ChatMessage("user", "What does FlashAttention-3 do?")])
        streamed = model.complete([ChatMessage("user", "And FP8?")], on_delta=lambda _: None)
        server.fail_next(1, status=503)
        with pytest.raises(LLMUnavailableError):
            model.complete([ChatMessage("user", "Again?")])
    prompt = completion.prompt_tokens + streamed.prompt_tokens
    answered = completion.completion_tokens + streamed.completion_tokens
    assert prompt > 0 and answered > 0
    assert value(metrics, "paperbot_llm_tokens_total", kind="prompt") == prompt
    assert value(metrics, "paperbot_llm_tokens_total", kind="completion") == answered
    assert value(metrics, "paperbot_errors_total", where="llm") == 1


def one_card_digest() -> Digest:
    card = DigestCard(
        rank=1,
        paper_id="2407.08608",
        title="FlashAttention-3",
        url="https://arxiv.org/abs/2407.08608",
        pdf_url=None,
        authors=("Jay Shah",),
        published=date(2024, 7, 11),
        updated=None,
        categories=("cs.LG",),
        takeaway="Faster attention on Hopper GPUs.",
        summary="Asynchrony and FP8 make attention faster.",
    )
    return Digest(week=date(2024, 7, 8), language="en", source="potw", cards=(card,))


def test_digest_posts_are_counted_by_outcome(store: StateStore, metrics: Metrics) -> None:
    digest, world = one_card_digest(), FakePlatform()

    def publisher() -> DigestPublisher:
        conversations = ConversationStore(store)
        return DigestPublisher(
            store, conversations, claim_seconds=0.2, poll_seconds=0.05, metrics=metrics
        )

    with pytest.raises(Killed):  # posted the header, died before recording it
        asyncio.run(publisher().publish(digest, FakeChannel(world, die_after=1), "C1"))
    asyncio.run(publisher().publish(digest, FakeChannel(world), "C1"))
    asyncio.run(publisher().publish(digest, FakeChannel(world), "C1"))

    posts = "paperbot_digest_posts_total"
    assert value(metrics, posts, platform="fake", outcome="recovered") == 1
    assert value(metrics, posts, platform="fake", outcome="posted") == 2  # the card's 2 parts
    assert value(metrics, posts, platform="fake", outcome="already_posted") == 3


def test_the_scraper_gets_the_format_it_asks_for(metrics: Metrics) -> None:
    metrics.count_request("slack", "help", "ok")
    text, content_type = metrics.exposition("text/plain")
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'paperbot_requests_total{kind="help",outcome="ok",platform="slack"} 1.0' in (
        text.decode()
    )
    open_metrics, content_type = metrics.exposition("application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert open_metrics.decode().endswith("# EOF\n")


def test_the_runtime_counts_into_the_process_metrics_that_serve_exposes(
    settings: Settings,
) -> None:
    labels = {"platform": "runtime-test", "kind": "help", "outcome": "ok"}
    before = value(process_metrics(), "paperbot_requests_total", **labels)
    with Runtime(settings) as rt:
        rt.assistant.command(message("help", platform="runtime-test"))
    assert value(process_metrics(), "paperbot_requests_total", **labels) == before + 1
    assert process_metrics() is process_metrics()
