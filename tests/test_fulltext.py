"""PDF text extraction on real generated PDFs, and downloads from a local HTTP server."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pypdf import PdfReader, PdfWriter

from assistant.chunking import chunk_pages
from assistant.errors import InvalidInputError, SourceError, SourceUnavailableError
from assistant.fulltext import clean_text, download_pdf, extract_pages
from assistant.models import Chunk
from tests.pdfs import make_pdf, make_scanned_pdf

# A made-up three-page paper. "# " marks a line drawn as a heading.
PAPER = [
    [
        "Frugal Routing for Small Language Models",
        "Ada Example and Bo Sample",
        "# Abstract",
        "We route each token of a small language model to one of a few cheap experts.",
        "Routing keeps quality close to the dense model while it halves the compute.",
        "# 1 Introduction",
        "Small models are popular because they are cheap to run on modest hardware.",
        "Yet every token still pays for the full stack of layers, including the atten-",
        "tion blocks, even when the token is easy to predict from its neighbours.",
        "We ask whether a learned router can skip most of that work for easy tokens.",
        "Our answer is yes: a router trained with the experts keeps the loss almost",
        "unchanged while it sends most tokens through the smallest expert.",
    ],
    [
        "The rest of this paper describes the router, the training recipe and the",
        "measurements that back these claims on three benchmark suites.",
        "# 2 Method",
        "The router is a linear layer that scores each expert for every token.",
        "We keep the top scoring expert and add a small penalty for uneven loads.",
        "# 2.1 Training Details",
        "All models train for one epoch on a mixture of web text and source code.",
        "The learning rate warms up for a thousand steps and then decays slowly.",
        "We clip gradients and keep the router in full precision for stability.",
    ],
    [
        "# 3 Results",
        "Routed models match the dense baseline within half a point on every suite",
        "while they need about half of the floating point operations per token.",
        "The smallest expert handles nearly two thirds of all tokens in practice.",
        "# References",
        "[1] A. Person. An imaginary study of imaginary routers. Journal of Nothing, 2020.",
        "[2] B. Someone. Another reference nobody should find. Made Up Press, 2021.",
        "# A Extra Proofs",
        "Here we show that the load penalty cannot push all tokens to one expert,",
        "because the penalty grows faster than the gain from any single expert.",
    ],
]


@pytest.fixture(scope="module")
def paper_pdf() -> bytes:
    return make_pdf(PAPER)


# --- extract_pages ------------------------------------------------------------------


def test_pages_come_back_in_order_with_their_text(paper_pdf: bytes) -> None:
    pages = extract_pages(paper_pdf)
    assert [p.page for p in pages] == [1, 2, 3]
    assert pages[0].text.startswith("Frugal Routing for Small Language Models\n")
    assert "\n2 Method\n" in pages[1].text  # headings stay on their own line
    assert "Journal of Nothing" in pages[2].text


def test_words_hyphenated_at_a_line_end_are_joined(paper_pdf: bytes) -> None:
    text = extract_pages(paper_pdf)[0].text
    assert "including the attention blocks" in text
    assert "atten-" not in text


def test_the_paper_chunks_into_its_sections_and_pages(paper_pdf: bytes) -> None:
    chunks = chunk_pages("2401.00001", extract_pages(paper_pdf), chunk_words=40, overlap=8)
    firsts: dict[str | None, Chunk] = {}
    for chunk in chunks:
        firsts.setdefault(chunk.section, chunk)
    assert list(firsts) == [
        "Abstract",
        "1 Introduction",
        "2 Method",
        "2.1 Training Details",
        "3 Results",
        "A Extra Proofs",
    ]
    assert {s: c.page for s, c in firsts.items()} == {
        "Abstract": 1,
        "1 Introduction": 1,
        "2 Method": 2,
        "2.1 Training Details": 2,
        "3 Results": 3,
        "A Extra Proofs": 3,
    }
    intro = [c for c in chunks if c.section == "1 Introduction"]
    assert [c.page for c in intro] == [1, 1, 1]  # the page where each chunk starts...
    assert intro[-1].text.endswith("on three benchmark suites.")  # ...though it ends on page 2
    assert firsts["Abstract"].text.startswith("Frugal Routing for Small Language Models")
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_the_bibliography_is_not_indexed_but_the_appendix_is(paper_pdf: bytes) -> None:
    chunks = chunk_pages("2401.00001", extract_pages(paper_pdf), chunk_words=40, overlap=8)
    everything = " ".join(c.text for c in chunks)
    assert "imaginary routers" not in everything
    assert "References" not in everything
    assert "load penalty cannot push all tokens" in everything


def test_extraction_is_deterministic(paper_pdf: bytes) -> None:
    assert extract_pages(paper_pdf) == extract_pages(make_pdf(PAPER))


def test_a_password_protected_pdf_is_refused(paper_pdf: bytes) -> None:
    with pytest.raises(InvalidInputError, match="protected by a password"):
        extract_pages(_encrypted(paper_pdf, user_password="secret"))


def test_a_pdf_with_only_an_owner_password_is_read(paper_pdf: bytes) -> None:
    pages = extract_pages(_encrypted(paper_pdf, user_password=""))
    assert "3 Results" in pages[2].text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"<!DOCTYPE html><html><body>Not here</body></html>", "not a PDF file"),
        (b"%PDF-1.7\n" + b"\x00" * 50, "truncated or damaged"),
    ],
)
def test_bytes_that_are_no_pdf_are_refused(content: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^the PDF could not be read: .*{reason}"):
        extract_pages(content)


def test_a_truncated_pdf_is_refused(paper_pdf: bytes) -> None:
    with pytest.raises(InvalidInputError, match="could not be read: it is truncated or damaged"):
        extract_pages(paper_pdf[: len(paper_pdf) // 2])


@pytest.mark.parametrize(
    "pdf",
    [
        make_pdf([[], []]),
        make_scanned_pdf(2),
        make_scanned_pdf(3, stamp="arXiv:2401.00001v1 [cs.LG] 2 Jan 2024"),
    ],
)
def test_a_pdf_without_text_is_refused(pdf: bytes) -> None:
    with pytest.raises(InvalidInputError, match="could not be read: it has no extractable text"):
        extract_pages(pdf)


def test_empty_pages_keep_their_place() -> None:
    first = "The first page holds a short note about routers and the experts they feed."
    third = "The third page comes back to the same routers after a page left blank on purpose."
    pages = extract_pages(make_pdf([[first], [], [third]]))
    assert [(p.page, p.text) for p in pages] == [(1, first), (2, ""), (3, third)]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("atten-\ntion", "attention"),
        ("atten- \n  tion", "attention"),
        ("atten\u00ad\ntion", "attention"),  # a soft hyphen
        ("self-\nAttention", "self-\nAttention"),  # a capital: not a broken word
        ("GPT-\n4", "GPT-\n4"),
        ("a\x00b\x07c", "abc"),
        ("e\ufb03cient \ufb01ne-tuning", "efficient fine-tuning"),  # ligatures
        ("  lots   of\tspace \u00a0here  ", "lots of space here"),
        ("1 Introduction\r\nText\fmore", "1 Introduction\nText\nmore"),
        ("one\n\n\n\n\ntwo\n", "one\n\ntwo"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def _encrypted(pdf: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- download_pdf --------------------------------------------------------------------


@dataclass
class Answer:
    """What the local server answers on one path. Without `length`, the body ends on close."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/pdf"
    length: bool = True
    headers: dict[str, str] = field(default_factory=dict)


def _handler_for(answers: dict[str, Answer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = answers.get(self.path, Answer(404, b"no such file", "text/plain"))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            if answer.length:
                self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def server(paper_pdf: bytes) -> Iterator[str]:
    answers = {
        "/paper.pdf": Answer(body=paper_pdf),
        "/moved": Answer(302, headers={"Location": "/paper.pdf"}),
        "/html": Answer(body=b"<html>Please log in</html>", content_type="text/html"),
        "/empty": Answer(body=b""),
        "/broken": Answer(500, b"oops", "text/plain"),
        "/busy": Answer(429, b"slow down", "text/plain"),
        "/forbidden": Answer(403, b"no", "text/plain"),
        "/big-declared": Answer(body=paper_pdf),
        "/big-streamed": Answer(body=paper_pdf, length=False),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(answers))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def test_download_returns_the_pdf(server: str, http: httpx.Client, paper_pdf: bytes) -> None:
    assert download_pdf(f"{server}/paper.pdf", http, max_bytes=1_000_000) == paper_pdf


def test_download_follows_redirects(server: str, http: httpx.Client, paper_pdf: bytes) -> None:
    assert download_pdf(f"{server}/moved", http, max_bytes=1_000_000) == paper_pdf


def test_a_missing_pdf_is_a_source_error(server: str, http: httpx.Client) -> None:
    with pytest.raises(SourceError, match=r"was not found \(HTTP 404\)") as caught:
        download_pdf(f"{server}/nothing.pdf", http, max_bytes=1_000_000)
    assert not isinstance(caught.value, SourceUnavailableError)


def test_a_refused_download_is_a_source_error(server: str, http: httpx.Client) -> None:
    with pytest.raises(SourceError, match="refused with HTTP 403") as caught:
        download_pdf(f"{server}/forbidden", http, max_bytes=1_000_000)
    assert not isinstance(caught.value, SourceUnavailableError)


@pytest.mark.parametrize(("path", "status"), [("/broken", 500), ("/busy", 429)])
def test_server_trouble_means_unavailable(
    server: str, http: httpx.Client, path: str, status: int
) -> None:
    with pytest.raises(SourceUnavailableError, match=f"HTTP {status}; try later"):
        download_pdf(f"{server}{path}", http, max_bytes=1_000_000)


@pytest.mark.parametrize(
    ("path", "detail"),
    [("/html", r"text/html, starting with b'<html>Please"), ("/empty", "an empty body")],
)
def test_an_answer_that_is_not_a_pdf_is_refused(
    server: str, http: httpx.Client, path: str, detail: str
) -> None:
    with pytest.raises(SourceError, match=f"did not return a PDF .*{detail}") as caught:
        download_pdf(f"{server}{path}", http, max_bytes=1_000_000)
    assert not isinstance(caught.value, SourceUnavailableError)


@pytest.mark.parametrize("path", ["/big-declared", "/big-streamed"])
def test_a_pdf_over_the_limit_is_refused(server: str, http: httpx.Client, path: str) -> None:
    with pytest.raises(SourceError, match="too large") as caught:
        download_pdf(f"{server}{path}", http, max_bytes=1000)
    assert not isinstance(caught.value, SourceUnavailableError)


def test_an_unreachable_server_means_unavailable(http: httpx.Client) -> None:
    with _closed_port() as port, pytest.raises(SourceUnavailableError, match="could not"):
        download_pdf(f"http://127.0.0.1:{port}/paper.pdf", http, max_bytes=1_000_000)


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, but never listened on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
