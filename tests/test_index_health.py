"""A missing, damaged or outdated embedded index is noticed (search, stats and readiness
say so, with the one command that fixes it), and `paperbot index rebuild` fixes it from
whatever state it is in. The CLI runs in-process with the fake embedder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from assistant.settings import Settings
from tests.conftest import FIXTURES, ROOT, run_cli
from tests.fakes.embedder import FakeEmbedder
from tests.test_faults import FakeModelRuntime

SAMPLE = FIXTURES / "potw_sample.md"
REBUILD = "paperbot index rebuild"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr with lines joined)."""
    code, out, err = run_cli(capsys, *args)
    return code, out, " ".join(err.split())


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Path]:
    """A data dir with the sample list ingested, the fake embedder behind every command."""
    embedder = FakeEmbedder()
    monkeypatch.setattr("assistant.runtime.build_embedder", lambda *args: embedder)
    path = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(path))
    code, _, err = run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")
    assert code == 0, err
    yield path


def search_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "search", "FlashAttention-3", "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["paper_id"] == "2407.08608"


def refused_with_rebuild(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    assert REBUILD in err and "Traceback" not in err
    return err


def rebuild_restores_search(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, err = run(capsys, "index", "rebuild", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["indexed_papers"] == 16
    search_works(capsys)
    code, out, _ = run(capsys, "stats", "--json")
    stats = json.loads(out)
    assert stats["index_status"] == "ok"
    assert stats["index_passages"] == stats["indexed_chunks"] >= 16


def shard_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "index" / "shard").rglob("*") if p.is_file())


def delete_folder(data_dir: Path) -> None:
    shutil.rmtree(data_dir / "index")


def garbage_files(data_dir: Path) -> None:
    for path in shard_files(data_dir):
        path.write_bytes(os.urandom(max(16, path.stat().st_size)))


def truncated_segments(data_dir: Path) -> None:
    for path in shard_files(data_dir):
        if "segments" in path.parts:
            with path.open("r+b") as handle:
                handle.truncate(path.stat().st_size // 3)


def lost_data_files(data_dir: Path) -> None:
    """The engine's segments and write-ahead log gone, its configuration left."""
    for part in ("segments", "wal"):
        shutil.rmtree(data_dir / "index" / "shard" / part)


@pytest.mark.parametrize(
    "damage",
    [delete_folder, garbage_files, truncated_segments, lost_data_files],
    ids=lambda f: f.__name__,
)
def test_a_damaged_embedded_index_is_reported_and_rebuild_fixes_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str], damage: Callable[[Path], None]
) -> None:
    search_works(capsys)
    damage(data_dir)
    refused_with_rebuild(capsys, "search", "FlashAttention-3")  # not "No papers match"
    refused_with_rebuild(capsys, "ask", "What does FlashAttention-3 make faster?")
    code, out, _ = run(capsys, "stats", "--json")
    stats = json.loads(out)
    assert code == 0 and stats["indexed_chunks"] >= 16
    assert REBUILD in stats["index_status"] and stats["index_passages"] != stats["indexed_chunks"]
    rebuild_restores_search(capsys, data_dir)


def test_an_index_left_by_qdrant_client_local_mode_is_moved_by_rebuild(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data dir from before the Edge engine: SQLite, and the index in data/qdrant."""
    shutil.rmtree(data_dir / "index")
    old = QdrantClient(path=str(data_dir / "qdrant"))
    old.create_collection(
        "paperbot_chunks",
        vectors_config={"dense": models.VectorParams(size=64, distance=models.Distance.COSINE)},
        metadata={"embedding_model": "fake-bow-64", "dimension": 64, "sparse": "paperbot-bm25-v1"},
    )
    old.close()
    err = refused_with_rebuild(capsys, "search", "FlashAttention-3")
    assert "older paperbot" in err and "Nothing is lost" in err
    refused_with_rebuild(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")
    rebuild_restores_search(capsys, data_dir)
    assert not (data_dir / "qdrant").exists()  # moved: the old folder is gone


def test_an_index_rebuild_interrupted_after_wiping_is_finished_by_running_it_again(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("assistant.ingest.Ingestor.rebuild", interrupted)
        code, _, _ = run(capsys, "index", "rebuild")
    assert code == 130
    rebuild_restores_search(capsys, data_dir)


def test_readiness_reports_a_deleted_index_and_recovers_once_it_is_rebuilt(
    data_dir: Path, settings: Settings
) -> None:
    settings.data_dir = data_dir
    settings.qdrant.retry_seconds = 0
    delete_folder(data_dir)
    with FakeModelRuntime(settings, process="paperbot serve") as serving:
        ready, why = serving.index_ready()
        assert not ready and REBUILD in why and "0 passages" in why
        # the damaged index is not held: the rebuild can run beside the service
        with FakeModelRuntime(settings, process="paperbot index rebuild") as rebuilding:
            rebuilding.rebuild_index()
        assert serving.index_ready() == (True, "ok")
        assert serving.searcher.search("FlashAttention-3")[0].paper_id == "2407.08608"


def test_the_index_in_use_message_names_the_command_holding_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperbot chat` holds the embedded index: other commands say so, not `serve`."""
    chat = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_model_cli", "chat"],
        env={**os.environ, "PAPERBOT_DATA_DIR": str(data_dir)},
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=(data_dir / "chat.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        assert chat.stdin is not None
        chat.stdin.write(b"/paper search attention kernels\n")
        chat.stdin.flush()
        lock = data_dir / "index" / "lock"
        deadline = time.monotonic() + 60
        while "paperbot chat" not in lock.read_text():
            assert time.monotonic() < deadline and chat.poll() is None, (
                data_dir / "chat.log"
            ).read_text()
            time.sleep(0.1)
        for command in (["search", "attention"], ["index", "rebuild"], ["serve"]):
            code, _, err = run(capsys, *command)
            assert code == 2, err
            assert f"in use by another paperbot process: `paperbot chat` (pid {chat.pid}" in err
            assert "`paperbot serve`" not in err and "Traceback" not in err
    finally:
        chat.kill()
        chat.wait(timeout=30)
    search_works(capsys)  # the lock went with the process


class SlowToLoad(FakeEmbedder):
    """Its first call takes `load_seconds` longer, as loading a model does."""

    def __init__(self, load_seconds: float) -> None:
        super().__init__()
        self.load_seconds = load_seconds

    def embed(self, texts: Sequence[str], role: str = "passage") -> list[list[float]]:
        if not self.calls:
            time.sleep(self.load_seconds)
        return super().embed(texts, role)


def test_each_search_line_times_its_query_without_the_model_load(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    embedder = SlowToLoad(load_seconds=3.0)
    monkeypatch.setattr("assistant.runtime.build_embedder", lambda *args: embedder)
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query": "FlashAttention-3"}\n{"query": "weather forecasts"}\n')
    code, out, err = run(capsys, "search", "--queries", str(queries), "--json")
    assert code == 0, err
    times = [json.loads(line)["ms"] for line in out.splitlines()]
    assert len(times) == 2 and all(0 < t < 3000 for t in times)
