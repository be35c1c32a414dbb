"""Every bad input a hostile user or a careless operator gave the CLI in issue 15, in one
list: each gets a short message (no traceback) and the documented exit code.

Exit 2: the input is wrong (usage errors, malformed or oversized input); exit 1: the data dir
cannot be used (disk full, read-only, corrupt), with one line naming it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.test_cli import SAMPLE, ingested, json_lines, run

__all__ = ["ingested"]  # the fixture, shared with test_cli

USAGE_ERRORS = [
    (("ask", "what", "is", "X"), "unexpected extra argument"),
    (("search", "attention", "--bogus"), "No such option: --bogus"),
    (("search", "attention", "--k", "100000000"), "--k"),
    (("ingest", "arxiv-dump", "dump.jsonl", "--limit", "0"), "--limit"),
    (("digest", "show", "--format", "exe"), "'exe' is not one of"),
]


def assert_short(err: str, lines: int = 6) -> None:
    assert "Traceback" not in err
    assert len([x for x in err.splitlines() if x.strip()]) <= lines, err


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS)
def test_usage_errors_print_the_usage_line_and_exit_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "Usage: " in err and message in err
    assert_short(err)
    assert not data_dir.exists()  # nothing was opened, let alone changed


INVISIBLE_QUERIES = [
    "\x00\x00\x00",
    "\u200b\u200c\u200d\ufeff\u2060",
    "\x1b[31m\x1b[0m",
    "\x1b]0;x\x07",
]


@pytest.mark.parametrize("query", INVISIBLE_QUERIES)
@pytest.mark.parametrize("verb", ["search", "ask"])
def test_a_query_of_invisible_characters_is_empty(
    data_dir: Path, capsys: pytest.CaptureFixture[str], verb: str, query: str
) -> None:
    code, _, err = run(capsys, verb, query)
    assert code == 2
    assert "empty" in err or "Ask a question" in err
    assert_short(err)


def test_backup_into_a_directory_writes_a_new_file_there(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    code, out, err = run(capsys, "backup", str(backups), "--json")
    assert code == 0, err
    written = Path(json_lines(out)[0]["backup"])  # type: ignore[arg-type]
    assert written.parent == backups and written.suffix == ".sqlite3"
    assert [p.name for p in backups.iterdir()] == [written.name]  # no .partial left
    assert not (tmp_path / "backups.partial").exists()


def test_backup_never_replaces_an_existing_file_unasked_nor_a_live_database(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    earlier = tmp_path / "earlier.sqlite3"
    earlier.write_bytes(b"an earlier backup")
    code, _, err = run(capsys, "backup", str(earlier))
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert earlier.read_bytes() == b"an earlier backup"
    code, _, err = run(capsys, "backup", str(earlier), "--overwrite")
    assert code == 0, err
    assert earlier.read_bytes().startswith(b"SQLite format 3")
    # another data dir's live database: refused even with --overwrite
    other = tmp_path / "other" / "paperbot.sqlite3"
    other.parent.mkdir()
    other.write_bytes(b"live")
    (other.parent / "paperbot.sqlite3-wal").write_bytes(b"")
    code, _, err = run(capsys, "backup", str(other), "--overwrite")
    assert code == 2 and "in use" in err
    assert other.read_bytes() == b"live"
    assert_short(err)


def test_backup_to_an_unwritable_place_says_so_and_leaves_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run(capsys, "backup", str(blocker / "copy.sqlite3"))
    assert code == 2 and "Cannot write the backup" in err
    assert_short(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "file"]


# -- a data dir that cannot be used: one line naming it, exit 1 ----------------------------


@pytest.fixture
def stored(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data dir with a state database (no papers: the failures come before them)."""
    code, _, err = run(capsys, "stats")
    assert code == 0, err
    return data_dir


def assert_names_the_data_dir(err: str, data_dir: Path, what: str) -> None:
    lines = [x for x in err.splitlines() if x.strip() and "ingesting" not in x]  # progress
    assert len(lines) == 1, err
    assert str(data_dir) in lines[0] and what in lines[0]
    assert "Traceback" not in err


def _sqlite_connect_with(
    monkeypatch: pytest.MonkeyPatch, after_open: str | None = None, uri_mode: str | None = None
) -> None:
    """Make every SQLite connection of this process behave like one on a full disk
    (no page beyond the current ones) or a read-only one: real SQLite errors."""
    real = sqlite3.connect

    def connect(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if uri_mode is not None:
            path, kwargs["uri"] = f"file:{path}?mode={uri_mode}", True
        conn = real(path, *args, **kwargs)
        if after_open is not None:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(after_open.format(pages=pages))
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)


def test_a_full_disk_is_one_line_naming_the_data_dir(
    stored: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _sqlite_connect_with(monkeypatch, after_open="PRAGMA max_page_count = {pages}")
    code, _, err = run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")
    assert code == 1
    assert_names_the_data_dir(err, stored, "disk is full")


def test_a_read_only_state_is_one_line_naming_the_data_dir(
    stored: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _sqlite_connect_with(monkeypatch, uri_mode="ro")
    code, _, err = run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--all", "--offline")
    assert code == 1
    assert_names_the_data_dir(err, stored, "read-only")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_data_dir_without_write_permission_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(locked / "data"))
    code, _, err = run(capsys, "stats")
    assert code == 1
    assert_names_the_data_dir(err, locked / "data", "not writable")


def test_a_corrupt_state_file_is_one_line_naming_the_data_dir(
    stored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = stored / "paperbot.sqlite3"
    for leftover in stored.glob("paperbot.sqlite3-*"):
        leftover.unlink()
    state.write_bytes(b"\x13garbage that is not SQLite" * 400)
    code, _, err = run(capsys, "stats")
    assert code == 1
    assert_names_the_data_dir(err, stored, "not a SQLite database")


def test_an_emptied_state_file_is_refused_not_silently_recreated(
    ingested: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for leftover in ingested.glob("paperbot.sqlite3-*"):
        leftover.unlink()
    (ingested / "paperbot.sqlite3").write_bytes(b"")
    code, _, err = run(capsys, "search", "FlashAttention-3")
    assert code == 1
    assert "0 bytes" in err and str(ingested) in err
    assert_short(err, lines=1)
    assert (ingested / "paperbot.sqlite3").stat().st_size == 0  # left for the operator


# -- oversized and malformed input: bounded, reported, the rest ingested -------------------

POTW_HEAD = """## Top ML Papers of the Week (July 8 - July 14) - 2024
| **Paper**  | **Links** |
| ------------- | ------------- |
"""
GOOD_ROW = (
    "| 2) **Qwen2 Technical Report** - open language models. "
    "| [Paper](https://arxiv.org/abs/2407.10671) |\n"
)


def test_an_oversized_row_is_skipped_with_its_size_and_the_rest_ingested(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    huge = " ".join(["attention"] * 100_000)  # 1 MB of description, the limit is 20,000
    readme = tmp_path / "README.md"
    readme.write_text(
        POTW_HEAD
        + f"| 1) **FlashAttention-3** - {huge} | [Paper](https://arxiv.org/abs/2407.08608) |\n"
        + GOOD_ROW
    )
    code, out, err = run(
        capsys, "ingest", "potw", "--file", str(readme), "--all", "--offline", "--json"
    )
    assert code == 0, err
    report = json_lines(out)[0]
    assert report["new_papers"] == 1
    [problem] = report["problems"]  # type: ignore[misc]
    assert "2407.08608" in problem and "1,000,000 characters" in problem and "20,000" in problem
    code, out, _ = run(capsys, "stats", "--json")
    assert json_lines(out)[0]["papers"] == 1
    assert (data_dir / "paperbot.sqlite3").stat().st_size < 2_000_000  # the text was not kept


def test_an_oversized_dump_title_is_skipped(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dump = tmp_path / "dump.jsonl"
    good = (FIXTURES / "arxiv_dump_sample.jsonl").read_text().splitlines()
    row = json.loads(good[0])
    row["title"] = "x" * 2_000_000
    dump.write_text("\n".join([json.dumps(row), *good[1:]]) + "\n")
    code, out, err = run(capsys, "ingest", "arxiv-dump", str(dump), "--json")
    assert code == 0, err
    report = json_lines(out)[0]
    assert report["records"] >= 4
    problem = next(p for p in report["problems"] if row["id"] in p)  # type: ignore[attr-defined]
    assert "title is 2,000,000 characters" in problem
    assert len(problem) < 400
    code, _, _ = run(capsys, "show", row["id"])
    assert code == 2  # not stored


def test_a_bad_line_is_not_echoed_whole(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    papers = tmp_path / "papers.txt"
    papers.write_text("2407.08608\n" + "y" * 5_000_000 + "\nnot-an-id " + "z" * 100_000 + "\n")
    code, out, err = run(capsys, "ingest", "list", str(papers), "--offline", "--json")
    assert code == 0, err
    assert len(out) < 2_000  # the report quotes what was wrong, not 5 MB of it
    problems = json_lines(out)[0]["problems"]
    assert len(problems) == 2 and "5,000,000 characters" in problems[0]  # type: ignore[arg-type,index]


def test_a_list_file_too_big_to_be_a_list_is_refused(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    with readme.open("w") as f:
        f.write(POTW_HEAD + GOOD_ROW)
        f.write(("padding " * 1000 + "\n") * 8_400)  # 67.2 MB
    code, _, err = run(capsys, "ingest", "potw", "--file", str(readme), "--all", "--offline")
    assert code == 2
    assert "at most 64 MB" in err
    assert_short(err, lines=1)


@pytest.mark.parametrize(
    ("args", "name", "text"),
    [
        (
            ("potw", "--file", "{file}", "--all", "--offline"),
            "README.md",
            POTW_HEAD + "| 1) **No link at all** - nothing to key it by | |\n",
        ),
        (("list", "{file}", "--offline"), "papers.txt", "not-an-id\nalso not one\n"),
        (("arxiv-dump", "{file}"), "dump.jsonl", '{"id": "2401.99999", "title": "cut of\n'),
    ],
)
def test_nothing_usable_exits_2_and_changes_nothing(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: tuple[str, ...],
    name: str,
    text: str,
) -> None:
    source = tmp_path / name
    source.write_text(text)
    code, _, err = run(capsys, "ingest", *(a.format(file=source) for a in args))
    assert code == 2, err
    assert "Nothing usable was read" in err
    assert "Traceback" not in err
    _, out, _ = run(capsys, "stats", "--json")
    assert json_lines(out)[0]["papers"] == 0
