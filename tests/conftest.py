"""Shared fixtures: offline model access, temporary data dirs, real stores and indexes."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.answering import Answer, Answerer, ungrounded_citations
from assistant.cli import main
from assistant.embedding import SentenceTransformerEmbedder
from assistant.index import IndexSchema, OpenIndex, open_index
from assistant.ingest import Ingestor
from assistant.search import Searcher
from assistant.settings import Settings
from assistant.state import StateStore
from tests.fakes.embedder import FakeEmbedder

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


# Tests that take over ~10 s each on two cores (they start `paperbot` processes, kill
# them, or build digests with the real model), as measured in a full run with
# `--durations`: `make test` leaves them out to stay quick; `make test-slow` runs them, and
# CI (.ci/run) runs both. Tests can also be marked `@pytest.mark.slow` where they are.
SLOW_TESTS = (
    "tests/test_cli.py::test_a_thousand_rows_ingest_fast_and_a_second_run_adds_nothing",
    "tests/test_console.py::test_ask_json_and_chat_from_the_command_line",
    "tests/test_console.py::test_an_admin_posts_the_full_digest_from_chat_exactly_once",
    "tests/test_digest.py::test_digest_build_show_and_post_from_the_command_line",
    "tests/test_digest.py::test_cards_are_cached_until_the_paper_changes",
    "tests/test_digest.py::test_serve_catches_up_a_missed_digest_for_console_subscribers",
    "tests/test_digest.py::test_different_channels_each_get_the_digest",
    "tests/test_digest.py::test_continuations_go_in_the_cards_thread_and_threads_map_to_papers",
    "tests/test_digest.py::test_two_publishers_racing_on_one_channel_post_once",
    "tests/test_digest.py::test_unknown_metadata_renders_as_unknown",
    "tests/test_digest.py::test_a_publisher_killed_after_its_third_post_resumes",
    "tests/test_digest.py::test_json_round_trip",
    "tests/test_digest.py::test_an_offline_digest_has_every_paper_in_list_order_with_cards",
    "tests/test_digest.py::test_a_broken_llm_card_falls_back_to_an_extractive_one",
    "tests/test_discord.py::test_a_digest_is_posted_with_a_thread_per_card",
    "tests/test_discord.py::test_an_admin_posts_the_weeks_digest_here_with_digest_post",
    "tests/test_slack.py::test_a_digest_is_posted_with_card_threads_answered_about_their_paper",
    "tests/test_discord_serve.py::test_serve_posts_the_digest_to_slack_and_discord",
    "tests/test_discord_gateway.py::test_serve_discord_with_a_token_the_gateway_refuses",
    "tests/test_slack_serve.py::test_the_scheduler_posts_the_digest_to_subscribed_slack_channels",
    "tests/test_slack_serve.py::test_serve_slack_http_answers_a_signed_search_end_to_end",
    "tests/test_slack_socket_mode.py::test_serve_slack_receives_over_socket_mode_end_to_end",
    "tests/test_slack_http.py::test_a_valid_command_gets_through_a_thousand_slow_connections",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or real services."""
    for name in list(os.environ):
        if name.startswith(("PAPERBOT_", "QDRANT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _every_citation_is_grounded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Answer]]:
    """Every answer any test produces must cite only passages it retrieved."""
    produced: list[Answer] = []
    original = Answerer.ask

    def checked(self: Answerer, *args: Any, **kwargs: Any) -> Answer:
        answer = original(self, *args, **kwargs)
        bad = ungrounded_citations(answer)
        assert not bad, f"citations not backed by a retrieved passage: {bad}"
        produced.append(answer)
        return answer

    monkeypatch.setattr(Answerer, "ask", checked)
    yield produced


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data")
    s.arxiv.delay_seconds = 0.0
    s.arxiv.backoff_seconds = 0.0
    s.arxiv.download_pdfs = False
    return s


@pytest.fixture
def store(settings: Settings) -> Iterator[StateStore]:
    st = StateStore.open(settings.state_path)
    yield st
    st.close()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once per test session."""
    return SentenceTransformerEmbedder()


def schema_of(embedder: FakeEmbedder | SentenceTransformerEmbedder) -> IndexSchema:
    return IndexSchema.single(embedder.name, lambda: embedder.dimension)


@pytest.fixture
def index(settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[OpenIndex]:
    """The embedded index (Qdrant Edge) in the test's data dir."""
    idx = open_index(settings.qdrant, settings.index_path, schema_of(fake_embedder), "pytest")
    yield idx
    idx.close()


@pytest.fixture
def ingestor(
    store: StateStore, index: OpenIndex, fake_embedder: FakeEmbedder, settings: Settings
) -> Ingestor:
    return Ingestor(store, index, fake_embedder, settings.ingest, settings.arxiv)


@pytest.fixture
def searcher(index: OpenIndex, fake_embedder: FakeEmbedder, settings: Settings) -> Searcher:
    return Searcher(fake_embedder, index, settings.search)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data dir that every command uses (PAPERBOT_DATA_DIR)."""
    path = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(path))
    return path
