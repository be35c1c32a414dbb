"""A fake OpenAI-compatible server: real HTTP on 127.0.0.1, scripted answers.

It speaks enough of the OpenAI HTTP API for the openai package (which talks through
httpx2, so respx cannot intercept it): `POST /v1/chat/completions` (plain and streamed
as server-sent events) and `POST /v1/embeddings` (float or base64 vectors). It records
every request, and can be told to fail, stall or answer garbage.

>>> with FakeOpenAIServer(api_key="sk-test", reply=lambda body: "It is [1].") as server:
...     client = openai.OpenAI(api_key="sk-test", base_url=server.base_url)
...     server.fail_next(1, status=503, retry_after_ms=10)  # the client retries once
...     client.chat.completions.create(model="m", messages=[...])
...     server.chat_requests[-1].messages  # what was sent
"""

from __future__ import annotations

import base64
import json
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.http import FakeHandler, LocalServer

Reply = Callable[[dict[str, Any]], str]

_WORD = re.compile(r"\w+")
_PIECE = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received: when (time.monotonic()), path, headers and JSON body.

    `headers` has lower-case names and never the Authorization header (`authorized`
    says whether it carried the expected key).
    """

    at: float
    path: str
    headers: dict[str, str]
    json: dict[str, Any]
    authorized: bool

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent, or [] for other endpoints."""
        return list(self.json.get("messages", []))


@dataclass(frozen=True)
class _Trouble:
    """How to spoil one answer: wait first, then fail with `status` or answer garbage."""

    delay: float = 0.0
    status: int | None = None
    retry_after_ms: int | None = None
    garbage_type: str | None = None  # answer 200 with a non-JSON body of this content type


def default_reply(body: dict[str, Any]) -> str:
    """A short deterministic answer that cites passage [1] and quotes the question."""
    question = next(
        (
            m.get("content", "")
            for m in reversed(body.get("messages", []))
            if m.get("role") == "user"
        ),
        "",
    )
    words = str(question).split()[:12]
    return f"According to the passages, the answer is in [1]. You asked: {' '.join(words)}"


def count_tokens(text: str) -> int:
    """The fake's tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def bag_of_words_vector(text: str, dimension: int) -> list[float]:
    """A deterministic, unnormalised hashed bag of words (texts sharing words are close)."""
    vector = [0.0] * dimension
    for word in _WORD.findall(text.lower()) or ["<empty>"]:
        vector[zlib.crc32(word.encode()) % dimension] += 1.0
    return vector


class FakeOpenAIServer(LocalServer):
    """The fake server. Use as a context manager; `base_url` ends in `/v1`.

    `reply(request_json) -> str` decides every chat answer. With `api_key`, requests
    without `Authorization: Bearer <api_key>` get a 401. With `models`, a chat request
    for another model gets a 404 `model_not_found`. `stream_usage=False` emulates servers
    that ignore `stream_options.include_usage`. `stream_chunk_delay` is the pause in
    seconds between two streamed chunks. A reply longer than `max_tokens` words is cut
    there with `finish_reason="length"`.
    """

    def __init__(
        self,
        reply: Reply = default_reply,
        api_key: str | None = None,
        embedding_dimension: int = 32,
        models: set[str] | None = None,
        stream_usage: bool = True,
        stream_chunk_delay: float = 0.0,
    ) -> None:
        self.reply = reply
        self.api_key = api_key
        self.embedding_dimension = embedding_dimension
        self.models = models
        self.stream_usage = stream_usage
        self.stream_chunk_delay = stream_chunk_delay
        self.requests: list[RecordedRequest] = []
        self._troubles: list[_Trouble] = []
        self._lock = threading.Lock()
        self._counter = 0

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def fail_next(self, count: int, status: int = 500, retry_after_ms: int | None = None) -> None:
        """Answer the next `count` requests with `status` and an OpenAI-shaped error.

        `retry_after_ms` adds a `retry-after-ms` header, which the openai client obeys
        (handy to keep retry tests fast).
        """
        with self._lock:
            self._troubles.extend(
                _Trouble(status=status, retry_after_ms=retry_after_ms) for _ in range(count)
            )

    def delay_next(self, count: int, seconds: float) -> None:
        """Sleep `seconds` before answering each of the next `count` requests (timeouts)."""
        with self._lock:
            self._troubles.extend(_Trouble(delay=seconds) for _ in range(count))

    def garbage_next(self, count: int, content_type: str = "text/html") -> None:
        """Answer the next `count` requests with status 200 and a body that is not JSON
        (as a proxy's error page would), labelled with `content_type`."""
        with self._lock:
            self._troubles.extend(_Trouble(garbage_type=content_type) for _ in range(count))

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded requests to /v1/chat/completions."""
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def _record(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[RecordedRequest, _Trouble | None]:
        auth = headers.pop("authorization", "")
        authorized = self.api_key is None or auth == f"Bearer {self.api_key}"
        record = RecordedRequest(time.monotonic(), path, headers, body, authorized)
        with self._lock:
            self.requests.append(record)
            return record, (self._troubles.pop(0) if self._troubles else None)

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}-fake{self._counter}"

    def _answer(self, body: dict[str, Any]) -> tuple[str, str, dict[str, int]]:
        """The reply text, finish reason and usage for a chat request."""
        text = self.reply(body)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if limit is not None and count_tokens(text) > int(limit):
            text = " ".join(text.split()[: int(limit)])
            finish = "length"
        prompt = sum(count_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
        completion = count_tokens(text)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return text, finish, usage

    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON of a non-streamed chat completion."""
        text, finish, usage = self._answer(body)
        return {
            "id": self._next_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }

    def chat_chunks(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The chunks of a streamed chat completion, in order (without `[DONE]`)."""
        text, finish, usage = self._answer(body)
        base = {
            "id": self._next_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        yield chunk({"role": "assistant", "content": ""})
        for piece in _PIECE.findall(text):
            yield chunk({"content": piece})
        yield chunk({}, finish)
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if wants_usage and self.stream_usage:
            yield {**base, "choices": [], "usage": usage}

    def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON of an embeddings answer (base64 float32 when the client asks for it)."""
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        dimension = int(body.get("dimensions") or self.embedding_dimension)
        data = []
        for index, text in enumerate(texts):
            vector = bag_of_words_vector(text, dimension)
            embedding: list[float] | str = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dimension}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(count_tokens(t) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    """An error payload shaped like OpenAI's."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


_STATUS_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            headers = {name.lower(): value for name, value in self.headers.items()}
            record, trouble = server._record(self.path, headers, body)
            if trouble is not None and trouble.delay:
                time.sleep(trouble.delay)
            if trouble is not None and trouble.status is not None:
                extra = {}
                if trouble.retry_after_ms is not None:
                    extra["retry-after-ms"] = str(trouble.retry_after_ms)
                self._error(trouble.status, "The fake server was told to fail.", extra)
            elif not record.authorized:
                self._error(401, "Incorrect API key provided.")
            elif trouble is not None and trouble.garbage_type is not None:
                self._send(200, b"<html><body>502 Bad Gateway</body></html>", trouble.garbage_type)
            else:
                self._route(body)

        def _route(self, body: dict[str, Any]) -> None:
            if self.path == "/v1/embeddings":
                self._json(200, server.embeddings(body))
            elif self.path != "/v1/chat/completions":
                self._error(404, f"Unknown path {self.path}.")
            elif server.models is not None and body.get("model") not in server.models:
                self._error(404, f"The model `{body.get('model')}` does not exist.")
            elif body.get("stream"):
                self._stream(server.chat_chunks(body))
            else:
                self._json(200, server.chat_completion(body))

        def _stream(self, chunks: Iterator[dict[str, Any]]) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for index, chunk in enumerate(chunks):
                    if index and server.stream_chunk_delay:
                        time.sleep(server.stream_chunk_delay)
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)
            self.close_connection = True

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            type_, code = _STATUS_ERRORS.get(status, ("server_error", None))
            self._json(status, error_body(message, type_, code), headers)

        def _json(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", headers)

    return Handler
