"""The `paperbot` command as a user runs it: real model, real SQLite, real embedded Qdrant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.make_potw import make_potw
from tests.conftest import FIXTURES, ROOT, run_cli

SAMPLE = FIXTURES / "potw_sample.md"


run = run_cli


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def ingested(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, _, _ = run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")
    assert code == 0
    return data_dir


def test_ingest_potw_reports_counts_and_skipped_rows(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline", "--json"
    )
    assert code == 0
    report = json_lines(out)[0]
    assert report["new_papers"] == 16
    assert any("potw_sample.md:39" in p for p in report["problems"])  # type: ignore[union-attr]
    assert (data_dir / "paperbot.sqlite3").is_file()
    assert (data_dir / "index" / "shard").is_dir()


def test_ingest_potw_defaults_to_the_newest_week(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--offline", "--json")
    assert code == 0
    code, out, _ = run(capsys, "papers", "--json")
    weeks = {w for p in json_lines(out)[0]["papers"] for w in p["weeks"]}  # type: ignore[union-attr]
    assert weeks == {"2024-12-30"}


def test_search_json_and_filters(ingested: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "FlashAttention-3は何が新しい？", "--k", "3", "--json")
    assert code == 0
    result = json_lines(out)[0]
    top = result["results"][0]  # type: ignore[index]
    assert top["paper_id"] == "2407.08608"
    assert set(top) >= {"paper_id", "title", "score", "url", "snippet"}
    code, out, _ = run(capsys, "search", "model", "--week", "2024-07-10", "--json")
    ids = {r["paper_id"] for r in json_lines(out)[0]["results"]}  # type: ignore[union-attr]
    code, papers_out, _ = run(capsys, "papers", "--week", "2024-07-08", "--json")
    listed = {p["paper_id"] for p in json_lines(papers_out)[0]["papers"]}  # type: ignore[union-attr]
    assert ids and ids <= listed
    code, out, _ = run(capsys, "search", "attention", "--paper", "2407.08608", "--json")
    assert {r["paper_id"] for r in json_lines(out)[0]["results"]} == {"2407.08608"}  # type: ignore[union-attr]


def test_search_many_queries_answers_one_line_per_query_in_order(
    ingested: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"query": "FlashAttention-3"}\n{"query": ""}\nnot json\n{"query": "weather diffusion"}\n'
    )
    code, out, _ = run(capsys, "search", "--queries", str(queries), "--json")
    assert code == 0
    lines = json_lines(out)
    assert [x.get("query") for x in lines] == ["FlashAttention-3", None, None, "weather diffusion"]
    assert "empty" in str(lines[1]["error"])
    assert lines[2]["line"] == 3
    # each answer carries its wall time (tests/test_index_health.py: the model load is not in it)
    times = [x["ms"] for x in lines if "results" in x]
    assert len(times) == 2 and all(isinstance(t, float) and t > 0 for t in times)
    assert all("ms" not in x for x in lines if "error" in x)


def test_show_papers_and_stats(ingested: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "https://arxiv.org/pdf/2407.08608v1", "--json")
    assert code == 0
    paper = json_lines(out)[0]
    assert paper["paper_id"] == "2407.08608"
    assert paper["authors"] == []  # unknown offline, never invented
    assert paper["needs_enrichment"] is True
    code, out, _ = run(capsys, "show", "2407.08608")
    assert "unknown" in out and "paperbot ingest enrich" in out
    code, out, _ = run(capsys, "papers", "--week", "2024-07-08", "--json")
    ranks = [p["listings"][0]["rank"] for p in json_lines(out)[0]["papers"]]  # type: ignore[index,union-attr]
    assert ranks == sorted(ranks)
    code, out, _ = run(capsys, "stats", "--json")
    stats = json_lines(out)[0]
    assert stats["papers"] == 16 and stats["weeks"] == 4 and stats["indexed_papers"] == 16


def test_backup_copies_the_state_and_a_rebuild_restores_the_index(
    ingested: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy = tmp_path / "backups" / "state.sqlite3"
    code, out, _ = run(capsys, "backup", str(copy), "--json")
    assert code == 0 and json_lines(out)[0]["bytes"] == copy.stat().st_size
    code, _, err = run(capsys, "backup", str(ingested / "paperbot.sqlite3"))
    assert code != 0 and "another file" in err
    # restore: a new data dir with only the copy; the index comes back from it
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "paperbot.sqlite3").write_bytes(copy.read_bytes())
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(restored))
    code, _, _ = run(capsys, "index", "rebuild")
    assert code == 0
    code, out, _ = run(capsys, "search", "FlashAttention-3", "--json")
    assert code == 0 and json_lines(out)[0]["results"][0]["paper_id"] == "2407.08608"  # type: ignore[index]


def test_eval_retrieval_prints_a_table_and_json(
    ingested: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    qrels = tmp_path / "qrels.jsonl"
    qrels.write_text(
        '{"query": "FlashAttention-3", "relevant": ["2407.08608"]}\n'
        '{"query": "DeepSeek-V3の技術報告", "relevant": ["2412.19437"]}\n'
    )
    code, out, _ = run(capsys, "eval", "retrieval", "--qrels", str(qrels))
    assert code == 0
    assert "Recall" in out or "recall@1" in out
    results = json_lines(out)[-1]["results"]
    assert set(results) == {"hybrid", "dense", "sparse"}  # type: ignore[arg-type]
    assert results["hybrid"]["recall@10"] == 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", ""), "empty"),
        (("search", "x" * 100_000), "limit is"),
        (("ingest", "arxiv", "2407.08608", "not-an-id"), "not an arXiv ID"),
        (("show", "2499.99999"), "No paper"),
        (("search", "q", "--week", "yesterday"), "--week takes a date"),
        (("ingest", "potw", "--file", "missing.md", "--offline"), "No such file"),
        (
            ("ingest", "potw", "--file", str(SAMPLE), "--week", "2020-01-06", "--offline"),
            "2020-01-06",
        ),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(
    ingested: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    _, before, _ = run(capsys, "stats", "--json")
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err
    _, after, _ = run(capsys, "stats", "--json")
    assert after == before


def test_an_unreadable_pdf_is_refused_and_changes_nothing(
    ingested: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")  # truncated
    _, before, _ = run(capsys, "stats", "--json")
    code, _, err = run(capsys, "ingest", "pdf", "2407.08608", str(bad))
    assert code == 2 and "PDF" in err
    _, after, _ = run(capsys, "stats", "--json")
    assert after == before


def test_a_truncated_dump_line_is_reported_and_the_rest_ingested(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dump = tmp_path / "dump.jsonl"
    good = FIXTURES / "arxiv_dump_sample.jsonl"
    dump.write_text(good.read_text() + '{"id": "2401.99999", "title": "cut of')
    code, out, _ = run(capsys, "ingest", "arxiv-dump", str(dump), "--json")
    assert code == 0
    report = json_lines(out)[0]
    assert report["records"] >= 5
    assert any("dump.jsonl" in p for p in report["problems"])  # type: ignore[union-attr]


def test_a_thousand_rows_ingest_fast_and_a_second_run_adds_nothing(
    tmp_path: Path,
) -> None:
    """The issue's figure, as a user runs it: a subprocess, progress bar and all."""
    readme = tmp_path / "README.md"
    readme.write_text(make_potw(weeks=100, rows_per_week=10, seed=7))
    env = {**os.environ, "PAPERBOT_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "assistant",
        "ingest",
        "potw",
        "--file",
        str(readme),
        "--all",
        "--offline",
        "--json",
    ]
    started = time.perf_counter()
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    elapsed = time.perf_counter() - started
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["records"] == 1000 and report["new_papers"] == 1000
    assert report["problems"] == []
    assert elapsed < 120
    assert "1000/1000" in first.stderr  # the progress bar
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    again = json.loads(second.stdout)
    assert again["new_papers"] == again["updated_papers"] == again["indexed_chunks"] == 0


def test_a_bad_setting_names_the_variable_to_fix(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERBOT_ARXIV_DELAY_SECONDS", "soon")
    code, _, err = run(capsys, "stats")
    assert code == 2
    assert "PAPERBOT_ARXIV_DELAY_SECONDS" in " ".join(err.split())
