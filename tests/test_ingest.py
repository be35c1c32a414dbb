"""The ingest pipeline end to end: real SQLite, real embedded Qdrant, fake arXiv server."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import httpx
import pytest

from assistant.errors import IndexUnavailableError, InvalidInputError
from assistant.index import OpenIndex, SearchFilter
from assistant.ingest import Ingestor
from assistant.models import Listing, PaperRecord
from assistant.search import Searcher
from assistant.settings import Settings
from assistant.sources.arxiv_api import ArxivClient, ArxivSource
from assistant.sources.arxiv_dump import ArxivDumpSource
from assistant.sources.potw import PotwSource
from assistant.state import StateStore
from tests.conftest import FIXTURES
from tests.fakes.arxiv_server import FakeArxivServer, FakePaper
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sources import RecordsSource
from tests.pdfs import make_pdf

WEEK = date(2024, 7, 8)
SAMPLE = FIXTURES / "potw_sample.md"


def week_records() -> list[PaperRecord]:
    source = PotwSource.from_location(SAMPLE, week=WEEK)
    return [r for r in source.read() if isinstance(r, PaperRecord)]


def week_ids() -> list[str]:
    return [r.paper_id for r in week_records()]


def paper_pdf(topic: str) -> bytes:
    return make_pdf(
        [
            [
                "# 1 Introduction",
                f"This made-up paper studies {topic} and explains why it matters.",
                "The rest of the page says more about the problem in plain words.",
            ],
            [
                "# 2 Method",
                f"Our method for {topic} splits the work into tiles that overlap in time.",
                "# References",
                "[1] A. Person. Some cited work. 2020.",
            ],
        ]
    )


@pytest.fixture
def arxiv_server() -> Iterator[FakeArxivServer]:
    papers = [
        FakePaper(
            r.paper_id,
            version=r.version or 1,
            title=f"Full title of {r.paper_id}",
            authors=("Ada Example",),
            summary=f"Our own words about paper {r.paper_id} and its kernels.",
        )
        for r in week_records()
        if not r.paper_id.startswith("web:")
    ]
    with FakeArxivServer(papers) as server:
        yield server


def online_ingestor(
    settings: Settings,
    store: StateStore,
    index: OpenIndex,
    embedder: FakeEmbedder,
    server: FakeArxivServer,
    http: httpx.Client,
) -> Ingestor:
    settings.arxiv.api_url = server.url
    settings.arxiv.pdf_base_url = server.pdf_base_url
    settings.arxiv.download_pdfs = True
    client = ArxivClient(settings.arxiv, sleep=lambda _: None)
    return Ingestor(
        store,
        index,
        embedder,
        settings.ingest,
        settings.arxiv,
        arxiv=client,
        http=http,
        sleep=lambda _: None,
    )


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def test_offline_ingest_stores_and_indexes_every_row(
    ingestor: Ingestor, store: StateStore, index: OpenIndex
) -> None:
    report = ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    assert report.records == 16
    assert report.new_papers == 16
    assert len(report.problems) == 4  # the fixture's malformed, link-less and duplicate rows
    assert any(":39:" in str(p) for p in report.problems)
    assert store.stats()["papers"] == 16
    assert index.count() == report.indexed_chunks == 16
    assert store.needing_enrichment()  # offline: arXiv papers wait for metadata


def test_ingesting_the_same_list_again_adds_and_embeds_nothing(
    ingestor: Ingestor, fake_embedder: FakeEmbedder, index: OpenIndex
) -> None:
    ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    embedded, points = fake_embedder.texts_embedded, index.count()
    again = ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    assert again.new_papers == again.updated_papers == again.indexed_papers == 0
    assert again.unchanged_papers == 16
    assert fake_embedder.texts_embedded == embedded
    assert index.count() == points


def test_online_ingest_enriches_from_arxiv_and_indexes_full_text(
    settings: Settings,
    store: StateStore,
    index: OpenIndex,
    fake_embedder: FakeEmbedder,
    arxiv_server: FakeArxivServer,
    http: httpx.Client,
) -> None:
    for paper in arxiv_server.papers.values():
        arxiv_server.pdfs[f"{paper.arxiv_id}v{paper.version}"] = paper_pdf(paper.arxiv_id)
    ingestor = online_ingestor(settings, store, index, fake_embedder, arxiv_server, http)
    report = ingestor.ingest(PotwSource.from_location(SAMPLE, week=WEEK))
    arxiv_ids = [p for p in week_ids() if not p.startswith("web:")]
    assert report.enriched == len(arxiv_ids)
    assert report.fulltext == len(arxiv_ids)
    paper = store.get_paper("2407.08608")
    assert paper is not None and paper.authors == ("Ada Example",) and paper.version == 1
    assert not paper.needs_enrichment
    body = [c for c in ingestor.passages(paper) if c.kind == "body"]
    assert {c.section for c in body} == {"1 Introduction", "2 Method"}
    assert {c.page for c in body} == {1, 2}
    assert not any("Some cited work" in c.text for c in body)  # references are not indexed
    searcher = Searcher(fake_embedder, index, settings.search)
    hits = searcher.passages("tiles overlap", 5, SearchFilter(paper_ids=("2407.08608",)))
    assert any(h.chunk.section == "2 Method" and h.chunk.page == 2 for h in hits)


def test_a_new_arxiv_version_replaces_the_papers_passages(
    settings: Settings,
    store: StateStore,
    index: OpenIndex,
    fake_embedder: FakeEmbedder,
    arxiv_server: FakeArxivServer,
    http: httpx.Client,
) -> None:
    arxiv_server.pdfs["2407.08608v1"] = paper_pdf("the first version")
    ingestor = online_ingestor(settings, store, index, fake_embedder, arxiv_server, http)
    ingestor.ingest(PotwSource.from_location(SAMPLE, week=WEEK))
    before = index.count()
    arxiv_server.papers["2407.08608"] = FakePaper(
        "2407.08608",
        version=2,
        title="Full title of 2407.08608",
        summary="Revised words for the second version.",
    )
    arxiv_server.pdfs["2407.08608v2"] = paper_pdf("the second version")
    report = ingestor.ingest(ArxivSource(ingestor._arxiv, ["2407.08608"]))  # type: ignore[arg-type]
    assert report.fulltext == 1 and report.indexed_papers == 1
    assert store.versions("2407.08608") == [1, 2]
    texts = " ".join(c.text for c in store.fulltext_chunks("2407.08608"))
    assert "second version" in texts and "first version" not in texts
    searcher = Searcher(fake_embedder, index, settings.search)
    hits = searcher.passages("version", 50, SearchFilter(paper_ids=("2407.08608",)))
    assert hits and not any("first version" in h.chunk.text for h in hits)
    assert index.count() == before  # replaced, not added


def test_arxiv_down_still_ingests_from_the_list_and_enriches_later(
    settings: Settings,
    store: StateStore,
    index: OpenIndex,
    fake_embedder: FakeEmbedder,
    arxiv_server: FakeArxivServer,
    http: httpx.Client,
) -> None:
    ingestor = online_ingestor(settings, store, index, fake_embedder, arxiv_server, http)
    settings.arxiv.max_retries = 1
    arxiv_server.fail_next(2, status=503)
    report = ingestor.ingest(PotwSource.from_location(SAMPLE, week=WEEK))
    assert report.new_papers > 0 and report.enriched == 0
    assert any("paperbot ingest enrich" in n for n in report.notes)
    pending = store.needing_enrichment()
    assert "2407.08608" in pending
    hits = Searcher(fake_embedder, index, settings.search).search("FlashAttention-3")
    assert hits[0].paper_id == "2407.08608"  # searchable from the list's words already

    later = online_ingestor(settings, store, index, fake_embedder, arxiv_server, http)
    report = later.enrich_pending()
    assert report.enriched == len(pending)
    assert store.needing_enrichment() == []


def test_an_unreadable_pdf_is_recorded_and_the_paper_still_indexed(
    settings: Settings,
    store: StateStore,
    index: OpenIndex,
    fake_embedder: FakeEmbedder,
    arxiv_server: FakeArxivServer,
    http: httpx.Client,
) -> None:
    arxiv_server.pdfs["2407.08608v1"] = b"%PDF-1.7 this is not really a PDF"
    ingestor = online_ingestor(settings, store, index, fake_embedder, arxiv_server, http)
    report = ingestor.ingest(PotwSource.from_location(SAMPLE, week=WEEK))
    assert any(n.startswith("2407.08608: full text not indexed") for n in report.notes)
    status = store.index_status("2407.08608")
    assert status.fulltext == "failed" and status.chunk_count >= 1
    again = ingestor.ingest(PotwSource.from_location(SAMPLE, week=WEEK))
    assert not any("2407.08608" in n for n in again.notes)  # not retried for the same version


def test_attaching_an_unreadable_pdf_changes_nothing(
    ingestor: Ingestor, store: StateStore, index: OpenIndex
) -> None:
    ingestor.ingest(PotwSource.from_location(SAMPLE, week=WEEK), offline=True)
    points, status = index.count(), store.index_status("2407.08608")
    with pytest.raises(InvalidInputError, match="PDF"):
        ingestor.attach_pdf("2407.08608", b"not a pdf at all")
    assert index.count() == points
    assert store.index_status("2407.08608") == status


def test_attaching_a_pdf_indexes_its_sections(
    ingestor: Ingestor, store: StateStore, searcher: Searcher
) -> None:
    ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    gencast = next(p for p in store.papers() if p.title == "GenCast")
    report = ingestor.attach_pdf(gencast.paper_id, paper_pdf("ensemble weather"))
    assert report.fulltext == 1
    hits = searcher.passages("tiles overlap", 5, SearchFilter(paper_ids=(gencast.paper_id,)))
    assert hits[0].chunk.section == "2 Method"


def test_a_dump_with_a_truncated_line_ingests_the_rest(
    ingestor: Ingestor, store: StateStore, tmp_path: Path
) -> None:
    lines = [
        json.dumps(
            {
                "id": "2401.00001",
                "title": "A",
                "abstract": "first made-up abstract",
                "authors": "A. One",
                "categories": "cs.LG",
                "update_date": "2024-01-02",
                "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}],
            }
        ),
        '{"id": "2401.00002", "title": "B", "abstr',
        json.dumps(
            {
                "id": "2401.00003",
                "title": "C",
                "abstract": "third made-up abstract",
                "authors": "C. Three",
                "categories": "cs.CL",
                "update_date": "2024-01-03",
                "versions": [{"version": "v2", "created": "Tue, 2 Jan 2024 10:00:00 GMT"}],
            }
        ),
    ]
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    report = ingestor.ingest(ArxivDumpSource(dump), offline=True)
    assert report.records == 2
    assert [p.where for p in report.problems] == [f"{dump}:2"]
    assert {p.paper_id for p in store.papers()} == {"2401.00001", "2401.00003"}
    assert store.needing_enrichment() == []  # dumps carry complete metadata


def test_a_passing_pdf_outage_is_retried_on_the_next_run(
    settings: Settings,
    store: StateStore,
    index: OpenIndex,
    fake_embedder: FakeEmbedder,
    arxiv_server: FakeArxivServer,
    http: httpx.Client,
) -> None:
    ingestor = online_ingestor(settings, store, index, fake_embedder, arxiv_server, http)
    known = RecordsSource(
        [
            PaperRecord(
                "2407.08608", "arxiv", title="FlashAttention-3", version=1, abstract="Our words."
            )
        ]
    )
    arxiv_server.pdfs["2407.08608v1"] = paper_pdf("recovered text")
    arxiv_server.fail_next(1, status=503)
    first = ingestor.ingest(known)
    assert any("not fetched this time" in n for n in first.notes)
    assert store.index_status("2407.08608").fulltext == "none"
    second = ingestor.ingest(known)
    assert second.fulltext == 1
    assert store.index_status("2407.08608").fulltext == "indexed"


class CrashAfterUpsert:
    """An index that writes the passages, then dies (a process killed mid-ingest)."""

    def __init__(self, index: OpenIndex) -> None:
        self._index = index

    def __getattr__(self, name: str) -> object:
        return getattr(self._index, name)

    def upsert(self, items: object) -> None:
        self._index.upsert(items)  # type: ignore[arg-type]
        raise RuntimeError("killed")


def test_a_run_killed_mid_index_leaves_no_leftovers_after_the_next_run(
    settings: Settings,
    store: StateStore,
    index: OpenIndex,
    fake_embedder: FakeEmbedder,
    searcher: Searcher,
) -> None:
    def listed(description: str) -> RecordsSource:
        return RecordsSource(
            [
                PaperRecord(
                    "2401.00001",
                    "potw",
                    title="A made-up paper",
                    listing=Listing(WEEK, 1, "A made-up paper", description),
                )
            ]
        )

    crashing = Ingestor(
        store,
        CrashAfterUpsert(index),  # type: ignore[arg-type]
        fake_embedder,
        settings.ingest,
        settings.arxiv,
    )
    with pytest.raises(RuntimeError):
        crashing.ingest(listed("second words about puppies"), offline=True)
    assert store.index_status("2401.00001").pending_hash is not None
    Ingestor(store, index, fake_embedder, settings.ingest, settings.arxiv).ingest(
        listed("third words about parrots"), offline=True
    )
    texts = [h.chunk.text for h in searcher.passages("words", 20)]
    assert texts == ["third words about parrots"]
    assert store.index_status("2401.00001").pending_hash is None


# -- embedding in large batches, beside reading -------------------------------------------


def listed_paper(number: int, description: str, week: date = WEEK) -> PaperRecord:
    paper_id = f"2401.{number:05d}"
    title = f"Made-up paper {number}"
    return PaperRecord(paper_id, "potw", title=title, listing=Listing(week, 1, title, description))


def test_passages_are_embedded_in_batches_larger_than_a_window(
    ingestor: Ingestor, fake_embedder: FakeEmbedder, index: OpenIndex
) -> None:
    records = [listed_paper(n, f"words about topic {n}") for n in range(1, 601)]  # 3 windows
    report = ingestor.ingest(RecordsSource(records), offline=True)
    assert report.indexed_papers == 600 and index.count() == 600
    assert fake_embedder.calls == [600]  # one call, not one per window of 256 rows


def test_a_paper_listed_again_in_a_later_window_leaves_only_its_latest_passages(
    ingestor: Ingestor, store: StateStore, index: OpenIndex, searcher: Searcher
) -> None:
    first = [listed_paper(n, f"filler words {n}") for n in range(1, 300)]
    repeated = listed_paper(1, "kittens now", week=date(2024, 7, 15))  # a second listing
    ingestor.ingest(RecordsSource([*first, repeated]), offline=True)
    status = store.index_status("2401.00001")
    paper = store.get_paper("2401.00001")
    assert paper is not None and status.pending_hash is None
    held = index.count(SearchFilter(paper_ids=("2401.00001",)))
    assert held == status.chunk_count == len(ingestor.passages(paper)) == 2  # both listings
    assert (
        index.count(SearchFilter(paper_ids=("2401.00001",), content_hash=status.content_hash))
        == held
    )
    assert index.count() == sum(
        store.index_status(f"2401.{n:05d}").chunk_count for n in range(1, 300)
    )


class FailingEmbedder(FakeEmbedder):
    """Fails on its `fail_at`-th call (an embeddings server that goes away)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def embed(self, texts: Sequence[str], role: str = "passage") -> list[list[float]]:
        if len(self.calls) + 1 == self.fail_at:
            self.calls.append(len(texts))
            raise IndexUnavailableError("the embeddings server went away")
        return super().embed(texts, role)


def test_an_embedding_failure_mid_run_records_only_what_was_written(
    settings: Settings, store: StateStore, index: OpenIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("assistant.indexing.EMBED_BATCH", 100)
    embedder = FailingEmbedder(fail_at=2)
    ingestor = Ingestor(store, index, embedder, settings.ingest, settings.arxiv)
    records = [listed_paper(n, f"words about topic {n}") for n in range(1, 301)]
    with pytest.raises(IndexUnavailableError, match="went away"):
        ingestor.ingest(RecordsSource(records), offline=True)
    indexed = store.stats()["indexed_papers"]
    assert index.count() == indexed < 300  # nothing recorded that is not in the index
    again = Ingestor(store, index, FakeEmbedder(), settings.ingest, settings.arxiv)
    report = again.ingest(RecordsSource(records), offline=True)
    assert report.indexed_papers == 300 - indexed and index.count() == 300
