"""Tests for the ML-Papers-of-the-Week parser, on our own fixture in the real format."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import NotFoundError
from assistant.ids import paper_key
from assistant.models import Link, PaperRecord, Problem
from assistant.sources.potw import PotwSource, parse_week_heading
from bench.make_potw import make_potw

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "potw_sample.md"
SAMPLE_TEXT = SAMPLE.read_text(encoding="utf-8")
ORIGIN = "potw_sample.md"


def line_of(marker: str) -> int:
    """The 1-based line number of the only fixture line containing `marker`."""
    numbers = [n for n, line in enumerate(SAMPLE_TEXT.splitlines(), 1) if marker in line]
    assert len(numbers) == 1, (marker, numbers)
    return numbers[0]


def split(items: Iterator[PaperRecord | Problem]) -> tuple[list[PaperRecord], list[Problem]]:
    items = list(items)
    records = [item for item in items if isinstance(item, PaperRecord)]
    problems = [item for item in items if isinstance(item, Problem)]
    assert len(records) + len(problems) == len(items)
    return records, problems


def sample(week: date | None = None) -> tuple[list[PaperRecord], list[Problem]]:
    return split(PotwSource(SAMPLE_TEXT, origin=ORIGIN, week=week).read())


def by_title(title: str) -> PaperRecord:
    records, _ = sample()
    (record,) = [r for r in records if r.title == title]
    return record


def one_row(
    row: str, heading: str = "## Top ML Papers of the Week (July 8 - July 14) - 2024"
) -> tuple[list[PaperRecord], list[Problem]]:
    text = "\n".join([heading, "| **Paper** | **Links** |", "| --- | --- |", row])
    return split(PotwSource(text).read())


# Week headings


@pytest.mark.parametrize(
    ("line", "start"),
    [
        ("## Top ML Papers of the Week (July 8 - July 14) - 2024", date(2024, 7, 8)),
        ("### Top AI Papers of the Week (December 30 - January 5) - 2025", date(2024, 12, 30)),
        ("## Top ML Papers of the Week (Dec 30 - Jan 5) - 2025", date(2024, 12, 30)),
        ("## Top ML Papers of the Week (Jan 1 - Jan 7) - 2024", date(2024, 1, 1)),
        ("## Top ML Papers of the Week (May 29-June 4) - 2023", date(2023, 5, 29)),
        ("## Top ML Papers of the Week (Feb 27-Mar 5) - 2023", date(2023, 2, 27)),
        ("## Top ML Papers of the Week (Jan 9-15) - 2023", date(2023, 1, 9)),
        ("## Top ML Papers of the Week (Sept 4 - Sept 10) - 2023", date(2023, 9, 4)),
    ],
)
def test_week_heading_gives_the_start_date(line: str, start: date) -> None:
    assert parse_week_heading(line) == start


@pytest.mark.parametrize(
    "line",
    [
        "- [Top ML Papers of the Week (July 8 - July 14)](./#top-ml-papers-of-the-week-july-8)",
        "Top ML Papers of the Week (July 8 - July 14) - 2024",
        "## 2024",
        "# ML Papers of The Week",
        "## Top ML Papers of the Week (Smarch 3 - Smarch 9) - 2024",
        "## Top ML Papers of the Week (February 30 - March 5) - 2024",
    ],
)
def test_lines_that_are_not_datable_week_headings_give_none(line: str) -> None:
    assert parse_week_heading(line) is None


def test_heading_without_year_takes_it_from_the_newer_week_above() -> None:
    line = "## Top ML Papers of the Week (December 25 - December 31)"
    assert parse_week_heading(line, newer=date(2024, 1, 1)) == date(2023, 12, 25)
    assert parse_week_heading(line) is None


def test_weeks_are_listed_in_file_order_with_year_crossing_and_yearless_heading() -> None:
    weeks = PotwSource(SAMPLE_TEXT).weeks()
    assert weeks == [date(2024, 12, 30), date(2024, 7, 8), date(2024, 1, 1), date(2023, 5, 29)]


# Rows


def test_every_wellformed_row_is_a_record_in_file_order() -> None:
    records, problems = sample()
    assert len(records) == 16
    assert len(problems) == 4  # header and separator rows are not problems
    assert [r.listing.week for r in records if r.listing] == sorted(
        (r.listing.week for r in records if r.listing), reverse=True
    )
    assert all(r.source == "potw" and r.abstract is None and r.authors == () for r in records)


def test_ranks_and_titles_of_a_week() -> None:
    records, _ = sample(week=date(2024, 7, 8))
    ranks = [(r.listing.rank, r.title) for r in records if r.listing]
    assert ranks == [(1, "FlashAttention-3"), (2, "PaliGemma"), (5, "Qwen2 Technical Report")]


def test_missing_rank_is_the_rows_position_in_the_table() -> None:
    listing = by_title("Phi-4 Technical Report").listing
    assert listing is not None and listing.rank == 4


def test_title_separators_and_plain_titles_all_give_the_title() -> None:
    records, _ = sample(week=date(2024, 12, 30))
    assert [r.title for r in records] == [
        "DeepSeek-V3 Technical Report",  # " - "
        "OpenAI o1 System Card",  # " – "
        "Training LLMs to Reason in a Continuous Latent Space",  # no bold, newer style
        "Phi-4 Technical Report",  # ": "
        "GenCast",
    ]
    paligemma = by_title("PaliGemma").listing  # no separator at all
    assert paligemma is not None and paligemma.description.startswith("a small vision-language")
    alphadev = by_title("AlphaDev").listing  # "**AlphaDev**- ..."
    assert alphadev is not None and alphadev.description.startswith("a reinforcement learning")


def test_br_tags_and_bullets_become_one_sentence_per_line() -> None:
    listing = by_title("OpenAI o1 System Card").listing
    assert listing is not None
    assert listing.description == (
        "safety testing of a model that reasons before answering.\n"
        "red teaming across several risk areas.\n"
        "results reported per evaluation."
    )
    records, _ = sample()
    for record in records:
        assert record.listing is not None
        assert not any(mark in record.listing.description for mark in ("<br", "●", "•", "**"))


def test_escapes_are_undone_in_titles_and_descriptions() -> None:
    assert by_title("Iterated Decomposition for Science Q&A").paper_id == "2301.01751"
    listing = by_title("PaliGemma").listing
    assert listing is not None and "images and text | outputs are text." in listing.description


def test_links_keep_their_labels_and_order() -> None:
    listing = by_title("PaliGemma").listing
    assert listing is not None
    assert [link.label for link in listing.links] == ["Code", "Paper", "Tweet"]
    assert by_title("PaliGemma").paper_id == "2407.07726"


def test_links_inside_the_description_column_are_found_and_removed_from_the_text() -> None:
    qwen = by_title("Qwen2 Technical Report")
    assert qwen.paper_id == "2407.10671"
    assert qwen.listing is not None
    assert qwen.listing.description == (
        "a family of open language models from 0.5B to 72B parameters."
    )
    assert Link("Tweet", "https://x.com/example/status/2005") in qwen.listing.links
    # A one-cell row with a bare arXiv URL in its text.
    assert by_title("Toolformer").paper_id == "2302.04761"


def test_arxiv_link_with_another_label_is_the_paper_when_there_is_no_paper_link() -> None:
    record = by_title("Iterated Decomposition for Science Q&A")
    assert record.listing is not None and record.listing.links[0].label == "Book"
    assert record.url == "https://arxiv.org/abs/2301.01751"


@pytest.mark.parametrize(
    ("link", "version", "pdf"),
    [
        ("https://arxiv.org/abs/2407.08608", None, "https://arxiv.org/pdf/2407.08608"),
        ("https://arxiv.org/abs/2407.08608v3", 3, "https://arxiv.org/pdf/2407.08608v3"),
        ("https://arxiv.org/pdf/2407.08608v2", 2, "https://arxiv.org/pdf/2407.08608v2"),
        ("https://arxiv.org/pdf/2407.08608.pdf", None, "https://arxiv.org/pdf/2407.08608"),
        ("http://www.arxiv.org/pdf/2407.08608v1.pdf", 1, "https://arxiv.org/pdf/2407.08608v1"),
    ],
)
def test_abs_and_pdf_links_give_the_same_paper(link: str, version: int | None, pdf: str) -> None:
    records, problems = one_row(f"| 1) **FlashAttention-3** - fast. | [Paper]({link}) |")
    assert problems == []
    (record,) = records
    assert record.paper_id == "2407.08608"
    assert record.url == "https://arxiv.org/abs/2407.08608"
    assert (record.version, record.pdf_url) == (version, pdf)


def test_versions_in_the_fixture() -> None:
    coconut = by_title("Training LLMs to Reason in a Continuous Latent Space")
    assert (coconut.paper_id, coconut.version) == ("2412.06769", 2)
    assert coconut.pdf_url == "https://arxiv.org/pdf/2412.06769v2"
    dpo = by_title("Direct Preference Optimization")  # /pdf/2305.18290v1.pdf
    assert (dpo.paper_id, dpo.version) == ("2305.18290", 1)
    assert by_title("FlashAttention-3").version is None


def test_non_arxiv_papers_get_stable_web_keys() -> None:
    gencast = by_title("GenCast")
    url = "https://www.nature.com/articles/s41586-024-08252-9"
    assert gencast.paper_id == paper_key(url)
    assert gencast.paper_id.startswith("web:nature.com:")
    assert (gencast.url, gencast.pdf_url, gencast.version) == (url, None, None)
    # The same page spelt differently (trailing slash, no www) gets the same key.
    alphadev = by_title("AlphaDev")
    assert alphadev.paper_id == paper_key("https://nature.com/articles/s41586-023-06004-9")
    assert sample()[0] == sample()[0]


def test_non_arxiv_pdf_link_is_also_the_pdf_url() -> None:
    card = by_title("OpenAI o1 System Card")
    link = "https://cdn.openai.com/o1-system-card-20241205.pdf"
    assert (card.url, card.pdf_url) == (link, link)
    assert card.paper_id.startswith("web:cdn.openai.com:")


# Problems


def test_malformed_rows_are_problems_with_line_numbers_and_parsing_continues() -> None:
    records, problems = sample()
    where = {p.where: p.message for p in problems}
    no_bold = where[f"{ORIGIN}:{line_of('A row without any bold title')}"]
    assert "no bold **title**" in no_bold
    three_cells = where[f"{ORIGIN}:{line_of('Attention Is All You Need')}"]
    assert "expected 2 cells" in three_cells and "found 3" in three_cells
    titles = {r.title for r in records}
    assert {"Qwen2 Technical Report", "VALL-E"} & titles == {"Qwen2 Technical Report"}
    assert "Iterated Decomposition for Science Q&A" in titles


def test_row_without_a_paper_link_is_a_problem() -> None:
    _, problems = sample()
    expected = Problem(
        where=f"{ORIGIN}:{line_of('**VALL-E**')}", message="row 'VALL-E' has no paper link; skipped"
    )
    assert expected in problems


def test_same_paper_twice_in_a_week_is_listed_once_with_a_problem() -> None:
    records, problems = sample(week=date(2024, 7, 8))
    assert [r.paper_id for r in records].count("2407.08608") == 1
    duplicate = [p for p in problems if p.where == f"{ORIGIN}:{line_of('FlashAttention-3 (PDF)')}"]
    assert len(duplicate) == 1 and "2407.08608" in duplicate[0].message


def test_rows_under_a_heading_that_is_not_a_week_are_ignored() -> None:
    records, problems = sample()
    assert "2401.00001" not in {r.paper_id for r in records}
    assert not any(str(line_of("Not a week table")) in p.where for p in problems)


def test_empty_row_is_a_problem() -> None:
    records, problems = one_row("|  |  |")
    assert records == [] and len(problems) == 1
    assert problems[0].where == "<potw>:4" and "empty" in problems[0].message


def test_heading_that_cannot_be_dated_is_one_problem_and_its_rows_are_skipped() -> None:
    records, problems = one_row(
        "| 1) **Lost** - in an undated week. | [Paper](https://arxiv.org/abs/2407.08608) |",
        heading="## Top ML Papers of the Week (Smarch 3 - 9)",
    )
    assert records == []
    assert [p.where for p in problems] == ["<potw>:1"]


# Week filter


def test_week_filter_yields_only_that_weeks_rows_and_problems() -> None:
    records, problems = sample(week=date(2024, 1, 1))
    assert [r.title for r in records] == [
        "Mamba",
        "Iterated Decomposition for Science Q&A",
        "AlphaDev",
    ]
    assert len(problems) == 2


def test_any_day_of_a_week_selects_it_across_the_new_year() -> None:
    records, _ = sample(week=date(2025, 1, 2))
    assert records and {r.listing.week for r in records if r.listing} == {date(2024, 12, 30)}


def test_unknown_week_raises_not_found_naming_the_nearest_weeks() -> None:
    source = PotwSource(SAMPLE_TEXT, origin=ORIGIN, week=date(2024, 7, 22))
    with pytest.raises(NotFoundError, match=r"2024-07-08") as raised:
        source.read()  # raises on the call, before any iteration
    assert "2024-07-22" in str(raised.value)


# Loading


def test_from_location_reads_a_file() -> None:
    source = PotwSource.from_location(SAMPLE, week=date(2024, 7, 8))
    records, problems = split(source.read())
    assert len(records) == 3
    assert all(p.where.startswith(f"{SAMPLE}:") for p in problems)


def test_from_location_missing_file_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        PotwSource.from_location(tmp_path / "missing.md")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fixture_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=FIXTURES))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_from_location_fetches_a_url(fixture_server: str) -> None:
    url = f"{fixture_server}/potw_sample.md"
    records, problems = split(PotwSource.from_location(url).read())
    assert [r.paper_id for r in records] == [r.paper_id for r in sample()[0]]
    assert all(p.where.startswith(f"{url}:") for p in problems)


def test_from_location_404_url_raises_not_found(fixture_server: str) -> None:
    with pytest.raises(NotFoundError, match="404"):
        PotwSource.from_location(f"{fixture_server}/no_such_list.md")


# Generated data


def test_generator_is_deterministic_for_a_seed() -> None:
    assert make_potw(3, 4, seed=1) == make_potw(3, 4, seed=1)
    assert make_potw(3, 4, seed=1) != make_potw(3, 4, seed=2)


def test_thousand_generated_rows_parse_quickly_without_problems() -> None:
    text = make_potw(100, 10, seed=7)
    started = time.perf_counter()
    records, problems = split(PotwSource(text, origin="generated").read())
    elapsed = time.perf_counter() - started
    assert problems == []
    assert len(records) == 1000
    assert len({r.paper_id for r in records}) == 1000
    assert elapsed < 2.0
    web = sum(r.paper_id.startswith("web:") for r in records)
    assert 80 <= web <= 250  # about 15% of papers are not on arXiv
    weeks = PotwSource(text).weeks()
    assert (weeks[0], weeks[-1], len(weeks)) == (date(2024, 12, 30), date(2023, 2, 6), 100)
