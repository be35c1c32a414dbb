"""Paper metadata from the arXiv API, through the `arxiv` package.

`ArxivClient` is the polite, batched, retrying client; `ArxivSource` is a `PaperSource` over it.

>>> with ArxivClient(Settings().arxiv) as client:
...     records = list(client.fetch(["2407.08608", "https://arxiv.org/pdf/1706.03762v7"]))
...     newest = list(client.search("cat:cs.CL", max_results=20))
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any

import arxiv
import requests

from assistant.errors import InvalidInputError, SourceError, SourceUnavailableError
from assistant.ids import abs_url, parse_arxiv_id, pdf_url
from assistant.models import PaperRecord, Problem
from assistant.settings import ArxivSettings
from assistant.sources.base import SourceItem, retry_after_seconds

log = logging.getLogger(__name__)

# A Retry-After longer than this is not waited out in full: we retry, or give up, sooner.
_MAX_RETRY_AFTER_SECONDS = 300.0
_TOTAL_RESULTS = re.compile(rb"totalResults[^>]*>\s*(\d+)\s*<")


class _TransientError(Exception):
    """A failure worth retrying (429, 5xx, connection trouble), with any Retry-After seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _ArxivSession(requests.Session):
    """A requests session with a default timeout that remembers its last response.

    The arxiv package calls `session.get(url)` without a timeout and, on a non-200 status,
    raises `arxiv.HTTPError` without the response, so its Retry-After header would be lost.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.last_response: requests.Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(*args, **kwargs)
        self.last_response = response
        return response


class ArxivClient:
    """Fetches paper metadata by arXiv ID: batched, spaced out, retried with backoff.

    Requests are at least `delay_seconds` apart (arXiv asks for 3 s). On HTTP 429, 5xx or a
    connection error it waits `backoff_seconds * 2**attempt` (or the server's Retry-After) and
    tries again, up to `max_retries` times, then raises `SourceUnavailableError`.

    >>> records = list(ArxivClient(settings.arxiv).fetch(["2407.08608v1", "hep-th/9901001"]))
    """

    def __init__(
        self, settings: ArxivSettings, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._session = _ArxivSession(settings.timeout)
        self._client = arxiv.Client(
            page_size=settings.batch_size, delay_seconds=settings.delay_seconds, num_retries=0
        )
        self._client.query_url_format = settings.api_url + "?{}"
        self._client._session = self._session

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ArxivClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fetch(self, ids: Sequence[str]) -> Iterator[SourceItem]:
        """Yield a `PaperRecord` per distinct paper in `ids` (IDs or arXiv URLs), else a `Problem`.

        Malformed input and IDs arXiv does not know become Problems; a versioned ID still
        gives the newest version. Raises `SourceUnavailableError` if arXiv stays unreachable.
        """
        wanted: dict[str, str] = {}  # versionless ID -> the input that first named it
        for text in ids:
            try:
                arxiv_id = parse_arxiv_id(text)
            except InvalidInputError as exc:
                yield Problem(where=text, message=str(exc))
                continue
            wanted.setdefault(arxiv_id.id, text.strip())
        keys = list(wanted)
        size = self._settings.batch_size
        for start in range(0, len(keys), size):
            yield from self._fetch_batch(keys[start : start + size], wanted)

    def _fetch_batch(self, batch: list[str], wanted: dict[str, str]) -> Iterator[SourceItem]:
        found: dict[str, PaperRecord] = {}
        for result in self._search_with_retries(batch):
            record = _to_record(result)
            if record is None:
                continue
            seen = found.get(record.paper_id)
            if seen is None or (record.version or 0) > (seen.version or 0):
                found[record.paper_id] = record
        for key in batch:
            record = found.get(key)
            if record is not None:
                yield record
            else:
                yield Problem(where=wanted[key], message=f"arXiv has no paper with ID {key}.")

    def search(self, query: str, max_results: int) -> Iterator[SourceItem]:
        """Yield a `PaperRecord` per paper matching an arXiv API `search_query`, newest first.

        Results are sorted by submission date (newest first) and read lazily, `batch_size` per
        request, with the same spacing and retries as `fetch`; after a failure the search goes
        on from the first result not yet read. At most `max_results` records are yielded; when
        arXiv counts more matches (or stops answering early), a last `Problem` says how many
        were left out. Raises `SourceUnavailableError` if arXiv stays unreachable.

        >>> list(client.search("cat:cs.CL AND submittedDate:[202407080000 TO 202407142359]", 100))
        """
        if max_results < 1:  # the arxiv package reads 0 as "no limit"
            return
        search = arxiv.Search(
            query=query,
            max_results=max_results,
            sort_by=arxiv.SortCriterion.SubmittedDate,
            sort_order=arxiv.SortOrder.Descending,
        )
        done, failures, total = 0, 0, 0
        seen: set[str] = set()
        while True:
            self._session.last_response = None
            try:
                with self._arxiv_errors():
                    for result in self._client.results(search, offset=done):
                        done, failures = done + 1, 0
                        total = max(total, self._total_results())
                        if (item := _search_item(result, seen)) is not None:
                            yield item
                if not self._answer_was_a_feed():
                    raise _TransientError("the answer was not an Atom feed")
                break
            except _TransientError as exc:
                self._wait_before_retry(exc, failures)
                failures += 1
        total = max(total, self._total_results())
        if total > done:
            yield Problem(where=f"arXiv search {query!r}", message=_left_out(total, done))

    def _search_with_retries(self, batch: list[str]) -> list[arxiv.Result]:
        # Ask for versionless IDs: arXiv then answers with the newest version of each.
        search = arxiv.Search(id_list=batch, max_results=len(batch))
        attempt = 0
        while True:
            try:
                return self._search_once(search)
            except _TransientError as exc:
                self._wait_before_retry(exc, attempt)
                attempt += 1

    def _wait_before_retry(self, exc: _TransientError, attempt: int) -> None:
        """Sleep before retry number `attempt + 1`, or raise if the retries are used up."""
        attempts = self._settings.max_retries + 1
        if attempt + 1 >= attempts:
            raise SourceUnavailableError(
                f"The arXiv API at {self._settings.api_url} failed {attempts} time(s) "
                f"in a row (last: {exc.reason}). Try again later, or load papers "
                "from an arXiv metadata dump instead."
            ) from exc
        wait = self._settings.backoff_seconds * 2**attempt
        if exc.retry_after is not None:
            wait = min(exc.retry_after, _MAX_RETRY_AFTER_SECONDS)
        log.warning(
            "arXiv API: %s; retry %d of %d in %.1f s", exc.reason, attempt + 1, attempts - 1, wait
        )
        self._sleep(wait)

    def _search_once(self, search: arxiv.Search) -> list[arxiv.Result]:
        self._session.last_response = None
        results: list[arxiv.Result] = []
        # arXiv may count IDs it has no entry for in totalResults, so the client asks for a page
        # past the end (lukasschwab/arxiv.py#82) and gets an empty one: the first was the answer.
        with self._arxiv_errors(), suppress(arxiv.UnexpectedEmptyPageError):
            results.extend(self._client.results(search))
        if not results and not self._answer_was_a_feed():
            raise _TransientError("the answer was not an Atom feed")
        return results

    @contextmanager
    def _arxiv_errors(self) -> Iterator[None]:
        """Turn the arxiv package's and requests' errors into `_TransientError` or `SourceError`."""
        try:
            yield
        except arxiv.UnexpectedEmptyPageError as exc:
            # A later page came back empty although totalResults promised more: arXiv does
            # that now and then, and answers the same request properly a moment later.
            raise _TransientError("an empty page before the end of the results") from exc
        except arxiv.HTTPError as exc:
            if exc.status == 429 or exc.status >= 500:
                raise _TransientError(f"HTTP {exc.status}", self._retry_after()) from exc
            raise SourceError(
                f"The arXiv API refused the request with HTTP {exc.status} ({exc.url}). "
                f"Check PAPERBOT_ARXIV_API_URL (now {self._settings.api_url})."
            ) from exc
        except requests.RequestException as exc:
            raise _TransientError(f"{type(exc).__name__}: {exc}") from exc

    def _answer_was_a_feed(self) -> bool:
        # The arxiv package reads an unparseable answer (an HTML error page with status 200) as
        # "no results", which would turn every ID of the batch into "no such paper".
        response = self._session.last_response
        return response is not None and b"<feed" in response.content[:4096]

    def _total_results(self) -> int:
        """The totalResults of the last answer (0 if it had none)."""
        response = self._session.last_response
        match = _TOTAL_RESULTS.search(response.content[:4096]) if response is not None else None
        return int(match.group(1)) if match else 0

    def _retry_after(self) -> float | None:
        response = self._session.last_response
        value = response.headers.get("Retry-After") if response is not None else None
        return retry_after_seconds(value)


class ArxivSource:
    """The papers named by a list of arXiv IDs or URLs, with metadata from the arXiv API.

    >>> items = list(ArxivSource(client, ["2407.08608"]).read())
    """

    name = "arxiv"

    def __init__(self, client: ArxivClient, ids: Sequence[str]) -> None:
        self._client = client
        self._ids = tuple(ids)

    def read(self) -> Iterator[SourceItem]:
        """Yield a `PaperRecord` per paper, or a `Problem` for an ID that could not be used."""
        return self._client.fetch(self._ids)


def _to_record(result: arxiv.Result) -> PaperRecord | None:
    try:
        arxiv_id = parse_arxiv_id(result.entry_id)
    except InvalidInputError:
        log.warning("Skipping arXiv entry with an unexpected id: %r", result.entry_id)
        return None
    categories = [result.primary_category, *result.categories]
    return PaperRecord(
        paper_id=arxiv_id.id,
        source="arxiv",
        title=_squash(result.title) or None,
        authors=tuple(name for author in result.authors if (name := _squash(author.name))),
        published=result.published.date(),
        updated=result.updated.date(),
        version=arxiv_id.version,
        url=abs_url(arxiv_id.id),
        pdf_url=pdf_url(arxiv_id),
        categories=tuple(dict.fromkeys(c for c in categories if c)),
        abstract=_squash(result.summary) or None,
    )


def _search_item(result: arxiv.Result, seen: set[str]) -> SourceItem | None:
    """A search result as a record, a `Problem` if unusable, None if already yielded."""
    record = _to_record(result)
    if record is None:
        return Problem(where=result.entry_id, message="not an arXiv paper URL; entry skipped.")
    if record.paper_id in seen:
        return None
    seen.add(record.paper_id)
    return record


def _left_out(total: int, read: int) -> str:
    return (
        f"arXiv counts {total} matching papers; only the newest {read} were read "
        "(raise the maximum, or narrow the query, to read the rest)."
    )


def abstract_lead(text: str, sentences: int = 2, max_chars: int = 320) -> str:
    """The first `sentences` sentences of an abstract, at most `max_chars`: a short description.

    Sentence ends are found by punctuation followed by a capital or digit, so "e.g. BERT" or
    "et al. (2023)" do not end one. An overlong lead is cut at a word and ends with "…".

    >>> abstract_lead("We add a cache, e.g. for Keys. It is fast. It is also small.")
    'We add a cache, e.g. for Keys. It is fast.'
    """
    squashed = _squash(text)
    ends = [
        match.end()
        for match in _SENTENCE_END.finditer(squashed)
        if not _ABBREVIATION.search(squashed, 0, match.end())
    ]
    lead = squashed[: ends[sentences - 1]] if len(ends) >= sentences else squashed
    if len(lead) <= max_chars:
        return lead
    return lead[: max_chars - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


# Punctuation (maybe closed by a quote or bracket) before a space and a capital, digit or
# opening bracket ends a sentence, unless it is the dot of a common abbreviation.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|et al|etc|vs|cf|Figs?|Eqs?|Sec|Tab|resp|approx|No)\.$")


def _squash(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()
