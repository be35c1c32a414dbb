"""Faults a running paperbot meets: the Qdrant server down at start or mid-run, answering
errors or hanging; the LLM server timing out, failing or answering garbage; arXiv
throttling. Users get a short message instead of a traceback, retries are bounded, and
everything works again once the service is back, without a restart.

The index runs through qdrant-client's REST transport against the fake Qdrant server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cached_property
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.conversations import Scope
from assistant.embedding import Embedder, SentenceTransformerEmbedder
from assistant.errors import IndexUnavailableError
from assistant.index import IndexSchema, OpenIndex
from assistant.index_server import ServerIndex
from assistant.ingest import Ingestor
from assistant.messages import IncomingMessage
from assistant.models import PaperRecord
from assistant.reconnecting_index import ReconnectingIndex
from assistant.runtime import Runtime
from assistant.settings import Settings
from assistant.sources.arxiv_api import ArxivClient
from assistant.sources.potw import PotwSource
from assistant.state import StateStore
from tests.conftest import FIXTURES, ROOT
from tests.fakes.arxiv_server import FakeArxivServer, FakePaper
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.qdrant_server import FakeQdrantServer
from tests.fakes.sources import RecordsSource

SAMPLE = FIXTURES / "potw_sample.md"
FA3 = "2407.08608"
UNAVAILABLE = "index is unavailable right now"


class FakeModelRuntime(Runtime):
    """The composition root with an injected embedder (the fake one by default)."""

    embedder_to_use: Embedder = FakeEmbedder()

    @cached_property
    def embedder(self) -> Embedder:
        return self.embedder_to_use


def msg(text: str, thread: str = "t1") -> IncomingMessage:
    return IncomingMessage("test", "u1", "c1", text, thread=thread)


@pytest.fixture
def qdrant() -> Iterator[FakeQdrantServer]:
    with FakeQdrantServer() as server:
        yield server


@pytest.fixture
def server_settings(settings: Settings, qdrant: FakeQdrantServer) -> Settings:
    settings.qdrant.url = qdrant.url
    settings.qdrant.timeout = 1
    settings.qdrant.retry_seconds = 0  # the fail-fast window has its own test
    return settings


@pytest.fixture
def ingested(server_settings: Settings) -> Settings:
    """A data dir whose sample week was ingested into the server by an earlier run."""
    with FakeModelRuntime(server_settings) as rt:
        rt.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    return server_settings


def assert_unavailable(rt: Runtime) -> None:
    """Every index-backed way in answers "unavailable", privately, with no traceback."""
    assistant = rt.assistant
    assistant.start_thread("test", "c1", "card", Scope(paper_ids=(FA3,)))
    replies = [
        assistant.command(msg("search attention kernels")),
        assistant.command(msg("ask How does FlashAttention-3 use FP8?")),
        assistant.follow_up(msg("What are its limitations?", thread="card")),
    ]
    for reply in replies:
        assert reply.kind == "error" and reply.ephemeral, reply
        assert UNAVAILABLE in reply.text and "Traceback" not in reply.text
    ready, why = rt.index_ready()
    assert not ready and UNAVAILABLE in why


def assert_working(rt: Runtime) -> None:
    assert rt.index_ready() == (True, "ok")
    found = rt.assistant.command(msg("search FlashAttention-3"))
    assert found.kind == "search" and FA3 in found.text
    answer = rt.assistant.follow_up(msg("What are its limitations?", thread="card"))
    assert answer.kind == "answer"


# -- the index -------------------------------------------------------------------------------


def test_qdrant_down_at_start_answers_unavailable_then_works_once_back(
    ingested: Settings, qdrant: FakeQdrantServer
) -> None:
    qdrant.down()
    with FakeModelRuntime(ingested) as rt:
        rt.assistant  # noqa: B018  (serve builds the core at start: it must not need Qdrant)
        assert_unavailable(rt)
        qdrant.up()
        assert_working(rt)  # the same runtime: no restart


def test_qdrant_down_mid_run_answers_unavailable_then_recovers(
    ingested: Settings, qdrant: FakeQdrantServer
) -> None:
    with FakeModelRuntime(ingested) as rt:
        assert_working(rt)
        qdrant.down()
        assert_unavailable(rt)
        qdrant.up()
        assert_working(rt)


@pytest.mark.parametrize("trouble", ["503", "429", "timeout", "garbage"])
def test_a_failing_or_hanging_server_is_a_clean_error(
    ingested: Settings, qdrant: FakeQdrantServer, trouble: str
) -> None:
    with FakeModelRuntime(ingested) as rt:
        assert_working(rt)
        if trouble == "503":
            qdrant.fail_next(1, status=503, operation="query_batch")
        elif trouble == "429":
            qdrant.fail_next(1, status=429, operation="query_batch", retry_after="1")
        elif trouble == "timeout":
            qdrant.delay_next(1, 1.5, operation="query_batch")  # the client waits 1 s
        else:
            qdrant.garbage_next(1, operation="query_batch")  # a proxy's error page
        reply = rt.assistant.command(msg("search attention kernels"))
        assert reply.kind == "error" and UNAVAILABLE in reply.text
        assert_working(rt)


def test_after_a_failure_calls_fail_fast_until_the_retry_time_but_readiness_checks(
    settings: Settings, qdrant: FakeQdrantServer, fake_embedder: FakeEmbedder
) -> None:
    settings.qdrant.url = qdrant.url
    now = [100.0]

    def opener() -> ServerIndex:
        return ServerIndex.open(
            settings.qdrant, IndexSchema.single(fake_embedder.name, fake_embedder.dimension)
        )

    index = ReconnectingIndex(opener, qdrant.url, retry_seconds=5, clock=lambda: now[0])
    assert index.count() == 0
    qdrant.fail_next(1, status=503, operation="count")
    with pytest.raises(IndexUnavailableError, match="HTTP 503"):
        index.count()
    seen = len(qdrant.requests)
    with pytest.raises(IndexUnavailableError, match="HTTP 503"):
        index.count()  # within the retry time: Qdrant is not asked
    assert len(qdrant.requests) == seen
    now[0] += 5
    assert index.count() == 0
    qdrant.fail_next(1, status=503, operation="count")
    with pytest.raises(IndexUnavailableError):
        index.count()
    assert index.ready() == (True, "ok")  # the probe asks at once, and clears the failure
    assert index.count() == 0
    index.close()


def test_a_qdrant_server_down_at_start_does_not_stop_the_process_from_starting(
    server_settings: Settings, qdrant: FakeQdrantServer
) -> None:
    qdrant.down()
    with FakeModelRuntime(server_settings) as rt:
        ready, why = rt.index_ready()
        assert not ready and "Qdrant server unreachable" in why
        qdrant.up()
        assert rt.index_ready() == (True, "ok")  # the collection is created now
    assert qdrant.engine.collection_exists("paperbot_chunks")


def test_building_a_digest_while_the_index_is_down_is_a_clean_error(
    server_settings: Settings, qdrant: FakeQdrantServer
) -> None:
    with FakeModelRuntime(server_settings) as rt:
        rt.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        week = max(PotwSource.from_location(SAMPLE).weeks())
        qdrant.down()
        with pytest.raises(IndexUnavailableError, match=UNAVAILABLE):
            rt.digest_builder.build_week(week, "potw", "en")
        qdrant.up()
        digest, _ = rt.digest_builder.build_week(week, "potw", "en")
        assert digest.cards


def test_the_embedded_index_held_by_another_process_keeps_its_own_message(
    settings: Settings,
) -> None:
    with FakeModelRuntime(settings) as first, FakeModelRuntime(settings) as second:
        assert first.index_ready() == (True, "ok")
        ready, why = second.index_ready()
        assert not ready and "another paperbot process" in why and "QDRANT_URL" in why
        reply = second.assistant.command(msg("search attention kernels"))
        assert reply.kind == "error" and "another paperbot process" in reply.text


def test_an_index_command_with_the_server_down_says_so_without_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    qdrant: FakeQdrantServer,
) -> None:
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QDRANT_URL", qdrant.url)
    qdrant.down()
    with pytest.raises(SystemExit) as exited:
        main(["index", "rebuild"])
    err = " ".join(capsys.readouterr().err.split())
    assert exited.value.code == 2
    assert "unavailable right now (Qdrant server unreachable)" in err
    assert "Traceback" not in err


def index_by_paper(qdrant: FakeQdrantServer) -> dict[str, set[tuple[str, int]]]:
    """paper id -> {(content hash, ordinal)} of the passages the server holds."""
    held: dict[str, set[tuple[str, int]]] = {}
    for point in qdrant.points("paperbot_chunks"):
        payload = point.payload or {}
        held.setdefault(payload["paper_id"], set()).add(
            (payload["content_hash"], payload["ordinal"])
        )
    return held


def test_an_outage_mid_ingest_leaves_no_half_indexed_paper_and_the_next_run_completes_it(
    server_settings: Settings, qdrant: FakeQdrantServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ServerIndex, "UPSERT_BATCH", 4)  # several write requests
    qdrant.fail_next(1, status=503, operation="upsert", after=2)
    with FakeModelRuntime(server_settings) as rt:
        with pytest.raises(IndexUnavailableError, match="stored but not indexed"):
            rt.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        papers = rt.store.papers()
        expected = {
            p.paper_id: {(s.pending_hash, i) for i in range(len(rt.ingestor.passages(p)))}
            for p in papers
            if (s := rt.store.index_status(p.paper_id)).pending_hash
        }
        held = index_by_paper(qdrant)
        assert 0 < len(held) < len(papers)  # the outage came part way
        for paper_id, passages in held.items():
            assert passages == expected[paper_id]  # every passage, or the paper is absent
        for paper in papers:  # nothing is recorded as indexed before it is
            assert rt.store.index_status(paper.paper_id).content_hash is None

        report = rt.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        assert report.indexed_papers == len(papers)
        assert all(rt.store.index_status(p.paper_id).pending_hash is None for p in papers)
        assert rt.index.count() == sum(len(rt.ingestor.passages(p)) for p in papers)
        found = rt.assistant.command(msg("search FlashAttention-3"))
        assert FA3 in found.text


def test_the_readiness_probe_of_a_hung_server_answers_within_its_timeout(
    ingested: Settings, qdrant: FakeQdrantServer
) -> None:
    with FakeModelRuntime(ingested) as rt:
        assert rt.index_ready() == (True, "ok")
        qdrant.delay_next(1, 5.0, operation="count")
        started = datetime.now(UTC)
        ready, why = rt.index_ready()
        took = (datetime.now(UTC) - started).total_seconds()
        assert not ready and "timed out" in why
        assert took < 4  # the probe's 1 s (QDRANT_TIMEOUT here), not the server's 5 s


# -- the LLM ----------------------------------------------------------------------------------


@pytest.fixture
def llm_runtime(
    settings: Settings, real_embedder: SentenceTransformerEmbedder
) -> Iterator[FakeModelRuntime]:
    settings.openai.max_retries = 2
    settings.openai.timeout = 0.3
    runtime = FakeModelRuntime(settings)
    runtime.embedder_to_use = real_embedder
    sample = ROOT / "assistant" / "data" / "sample_potw.md"
    runtime.ingestor.ingest(PotwSource.from_location(sample), offline=True)
    yield runtime
    runtime.close()


@pytest.mark.parametrize(("trouble", "requests"), [("timeout", 3), ("500", 3), ("garbage", 1)])
def test_llm_trouble_falls_back_to_quotes_after_a_bounded_number_of_tries(
    llm_runtime: FakeModelRuntime, trouble: str, requests: int
) -> None:
    with FakeOpenAIServer() as server:
        llm_runtime.settings.openai.base_url = server.base_url
        if trouble == "timeout":
            server.delay_next(10, 0.6)
        elif trouble == "500":
            server.fail_next(10, status=500, retry_after_ms=10)
        else:
            server.garbage_next(10)  # a 200 answer is not retried: the server did answer
        reply = llm_runtime.assistant.ask(msg("What does FlashAttention-3 change on Hopper GPUs?"))
        assert reply.kind == "answer" and reply.mode == "extractive"
        assert "language model server" in reply.text and "quoted from the papers" in reply.text
        assert reply.citations and reply.citations[0].paper_id == FA3
        assert len(server.chat_requests) == requests  # 1 + OPENAI_MAX_RETRIES at most


# -- arXiv ------------------------------------------------------------------------------------


class Sleeps:
    """An injected sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


PAPERS = [FakePaper(f"2407.0{n}001", title=f"Paper {n}") for n in range(1, 6)]


def arxiv_client(server: FakeArxivServer, sleeps: Sleeps, **overrides: object) -> ArxivClient:
    settings = Settings().arxiv
    settings.api_url = server.url
    settings.delay_seconds = 0.0
    settings.backoff_seconds = 1.0
    settings.max_retries = 3
    settings.batch_size = 2
    for name, value in overrides.items():
        setattr(settings, name, value)
    return ArxivClient(settings, sleep=sleeps)


@pytest.mark.parametrize("status", [429, 503])
def test_arxiv_retry_after_as_a_date_is_waited_out(status: int) -> None:
    sleeps = Sleeps()
    with FakeArxivServer(PAPERS) as server:
        when = datetime.now(UTC) + timedelta(seconds=20)
        server.fail_next(1, status=status, retry_after=format_datetime(when, usegmt=True))
        with arxiv_client(server, sleeps) as client:
            assert len(list(client.fetch([PAPERS[0].arxiv_id]))) == 1
    [wait] = sleeps.waits
    assert 17 <= wait <= 20


def test_an_unreasonable_retry_after_is_capped() -> None:
    sleeps = Sleeps()
    with FakeArxivServer(PAPERS) as server:
        server.fail_next(1, status=429, retry_after="86400")
        with arxiv_client(server, sleeps) as client:
            assert len(list(client.fetch([PAPERS[0].arxiv_id]))) == 1
    assert sleeps.waits == [300.0]


def test_arxiv_throttling_mid_enrichment_is_waited_out_and_the_run_completes(
    settings: Settings, store: StateStore, index: OpenIndex, fake_embedder: FakeEmbedder
) -> None:
    sleeps = Sleeps()
    listed = RecordsSource([PaperRecord(p.arxiv_id, "potw", title=p.title) for p in PAPERS])
    with FakeArxivServer(PAPERS) as server:
        server.fail_next(1, status=503, retry_after="4")
        server.fail_next(1, status=429, retry_after="2")
        client = arxiv_client(server, sleeps)
        ingestor = Ingestor(
            store, index, fake_embedder, settings.ingest, settings.arxiv, arxiv=client
        )
        report = ingestor.ingest(listed)
        requests = server.requests
    assert report.enriched == len(PAPERS) and report.notes == []
    assert sleeps.waits == [4.0, 2.0]
    batches = [tuple(r.id_list) for r in requests]
    assert batches[0] == batches[1] == batches[2]  # the failed batch is asked again, then on
    assert len(requests) == 2 + 3  # two refusals, then three batches of at most two IDs


def test_an_arxiv_search_throttled_mid_way_resumes_where_it_stopped() -> None:
    sleeps = Sleeps()
    with FakeArxivServer(PAPERS) as server, arxiv_client(server, sleeps) as client:
        results = client.search("cat:cs.LG", 100)
        first = [next(results) for _ in range(2)]
        server.fail_next(1, status=429, retry_after="3")
        rest = list(results)
        starts = [r.params["start"] for r in server.requests]
    assert len(first) + len(rest) == len(PAPERS)
    assert sleeps.waits == [3.0]
    assert starts == ["0", "2", "2", "4"]
