"""A fake Hugging Face daily papers API: real HTTP on 127.0.0.1, answers from a dict per date.

It answers `GET /api/daily_papers?date=YYYY-MM-DD` with the JSON list given for that date
(HTTP 404 for a date it has no list for, as huggingface.co does for days without papers),
records every request, and can be told to fail on chosen dates.

>>> with FakeHfServer({"2024-07-08": [hf_entry("2407.00001", "A title", upvotes=3)]}) as hf:
...     source = HfDailySource(date(2024, 7, 8), http, base_url=hf.url, delay_seconds=0)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import FakeHandler, LocalServer


def hf_entry(
    paper_id: str,
    title: str,
    upvotes: int = 0,
    summary: str = "Made-up words about a made-up method.",
    authors: Sequence[str] = ("Ada Example",),
    published: str = "2024-07-08T17:59:00.000Z",
    listed: str | None = None,
) -> dict[str, Any]:
    """One entry of a daily list, shaped like huggingface.co's (upvotes on the paper).

    `published` is the paper's own (arXiv) date; `listed`, when HF put it on a daily list
    (the entry's `publishedAt`, the paper's `submittedOnDailyAt`), default the same.
    """
    return {
        "paper": {
            "id": paper_id,
            "title": title,
            "summary": summary,
            "authors": [
                {"_id": f"a{n}", "name": name, "hidden": False} for n, name in enumerate(authors)
            ],
            "publishedAt": published,
            "submittedOnDailyAt": listed or published,
            "upvotes": upvotes,
        },
        "title": title,
        "publishedAt": listed or published,
        "numComments": 1,
        "submittedBy": {"user": "someone", "fullname": "Some One"},
    }


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received: when (time.monotonic()), its path and query parameters."""

    at: float
    path: str
    params: dict[str, str]


@dataclass
class _Failure:
    """Answer `status` (or stall `stall_seconds` first) `times` more times; -1: always."""

    status: int
    times: int
    body: bytes = b"upstream trouble"
    content_type: str = "text/plain"
    stall_seconds: float = 0.0


class FakeHfServer(LocalServer):
    """The fake API. Use as a context manager; `url` is the base URL (no trailing slash).

    `days` maps "YYYY-MM-DD" to the JSON value answered for that date (usually a list).
    """

    def __init__(self, days: Mapping[str, Any] | None = None) -> None:
        self.days: dict[str, Any] = dict(days or {})
        self.requests: list[RecordedRequest] = []
        self._failures: dict[str, _Failure] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, day: str, status: int = 503, times: int = -1) -> None:
        """Answer requests for `day` with `status`, `times` times (-1: every time)."""
        with self._lock:
            self._failures[day] = _Failure(status, times)

    def answer_html(self, day: str, times: int = -1) -> None:
        """Answer requests for `day` with status 200 and an HTML page, as proxies do."""
        page = b"<html><body>Be right back</body></html>"
        with self._lock:
            self._failures[day] = _Failure(200, times, page, "text/html")

    def stall(self, day: str, seconds: float, times: int = -1) -> None:
        """Wait `seconds` before answering requests for `day` normally."""
        with self._lock:
            self._failures[day] = _Failure(0, times, stall_seconds=seconds)

    def requested_dates(self) -> list[str]:
        return [r.params.get("date", "") for r in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def _record(self, path: str, params: dict[str, str]) -> _Failure | None:
        with self._lock:
            self.requests.append(RecordedRequest(time.monotonic(), path, params))
            failure = self._failures.get(params.get("date", ""))
            if failure is None or failure.times == 0:
                return None
            if failure.times > 0:
                failure.times -= 1
            return failure


def _handler_for(server: FakeHfServer) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            failure = server._record(parts.path, params)
            if failure is not None and failure.stall_seconds:
                time.sleep(failure.stall_seconds)
            if failure is not None and failure.status:
                self._send(failure.status, failure.body, failure.content_type)
            elif parts.path != "/api/daily_papers":
                self._send(404, b'{"error":"Not Found"}', "application/json")
            elif params.get("date") not in server.days:
                self._send(404, b'{"error":"No daily papers for this date"}', "application/json")
            else:
                body = json.dumps(server.days[params["date"]]).encode()
                self._send(200, body, "application/json; charset=utf-8")

    return Handler
