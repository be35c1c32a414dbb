"""The Qdrant server path: qdrant-client's REST transport against the fake Qdrant server
(qdrant-client's local mode behind Qdrant's HTTP API), compared with the embedded engine
(Qdrant Edge); and `paperbot index migrate` from the embedded engine to a server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import qdrant_edge as edge
from pydantic import SecretStr
from qdrant_client import QdrantClient
from qdrant_client.models import PointStruct

from assistant.embedding import ENGLISH_VECTOR, SecondVector
from assistant.errors import ConfigError
from assistant.index import (
    DENSE,
    PAYLOAD_INDEXES,
    SPARSE,
    DenseVector,
    IndexSchema,
    OpenIndex,
    SearchMode,
    open_index,
)
from assistant.index_server import ServerIndex
from assistant.ingest import Ingestor
from assistant.models import PaperRecord, SearchHit
from assistant.search import Searcher
from assistant.settings import Settings
from assistant.sources.potw import PotwSource
from assistant.state import StateStore
from tests.conftest import FIXTURES, run_cli, schema_of
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.qdrant_server import FakeQdrantServer
from tests.fakes.sources import RecordsSource

SAMPLE = FIXTURES / "potw_sample.md"
QUERIES = ("DeepSeek-V3 mixture-of-experts", "fast exact attention on GPUs", "language model")


@dataclass
class Stack:
    store: StateStore
    index: OpenIndex
    ingestor: Ingestor
    searcher: Searcher


@contextmanager
def stack(
    data_dir: Path, url: str | None, embedder: FakeEmbedder, second: FakeEmbedder | None = None
) -> Iterator[Stack]:
    """Store, index, ingestor and searcher on the embedded engine, or the server at `url`
    (with `second`, passages also carry that model's vector, as next to e5)."""
    settings = Settings(data_dir=data_dir)
    settings.qdrant.url = url
    settings.qdrant.timeout = 2
    store = StateStore.open(settings.state_path)
    more = [SecondVector(ENGLISH_VECTOR, second)] if second else []
    schema = schema_of(embedder)
    schema = replace(
        schema, dense=schema.dense + tuple(DenseVector(m.name, m.embedder.name, 32) for m in more)
    )
    index = open_index(settings.qdrant, settings.index_path, schema)
    ingestor = Ingestor(store, index, embedder, settings.ingest, settings.arxiv, second=more)
    searcher = Searcher(embedder, index, settings.search, second=more)
    try:
        yield Stack(store, index, ingestor, searcher)
    finally:
        index.close()
        store.close()


def assert_same_results(got: list[SearchHit], want: list[SearchHit], tol: float = 1e-4) -> None:
    """The same ranking, with scores equal to `tol`: two engines compute in their own
    float order, so a score may differ in the 6th decimal, and papers whose scores tie
    (to `tol`) may come in either order, or either side of the cut at k."""
    assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=tol)
    start = 0
    for end in range(1, len(want) + 1):
        if end < len(want) and abs(want[end].score - want[end - 1].score) <= tol:
            continue  # still in a run of tied scores
        tied_at_cut = end == len(want) and end - start > 1
        if not tied_at_cut:
            assert {h.paper_id for h in got[start:end]} == {h.paper_id for h in want[start:end]}
        start = end


@pytest.fixture
def qdrant() -> Iterator[FakeQdrantServer]:
    with FakeQdrantServer() as server:
        yield server


def test_the_server_path_finds_what_the_embedded_engine_finds(
    tmp_path: Path, qdrant: FakeQdrantServer, fake_embedder: FakeEmbedder
) -> None:
    with (
        stack(tmp_path / "embedded", None, fake_embedder) as embedded,
        stack(tmp_path / "server", qdrant.url, fake_embedder) as server,
    ):
        for side in (embedded, server):
            side.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        assert server.index.count() == embedded.index.count() > 10
        for query in QUERIES:
            for mode in SearchMode:
                want = embedded.searcher.search(query, mode=mode)
                got = server.searcher.search(query, mode=mode)
                assert_same_results(got, want)
    used = {r.operation for r in qdrant.requests}
    assert {"create_collection", "create_payload_index", "upsert", "query_batch"} <= used
    assert "unknown" not in used


def test_a_second_dense_vector_is_written_and_searched_alike_on_both_engines(
    tmp_path: Path, qdrant: FakeQdrantServer, fake_embedder: FakeEmbedder
) -> None:
    second = FakeEmbedder(32, name="fake-bow-32")
    with (
        stack(tmp_path / "embedded", None, fake_embedder, second) as embedded,
        stack(tmp_path / "server", qdrant.url, fake_embedder, second) as server,
        stack(tmp_path / "one", None, fake_embedder) as one_vector,
    ):
        for side in (embedded, server, one_vector):
            side.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        changed = 0
        for query in QUERIES:
            for mode in SearchMode:
                want = embedded.searcher.search(query, mode=mode)
                assert_same_results(server.searcher.search(query, mode=mode), want)
            alone = one_vector.searcher.search(query)
            changed += [h.score for h in alone] != [h.score for h in want]
        assert changed  # the second vector's list took part in the fusion
    searches = [
        [s["using"] for s in r.json["searches"]]
        for r in qdrant.requests
        if r.operation == "query_batch" and r.json
    ]
    assert ["dense", ENGLISH_VECTOR, "sparse"] in searches
    upserted = [p for r in qdrant.requests if r.operation == "upsert" for p in r.json["points"]]
    assert all(len(p["vector"][ENGLISH_VECTOR]) == 32 for p in upserted)


def test_a_server_collection_records_its_model_and_gets_payload_indexes(
    tmp_path: Path, qdrant: FakeQdrantServer, fake_embedder: FakeEmbedder
) -> None:
    with stack(tmp_path / "data", qdrant.url, fake_embedder):
        pass
    info = qdrant.engine.get_collection("paperbot_chunks")
    assert info.config.metadata == {
        "embedding_model": fake_embedder.name,
        "dimension": fake_embedder.dimension,
        "sparse": "paperbot-bm25-v1",
        "dense_vectors": {
            "dense": {
                "model": fake_embedder.name,
                "dimension": fake_embedder.dimension,
                "distance": "cosine",
            }
        },
    }
    assert set(qdrant.payload_indexes["paperbot_chunks"]) == {
        "paper_id",
        "weeks",
        "categories",
        "content_hash",
    }
    other = FakeEmbedder(name="another-model")
    with (
        pytest.raises(ConfigError, match="paperbot index rebuild"),
        stack(tmp_path / "data", qdrant.url, other),
    ):
        pass


def test_two_replicas_creating_the_collection_at_once_both_start(
    tmp_path: Path, qdrant: FakeQdrantServer, fake_embedder: FakeEmbedder
) -> None:
    def other_replica_first() -> None:
        with stack(tmp_path / "other", qdrant.url, fake_embedder):
            pass

    qdrant.before_next("create_collection", other_replica_first)
    with stack(tmp_path / "data", qdrant.url, fake_embedder) as server:
        assert server.index.count() == 0
    assert [r.operation for r in qdrant.requests].count("create_collection") == 2
    other = FakeEmbedder(name="another-model")
    qdrant.engine.delete_collection("paperbot_chunks")
    qdrant.before_next("create_collection", lambda: other_replica_first())
    with pytest.raises(ConfigError), stack(tmp_path / "data", qdrant.url, other):
        pass


def test_a_new_version_replaces_the_papers_passages_on_the_server(
    tmp_path: Path, qdrant: FakeQdrantServer, fake_embedder: FakeEmbedder
) -> None:
    def version(abstract: str) -> RecordsSource:
        return RecordsSource(
            [PaperRecord("2401.00001", "arxiv", title="Made up", abstract=abstract)]
        )

    with stack(tmp_path / "data", qdrant.url, fake_embedder) as server:
        server.ingestor.ingest(version("first words about kittens"), offline=True)
        server.ingestor.ingest(version("second words about puppies"), offline=True)
        texts = [h.chunk.text for h in server.searcher.passages("words", 10)]
    assert texts == ["second words about puppies"]
    assert len(qdrant.requests_for("delete")) == 1


def test_a_papers_passages_are_never_split_across_write_requests(
    tmp_path: Path,
    qdrant: FakeQdrantServer,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ServerIndex, "UPSERT_BATCH", 3)
    with stack(tmp_path / "data", qdrant.url, fake_embedder) as server:
        server.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        total = server.index.count()
    requests = qdrant.requests_for("upsert")
    papers = [{p["payload"]["paper_id"] for p in r.json["points"]} for r in requests]
    assert len(requests) > 3
    assert sum(len(p["points"]) for p in (r.json for r in requests)) == total
    every = [paper for batch in papers for paper in batch]
    assert len(every) == len(set(every))  # each paper in exactly one request


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_the_api_key_is_sent_and_a_wrong_one_names_the_setting(
    tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    with FakeQdrantServer(api_key="right-key") as qdrant:
        settings = Settings(data_dir=tmp_path / "data")
        settings.qdrant.url = qdrant.url
        settings.qdrant.api_key = SecretStr("wrong-key")
        with pytest.raises(ConfigError, match="QDRANT_API_KEY") as raised:
            ServerIndex.open(settings.qdrant, IndexSchema.single("m", 8))
        assert "wrong-key" not in str(raised.value)
        settings.qdrant.api_key = SecretStr("right-key")
        ServerIndex.open(settings.qdrant, IndexSchema.single("m", 8)).close()
        assert qdrant.requests[-1].api_key == "right-key"


def test_the_fake_server_goes_down_and_comes_back_on_its_port_with_its_data(
    tmp_path: Path, qdrant: FakeQdrantServer, fake_embedder: FakeEmbedder
) -> None:
    with stack(tmp_path / "data", qdrant.url, fake_embedder) as server:
        server.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        count = server.index.count()
        url = qdrant.url
        qdrant.down()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/readyz", timeout=1)
        qdrant.up()
        assert qdrant.url == url
        assert httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        assert server.index.count() == count


# -- paperbot index migrate ------------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder) -> Path:
    """A data dir (PAPERBOT_DATA_DIR) whose embedded index holds the sample list."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(data_dir))
    with stack(data_dir, None, fake_embedder) as local:
        local.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    return data_dir


def edge_points(shard_path: Path) -> dict[str, tuple[Any, Any]]:
    """Every point of an embedded index's shard (read with Edge directly)."""
    shard = edge.EdgeShard.load(str(shard_path))
    try:
        records, _ = shard.scroll(
            edge.ScrollRequest(limit=10_000, with_payload=True, with_vector=True)
        )
    finally:
        shard.close()
    return {str(r.id): (r.payload, r.vector) for r in records}


def all_points(client: QdrantClient) -> dict[str, tuple[Any, Any]]:
    records, _ = client.scroll(
        "paperbot_chunks", limit=10_000, with_payload=True, with_vectors=True
    )
    return {str(r.id): (r.payload, r.vector) for r in records}


def test_migrate_copies_the_embedded_index_so_the_server_answers_the_same(
    embedded: Path,
    qdrant: FakeQdrantServer,
    fake_embedder: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(
        capsys, "index", "migrate", "--to-url", qdrant.url, "--batch", "7", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["verified"] and report["created"]
    assert report["copied"] == report["source_points"] == report["destination_points"] > 10
    assert report["matching_queries"] == report["sample_queries"] == 3
    assert "copying paperbot_chunks" in err  # the progress bar, on stderr

    want = edge_points(embedded / "index" / "shard")
    meta = json.loads((embedded / "index" / "index.json").read_text())
    remote = QdrantClient(url=qdrant.url, check_compatibility=False)
    try:
        got = all_points(remote)
    finally:
        remote.close()
    assert got.keys() == want.keys()  # the same point ids
    for point_id, (payload, vectors) in want.items():
        assert got[point_id][0] == payload
        assert got[point_id][1][SPARSE].indices == vectors[SPARSE].indices
        assert got[point_id][1][SPARSE].values == pytest.approx(vectors[SPARSE].values)
        assert got[point_id][1][DENSE] == pytest.approx(vectors[DENSE], abs=1e-6)
    assert qdrant.engine.get_collection("paperbot_chunks").config.metadata == meta
    assert set(qdrant.payload_indexes["paperbot_chunks"]) == set(PAYLOAD_INDEXES)

    # the migrated server, with the same SQLite state, finds what the embedded index found
    with stack(embedded, None, fake_embedder) as before:
        want_hits = [before.searcher.search(q) for q in QUERIES]
    with stack(embedded, qdrant.url, fake_embedder) as after:
        for query, hits in zip(QUERIES, want_hits, strict=True):
            assert_same_results(after.searcher.search(query), hits)
        report = after.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        assert report.indexed_papers == 0  # nothing to re-embed

    upserts = len(qdrant.requests_for("upsert"))
    code, out, _ = run_cli(capsys, "index", "migrate", "--to-url", qdrant.url, "--json")
    again = json.loads(out)
    assert code == 0 and again["verified"] and not again["created"]
    assert again["destination_points"] == again["source_points"]  # upserted, not added
    assert len(qdrant.requests_for("upsert")) == upserts + 1  # one request of 256


def test_migrate_refuses_a_server_collection_built_by_another_model(
    embedded: Path, qdrant: FakeQdrantServer, capsys: pytest.CaptureFixture[str]
) -> None:
    other = FakeEmbedder(dimension=32, name="another-model")
    with stack(embedded.parent / "elsewhere", qdrant.url, other):
        pass
    code, _, err = run_cli(capsys, "index", "migrate", "--to-url", qdrant.url)
    assert code == 2
    assert "another-model" in err and "fake-bow-64" in err and "QDRANT_COLLECTION" in err
    assert qdrant.requests_for("upsert") == []


def test_a_copy_that_does_not_match_fails_the_check(
    embedded: Path, qdrant: FakeQdrantServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run_cli(capsys, "index", "migrate", "--to-url", qdrant.url)
    assert code == 0
    [stray] = qdrant.engine.scroll("paperbot_chunks", limit=1, with_vectors=True)[0]
    vector: Any = stray.vector
    qdrant.engine.upsert(
        "paperbot_chunks",
        [PointStruct(id=str(uuid.uuid4()), vector=vector, payload=stray.payload)],
    )  # a point the embedded index does not have
    code, out, err = run_cli(capsys, "index", "migrate", "--to-url", qdrant.url, "--json")
    report = json.loads(out)
    assert code == 2 and not report["verified"]
    assert report["destination_points"] == report["source_points"] + 1
    assert "verification failed" in err


def test_an_interrupted_migration_is_finished_by_running_it_again(
    embedded: Path, qdrant: FakeQdrantServer, capsys: pytest.CaptureFixture[str]
) -> None:
    qdrant.fail_next(1, status=503, operation="upsert", after=1)
    code, _, err = run_cli(capsys, "index", "migrate", "--to-url", qdrant.url, "--batch", "5")
    assert code == 2
    assert "Run the same command again" in " ".join(err.split())
    assert "Traceback" not in err
    code, out, _ = run_cli(capsys, "index", "migrate", "--to-url", qdrant.url, "--json")
    assert code == 0 and json.loads(out)["verified"]


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_migrate_takes_the_api_key_from_the_named_variable(
    embedded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeQdrantServer(api_key="s3cret") as qdrant:
        args = ("index", "migrate", "--to-url", qdrant.url, "--api-key-env", "MY_QDRANT_KEY")
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and "MY_QDRANT_KEY" in err
        monkeypatch.setenv("MY_QDRANT_KEY", "s3cret")
        code, _, err = run_cli(capsys, *args)
        assert code == 0, err
        assert "s3cret" not in err
        assert {r.api_key for r in qdrant.requests} == {"s3cret"}


def test_migrate_without_an_embedded_index_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(tmp_path / "empty"))
    code, _, err = run_cli(capsys, "index", "migrate", "--to-url", "http://127.0.0.1:9")
    assert code == 2 and "no embedded index" in err
