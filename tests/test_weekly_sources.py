"""The weekly sources (HF daily papers, arXiv listings) against fake servers on 127.0.0.1."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import httpx
import pytest

from assistant.errors import ConfigError, SourceUnavailableError
from assistant.models import Link, Listing, PaperRecord, Problem
from assistant.settings import ArxivSettings
from assistant.sources.arxiv_api import ArxivClient, abstract_lead
from assistant.sources.arxiv_listing import ArxivListingSource, week_query
from assistant.sources.hf_daily import HfDailySource
from tests.fakes.arxiv_server import FakeArxivServer, FakePaper
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.hf_server import FakeHfServer, hf_entry

WEEK = date(2024, 7, 8)  # a Monday


class Sleeps:
    """An injected sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def records(items: list[PaperRecord | Problem]) -> list[PaperRecord]:
    return [item for item in items if isinstance(item, PaperRecord)]


def problems(items: list[PaperRecord | Problem]) -> list[Problem]:
    return [item for item in items if isinstance(item, Problem)]


# --- Hugging Face daily papers ------------------------------------------------------------

OTTER = hf_entry(
    "2407.01111",
    "Otters That Count: Tallying Pebbles with Tiny Transformers",
    upvotes=20,
    summary="We teach a tiny model to tally pebbles, e.g. in riverbeds. It counts to 9000 "
    "without error. A third sentence that the short description leaves out.",
    authors=("Pim Quell", "Ada Example"),
    published="2024-07-05T17:59:00.000Z",
)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def hf_week() -> dict[str, object]:
    return {
        "2024-07-08": [OTTER, hf_entry("2407.02222", "Moss Gradients", upvotes=5)],
        "2024-07-09": [hf_entry("2407.03333", "Lantern Decoding", upvotes=12)],
        "2024-07-10": [
            hf_entry("2407.05555", "Kettle Attention", upvotes=12),
            hf_entry("2407.04444", "Puddle Pretraining", upvotes=12),
        ],
        # the otter paper again, later in the week and with more upvotes
        "2024-07-11": [{**OTTER, "paper": {**OTTER["paper"], "upvotes": 31}}],
        "2024-07-12": [hf_entry("2407.06666", "Quiet Friday Baselines", upvotes=1)],
        "2024-07-13": [],  # Saturday: an empty list; Sunday: no list at all (404)
    }


@pytest.fixture
def hf_week_server() -> Iterator[FakeHfServer]:
    with FakeHfServer(hf_week()) as server:
        yield server


def hf_source(
    server: FakeHfServer, http: httpx.Client, sleeps: Sleeps | None = None, **kwargs: object
) -> HfDailySource:
    values: dict[str, object] = {
        "delay_seconds": 0.0,
        "backoff_seconds": 1.0,
        "sleep": sleeps or Sleeps(),
    }
    values.update(kwargs)
    return HfDailySource(WEEK, http, base_url=server.url, **values)  # type: ignore[arg-type]


def test_hf_papers_are_ranked_by_upvotes_across_the_week(http: httpx.Client) -> None:
    with FakeHfServer(hf_week()) as server:
        items = list(hf_source(server, http).read())

    # ties at 12 upvotes: Tuesday's paper first, then Wednesday's by arXiv ID
    assert [(r.paper_id, r.listing.rank) for r in records(items) if r.listing] == [
        ("2407.01111", 1),
        ("2407.03333", 2),
        ("2407.04444", 3),
        ("2407.05555", 4),
        ("2407.02222", 5),
        ("2407.06666", 6),
    ]
    assert problems(items) == []
    assert server.requested_dates() == [f"2024-07-{day:02d}" for day in range(8, 15)]


def test_hf_record_carries_the_paper_and_its_listing(http: httpx.Client) -> None:
    with FakeHfServer(hf_week()) as server:
        first = records(list(hf_source(server, http).read()))[0]

    assert first == PaperRecord(
        paper_id="2407.01111",
        source="hf",
        title="Otters That Count: Tallying Pebbles with Tiny Transformers",
        authors=("Pim Quell", "Ada Example"),
        published=date(2024, 7, 5),
        url="https://arxiv.org/abs/2407.01111",
        pdf_url="https://arxiv.org/pdf/2407.01111",
        abstract=OTTER["paper"]["summary"],
        listing=Listing(
            week=WEEK,
            rank=1,
            title="Otters That Count: Tallying Pebbles with Tiny Transformers",
            description="We teach a tiny model to tally pebbles, e.g. in riverbeds. "
            "It counts to 9000 without error.",
            links=(
                Link("Paper", "https://arxiv.org/abs/2407.01111"),
                Link("HF", f"{server.url}/papers/2407.01111"),
            ),
        ),
    )


def test_a_paper_listed_on_two_days_is_one_record_with_its_best_upvotes(
    http: httpx.Client,
) -> None:
    days = hf_week()
    days["2024-07-12"] = [{**OTTER, "paper": {**OTTER["paper"], "upvotes": 2}}]
    with FakeHfServer(days) as server:
        items = records(list(hf_source(server, http).read()))

    assert [r.paper_id for r in items].count("2407.01111") == 1
    assert items[0].paper_id == "2407.01111"  # ranked by 31, its best day


def test_empty_and_missing_days_are_normal(http: httpx.Client) -> None:
    days = {"2024-07-10": [hf_entry("2407.03333", "Lantern Decoding", upvotes=3)]}
    days["2024-07-08"] = []
    with FakeHfServer(days) as server:
        items = list(hf_source(server, http).read())

    assert [r.paper_id for r in records(items)] == ["2407.03333"]
    assert problems(items) == []


def test_a_week_without_any_paper_is_empty_not_an_error(http: httpx.Client) -> None:
    with FakeHfServer({}) as server:
        assert list(hf_source(server, http).read()) == []


def test_a_failing_day_is_retried_then_a_problem_and_the_rest_still_come(
    http: httpx.Client,
) -> None:
    sleeps = Sleeps()
    with FakeHfServer(hf_week()) as server:
        server.fail("2024-07-09", status=503)
        items = list(hf_source(server, http, sleeps, max_retries=2).read())

    assert "2407.03333" not in [r.paper_id for r in records(items)]
    assert len(records(items)) == 5
    [problem] = problems(items)
    assert problem.where == "2024-07-09"
    assert "HTTP 503" in problem.message
    assert server.requested_dates().count("2024-07-09") == 3
    assert sleeps.waits == [1.0, 2.0]


def test_a_day_that_recovers_gives_no_problem(http: httpx.Client) -> None:
    sleeps = Sleeps()
    with FakeHfServer(hf_week()) as server:
        server.fail("2024-07-09", status=502, times=1)
        server.answer_html("2024-07-10", times=1)
        items = list(hf_source(server, http, sleeps).read())

    assert len(records(items)) == 6
    assert problems(items) == []
    assert sleeps.waits == [1.0, 1.0]


def test_a_slow_day_times_out_and_is_retried(hf_week_server: FakeHfServer) -> None:
    hf_week_server.stall("2024-07-08", seconds=1.0, times=1)
    with httpx.Client(timeout=0.2) as quick:
        items = list(hf_source(hf_week_server, quick).read())

    assert records(items)[0].paper_id == "2407.01111"
    assert problems(items) == []


def test_a_refused_day_is_not_retried(http: httpx.Client) -> None:
    sleeps = Sleeps()
    with FakeHfServer(hf_week()) as server:
        server.fail("2024-07-12", status=403)
        items = list(hf_source(server, http, sleeps).read())

    assert [p.where for p in problems(items)] == ["2024-07-12"]
    assert "HTTP 403" in problems(items)[0].message
    assert server.requested_dates().count("2024-07-12") == 1
    assert sleeps.waits == []


def test_every_day_failing_makes_the_source_unavailable(http: httpx.Client) -> None:
    with FakeHfServer(hf_week()) as server:
        for day in range(8, 15):
            server.fail(f"2024-07-{day:02d}", status=500)
        with pytest.raises(SourceUnavailableError) as raised:
            list(hf_source(server, http, max_retries=1).read())

    assert server.url in str(raised.value)
    assert "HTTP 500" in str(raised.value)


def test_failing_weekdays_and_an_empty_weekend_are_not_an_empty_week(
    http: httpx.Client,
) -> None:
    days: dict[str, object] = {"2024-07-13": [], "2024-07-14": []}
    with FakeHfServer(days) as server:
        for day in range(8, 13):
            server.fail(f"2024-07-{day:02d}", status=503)
        with pytest.raises(SourceUnavailableError, match="5 of the 7 days"):
            list(hf_source(server, http, max_retries=0).read())


def test_top_n_keeps_the_best_papers(http: httpx.Client) -> None:
    with FakeHfServer(hf_week()) as server:
        items = records(list(hf_source(server, http, top_n=2).read()))

    assert [(r.paper_id, r.listing.rank if r.listing else None) for r in items] == [
        ("2407.01111", 1),
        ("2407.03333", 2),
    ]


def test_malformed_entries_are_problems_and_the_others_are_kept(http: httpx.Client) -> None:
    lean = {"paper": {"id": "2407.07777", "title": "Bare Bones"}, "upvotes": 4}
    days = {
        "2024-07-08": [
            "not an object",
            {"title": "no paper object"},
            hf_entry("not-an-id", "A Paper Without an arXiv ID", upvotes=50),
            {"paper": {"id": "2407.08888", "upvotes": 60}},
            lean,
            hf_entry("2407.02222", "Moss Gradients", upvotes=5),
        ]
    }
    with FakeHfServer(days) as server:
        items = list(hf_source(server, http).read())

    assert [r.paper_id for r in records(items)] == ["2407.02222", "2407.07777"]
    assert [p.where for p in problems(items)] == [
        "2024-07-08 entry 1",
        "2024-07-08 entry 2",
        "2024-07-08 entry 3",
        "2024-07-08 entry 4 (2407.08888)",
    ]
    bare = records(items)[1]
    assert (bare.title, bare.abstract, bare.authors, bare.published) == (
        "Bare Bones",
        None,
        (),
        None,
    )
    assert bare.listing is not None and bare.listing.description == ""


def test_the_day_hf_listed_a_paper_is_never_taken_for_its_publication_date(
    http: httpx.Client,
) -> None:
    """`daily_papers?date=` is the day HF listed the paper; its arXiv date comes first."""
    listed_late = hf_entry(
        "2407.04153",
        "Mixture of A Million Experts",
        upvotes=9,
        published="2024-07-04T17:59:00.000Z",
        listed="2024-07-09T08:00:00.000Z",
    )
    undated = hf_entry("2407.07726", "PaliGemma", upvotes=3, listed="2024-07-09T08:00:00.000Z")
    del undated["paper"]["publishedAt"]
    with FakeHfServer({"2024-07-09": [listed_late, undated]}) as server:
        found = records(list(hf_source(server, http).read()))
    assert [r.published for r in found] == [date(2024, 7, 4), None]  # unknown, not 07-09
    assert {r.listing.week for r in found if r.listing} == {date(2024, 7, 8)}


def test_requests_are_spaced_by_the_politeness_delay(http: httpx.Client) -> None:
    with FakeHfServer(hf_week()) as server:
        list(hf_source(server, http, sleep=time.sleep, delay_seconds=0.05).read())

    times = [r.at for r in server.requests]
    assert len(times) == 7
    assert all(later - earlier >= 0.05 for earlier, later in itertools.pairwise(times))


def test_any_day_names_its_monday_to_sunday_week(http: httpx.Client) -> None:
    with FakeHfServer(hf_week()) as server:
        source = HfDailySource(date(2024, 7, 12), http, base_url=server.url, delay_seconds=0)
        items = records(list(source.read()))

    assert source.week == WEEK
    assert {r.listing.week for r in items if r.listing} == {WEEK}
    assert server.requested_dates()[0] == "2024-07-08"


# --- arXiv listings -----------------------------------------------------------------------


def submitted(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 7, day, hour, 0, tzinfo=UTC)


GLACIER = FakePaper(
    "2407.10001",
    title="Forecasting Glacier Meltwater with Graph Networks",
    summary="We forecast glacier meltwater runoff with graph networks over sensor stations. "
    "The forecasts beat a persistence baseline by a wide margin. We release the station data.",
    published=submitted(10),
    categories=("cs.LG", "physics.ao-ph"),
)
LUTE = FakePaper(
    "2407.10002",
    title="Tokenizing Lute Tablature for Language Models",
    summary="Lute tablature becomes tokens a language model can read. Poems about lutes follow.",
    published=submitted(12),
    categories=("cs.CL",),
)
BEEKEEPING = FakePaper(
    "2407.10003",
    title="Dialogue Agents for Beekeeping Advice",
    summary="A dialogue agent answers questions of beekeepers about hive health.",
    published=submitted(9),
    categories=("cs.CL", "cs.AI"),
)
COMPILER = FakePaper(
    "2407.10004",
    title="Register Allocation by Folding Paper Cranes",
    summary="An origami-inspired heuristic for register allocation in compilers.",
    published=submitted(14, 23),
    categories=("cs.LG",),
)
# on topic, but outside the query: a category not asked for, and the week before
GLACIER_IMAGES = FakePaper(
    "2407.10005",
    title="Glacier Meltwater Segmentation in Satellite Images",
    summary="Glacier meltwater forecasting from images with graph networks.",
    published=submitted(11),
    categories=("cs.CV",),
)
LAST_WEEK = FakePaper(
    "2407.09999",
    title="Glacier Meltwater Forecasting Last Week",
    summary="Glacier meltwater forecasting with graph networks, submitted a week early.",
    published=submitted(7, 23),
    categories=("cs.LG",),
)
GLACIER_TOPIC = "glacier meltwater forecasting"
PAPERS = [GLACIER, LUTE, BEEKEEPING, COMPILER, GLACIER_IMAGES, LAST_WEEK]
CATEGORIES = ("cs.LG", "cs.CL")


def make_client(url: str, sleeps: Sleeps | None = None, **overrides: object) -> ArxivClient:
    values: dict[str, object] = {
        "api_url": url,
        "delay_seconds": 0.0,
        "backoff_seconds": 1.0,
        "max_retries": 2,
        "timeout": 5.0,
    }
    values.update(overrides)
    return ArxivClient(ArxivSettings(**values), sleep=sleeps or Sleeps())  # type: ignore[arg-type]


@pytest.fixture
def arxiv_server() -> Iterator[FakeArxivServer]:
    with FakeArxivServer(PAPERS) as fake:
        yield fake


def test_the_week_query_names_the_categories_and_the_week(
    arxiv_server: FakeArxivServer,
) -> None:
    with make_client(arxiv_server.url) as client:
        list(ArxivListingSource(client, WEEK, CATEGORIES, ["glaciers"], FakeEmbedder()).read())

    [request] = arxiv_server.requests
    assert request.search_query == (
        "(cat:cs.LG OR cat:cs.CL) AND submittedDate:[202407080000 TO 202407142359]"
    )
    assert (request.params["sortBy"], request.params["sortOrder"]) == (
        "submittedDate",
        "descending",
    )
    assert week_query(["stat.ML"], date(2024, 12, 31)) == (
        "(cat:stat.ML) AND submittedDate:[202412300000 TO 202501052359]"
    )


def test_the_paper_on_topic_comes_first(arxiv_server: FakeArxivServer) -> None:
    embedder = FakeEmbedder()
    with make_client(arxiv_server.url) as client:
        source = ArxivListingSource(client, WEEK, CATEGORIES, [GLACIER_TOPIC], embedder)
        items = list(source.read())

    ranked = records(items)
    assert ranked[0].paper_id == "2407.10001"
    assert {r.paper_id for r in ranked} == {"2407.10001", "2407.10002", "2407.10003", "2407.10004"}
    assert [r.listing.rank for r in ranked if r.listing] == [1, 2, 3, 4]
    assert problems(items) == []
    assert embedder.calls == [5]  # one topic and four candidates, in one call


def test_a_paper_scores_its_best_topic(arxiv_server: FakeArxivServer) -> None:
    topics = ["glacier meltwater forecasting", "beekeeping dialogue agents for hive health"]
    with make_client(arxiv_server.url) as client:
        source = ArxivListingSource(client, WEEK, CATEGORIES, topics, FakeEmbedder(), top_n=2)
        items = records(list(source.read()))

    assert {r.paper_id for r in items} == {"2407.10001", "2407.10003"}


def test_a_listed_arxiv_paper_has_its_listing(arxiv_server: FakeArxivServer) -> None:
    with make_client(arxiv_server.url) as client:
        source = ArxivListingSource(client, WEEK, CATEGORIES, [GLACIER_TOPIC], FakeEmbedder())
        first = records(list(source.read()))[0]

    assert first.source == "arxiv-listing"
    assert (first.title, first.published, first.categories) == (
        "Forecasting Glacier Meltwater with Graph Networks",
        date(2024, 7, 10),
        ("cs.LG", "physics.ao-ph"),
    )
    assert first.listing == Listing(
        week=WEEK,
        rank=1,
        title="Forecasting Glacier Meltwater with Graph Networks",
        description="We forecast glacier meltwater runoff with graph networks over sensor "
        "stations. The forecasts beat a persistence baseline by a wide margin.",
        links=(
            Link("Paper", "https://arxiv.org/abs/2407.10001"),
            Link("PDF", "https://arxiv.org/pdf/2407.10001v1"),
        ),
    )


def test_top_n_limits_the_listing(arxiv_server: FakeArxivServer) -> None:
    with make_client(arxiv_server.url) as client:
        source = ArxivListingSource(
            client, WEEK, CATEGORIES, ["glacier meltwater"], FakeEmbedder(), top_n=1
        )
        items = list(source.read())

    assert [r.paper_id for r in records(items)] == ["2407.10001"]


def test_without_topics_the_newest_submissions_come_first(
    arxiv_server: FakeArxivServer,
) -> None:
    embedder = FakeEmbedder()
    with make_client(arxiv_server.url) as client:
        source = ArxivListingSource(client, WEEK, CATEGORIES, ["", "  "], embedder, top_n=3)
        items = records(list(source.read()))

    assert [r.paper_id for r in items] == ["2407.10004", "2407.10002", "2407.10001"]
    assert embedder.calls == []


def test_more_candidates_than_allowed_reads_the_newest_and_says_so() -> None:
    papers = [
        FakePaper(f"2407.2{n:04d}", title=f"Filler {n}", published=submitted(8 + n % 7, n % 24))
        for n in range(30)
    ]
    with FakeArxivServer(papers) as fake, make_client(fake.url, batch_size=10) as client:
        source = ArxivListingSource(
            client, WEEK, CATEGORIES, [], FakeEmbedder(), top_n=5, max_candidates=12
        )
        items = list(source.read())

    assert len(records(items)) == 5
    [problem] = problems(items)
    assert "30 matching papers" in problem.message
    assert "newest 12" in problem.message
    assert [r.params["start"] for r in fake.requests] == ["0", "10"]


def test_bad_categories_are_a_config_error(arxiv_server: FakeArxivServer) -> None:
    with make_client(arxiv_server.url) as client:
        with pytest.raises(ConfigError, match="PAPERBOT_DIGEST_ARXIV_CATEGORIES"):
            ArxivListingSource(client, WEEK, ["cs.LG) OR (all:x"], [], FakeEmbedder())
        with pytest.raises(ConfigError, match="PAPERBOT_DIGEST_ARXIV_CATEGORIES"):
            ArxivListingSource(client, WEEK, [" "], [], FakeEmbedder())


# --- ArxivClient.search -------------------------------------------------------------------

MANY = [
    FakePaper(f"2407.3{n:04d}", title=f"Pebble {n}", published=submitted(8, n)) for n in range(7)
]
NEWEST_FIRST = [p.arxiv_id for p in reversed(MANY)]


def test_search_reads_every_page_newest_first() -> None:
    with FakeArxivServer(MANY) as fake, make_client(fake.url, batch_size=3) as client:
        items = list(client.search("cat:cs.LG", 100))

    assert [r.paper_id for r in records(items)] == NEWEST_FIRST
    assert problems(items) == []
    assert [r.params["start"] for r in fake.requests] == ["0", "3", "6"]


def test_search_goes_on_after_a_failed_page_without_repeating_papers() -> None:
    sleeps = Sleeps()
    with FakeArxivServer(MANY) as fake, make_client(fake.url, sleeps, batch_size=3) as client:
        results = client.search("cat:cs.LG", 100)
        first = [next(results) for _ in range(3)]
        fake.fail_next(1, status=503)
        items = first + list(results)

    assert [r.paper_id for r in records(items)] == NEWEST_FIRST
    assert sleeps.waits == [1.0]
    assert [r.params["start"] for r in fake.requests] == ["0", "3", "3", "6"]


def test_search_retries_an_empty_page_in_the_middle() -> None:
    with FakeArxivServer(MANY) as fake, make_client(fake.url, batch_size=3) as client:
        results = client.search("cat:cs.LG", 100)
        first = [next(results) for _ in range(3)]
        fake.answer_empty_page_next(1)
        items = first + list(results)

    assert [r.paper_id for r in records(items)] == NEWEST_FIRST
    assert problems(items) == []


def test_search_retries_an_html_page() -> None:
    with FakeArxivServer(MANY) as fake, make_client(fake.url) as client:
        fake.answer_html_next(1)
        items = list(client.search("cat:cs.LG", 100))

    assert len(records(items)) == 7


def test_search_with_no_match_is_empty() -> None:
    with FakeArxivServer(MANY) as fake, make_client(fake.url) as client:
        assert list(client.search("cat:cs.CL", 100)) == []


def test_search_that_keeps_failing_makes_the_source_unavailable() -> None:
    with FakeArxivServer(MANY) as fake, make_client(fake.url, max_retries=1) as client:
        fake.fail_next(10, status=503)
        with pytest.raises(SourceUnavailableError, match="HTTP 503"):
            list(client.search("cat:cs.LG", 100))


# --- short descriptions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("abstract", "lead"),
    [
        ("One. Two. Three.", "One. Two."),
        ("Only one sentence here", "Only one sentence here"),
        (
            "Like Frob et al. (2023) we wobble. We reach 91.5% on Q. More.",
            "Like Frob et al. (2023) we wobble. We reach 91.5% on Q.",
        ),
        (
            "We use e.g. Zorp and i.e. Blip. Then 3 results follow! Not this.",
            "We use e.g. Zorp and i.e. Blip. Then 3 results follow!",
        ),
        ("  Spread\n  over lines.  Second   one. ", "Spread over lines. Second one."),
    ],
)
def test_abstract_lead_keeps_two_sentences(abstract: str, lead: str) -> None:
    assert abstract_lead(abstract) == lead


def test_abstract_lead_cuts_a_long_lead_at_a_word() -> None:
    lead = abstract_lead("word " * 200, max_chars=50)
    assert len(lead) <= 50
    assert lead.endswith("word…")
