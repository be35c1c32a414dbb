"""A fake of GitHub's raw file host (raw.githubusercontent.com) on 127.0.0.1.

It serves `/{owner}/{repo}/{branch}/{path}` from files it is given, the way the real host
does: `text/plain; charset=utf-8`, a strong `ETag` per file content, `304 Not Modified`
(no body) when `If-None-Match` names the current ETag, `404: Not Found` for anything else,
only GET and HEAD. Optionally it sends `Last-Modified` and honours `If-Modified-Since`
(the real host does not), or sends no ETag: clients must work either way. 429 and 5xx
answers can be injected, with a Retry-After.

>>> with FakeGitHubRaw({"README.md": index, "years/2026.md": year}) as github:
...     url = github.url("README.md")
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.fakes.http import FakeHandler, LocalServer

REPO = "dair-ai/AI-Papers-of-the-Week"
BRANCH = "main"


@dataclass(frozen=True)
class RawRequest:
    """One request the fake answered."""

    method: str
    path: str  # the file path inside the repository
    headers: dict[str, str]
    status: int


@dataclass
class FakeGitHubRaw(LocalServer):
    """Serves `files` (path inside the repository -> text) of `REPO` at `BRANCH`."""

    files: dict[str, str] = field(default_factory=dict)
    last_modified: bool = False
    etags: bool = True
    requests: list[RawRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[tuple[str | None, int, str | None]] = []
        self._modified: dict[str, datetime] = {}
        for path in self.files:
            self._modified[path] = datetime(2026, 1, 1, tzinfo=UTC)

    @classmethod
    def from_folder(
        cls, folder: Path, last_modified: bool = False, etags: bool = True
    ) -> FakeGitHubRaw:
        files = {
            str(path.relative_to(folder)): path.read_text(encoding="utf-8")
            for path in sorted(folder.rglob("*.md"))
        }
        return cls(files=files, last_modified=last_modified, etags=etags)

    def url(self, path: str = "README.md") -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{REPO}/{BRANCH}/{path}"

    def put(self, path: str, text: str) -> None:
        """Change (or add) a file, as a new commit would."""
        with self._lock:
            self.files[path] = text
            self._modified[path] = datetime.now(UTC).replace(microsecond=0)

    def remove(self, path: str) -> None:
        with self._lock:
            self.files.pop(path, None)

    def fail_next(
        self, status: int = 429, count: int = 1, path: str | None = None, retry_after: str = "0"
    ) -> None:
        """Answer the next `count` requests (for `path`, or any) with `status`."""
        with self._lock:
            self._failures += [(path, status, retry_after)] * count

    def requests_for(self, path: str) -> list[RawRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def etag(self, path: str) -> str:
        return '"' + hashlib.sha256(self.files[path].encode()).hexdigest()[:40] + '"'

    def _answer(self, method: str, raw_path: str, headers: dict[str, str]) -> _Answer:
        prefix = f"/{REPO}/{BRANCH}/"
        path = raw_path.split("?", 1)[0].removeprefix(prefix) if raw_path.startswith(prefix) else ""
        with self._lock:
            failure = next((f for f in self._failures if f[0] in (None, path)), None)
            if failure is not None:
                self._failures.remove(failure)
                answer = _Answer(failure[1], b"error\n", {"Retry-After": failure[2] or "0"})
            elif method not in ("GET", "HEAD"):
                answer = _Answer(405, b"405: Method Not Allowed\n", {})
            elif not path or path not in self.files:
                answer = _Answer(404, b"404: Not Found", {})
            else:
                answer = self._file(path, headers)
            self.requests.append(RawRequest(method, path, headers, answer.status))
        return answer

    def _file(self, path: str, headers: dict[str, str]) -> _Answer:
        etag = self.etag(path)
        modified = self._modified[path]
        meta = {"Cache-Control": "max-age=300", "Accept-Ranges": "bytes"}
        if self.etags:
            meta["ETag"] = etag
        if self.last_modified:
            meta["Last-Modified"] = format_datetime(modified, usegmt=True)
        wanted = headers.get("if-none-match")
        if wanted is not None and self.etags:
            tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
            if "*" in tags or etag in tags:
                return _Answer(304, b"", meta)
        elif self.last_modified and (since := headers.get("if-modified-since")):
            try:
                if modified <= parsedate_to_datetime(since):
                    return _Answer(304, b"", meta)
            except (TypeError, ValueError):
                pass
        return _Answer(200, self.files[path].encode("utf-8"), meta)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(FakeHandler):
            def _serve(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = fake._answer(self.command, self.path, headers)
                if answer.status == 304 or self.command == "HEAD":  # headers only
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    if answer.status != 304:
                        self.send_header("Content-Type", "text/plain; charset=utf-8")
                        self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    return
                self._send(answer.status, answer.body, "text/plain; charset=utf-8", answer.headers)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        return Handler


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str]
