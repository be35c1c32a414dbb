"""Following the AI-Papers-of-the-Week list where it lives now: an index README linking to
week sections in year files, fetched from a fake of GitHub's raw file host with conditional
requests; the old single-file README, a year file alone and a clone's folder still work.

The fixtures (tests/fixtures/potw_index) are ours, in the list's real format: real paper
IDs and titles, our own descriptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from assistant.errors import NotFoundError, SourceUnavailableError
from assistant.models import PaperRecord, Problem
from assistant.sources.conditional import ConditionalFetcher
from assistant.sources.potw import file_year, parse_week_heading
from assistant.sources.potw_list import ListDocuments, PotwList, parse_index
from assistant.state import StateStore
from tests.conftest import FIXTURES
from tests.fakes.github_raw import FakeGitHubRaw
from tests.test_cli import json_lines, run

INDEX = FIXTURES / "potw_index"
OLD_README = FIXTURES / "potw_sample.md"
NEWEST = date(2026, 1, 5)
ALL_WEEKS = [
    date(2026, 1, 5),
    date(2025, 12, 29),  # "December 29 - January 4", in years/2026.md
    date(2025, 1, 6),
    date(2024, 12, 30),  # "December 30 - January 5", in years/2025.md
    date(2024, 12, 23),
    date(2024, 12, 9),
    date(2023, 12, 25),  # a 2023 heading without a year
]
YEAR_FILES = ["years/2026.md", "years/2025.md", "years/2024.md", "years/2023.md"]


def records(source: PotwList) -> list[PaperRecord]:
    return [item for item in source.read() if isinstance(item, PaperRecord)]


@pytest.fixture
def github() -> Iterator[FakeGitHubRaw]:
    with FakeGitHubRaw.from_folder(INDEX) as server:
        yield server


@pytest.fixture
def documents(store: StateStore) -> Iterator[ListDocuments]:
    with httpx.Client(timeout=5) as http:
        yield ListDocuments(ConditionalFetcher(store, http, backoff_seconds=0))


# -- the index -------------------------------------------------------------------------------


def test_the_index_lines_give_each_week_and_its_year_file() -> None:
    entries, problems = parse_index((INDEX / "README.md").read_text(encoding="utf-8"))
    assert problems == []
    assert [e.start for e in entries] == ALL_WEEKS
    assert [e.file for e in entries][:3] == ["years/2026.md", "years/2026.md", "years/2025.md"]


def test_a_table_of_contents_inside_the_old_readme_is_not_an_index() -> None:
    toc = "- [Top ML Papers of the Week (July 8 - July 14)](./#top-ml-papers-of-the-week-july-8)"
    assert parse_index(toc) == ([], [])


def test_a_year_file_dates_headings_that_name_no_year() -> None:
    heading = "## Top AI Papers of the Week (December 25 - December 31)"
    assert parse_week_heading(heading, year=2023) == date(2023, 12, 25)
    crossing = "## Top AI Papers of the Week (December 29 - January 4)"
    assert parse_week_heading(crossing, year=2026) == date(2025, 12, 29)
    assert file_year("https://h/o/r/main/years/2023.md") == 2023
    assert file_year("notes.md", "# AI Papers of the Week — 2024\n") == 2024
    assert file_year("README.md", "# AI Papers of the Week\n") is None


# -- local copies ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", [INDEX, INDEX / "README.md"])
def test_a_clone_folder_or_its_readme_lists_every_week(where: Path) -> None:
    source = PotwList.open(where, ListDocuments())
    assert source.weeks() == ALL_WEEKS
    source.week = date(2025, 12, 31)  # any day of the week that crosses the year
    found = records(source)
    assert [r.title for r in found] == [
        "Geometric Memory in Sequence Models",
        "Universal Reasoning Model",
        "AI Agents for Coding in 2025",
    ]
    assert {r.listing.week for r in found if r.listing} == {date(2025, 12, 29)}
    source.week = None
    everything = list(source.read())
    assert not [p for p in everything if isinstance(p, Problem)]
    assert len([r for r in everything if isinstance(r, PaperRecord)]) == 20


def test_a_year_file_alone_is_read_with_its_year() -> None:
    source = PotwList.open(INDEX / "years" / "2023.md", ListDocuments())
    assert source.weeks() == [date(2023, 12, 25)]
    assert [r.paper_id for r in records(source)] == ["2312.08914", "2312.10868", "2312.07910"]


def test_the_old_single_file_readme_still_parses() -> None:
    source = PotwList.open(OLD_README, ListDocuments())
    assert source.weeks() == [
        date(2024, 12, 30),
        date(2024, 7, 8),
        date(2024, 1, 1),
        date(2023, 5, 29),
    ]
    source.week = date(2024, 7, 8)
    assert records(source)[0].paper_id == "2407.08608"


def test_a_readme_without_its_year_files_says_what_to_give(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text((INDEX / "README.md").read_text(encoding="utf-8"))
    source = PotwList.open(tmp_path, ListDocuments())
    source.week = NEWEST
    with pytest.raises(NotFoundError, match="full clone"):
        list(source.read())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotFoundError, match=r"holds no README\.md"):
        PotwList.open(empty, ListDocuments())


def test_a_week_the_list_does_not_have_names_the_nearest() -> None:
    source = PotwList.open(INDEX, ListDocuments())
    source.week = date(2025, 6, 1)
    with pytest.raises(NotFoundError, match="Nearest weeks: 2025-01-06, 2024-12-30, 2024-12-23"):
        list(source.read())


# -- online, against the fake raw file host --------------------------------------------------


def test_the_newest_week_fetches_the_index_and_one_year_file(
    github: FakeGitHubRaw, documents: ListDocuments
) -> None:
    source = PotwList.open(github.url("README.md"), documents)
    assert [r.path for r in github.requests] == ["README.md"]  # weeks come from the index
    source.week = source.weeks()[0]
    found = records(source)
    assert [r.paper_id for r in found][:3] == ["2512.24601", "2512.13607", "2601.05242"]
    assert [r.path for r in github.requests] == ["README.md", "years/2026.md"]


def test_every_week_fetches_every_year_file_once_then_only_asks_if_they_changed(
    github: FakeGitHubRaw, documents: ListDocuments
) -> None:
    source = PotwList.open(github.url("README.md"), documents)
    assert len(records(source)) == 20
    assert len(records(source)) == 20  # a second read of the same source fetches nothing
    assert [r.path for r in github.requests] == ["README.md", *YEAR_FILES]

    github.requests.clear()
    again = PotwList.open(github.url("README.md"), documents)
    assert len(records(again)) == 20
    assert [r.status for r in github.requests] == [304] * 5
    assert all(r.headers.get("if-none-match") for r in github.requests)
    assert all("unchanged since the last check" in note for note in again.notes)

    github.put("years/2025.md", (INDEX / "years" / "2025.md").read_text() + "\n")
    github.requests.clear()
    changed = PotwList.open(github.url("README.md"), documents)
    records(changed)
    statuses = {r.path: r.status for r in github.requests}
    assert statuses == {"README.md": 304, **dict.fromkeys(YEAR_FILES, 304), "years/2025.md": 200}


def test_last_modified_alone_makes_conditional_requests_too(
    store: StateStore, documents: ListDocuments
) -> None:
    with FakeGitHubRaw.from_folder(INDEX, last_modified=True, etags=False) as github:
        records(PotwList.open(github.url("README.md"), documents))
        github.requests.clear()
        records(PotwList.open(github.url("README.md"), documents))
        assert [r.status for r in github.requests] == [304] * 5
        assert all(r.headers.get("if-modified-since") for r in github.requests)


def test_rate_limits_and_server_errors_are_retried_and_a_missing_year_file_is_reported(
    github: FakeGitHubRaw, documents: ListDocuments
) -> None:
    github.fail_next(429, path="README.md", retry_after="0")
    github.fail_next(503, path="years/2026.md")
    github.remove("years/2024.md")
    source = PotwList.open(github.url("README.md"), documents)
    items = list(source.read())
    problems = [str(p) for p in items if isinstance(p, Problem)]
    assert len([r for r in items if isinstance(r, PaperRecord)]) == 16
    assert any("years/2024.md" in p and "404" in p for p in problems)
    assert [r.status for r in github.requests_for("years/2026.md")] == [503, 200]


def test_a_host_that_keeps_failing_is_unavailable_not_an_empty_list(
    github: FakeGitHubRaw, documents: ListDocuments
) -> None:
    github.fail_next(500, count=10)
    with pytest.raises(SourceUnavailableError, match="HTTP 500"):
        PotwList.open(github.url("README.md"), documents)


def test_the_old_layout_served_online_still_parses(documents: ListDocuments) -> None:
    readme = OLD_README.read_text(encoding="utf-8")
    with FakeGitHubRaw(files={"README.md": readme}) as github:
        source = PotwList.open(github.url("README.md"), documents)
        source.week = source.weeks()[0]
        assert records(source) and [r.path for r in github.requests] == ["README.md"]


# -- the commands ----------------------------------------------------------------------------


def test_ingest_potw_follows_the_index_and_a_second_run_adds_nothing(
    github: FakeGitHubRaw,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAPERBOT_INGEST_POTW_URL", github.url("README.md"))
    code, out, err = run(capsys, "ingest", "potw", "--offline", "--json")
    assert code == 0, err
    newest = json_lines(out)[0]
    assert newest["records"] == 4 and newest["new_papers"] == 4
    assert [r.path for r in github.requests] == ["README.md", "years/2026.md"]

    code, out, err = run(capsys, "ingest", "potw", "--all", "--offline", "--json")
    assert code == 0, err
    every = json_lines(out)[0]
    assert every["records"] == 20 and every["new_papers"] == 16

    github.requests.clear()
    code, out, err = run(capsys, "ingest", "potw", "--all", "--offline", "--json")
    assert code == 0, err
    again = json_lines(out)[0]
    assert again["new_papers"] == 0 and again["updated_papers"] == 0
    assert again["indexed_papers"] == 0
    assert [r.status for r in github.requests] == [304] * 5
    assert all("HTTP 304" in note for note in again["notes"])  # type: ignore[union-attr]


def test_digest_build_without_a_week_builds_the_newest_listed_week(
    github: FakeGitHubRaw,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAPERBOT_INGEST_POTW_URL", github.url("README.md"))
    monkeypatch.setenv("PAPERBOT_ARXIV_API_URL", "http://127.0.0.1:9/api")  # arXiv is down
    monkeypatch.setenv("PAPERBOT_ARXIV_MAX_RETRIES", "0")
    code, out, err = run(capsys, "digest", "build", "--source", "potw", "--json")
    assert code == 0, err
    built = json_lines(out)[0]
    assert built["week"] == NEWEST.isoformat() and built["papers"] == 4
    assert [r.path for r in github.requests] == ["README.md", "years/2026.md"]


def test_ingest_potw_takes_a_local_clone_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(tmp_path / "data"))
    code, out, err = run(
        capsys,
        "ingest",
        "potw",
        "--file",
        str(INDEX),
        "--week",
        "2024-12-31",
        "--offline",
        "--json",
    )
    assert code == 0, err
    assert json_lines(out)[0]["records"] == 3  # the week of Dec 30 - Jan 5, in years/2025.md
