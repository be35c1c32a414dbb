"""IdListSource: a text list of arXiv IDs and paper URLs, from a file or an http URL."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assistant.errors import NotFoundError
from assistant.ids import paper_key
from assistant.models import PaperRecord, Problem
from assistant.sources.idlist import IdListSource

LIST = """\
# Papers for the reading group
2407.08608
https://arxiv.org/abs/1706.03762v7   the transformer paper

arXiv:2106.09685v2\tLoRA, read section 4
https://arxiv.org/pdf/2407.08608v1.pdf
hep-th/9901001
https://Example.org/papers/Some-Paper.pdf?utm_source=newsletter
https://openai.com/research/gpt-4/
not-a-paper
https://arxiv.org/list/cs.LG/recent
"""


def test_each_line_names_one_paper_or_is_a_problem() -> None:
    items = list(IdListSource(LIST, "reading.txt").read())

    web_pdf = "https://example.org/papers/Some-Paper.pdf"
    web_page = "https://openai.com/research/gpt-4"
    assert items[:6] == [
        PaperRecord(
            paper_id="2407.08608",
            source="list",
            url="https://arxiv.org/abs/2407.08608",
            pdf_url="https://arxiv.org/pdf/2407.08608",
        ),
        PaperRecord(
            paper_id="1706.03762",
            source="list",
            version=7,
            url="https://arxiv.org/abs/1706.03762",
            pdf_url="https://arxiv.org/pdf/1706.03762v7",
        ),
        PaperRecord(
            paper_id="2106.09685",
            source="list",
            version=2,
            url="https://arxiv.org/abs/2106.09685",
            pdf_url="https://arxiv.org/pdf/2106.09685v2",
        ),
        # line 6 repeats 2407.08608 and is skipped
        PaperRecord(
            paper_id="hep-th/9901001",
            source="list",
            url="https://arxiv.org/abs/hep-th/9901001",
            pdf_url="https://arxiv.org/pdf/hep-th/9901001",
        ),
        PaperRecord(paper_id=paper_key(web_pdf), source="list", url=web_pdf, pdf_url=web_pdf),
        PaperRecord(paper_id=paper_key(web_page), source="list", url=web_page),
    ]
    bad_word, arxiv_listing = items[6:]
    assert isinstance(bad_word, Problem)
    assert bad_word.where == "reading.txt:10"
    assert "'not-a-paper' is not an arXiv ID or a URL" in bad_word.message
    assert isinstance(arxiv_listing, Problem)
    assert arxiv_listing.where == "reading.txt:11"
    assert "not a paper's page" in arxiv_listing.message


def test_web_papers_are_keyed_by_their_canonical_url() -> None:
    text = "https://www.example.org/paper/\nhttps://example.org/paper?utm_source=x\n"

    items = list(IdListSource(text).read())

    assert len(items) == 1
    assert isinstance(items[0], PaperRecord)
    assert items[0].paper_id.startswith("web:example.org:")
    assert items[0].title is None


def test_a_byte_order_mark_and_windows_line_ends_are_harmless() -> None:
    items = list(IdListSource("\ufeff2407.08608\r\n1706.03762\r\n").read())

    assert [i.paper_id for i in items if isinstance(i, PaperRecord)] == [
        "2407.08608",
        "1706.03762",
    ]


def test_from_a_file_problems_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "papers.txt"
    path.write_text("2407.08608\n\n# ok\n24070.8608\n", encoding="utf-8")

    source = IdListSource.from_location(path)
    items = list(source.read())

    assert source.name == "list"
    assert isinstance(items[0], PaperRecord)
    assert items[1] == Problem(
        f"{path}:4",
        "'24070.8608' is not an arXiv ID or a URL. Write one paper per line, like "
        "2407.08608, https://arxiv.org/abs/2407.08608 or https://example.org/paper.pdf.",
    )


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"nope\.txt"):
        IdListSource.from_location(tmp_path / "nope.txt")


class QuietFileHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    handler = functools.partial(QuietFileHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_from_a_url(served_dir: tuple[Path, str]) -> None:
    folder, base = served_dir
    (folder / "list.txt").write_text("2407.08608\nbogus\n", encoding="utf-8")

    items = list(IdListSource.from_location(f"{base}/list.txt").read())

    record, problem = items
    assert isinstance(record, PaperRecord)
    assert record.paper_id == "2407.08608"
    assert isinstance(problem, Problem)
    assert problem.where == f"{base}/list.txt:2"


def test_a_missing_url_says_so(served_dir: tuple[Path, str]) -> None:
    _, base = served_dir
    with pytest.raises(NotFoundError, match="404"):
        IdListSource.from_location(f"{base}/missing.txt")
