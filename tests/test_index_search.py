"""Hybrid search over the real embedded Qdrant, with a deterministic fake embedder."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest

from assistant.errors import ConfigError, IndexUnavailableError, InvalidInputError
from assistant.index import (
    DenseVector,
    IndexedChunk,
    IndexSchema,
    OpenIndex,
    SearchFilter,
    SearchMode,
    open_index,
)
from assistant.index_edge import EdgeIndex
from assistant.ingest import Ingestor
from assistant.models import Chunk, PaperRecord
from assistant.search import Searcher
from assistant.settings import Settings
from assistant.sources.potw import PotwSource
from assistant.sparse import document_vector, query_vector
from tests.conftest import FIXTURES, schema_of
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sources import RecordsSource


@pytest.fixture
def loaded(ingestor: Ingestor) -> Ingestor:
    report = ingestor.ingest(PotwSource.from_location(FIXTURES / "potw_sample.md"), offline=True)
    assert report.indexed_papers > 10
    return ingestor


def test_a_papers_name_finds_it_first(loaded: Ingestor, searcher: Searcher) -> None:
    hits = searcher.search("DeepSeek-V3 mixture-of-experts")
    assert hits[0].paper_id == "2412.19437"
    assert hits[0].url == "https://arxiv.org/abs/2412.19437"
    assert hits[0].snippet


def test_a_japanese_question_naming_a_paper_finds_it(loaded: Ingestor, searcher: Searcher) -> None:
    hits = searcher.search("FlashAttention-3の主な貢献は何ですか？", k=3)
    assert hits[0].paper_id == "2407.08608"


def test_results_are_one_per_paper(loaded: Ingestor, searcher: Searcher) -> None:
    hits = searcher.search("language model", k=10)
    ids = [h.paper_id for h in hits]
    assert len(ids) == len(set(ids))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_filters_restrict_to_a_paper_and_a_week(loaded: Ingestor, searcher: Searcher) -> None:
    only = searcher.search("attention", where=SearchFilter(paper_ids=("2407.08608",)))
    assert [h.paper_id for h in only] == ["2407.08608"]
    week = date(2024, 7, 8)
    in_week = searcher.search("model", k=20, where=SearchFilter(week=week))
    source = PotwSource.from_location(FIXTURES / "potw_sample.md", week=week)
    listed = {r.paper_id for r in source.read() if isinstance(r, PaperRecord)}
    assert in_week and {h.paper_id for h in in_week} <= listed


def test_category_filter(ingestor: Ingestor, searcher: Searcher) -> None:
    records = [
        PaperRecord(
            pid,
            "arxiv",
            title=f"Vision and language {pid}",
            categories=cats,
            abstract="a study of vision and language",
        )
        for pid, cats in (("2401.00001", ("cs.CL",)), ("2401.00002", ("cs.CV",)))
    ]
    ingestor.ingest(RecordsSource(records), offline=True)
    hits = searcher.search("vision language", where=SearchFilter(categories=("cs.CV",)))
    assert [h.paper_id for h in hits] == ["2401.00002"]


@pytest.mark.parametrize("mode", list(SearchMode))
def test_every_mode_answers(loaded: Ingestor, searcher: Searcher, mode: SearchMode) -> None:
    hits = searcher.search("DeepSeek-V3", mode=mode)
    assert hits and hits[0].paper_id == "2412.19437"


def test_a_query_with_no_indexable_terms_still_searches_densely(
    loaded: Ingestor, searcher: Searcher
) -> None:
    assert searcher.search("??", mode=SearchMode.HYBRID)  # dense alone
    assert searcher.search("??", mode=SearchMode.SPARSE) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [("", "empty"), ("   \n ", "empty"), ("x" * 100_000, "100,000 characters")],
)
def test_empty_and_oversized_queries_are_refused(
    searcher: Searcher, query: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        searcher.search(query)


def test_an_index_built_by_another_model_is_refused(settings: Settings, index: OpenIndex) -> None:
    index.close()
    other = FakeEmbedder(name="another-model")
    with pytest.raises(ConfigError, match="paperbot index rebuild"):
        open_index(settings.qdrant, settings.index_path, schema_of(other))


def test_a_second_process_on_the_embedded_index_gets_a_clear_message(
    settings: Settings, index: OpenIndex, fake_embedder: FakeEmbedder
) -> None:
    with pytest.raises(IndexUnavailableError, match="QDRANT_URL") as refused:
        open_index(settings.qdrant, settings.index_path, schema_of(fake_embedder), "other")
    assert "`pytest`" in str(refused.value)  # the holder, by the name it gave


def test_an_unreachable_qdrant_server_is_reported(settings: Settings, tmp_path: Path) -> None:
    settings.qdrant.url = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.qdrant.timeout = 1
    with pytest.raises(IndexUnavailableError, match="Qdrant server"):
        open_index(settings.qdrant, tmp_path, IndexSchema.single("m", 8))


def test_searches_from_several_threads_run_while_an_ingest_writes(
    loaded: Ingestor, searcher: Searcher, index: OpenIndex
) -> None:
    """No lock of ours around the embedded engine: it takes concurrent reads and writes."""
    before = index.count()
    more = [
        PaperRecord(f"2402.{n:05d}", "arxiv", title=f"Made up {n}", abstract=f"kittens {n}")
        for n in range(1, 401)
    ]
    found: list[str] = []
    failures: list[BaseException] = []
    writing = threading.Event()

    def search_until_written() -> None:
        while True:
            try:
                found.append(searcher.search("DeepSeek-V3 mixture-of-experts")[0].paper_id)
            except BaseException as exc:  # reported below
                failures.append(exc)
            if not writing.is_set():
                return

    writing.set()
    threads = [threading.Thread(target=search_until_written) for _ in range(4)]
    for thread in threads:
        thread.start()
    loaded.ingest(RecordsSource(more), offline=True)
    writing.clear()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(found) >= 4 and set(found) == {"2412.19437"}
    assert index.count() == before + 400


def test_closing_the_index_while_threads_search_refuses_cleanly(
    loaded: Ingestor, searcher: Searcher, index: OpenIndex
) -> None:
    """A search finishes, or is refused with a message; closing never breaks one midway
    (close waits for the engine calls of searches in flight)."""
    outcomes: list[str] = []

    def search() -> None:
        for _ in range(20):
            try:
                outcomes.append("found" if searcher.search("attention", k=20) else "empty")
            except IndexUnavailableError as exc:
                outcomes.append("refused" if "closed" in str(exc) else repr(exc))

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    while not outcomes:
        time.sleep(0.001)
    index.close()
    for thread in threads:
        thread.join(timeout=30)
    assert set(outcomes) == {"found", "refused"} and len(outcomes) == 80


def test_the_schema_names_every_dense_vector_and_its_model(tmp_path: Path) -> None:
    """A second named dense vector (another model) is one more entry in the schema: the
    engine creates it and records its model; an index without it is refused until rebuilt."""
    one = IndexSchema.single("model-a", 8)
    two = IndexSchema(
        (DenseVector("dense", "model-a", 8), DenseVector("dense_multilingual", "model-b", 16))
    )
    index = EdgeIndex.open(tmp_path / "two", two, "pytest")
    assert index.record()["dense_vectors"] == {
        "dense": {"model": "model-a", "dimension": 8, "distance": "cosine"},
        "dense_multilingual": {"model": "model-b", "dimension": 16, "distance": "cosine"},
    }
    assert IndexSchema.from_record(index.record()) == two
    index.close()
    EdgeIndex.open(tmp_path / "two", one, "pytest").close()  # the primary model matches
    EdgeIndex.open(tmp_path / "one", one, "pytest").close()
    with pytest.raises(ConfigError, match="paperbot index rebuild"):
        EdgeIndex.open(tmp_path / "one", two, "pytest")


def _passage(paper_id: str, text: str, dense: list[float]) -> IndexedChunk:
    return IndexedChunk(
        chunk=Chunk(paper_id, 0, "description", text),
        title=paper_id,
        url=None,
        weeks=(),
        categories=(),
        content_hash=paper_id,
        dense=dense,
        sparse=document_vector(text),
    )


def _gate_corpus(index: OpenIndex, dimension: int) -> None:
    """The right paper is the query's dense neighbour and shares none of its words; a wrong
    one shares one word ('tall') and nothing else; four others sit between them."""

    def unit(*pairs: tuple[int, float]) -> list[float]:
        vector = [0.0] * dimension
        for axis, value in pairs:
            vector[axis] = value
        return vector

    index.upsert(
        [
            _passage("right", "Video generation of people moving outdoors", unit((0, 1.0))),
            _passage("one-word", "A dataset of tall buildings", unit((5, 1.0))),
            *(
                _passage(f"other-{i}", f"Unrelated topic number {i}", unit((0, 0.5), (i, 0.866)))
                for i in range(1, 5)
            ),
        ]
    )


def test_bm25_whose_best_passage_shares_one_word_of_a_described_paper_loses_its_vote(
    index: OpenIndex, fake_embedder: FakeEmbedder
) -> None:
    _gate_corpus(index, fake_embedder.dimension)
    query = [1.0] + [0.0] * (fake_embedder.dimension - 1)
    sparse = query_vector("a camera that films itself walking across tall grass")

    def top(gate: float) -> str:
        hits = index.query(query, sparse, SearchFilter(), limit=3, sparse_gate=gate)
        return hits[0].chunk.paper_id

    assert top(0.0) == "one-word"  # a single shared word outvotes the dense neighbour
    assert top(1.0) == "right"  # English query: BM25 covers 1 of 7 terms, its vote shrinks
    assert top(0.2) == "one-word"  # mostly CJK query: the gate barely applies


def test_bm25_keeps_its_vote_when_its_best_passage_holds_the_querys_words(
    index: OpenIndex, fake_embedder: FakeEmbedder
) -> None:
    _gate_corpus(index, fake_embedder.dimension)
    query = [1.0] + [0.0] * (fake_embedder.dimension - 1)
    sparse = query_vector("dataset of tall buildings")
    hits = index.query(query, sparse, SearchFilter(), limit=3, sparse_gate=1.0)
    assert hits[0].chunk.paper_id == "one-word"
