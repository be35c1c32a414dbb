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
from assistant.embedding import SentenceTransformerEmbedder
from assistant.index import IndexSchema, OpenIndex, open_index
from assistant.ingest import Ingestor
from assistant.search import Searcher
from assistant.settings import Settings
from assistant.state import StateStore
from tests.fakes.embedder import FakeEmbedder

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


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
