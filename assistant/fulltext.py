"""The full text of papers: download a PDF, then extract clean text page by page.

Both are blocking (network, pypdf): async callers run them with `asyncio.to_thread`.

>>> pdf = download_pdf("https://arxiv.org/pdf/2407.08608", http, max_bytes=40 * 2**20)
>>> pages = extract_pages(pdf)  # [PageText(page=1, text="..."), ...]
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import zlib

import httpx
from pypdf import PdfReader
from pypdf.errors import (
    DependencyError,
    EmptyFileError,
    FileNotDecryptedError,
    PdfStreamError,
    PyPdfError,
)

from assistant.errors import InvalidInputError, SourceError, SourceUnavailableError
from assistant.models import PageText

log = logging.getLogger(__name__)

_PDF_MAGIC = b"%PDF-"
# PDF readers accept the header anywhere in the first 1024 bytes (junk before it happens).
_HEADER_WINDOW = 1024
# Fewer words than this per page on average is a scan (perhaps with a stamp or page numbers).
_MIN_WORDS_PER_PAGE = 10
# pypdf reports damaged files with its own errors but also, in places, with plain
# Python ones; the calls guarded with this are pypdf calls only.
_PDF_FAILURES = (
    PyPdfError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    zlib.error,
)

# C0/C1 control characters except \t and \n (\r, \v, \f become line breaks first),
# and zero-width characters that split words invisibly.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_LINE_BREAKS = str.maketrans({"\r": "\n", "\x0b": "\n", "\x0c": "\n", "\u2028": "\n"})
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# "atten-\ntion" -> "attention": a letter, a hyphen (or soft hyphen) at the end of a line,
# and a lowercase letter starting the next one.
_BROKEN_WORD = re.compile(r"(?<=[^\W\d_])[-\u00ad\u2010]\n(?=[a-zß-ÿ])")


def extract_pages(pdf: bytes) -> list[PageText]:
    """The cleaned text of every page (1-based), in order; pages without text stay, empty.

    Raises `InvalidInputError` ("the PDF could not be read: ...") for bytes that are not a
    PDF, truncated or damaged files, password-protected files and PDFs with (almost) no
    text, such as scans.
    """
    reader = _open_reader(pdf)
    texts = _page_texts(reader)
    pages = [PageText(page=n, text=clean_text(text)) for n, text in enumerate(texts, start=1)]
    words = sum(len(page.text.split()) for page in pages)
    if words < _MIN_WORDS_PER_PAGE * len(pages):
        raise _unreadable(
            f"it has no extractable text ({words} words on {len(pages)} pages: "
            "a scanned paper without a text layer?)"
        )
    return pages


def clean_text(text: str) -> str:
    """Tidy text extracted from a PDF page, keeping its line breaks.

    Unicode is NFKC-normalised (ligatures such as "ﬁ" become "fi"), control characters
    are dropped, words hyphenated across lines are joined, runs of spaces become one and
    blank lines are collapsed.
    """
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").translate(_LINE_BREAKS)
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BROKEN_WORD.sub("", text).replace("\u00ad", "")
    return _BLANK_LINES.sub("\n\n", text).strip()


def _open_reader(pdf: bytes) -> PdfReader:
    if not pdf:
        raise _unreadable("the file is empty")
    if _PDF_MAGIC not in pdf[:_HEADER_WINDOW]:
        raise _unreadable("it is not a PDF file (there is no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(pdf))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _unreadable("it is protected by a password")
        if len(reader.pages) == 0:
            raise _unreadable("it has no pages")
    except _PDF_FAILURES as exc:
        raise _unreadable(_describe(exc)) from exc
    return reader


def _page_texts(reader: PdfReader) -> list[str]:
    """The raw text of each page; a page that fails is logged and left empty."""
    texts: list[str] = []
    failures: list[Exception] = []
    for index in range(len(reader.pages)):
        try:
            texts.append(reader.pages[index].extract_text() or "")
        except _PDF_FAILURES as exc:
            log.warning("page %d of a PDF could not be read: %s", index + 1, _describe(exc))
            failures.append(exc)
            texts.append("")
    if len(failures) == len(texts):
        raise _unreadable(_describe(failures[0])) from failures[0]
    return texts


def _describe(exc: Exception) -> str:
    """Why pypdf could not read a file, in words a user understands."""
    if isinstance(exc, EmptyFileError):
        return "the file is empty"
    if isinstance(exc, FileNotDecryptedError):
        return "it is protected by a password"
    if isinstance(exc, DependencyError):
        return f"it is encrypted in a way that needs an extra package ({exc})"
    if isinstance(exc, PdfStreamError):
        return f"it is truncated or damaged ({exc})"
    return f"it is damaged ({type(exc).__name__}: {exc})"


def _unreadable(reason: str) -> InvalidInputError:
    return InvalidInputError(f"the PDF could not be read: {reason}.")


def download_pdf(url: str, http: httpx.Client, max_bytes: int) -> bytes:
    """Fetch a PDF with a streamed GET (following redirects), at most `max_bytes` long.

    Raises `SourceUnavailableError` on network errors, 5xx and 429 (worth trying later) and
    `SourceError` on other 4xx answers, bodies over `max_bytes` and bodies that are not a PDF.
    """
    try:
        with http.stream("GET", url, follow_redirects=True) as response:
            _check_status(url, response)
            _check_declared_size(url, response, max_bytes)
            content_type = response.headers.get("content-type", "no content type")
            body = _read_at_most(url, response, max_bytes)
    except httpx.InvalidURL as exc:
        raise SourceError(f"cannot download {url!r}: it is not a valid URL ({exc}).") from exc
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise SourceUnavailableError(f"could not download {url} ({reason}).") from exc
    if _PDF_MAGIC not in body[:_HEADER_WINDOW]:
        start = f"starting with {body[:16]!r}" if body else "an empty body"
        raise SourceError(f"{url} did not return a PDF ({content_type}, {start}).")
    log.debug("downloaded %s (%d bytes)", url, len(body))
    return body


def _check_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    if status >= 500 or status == 429:
        raise SourceUnavailableError(f"downloading {url} failed with HTTP {status}; try later.")
    if status == 404:
        raise SourceError(f"{url} was not found (HTTP 404).")
    raise SourceError(f"downloading {url} was refused with HTTP {status}.")


def _check_declared_size(url: str, response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, f"{_megabytes(int(declared))} declared", max_bytes)


def _read_at_most(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    """The body, or `SourceError` as soon as it grows past `max_bytes` (whatever it declared)."""
    body = bytearray()
    for piece in response.iter_bytes():
        body += piece
        if len(body) > max_bytes:
            raise _too_large(url, f"more than {_megabytes(max_bytes)} sent", max_bytes)
    return bytes(body)


def _too_large(url: str, size: str, max_bytes: int) -> SourceError:
    return SourceError(
        f"the PDF at {url} is too large ({size}; the limit is {_megabytes(max_bytes)})."
    )


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size:,} bytes"
