"""The composition root: builds every client once, from settings, and hands them down.

Clients are built on first use, so `paperbot papers` never loads the embedding model
and never opens the index.

>>> with Runtime(Settings()) as rt:
...     rt.searcher.search("LoRA")
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from functools import cached_property
from types import TracebackType

import httpx

from assistant.answering import Answerer
from assistant.coalescing import CoalescingEmbedder
from assistant.conversations import ConversationStore
from assistant.core import Assistant
from assistant.digest.builder import DigestBuilder
from assistant.digest.cards import CardWriter
from assistant.digest.publisher import DigestPublisher
from assistant.digest.service import DigestService
from assistant.embedding import (
    Embedder,
    SecondVector,
    build_embedder,
    build_second_vectors,
    models_name,
    rebuild_needed,
)
from assistant.errors import ConfigError, InvalidInputError
from assistant.index import PROBE_TIMEOUT, DenseVector, IndexSchema, OpenIndex, open_index
from assistant.index_check import check_index
from assistant.index_edge import EdgeIndex
from assistant.index_folder import legacy_index
from assistant.index_server import ServerIndex, drop_collection
from assistant.ingest import Ingestor, IngestReport, NullProgress, Progress
from assistant.llm import ChatModel, build_chat_model
from assistant.names import NameLexicon
from assistant.reconnecting_index import ReconnectingIndex
from assistant.search import Searcher
from assistant.settings import Settings
from assistant.sources.arxiv_api import ArxivClient
from assistant.sources.arxiv_listing import ArxivListingSource
from assistant.sources.base import PaperSource
from assistant.sources.conditional import ConditionalFetcher
from assistant.sources.hf_daily import HfDailySource
from assistant.sources.potw_list import ListDocuments, PotwList
from assistant.state import StateStore

log = logging.getLogger(__name__)
NAMES_MAX_AGE = 5.0  # seconds between checks that the stored papers changed (names.py)

USER_AGENT = "paperbot/0.1 (+https://github.com/paperbot; research digest assistant)"


class Runtime:
    """Owns the clients of one process: state, embedder, index, HTTP, arXiv."""

    def __init__(self, settings: Settings, process: str = "paperbot") -> None:
        self.settings = settings
        self.process = process  # names this process to others that find the index in use
        self._fresh_index = False  # the next open starts an empty index (a rebuild)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @cached_property
    def store(self) -> StateStore:
        return StateStore.open(self.settings.state_path)

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return build_embedder(s.embedding, s.openai, s.digest.language)

    @cached_property
    def second_vectors(self) -> list[SecondVector]:
        """Other models whose vectors every passage carries (the English one next to e5)."""
        return build_second_vectors(self.settings.embedding, self.settings.digest.language)

    def check_embedding_model(self) -> None:
        """Refuse to use an index whose papers another embedding model embedded, saying
        how to rebuild it (checked against the state, before the index is opened)."""
        s = self.settings
        message = rebuild_needed(
            self.store.indexed_models(),
            models_name(self.embedder, self.second_vectors),
            s.embedding,
            s.digest.language,
        )
        if message:
            raise ConfigError(message)

    @cached_property
    def index(self) -> ReconnectingIndex:
        """The vector index; it opens on first use (checked against the stored papers when
        embedded), and again after an outage, so a Qdrant server that is down or a damaged
        embedded index makes commands answer why, not crash."""
        s = self.settings
        where = s.qdrant.url or str(s.index_path)
        return ReconnectingIndex(
            self._open_index,
            where,
            retry_seconds=s.qdrant.retry_seconds,
            probe_timeout=min(PROBE_TIMEOUT, s.qdrant.timeout),
            verify=None if s.qdrant.url else self._verify_index,
        )

    @property
    def index_schema(self) -> IndexSchema:
        """The named vectors of every passage and the models that fill them."""
        primary = IndexSchema.single(self.embedder.name, lambda: self.embedder.dimension)
        more = tuple(
            DenseVector(s.name, s.embedder.name, _dimension_of(s.embedder))
            for s in self.second_vectors
        )
        return replace(primary, dense=primary.dense + more)

    def _open_index(self) -> OpenIndex:
        s = self.settings
        if not self._fresh_index:
            self.check_embedding_model()
            return open_index(s.qdrant, s.index_path, self.index_schema, self.process)
        if s.qdrant.url:
            drop_collection(s.qdrant)
            return ServerIndex.open(s.qdrant, self.index_schema)
        return EdgeIndex.create_empty(s.index_path, self.index_schema, self.process)

    def _verify_index(self, index: OpenIndex) -> None:
        if not self._fresh_index:
            check_index(self.store, index).raise_if_bad()

    def rebuild_index(self, progress: Progress | None = None) -> IngestReport:
        """Empty the index and re-embed every stored paper into it, whatever state the
        index was in (deleted, damaged, another model's, qdrant-client's local mode)."""
        progress = progress or NullProgress()
        self.index.close()
        self._fresh_index = True
        try:
            self.index.count()  # takes the index (and its folder) before SQLite is touched
        finally:
            self._fresh_index = False
        report = self.ingestor.rebuild(progress)
        progress.begin("optimizing the index", None)
        self.index.optimize()
        check_index(self.store, self.index).raise_if_bad()
        legacy = legacy_index(self.settings.data_dir)
        if legacy is not None and not self.settings.qdrant.url:
            shutil.rmtree(legacy)
            report.notes.append(f"removed the index of an older paperbot at {legacy}")
        return report

    def check_index_first(self) -> None:
        """Open the embedded index now, so that one that is damaged, outdated or in use
        stops a command before it does any work (a Qdrant server that is down does not:
        the command stores what it can, and the next run indexes it)."""
        if not self.settings.qdrant.url:
            self.index.opened()

    def index_ready(self) -> tuple[bool, str]:
        """(True, "ok") when the index answers right now, else (False, why); never raises.

        For a readiness probe. Once connected it waits at most 2 s (or QDRANT_TIMEOUT if
        shorter); connecting waits up to QDRANT_TIMEOUT a request. Call it off the loop.
        """
        try:
            return self.index.ready()
        except Exception as exc:  # settings trouble: readiness reports, it does not fail
            log.exception("the index readiness check failed")
            return False, f"index check failed: {exc}"

    @cached_property
    def http(self) -> httpx.Client:
        return httpx.Client(
            timeout=self.settings.arxiv.timeout,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        )

    @cached_property
    def list_documents(self) -> ListDocuments:
        """The weekly list's files: local, or over HTTP with conditional requests."""
        return ListDocuments(ConditionalFetcher(self.store, self.http))

    @cached_property
    def arxiv(self) -> ArxivClient:
        return ArxivClient(self.settings.arxiv)

    @cached_property
    def ingestor(self) -> Ingestor:
        s = self.settings
        return Ingestor(
            self.store,
            self.index,
            self.embedder,
            s.ingest,
            s.arxiv,
            arxiv=self.arxiv,
            http=self.http,
            second=self.second_vectors,
        )

    @cached_property
    def names(self) -> NameLexicon:
        """The stored papers' names for katakana and acronym questions (rebuilt on change)."""
        store = self.store
        return NameLexicon(
            lambda: ((p.paper_id, p.title, p.description or "") for p in store.papers()),
            store.catalog_version,
            max_age=NAMES_MAX_AGE,
        )

    @cached_property
    def searcher(self) -> Searcher:
        # searches arriving together share model calls for their query embeddings
        second = [SecondVector(s.name, CoalescingEmbedder(s.embedder)) for s in self.second_vectors]
        return Searcher(
            CoalescingEmbedder(self.embedder),
            self.index,
            self.settings.search,
            names=self.names,
            second=second,
        )

    @cached_property
    def conversations(self) -> ConversationStore:
        return ConversationStore(self.store, self.settings.answer.history_turns)

    @cached_property
    def chat_model(self) -> ChatModel | None:
        return build_chat_model(self.settings.openai, self.settings.llm)

    @cached_property
    def answerer(self) -> Answerer:
        s = self.settings
        return Answerer(
            self.searcher,
            self.chat_model,
            self.conversations,
            s.answer,
            s.llm,
            titles=self._title,
            embedder=self.embedder,
        )

    def _title(self, paper_id: str) -> str | None:
        paper = self.store.get_paper(paper_id)
        return paper.title if paper else None

    @cached_property
    def assistant(self) -> Assistant:
        return Assistant(
            self.store,
            self.conversations,
            self.searcher,
            self.answerer,
            self.settings.answer,
            digest_poster=self.digest_service,
        )

    @cached_property
    def card_writer(self) -> CardWriter:
        return CardWriter(
            self.store, self.searcher, self.embedder, self.chat_model, self.settings.digest.qa_pairs
        )

    @cached_property
    def digest_builder(self) -> DigestBuilder:
        return DigestBuilder(self.store, self.card_writer, self.settings.digest)

    @cached_property
    def publisher(self) -> DigestPublisher:
        d = self.settings.digest
        return DigestPublisher(
            self.store,
            self.conversations,
            claim_seconds=d.claim_seconds,
            empty_week=d.empty_week,
            timezone=d.timezone,
        )

    @cached_property
    def digest_service(self) -> DigestService:
        return DigestService(
            self.ingestor,
            self.digest_builder,
            self.publisher,
            self.conversations,
            self.settings.digest,
            self.weekly_source,
        )

    def weekly_source(self, source: str, week: date | None, location: str | None) -> PaperSource:
        """The source of a week's papers for the digest (`potw`, `hf` or `arxiv`)."""
        d = self.settings.digest
        if source == "potw":
            potw = PotwList.open(location or self.settings.ingest.potw_url, self.list_documents)
            potw.week = week or max(potw.weeks(), default=None)  # default: the newest week
            return potw
        if location is not None:
            raise InvalidInputError(f"--file works with --source potw only, not {source!r}.")
        if week is None:
            raise InvalidInputError(f"--source {source} needs --week YYYY-MM-DD.")
        if source == "hf":
            return HfDailySource(week, self.http, base_url=d.hf_url, top_n=d.top_n)
        topics = [t.strip() for t in d.topics.split(";") if t.strip()]
        categories = [c.strip() for c in d.arxiv_categories.split(",") if c.strip()]
        return ArxivListingSource(
            self.arxiv, week, categories, topics, self.embedder, top_n=d.top_n
        )

    def close(self) -> None:
        """Close whatever was opened, the index first (it holds a folder lock)."""
        for name in ("index", "store", "http"):
            client = self.__dict__.pop(name, None)
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing must not hide the real error
                    log.exception("closing %s failed", name)


def _dimension_of(embedder: Embedder) -> Callable[[], int]:
    """The model's dimension, asked only when an index must be created (it loads the model)."""
    return lambda: embedder.dimension
