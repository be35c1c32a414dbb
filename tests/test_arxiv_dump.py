"""ArxivDumpSource on a small snapshot in the real arXiv metadata format."""

from __future__ import annotations

import gzip
import os
import threading
from datetime import date
from pathlib import Path

import pytest

from assistant.errors import InvalidInputError, NotFoundError
from assistant.models import PaperRecord, Problem
from assistant.sources.arxiv_dump import ArxivDumpSource

SAMPLE = Path(__file__).parent / "fixtures" / "arxiv_dump_sample.jsonl"
ALL_IDS = [
    "0704.0001",
    "1706.03762",
    "2407.08608",
    "hep-th/9901001",
    "1501.00001",
    "2106.09685",
]


def ids(items: list[PaperRecord | Problem]) -> list[str]:
    return [item.paper_id for item in items if isinstance(item, PaperRecord)]


def problems(items: list[PaperRecord | Problem]) -> list[Problem]:
    return [item for item in items if isinstance(item, Problem)]


def by_id(items: list[PaperRecord | Problem], paper_id: str) -> PaperRecord:
    [record] = [i for i in items if isinstance(i, PaperRecord) and i.paper_id == paper_id]
    return record


def test_every_good_line_is_a_paper_and_bad_lines_are_problems() -> None:
    items = list(ArxivDumpSource(SAMPLE).read())

    assert ids(items) == ALL_IDS
    truncated, untitled = problems(items)
    assert truncated.where == f"{SAMPLE}:5"
    assert "not valid JSON" in truncated.message
    assert untitled == Problem(f"{SAMPLE}:6", "paper 2401.00002 has no `title`.")


def test_a_paper_is_mapped_from_the_snapshot_fields() -> None:
    record = by_id(list(ArxivDumpSource(SAMPLE).read()), "1706.03762")

    assert record == PaperRecord(
        paper_id="1706.03762",
        source="arxiv-dump",
        title="Attention Is All You Need",
        authors=(
            "Ashish Vaswani",
            "Noam Shazeer",
            "Niki Parmar",
            "Jakob Uszkoreit",
            "Llion Jones",
            "Aidan N. Gomez",
            "Lukasz Kaiser",
            "Illia Polosukhin",
        ),
        published=date(2017, 6, 12),
        updated=date(2023, 8, 3),
        version=7,
        url="https://arxiv.org/abs/1706.03762",
        pdf_url="https://arxiv.org/pdf/1706.03762v7",
        categories=("cs.CL", "cs.LG"),
        abstract="A made-up abstract: attention, layers and more attention.",
    )


def test_titles_are_unwrapped_and_parsed_authors_read_first_name_first() -> None:
    record = by_id(list(ArxivDumpSource(SAMPLE).read()), "0704.0001")

    assert record.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert record.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan")
    assert (record.published, record.updated, record.version) == (
        date(2007, 4, 2),
        date(2008, 11, 13),
        2,
    )


def test_without_authors_parsed_the_authors_string_is_split() -> None:
    items = list(ArxivDumpSource(SAMPLE).read())

    assert by_id(items, "2407.08608").authors == (
        "Jay Shah",
        "Ganesh Bikshandi",
        "Ying Zhang",
        "Vijay Thakkar",
        "Pradeep Ramani",
        "Tri Dao",
    )
    old = by_id(items, "hep-th/9901001")
    assert old.authors == ("A. Writer", "B. Reader", "C. Critic Jr")
    assert old.url == "https://arxiv.org/abs/hep-th/9901001"


def test_limit_counts_papers_and_stops_reading() -> None:
    assert list(ArxivDumpSource(SAMPLE, limit=0).read()) == []
    assert ids(list(ArxivDumpSource(SAMPLE, limit=2).read())) == ALL_IDS[:2]

    items = list(ArxivDumpSource(SAMPLE, limit=5).read())
    assert ids(items) == ALL_IDS[:5]
    assert len(problems(items)) == 2


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        ArxivDumpSource(SAMPLE, limit=-1)


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        ({"cs.LG"}, ["1706.03762", "2407.08608", "2106.09685"]),
        ({"math."}, ["1501.00001"]),
        ({"math"}, ["1501.00001"]),
        ({"hep-th"}, ["hep-th/9901001"]),
        ({"hep-ph", "cs.AI"}, ["0704.0001", "2407.08608", "2106.09685"]),
        ({"q-bio."}, []),
    ],
)
def test_category_filter_keeps_papers_with_any_matching_category(
    categories: set[str], expected: list[str]
) -> None:
    items = list(ArxivDumpSource(SAMPLE, categories=categories).read())

    assert ids(items) == expected
    # A line that cannot be read is reported whatever the filter.
    assert f"{SAMPLE}:5" in [p.where for p in problems(items)]


def test_filter_and_limit_together() -> None:
    items = list(ArxivDumpSource(SAMPLE, categories={"cs."}, limit=2).read())

    assert ids(items) == ["1706.03762", "2407.08608"]


def test_a_gzipped_snapshot_reads_the_same(tmp_path: Path) -> None:
    packed = tmp_path / "snapshot.json.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))

    items = list(ArxivDumpSource(packed).read())

    assert ids(items) == ALL_IDS
    assert [p.where for p in problems(items)] == [f"{packed}:5", f"{packed}:6"]


def test_a_cut_short_gzip_keeps_what_it_read_and_says_where_it_stopped(
    tmp_path: Path,
) -> None:
    whole = gzip.compress(SAMPLE.read_bytes() * 50)
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(whole[: len(whole) // 2])

    items = list(ArxivDumpSource(cut).read())

    assert ids(items)[:4] == ALL_IDS[:4]
    last = items[-1]
    assert isinstance(last, Problem)
    assert last.where.startswith(f"{cut}:")
    assert "cut short or corrupt" in last.message


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"nope\.jsonl"):
        list(ArxivDumpSource(tmp_path / "nope.jsonl").read())


def test_the_snapshot_is_streamed_not_read_whole(tmp_path: Path) -> None:
    # Through a pipe: the first paper must arrive while the writer still holds the rest back.
    # A reader that waited for the whole file would only get it after the writer's timeout.
    pipe = tmp_path / "snapshot.pipe"
    os.mkfifo(pipe)
    first, *rest = SAMPLE.read_bytes().splitlines(keepends=True)
    go_on = threading.Event()
    timed_out = threading.Event()

    def write() -> None:
        with pipe.open("wb") as out:
            out.write(first)
            out.flush()
            if not go_on.wait(timeout=5):
                timed_out.set()
            out.writelines(rest)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    items = ArxivDumpSource(pipe).read()

    head = next(items)
    assert not timed_out.is_set()
    go_on.set()
    tail = list(items)
    writer.join(timeout=5)

    assert isinstance(head, PaperRecord)
    assert head.paper_id == "0704.0001"
    assert ids(tail) == ALL_IDS[1:]
