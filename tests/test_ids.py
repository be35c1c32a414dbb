from __future__ import annotations

import pytest

from assistant.errors import InvalidInputError
from assistant.ids import ArxivId, canonical_url, find_arxiv_id, paper_key, parse_arxiv_id


@pytest.mark.parametrize(
    "text",
    [
        "2407.08608",
        "2407.08608v2",
        "arXiv:2407.08608",
        "https://arxiv.org/abs/2407.08608",
        "https://arxiv.org/abs/2407.08608v2",
        "http://arxiv.org/pdf/2407.08608v1",
        "https://arxiv.org/pdf/2407.08608.pdf",
        "https://www.arxiv.org/pdf/2407.08608v3.pdf",
        "arxiv.org/html/2407.08608v1",
        " 2407.08608 ",
    ],
)
def test_every_spelling_of_an_arxiv_paper_has_the_same_key(text: str) -> None:
    assert paper_key(text) == "2407.08608"


def test_versions_are_kept_apart_from_the_key() -> None:
    assert parse_arxiv_id("https://arxiv.org/pdf/2407.08608v2") == ArxivId("2407.08608", 2)
    assert parse_arxiv_id("2407.08608").version is None
    assert parse_arxiv_id("2407.08608v2").versioned == "2407.08608v2"


def test_old_style_and_four_digit_ids() -> None:
    assert paper_key("hep-th/9901001v1") == "hep-th/9901001"
    assert paper_key("https://arxiv.org/abs/cs.LG/0703001") == "cs.LG/0703001"
    assert paper_key("0704.0001") == "0704.0001"


@pytest.mark.parametrize(
    "text", ["", "hello", "2407.0860", "2413.08608", "2407.086081", "x" * 100_000]
)
def test_malformed_ids_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"Expected something like 2407\.08608") as info:
        parse_arxiv_id(text)
    assert len(str(info.value)) < 300


def test_papers_not_on_arxiv_get_a_stable_key_from_their_canonical_url() -> None:
    a = paper_key("https://www.nature.com/articles/s41586-024-07487-w?utm_source=x")
    b = paper_key("https://nature.com/articles/s41586-024-07487-w/")
    assert a == b
    assert a.startswith("web:nature.com:")
    assert a != paper_key("https://nature.com/articles/other")


def test_non_arxiv_hosts_with_arxiv_like_paths_are_not_arxiv() -> None:
    assert find_arxiv_id("https://example.org/abs/2407.08608") is None


def test_relative_urls_are_not_keys() -> None:
    with pytest.raises(InvalidInputError):
        canonical_url("/just/a/path")
