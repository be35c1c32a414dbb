"""Heading detection and passage splitting, on text as it comes out of PDFs."""

from __future__ import annotations

import itertools
import time

import pytest

from assistant.chunking import MIN_WORDS, chunk_pages, chunk_text, detect_heading
from assistant.models import PageText


def words(prefix: str, count: int) -> str:
    """`count` distinct words and no sentence end: "alpha0 alpha1 ..."."""
    return " ".join(f"{prefix}{n}" for n in range(count))


def sentences(count: int, length: int = 10) -> str:
    """`count` sentences of `length` words each."""
    return " ".join(
        " ".join(["Tokens"] + [f"s{n}w{k}" for k in range(1, length)]) + "." for n in range(count)
    )


def page(number: int, *lines: str) -> PageText:
    return PageText(page=number, text="\n".join(lines))


# --- detect_heading -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "heading"),
    [
        ("1 Introduction", "1 Introduction"),
        ("2.3 Training Details", "2.3 Training Details"),
        ("3. Method", "3 Method"),
        ("A Appendix details", "A Appendix details"),
        ("B.1 Proofs", "B.1 Proofs"),
        ("  4   Scaling  to 100B Parameters ", "4 Scaling to 100B Parameters"),
        ("2 3D Scene Reconstruction", "2 3D Scene Reconstruction"),
        ("4.2 4-bit Weights", "4.2 4-bit Weights"),
        ("1 INTRODUCTION", "1 Introduction"),
        ("5 CONCLUSION AND FUTURE WORK", "5 Conclusion and Future Work"),
        ("1 I NTRODUCTION", "1 Introduction"),  # small capitals as pypdf extracts them
        ("2 R ELATED W ORK", "2 Related Work"),
        ("Abstract", "Abstract"),
        ("ABSTRACT", "Abstract"),
        ("A BSTRACT", "Abstract"),
        ("Introduction", "Introduction"),
        ("Related Work", "Related Work"),
        ("Conclusions", "Conclusions"),
        ("References", "References"),
        ("Bibliography", "Bibliography"),
        ("Acknowledgments", "Acknowledgments"),
        ("Acknowledgements:", "Acknowledgements"),
        ("Limitations", "Limitations"),
        ("Discussion", "Discussion"),
        ("Experiments", "Experiments"),
        ("Results", "Results"),
        ("Methods", "Methods"),
        ("Appendix", "Appendix"),
        ("APPENDIX A PROOFS", "Appendix A: Proofs"),
        ("Appendix B: Extra Tables", "Appendix B: Extra Tables"),
    ],
)
def test_detect_heading_recognises_section_titles(line: str, heading: str) -> None:
    assert detect_heading(line) == heading


@pytest.mark.parametrize(
    "line",
    [
        "",
        "12",  # a page number
        "1 2 3 4",  # a table row
        "3 Transformer 71.2 88.4 90.1",  # a table row with a name
        "1. We route every token to a single expert before the attention layer.",
        "2 We show that routing keeps accuracy while halving the compute",
        "1 The router is trained jointly with the experts.",  # ends like a sentence
        "3.5 million tokens were used in every run",
        "2 x = y + 1",
        "Introduction of the router changes the loss surface considerably.",
        "Appendix C lists every hyperparameter we tried.",
        "A. Person, B. Someone, and C. Example. A made-up reference title",
        "1 " + "Very Long Title " * 6,  # over 80 characters
        "the results",
        "Table 2: Accuracy of the routed models",
    ],
)
def test_detect_heading_rejects_body_text(line: str) -> None:
    assert detect_heading(line) is None


# --- chunk_pages ----------------------------------------------------------------------


def test_sections_and_pages_follow_the_headings() -> None:
    pages = [
        page(
            1, "A Made Up Title", "Abstract", words("abs", 30), "1 Introduction", words("intro", 40)
        ),
        page(2, words("more", 30), "2 Method", words("meth", 30)),
        page(3, "2.1 Router", words("route", 30)),
    ]
    chunks = chunk_pages("p1", pages, chunk_words=200, overlap=0)
    assert [(c.section, c.page) for c in chunks] == [
        ("Abstract", 1),  # the four-word title block joins the abstract
        ("1 Introduction", 1),
        ("2 Method", 2),
        ("2.1 Router", 3),
    ]
    assert chunks[0].text.startswith("A Made Up Title Abstract abs0")
    assert chunks[1].text.startswith("1 Introduction intro0")
    assert chunks[1].text.endswith("more29")  # the section goes on over the page
    assert all(c.kind == "body" and c.paper_id == "p1" for c in chunks)


def test_text_before_the_first_heading_has_no_section() -> None:
    chunks = chunk_pages(
        "p1", [page(1, words("pre", 20), "1 Introduction", words("i", 20))], 100, 0
    )
    assert [c.section for c in chunks] == [None, "1 Introduction"]


def test_a_chunk_starts_on_the_page_of_its_first_word() -> None:
    pages = [page(1, "1 Introduction", words("a", 40)), page(2, words("b", 70))]
    chunks = chunk_pages("p1", pages, chunk_words=50, overlap=10)
    assert [c.text.split()[0] for c in chunks] == ["1", "a38", "b38"]
    assert [c.page for c in chunks] == [1, 1, 2]  # the second is mostly on page 2


def test_numbered_list_items_inside_a_section_are_not_headings() -> None:
    text = [
        "3 Results",
        words("r", 20),
        "1 Token Budget",
        words("t", 20),
        "2 Memory Use",
        "4 Analysis",
    ]
    chunks = chunk_pages("p1", [page(1, *text)], chunk_words=200, overlap=0)
    assert detect_heading("1 Token Budget") == "1 Token Budget"  # alone, it looks like one
    assert [c.section for c in chunks] == ["3 Results"]  # "4 Analysis" is tiny: merged back
    assert "1 Token Budget" in chunks[0].text


def test_references_are_skipped_and_an_appendix_is_indexed() -> None:
    pages = [
        page(1, "5 Conclusion", words("end", 30), "References"),
        page(2, "[1] A. Person. A reference that nobody should retrieve. 2020.", words("ref", 50)),
        page(3, "A Extra Proofs", words("proof", 30), "B More Tables", words("table", 30)),
    ]
    chunks = chunk_pages("p1", pages, chunk_words=200, overlap=0)
    assert [(c.section, c.page) for c in chunks] == [
        ("5 Conclusion", 1),
        ("A Extra Proofs", 3),
        ("B More Tables", 3),
    ]
    assert not any("ref" in c.text or "References" in c.text for c in chunks)


def test_indexing_stays_off_after_references_without_an_appendix() -> None:
    pages = [page(1, "Conclusion", words("end", 30), "Bibliography", words("ref", 80))]
    chunks = chunk_pages("p1", pages, chunk_words=200, overlap=0)
    assert [c.section for c in chunks] == ["Conclusion"]
    assert "ref0" not in chunks[0].text


def test_an_appendix_heading_resumes_indexing() -> None:
    pages = [page(1, "References", words("ref", 40), "Appendix", words("extra", 30))]
    chunks = chunk_pages("p1", pages, chunk_words=200, overlap=0)
    assert [c.section for c in chunks] == ["Appendix"]


def test_running_heads_and_page_numbers_are_left_out() -> None:
    pages = [
        page(1, "A Made Up Title", "1 Introduction", words("intro", 40), "1"),
        page(2, "Preprint of a made-up paper", words("more", 40), "2 Method", words("m", 30), "2"),
        page(3, "Preprint of a made-up paper", words("m", 40), "3"),
        page(4, "Preprint of a made-up paper", "3 Results", words("r", 40), "4"),
    ]
    chunks = chunk_pages("p1", pages, chunk_words=500, overlap=0)
    assert [(c.section, c.text) for c in chunks] == [
        (
            "1 Introduction",
            f"A Made Up Title 1 Introduction {words('intro', 40)} {words('more', 40)}",
        ),
        ("2 Method", f"2 Method {words('m', 30)} {words('m', 40)}"),
        ("3 Results", f"3 Results {words('r', 40)}"),
    ]


def test_a_running_head_that_looks_like_a_heading_is_not_one() -> None:
    head = "Appendix B: Extra Results"
    pages = [page(1, "References", words("ref", 20), "Appendix B: Extra Results", words("b", 20))]
    pages += [page(n, f"{head} {n}", words(f"p{n}x", 30)) for n in range(2, 6)]
    chunks = chunk_pages("p1", pages, chunk_words=500, overlap=0)
    assert [c.section for c in chunks] == ["Appendix B: Extra Results"]
    assert head not in chunks[0].text[len(head) :]


def test_overlap_words_are_shared_by_neighbours() -> None:
    pages = [page(1, "1 Introduction", words("w", 200))]
    chunks = chunk_pages("p1", pages, chunk_words=50, overlap=10)
    split = [c.text.split() for c in chunks]
    assert [len(s) for s in split] == [50, 50, 50, 50, 42]
    for before, after in itertools.pairwise(split):
        assert before[-10:] == after[:10]
    assert split[-1][-1] == "w199"


def test_chunks_prefer_to_end_at_a_sentence_end() -> None:
    pages = [page(1, "1 Method", sentences(12))]  # 2 + 120 words
    chunks = chunk_pages("p1", pages, chunk_words=45, overlap=0)
    assert all(c.text.endswith(".") for c in chunks)
    assert all(len(c.text.split()) <= 45 for c in chunks)


@pytest.mark.parametrize("abbreviation", ["see Fig.", "Smith et al.", "see e.g."])
def test_abbreviations_are_not_sentence_ends(abbreviation: str) -> None:
    body = f"{words('x', 40)} {abbreviation} Tokens {words('y', 40)}"
    chunks = chunk_pages("p1", [page(1, body)], chunk_words=46, overlap=0)
    assert len(chunks[0].text.split()) == 46


def test_a_short_section_joins_the_next_one() -> None:
    pages = [page(1, "3 Method", "We describe it below.", "3.1 Setup", words("s", 40))]
    chunks = chunk_pages("p1", pages, chunk_words=200, overlap=0)
    assert [c.section for c in chunks] == ["3.1 Setup"]
    assert chunks[0].text.startswith("3 Method We describe it below. 3.1 Setup s0")


def test_a_short_tail_joins_the_chunk_before() -> None:
    pages = [page(1, "1 Introduction", words("w", 58))]  # 60 words with the heading
    chunks = chunk_pages("p1", pages, chunk_words=50, overlap=5)
    assert len(chunks) == 1
    assert len(chunks[0].text.split()) == 60
    assert all(len(c.text.split()) >= MIN_WORDS for c in chunks)


def test_a_paper_with_very_little_text_still_gives_one_chunk() -> None:
    chunks = chunk_pages("p1", [page(1, "Just a few words.")], chunk_words=100, overlap=10)
    assert [(c.text, c.section, c.page) for c in chunks] == [("Just a few words.", None, 1)]


def test_a_word_hyphenated_over_a_page_break_is_joined() -> None:
    pages = [
        page(1, "1 Introduction", words("a", 20) + " atten-"),
        page(2, "tion " + words("b", 20)),
    ]
    (chunk,) = chunk_pages("p1", pages, chunk_words=200, overlap=0)
    assert " attention b0 " in chunk.text


def test_ordinals_are_consecutive_from_start_ordinal() -> None:
    pages = [page(1, "1 Introduction", words("w", 300))]
    chunks = chunk_pages("p1", pages, chunk_words=60, overlap=10, start_ordinal=7)
    assert [c.ordinal for c in chunks] == list(range(7, 7 + len(chunks)))


def test_an_overlap_as_large_as_the_chunk_is_capped() -> None:
    pages = [page(1, words("w", 200))]
    chunks = chunk_pages("p1", pages, chunk_words=40, overlap=40)
    assert len(chunks) == 9  # 20-word steps, not an endless loop
    assert chunks[0].text.split()[-20:] == chunks[1].text.split()[:20]


def test_chunking_is_deterministic() -> None:
    pages = [page(n, f"{n} Section Number {n}", sentences(30)) for n in range(1, 6)]
    assert chunk_pages("p1", pages, 70, 12) == chunk_pages("p1", pages, 70, 12)


def test_three_hundred_pages_take_well_under_a_second() -> None:
    pages = []
    for n in range(1, 301):
        lines = [sentences(1, 12) for _ in range(50)]  # 600 words a page
        if n % 5 == 1:
            lines.insert(10, f"{n // 5 + 1} Section Number {n // 5 + 1}")
        pages.append(PageText(page=n, text="\n".join(lines)))
    started = time.perf_counter()
    chunks = chunk_pages("p1", pages, chunk_words=180, overlap=30)
    elapsed = time.perf_counter() - started
    assert len({c.section for c in chunks if c.section}) == 60
    assert elapsed < 0.5, f"took {elapsed:.2f}s"


# --- chunk_text ---------------------------------------------------------------------


def test_a_short_text_is_one_chunk() -> None:
    chunks = chunk_text("p1", "  We make routing\ncheaper.  ", "abstract", 180, 30, start_ordinal=3)
    assert len(chunks) == 1
    chunk = chunks[0]
    assert (chunk.ordinal, chunk.kind, chunk.text, chunk.section, chunk.page) == (
        3,
        "abstract",
        "We make routing cheaper.",
        None,
        None,
    )


def test_a_long_text_is_split_with_overlap() -> None:
    chunks = chunk_text("p1", sentences(40), "description", 100, 20, 0, section="Week 28")
    assert len(chunks) > 3
    assert {c.section for c in chunks} == {"Week 28"}
    assert {c.kind for c in chunks} == {"description"}
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[0].text.split()[-20:] == chunks[1].text.split()[:20]


def test_an_empty_text_gives_no_chunk() -> None:
    assert chunk_text("p1", " \n ", "abstract", 180, 30, 0) == []
