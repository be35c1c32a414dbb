"""ArxivClient and ArxivSource against a fake arXiv API on 127.0.0.1."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from assistant.errors import SourceError, SourceUnavailableError
from assistant.models import PaperRecord, Problem
from assistant.settings import ArxivSettings
from assistant.sources.arxiv_api import ArxivClient, ArxivSource
from tests.fakes.arxiv_server import FakeArxivServer, FakePaper

FLASH = FakePaper(
    "2407.08608",
    version=2,
    title="FlashAttention-3: Fast and Accurate Attention\n  with Asynchrony and Low-precision",
    summary="  We made up these words\n  about a faster attention kernel.\n",
    authors=("Jay Shah", "Ganesh Bikshandi", "Tri Dao"),
    published=datetime(2024, 7, 11, 15, 44, 48, tzinfo=UTC),
    updated=datetime(2024, 7, 12, 17, 57, 21, tzinfo=UTC),
    categories=("cs.LG", "cs.AI"),
)
ATTENTION = FakePaper("1706.03762", version=7, title="Attention Is All You Need")
OLD_STYLE = FakePaper("hep-th/9901001", version=1, title="An old-style identifier")


class Sleeps:
    """An injected sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def server() -> Iterator[FakeArxivServer]:
    with FakeArxivServer([FLASH, ATTENTION, OLD_STYLE]) as fake:
        yield fake


def make_client(url: str, sleeps: Sleeps | None = None, **overrides: object) -> ArxivClient:
    values: dict[str, object] = {
        "api_url": url,
        "delay_seconds": 0.0,
        "backoff_seconds": 1.0,
        "max_retries": 3,
        "timeout": 5.0,
    }
    values.update(overrides)
    return ArxivClient(ArxivSettings(**values), sleep=sleeps or Sleeps())  # type: ignore[arg-type]


def records(items: list[PaperRecord | Problem]) -> list[PaperRecord]:
    return [item for item in items if isinstance(item, PaperRecord)]


def problems(items: list[PaperRecord | Problem]) -> list[Problem]:
    return [item for item in items if isinstance(item, Problem)]


def test_a_paper_is_mapped_to_a_record_with_its_newest_version(server: FakeArxivServer) -> None:
    with make_client(server.url) as client:
        [record] = client.fetch(["2407.08608"])

    assert record == PaperRecord(
        paper_id="2407.08608",
        source="arxiv",
        title="FlashAttention-3: Fast and Accurate Attention with Asynchrony and Low-precision",
        authors=("Jay Shah", "Ganesh Bikshandi", "Tri Dao"),
        published=date(2024, 7, 11),
        updated=date(2024, 7, 12),
        version=2,
        url="https://arxiv.org/abs/2407.08608",
        pdf_url="https://arxiv.org/pdf/2407.08608v2",
        categories=("cs.LG", "cs.AI"),
        abstract="We made up these words about a faster attention kernel.",
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "2407.08608",
        "arXiv:2407.08608",
        "https://arxiv.org/abs/2407.08608",
        "https://arxiv.org/pdf/2407.08608v1",
        "http://export.arxiv.org/abs/2407.08608v2",
        "2407.08608v1",
    ],
)
def test_every_spelling_of_an_id_gives_the_newest_paper(
    server: FakeArxivServer, spelling: str
) -> None:
    with make_client(server.url) as client:
        [record] = client.fetch([spelling])

    assert isinstance(record, PaperRecord)
    assert (record.paper_id, record.version) == ("2407.08608", 2)
    assert server.requests[0].id_list == ["2407.08608"]


def test_spellings_of_one_paper_are_fetched_once(server: FakeArxivServer) -> None:
    ids = ["2407.08608", "https://arxiv.org/abs/2407.08608v1", "1706.03762", "2407.08608v2"]
    with make_client(server.url) as client:
        items = list(client.fetch(ids))

    assert [r.paper_id for r in records(items)] == ["2407.08608", "1706.03762"]
    assert [r.id_list for r in server.requests] == [["2407.08608", "1706.03762"]]


def test_old_style_ids_work(server: FakeArxivServer) -> None:
    with make_client(server.url) as client:
        [record] = client.fetch(["https://arxiv.org/abs/hep-th/9901001"])

    assert isinstance(record, PaperRecord)
    assert record.paper_id == "hep-th/9901001"
    assert record.url == "https://arxiv.org/abs/hep-th/9901001"


def test_ids_are_sent_in_batches() -> None:
    papers = [FakePaper(f"2401.{n:05d}", title=f"Paper {n}") for n in range(1, 121)]
    with FakeArxivServer(papers) as fake, make_client(fake.url, batch_size=50) as client:
        items = list(client.fetch([p.arxiv_id for p in papers]))

    assert [r.paper_id for r in records(items)] == [p.arxiv_id for p in papers]
    assert [len(r.id_list) for r in fake.requests] == [50, 50, 20]
    assert all(int(r.params["max_results"]) >= len(r.id_list) for r in fake.requests)


def test_requests_are_spaced_by_the_politeness_delay(server: FakeArxivServer) -> None:
    ids = ["2407.08608", "1706.03762", "hep-th/9901001"]
    with make_client(server.url, delay_seconds=0.2, batch_size=1) as client:
        assert len(records(list(client.fetch(ids)))) == 3

    times = [r.at for r in server.requests]
    assert len(times) == 3
    assert all(later - earlier >= 0.2 for earlier, later in itertools.pairwise(times))


def test_server_errors_are_retried_with_doubling_backoff(server: FakeArxivServer) -> None:
    server.fail_next(2, status=503)
    sleeps = Sleeps()
    with make_client(server.url, sleeps, backoff_seconds=1.5) as client:
        [record] = client.fetch(["2407.08608"])

    assert isinstance(record, PaperRecord)
    assert sleeps.waits == [1.5, 3.0]
    assert len(server.requests) == 3


def test_retry_after_wins_over_backoff(server: FakeArxivServer) -> None:
    server.fail_next(1, status=429, retry_after="7")
    sleeps = Sleeps()
    with make_client(server.url, sleeps) as client:
        [record] = client.fetch(["1706.03762"])

    assert isinstance(record, PaperRecord)
    assert sleeps.waits == [7.0]


def test_a_server_that_keeps_failing_makes_the_source_unavailable(
    server: FakeArxivServer,
) -> None:
    server.fail_next(100, status=503)
    sleeps = Sleeps()
    with (
        make_client(server.url, sleeps, max_retries=2) as client,
        pytest.raises(SourceUnavailableError) as raised,
    ):
        list(client.fetch(["2407.08608"]))

    assert "HTTP 503" in str(raised.value)
    assert server.url in str(raised.value)
    assert sleeps.waits == [1.0, 2.0]
    assert len(server.requests) == 3


def test_an_unreachable_server_makes_the_source_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    with (
        make_client(f"http://127.0.0.1:{port}/api/query", sleeps, max_retries=1) as client,
        pytest.raises(SourceUnavailableError, match="ConnectionError"),
    ):
        list(client.fetch(["2407.08608"]))

    assert sleeps.waits == [1.0]


def test_a_slow_answer_times_out_and_is_retried(server: FakeArxivServer) -> None:
    server.stall_next(1, seconds=1.0)
    sleeps = Sleeps()
    with make_client(server.url, sleeps, timeout=0.2) as client:
        [record] = client.fetch(["2407.08608"])

    assert isinstance(record, PaperRecord)
    assert sleeps.waits == [1.0]


def test_an_html_page_instead_of_a_feed_is_retried_not_read_as_no_papers(
    server: FakeArxivServer,
) -> None:
    server.answer_html_next(1)
    with make_client(server.url) as client:
        items = list(client.fetch(["2407.08608"]))

    assert [r.paper_id for r in records(items)] == ["2407.08608"]
    assert problems(items) == []


def test_a_client_error_is_not_retried(server: FakeArxivServer) -> None:
    server.fail_next(1, status=400)
    sleeps = Sleeps()
    with (
        make_client(server.url, sleeps) as client,
        pytest.raises(SourceError, match="HTTP 400") as raised,
    ):
        list(client.fetch(["2407.08608"]))

    assert not isinstance(raised.value, SourceUnavailableError)
    assert sleeps.waits == []


def test_an_unknown_id_is_a_problem_naming_it(server: FakeArxivServer) -> None:
    with make_client(server.url) as client:
        items = list(client.fetch(["2407.08608", "2407.99999v3"]))

    assert [r.paper_id for r in records(items)] == ["2407.08608"]
    assert problems(items) == [
        Problem(where="2407.99999v3", message="arXiv has no paper with ID 2407.99999.")
    ]


def test_unknown_ids_counted_in_total_results_do_not_fail_the_batch() -> None:
    # The API has counted IDs it has no entry for (lukasschwab/arxiv.py#82): the client then
    # asks for a page past the end and gets an empty one.
    with (
        FakeArxivServer([FLASH], count_missing_in_total=True) as fake,
        make_client(fake.url) as client,
    ):
        items = list(client.fetch(["2407.99999", "2407.08608"]))

    assert [r.paper_id for r in records(items)] == ["2407.08608"]
    assert [p.where for p in problems(items)] == ["2407.99999"]


def test_a_malformed_id_is_a_problem_and_never_sent(server: FakeArxivServer) -> None:
    with make_client(server.url) as client:
        items = list(client.fetch(["not an id", "https://example.com/abs/2407.08608"]))

    assert [p.where for p in problems(items)] == [
        "not an id",
        "https://example.com/abs/2407.08608",
    ]
    assert "not an arXiv ID" in problems(items)[0].message
    assert server.requests == []


def test_arxiv_source_reads_its_ids(server: FakeArxivServer) -> None:
    with make_client(server.url) as client:
        source = ArxivSource(client, ["1706.03762", "bogus"])
        items = list(source.read())

    assert source.name == "arxiv"
    assert [r.paper_id for r in records(items)] == ["1706.03762"]
    assert [p.where for p in problems(items)] == ["bogus"]
