"""A fake Qdrant server: real HTTP on 127.0.0.1, qdrant-client's local mode behind it.

It serves the part of Qdrant's REST API that qdrant-client's REST transport uses for
paperbot's operations (collections, payload indexes, upsert, delete by filter or ids,
query and query batch, scroll, count, retrieve, and `/`, `/readyz`, `/healthz`). Requests are parsed
with qdrant-client's own REST models and run on qdrant-client's local mode (`QdrantLocal`,
Qdrant's reference semantics in Python; the product no longer uses it, the embedded index is
Qdrant Edge), and answers are shaped like Qdrant's (`{"result": ..., "status": "ok", "time":
...}`), so the server code path of `ServerIndex` runs for real without Docker. Local mode
rather than Edge behind it: it is independent of the engine the embedded path uses, so the
tests comparing the two compare two engines.

It records every request and can be told to misbehave: `down()` refuses connections
(the data stays), `up()` listens again on the same port, `fail_next()` answers errors,
`delay_next()` stalls answers (client timeouts), `garbage_next()` answers HTML.

>>> with FakeQdrantServer() as qdrant:
...     settings.qdrant.url = qdrant.url
...     qdrant.fail_next(1, status=503, operation="upsert")
...     qdrant.down(); ...; qdrant.up()
...     qdrant.requests_for("query_batch")
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, TypeAdapter, ValidationError
from qdrant_client.http import models
from qdrant_client.local.qdrant_local import QdrantLocal

from tests.fakes.http import FakeHandler, LocalServer

_COLLECTION = r"/collections/(?P<name>[^/]+)"


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received: when (time.monotonic()), which API operation, the
    HTTP method, path, query parameters and JSON body (None when it had none)."""

    at: float
    operation: str
    method: str
    path: str
    params: dict[str, str]
    json: Any
    api_key: str | None


@dataclass
class _Trouble:
    """How to spoil one answer: let `skip` matching requests through first, then wait
    `delay` seconds and (if `status`) answer an error."""

    operation: str | None
    status: int | None = None
    delay: float = 0.0
    retry_after: str | None = None
    skip: int = 0
    garbage: bool = False


class QdrantError(Exception):
    """An error answer: HTTP status and Qdrant's error text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Route = Callable[["FakeQdrantServer", str, dict[str, str], Any], Any]


class FakeQdrantServer(LocalServer):
    """The fake server. Use as a context manager; `url` is what QDRANT_URL takes.

    `path` keeps the data in a folder (the embedded engine's format) instead of memory.
    With `api_key`, requests without the `api-key` header get a 401, like Qdrant's.
    """

    def __init__(self, path: Path | None = None, api_key: str | None = None) -> None:
        self.engine = QdrantLocal(location=str(path) if path else ":memory:")
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        # collection -> field -> schema: the embedded engine ignores payload indexes
        self.payload_indexes: dict[str, dict[str, str]] = {}
        self._troubles: list[_Trouble] = []
        self._actions: dict[str, list[Callable[[], object]]] = {}
        self._lock = threading.Lock()
        self._engine_lock = threading.Lock()  # the embedded engine is not thread-safe
        self._port = 0
        self._listening = False

    # -- lifecycle and faults -----------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._port, "start the server first"
        return f"http://127.0.0.1:{self._port}"

    @property
    def listening(self) -> bool:
        return self._listening

    def _bind_port(self) -> int:
        return self._port

    def start(self) -> Self:
        super().start()
        assert self._server is not None
        self._port = int(self._server.server_address[1])
        self._listening = True
        return self

    def down(self) -> None:
        """Stop listening: connections are refused until `up()`; the data stays."""
        if self._listening:
            super().stop()
            self._server = self._thread = None
            self._listening = False

    def up(self) -> None:
        """Listen again, on the same port, with the same data."""
        if not self._listening:
            self.start()

    def stop(self) -> None:
        self.down()
        self.engine.close()

    def fail_next(
        self,
        count: int,
        status: int = 503,
        operation: str | None = None,
        retry_after: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next `count` requests (of `operation` only, if given: "upsert",
        "query_batch", ... as in `RecordedRequest.operation`) with `status`, after letting
        `after` of them through. `retry_after` adds a Retry-After header."""
        with self._lock:
            self._troubles.extend(
                _Trouble(operation, status, retry_after=retry_after, skip=after if i == 0 else 0)
                for i in range(count)
            )

    def delay_next(self, count: int, seconds: float, operation: str | None = None) -> None:
        """Wait `seconds` before answering each of the next `count` requests (of
        `operation` only, if given): longer than the client's timeout, it times out."""
        with self._lock:
            self._troubles.extend(_Trouble(operation, delay=seconds) for _ in range(count))

    def garbage_next(self, count: int, operation: str | None = None) -> None:
        """Answer the next `count` requests (of `operation` only, if given) with status 200
        and an HTML page, as a proxy in front of Qdrant might."""
        with self._lock:
            self._troubles.extend(_Trouble(operation, garbage=True) for _ in range(count))

    def before_next(self, operation: str, action: Callable[[], object]) -> None:
        """Call `action()` just before handling the next request of `operation` (another
        client acting in between, e.g. creating the collection first)."""
        with self._lock:
            self._actions.setdefault(operation, []).append(action)

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        """The recorded requests of one operation, e.g. "upsert" or "query_batch"."""
        return [r for r in self.requests if r.operation == operation]

    # -- what the engine holds ----------------------------------------------------------

    def points(self, collection: str) -> list[models.Record]:
        """Every point of a collection, with payload and vectors (for assertions)."""
        with self._engine_lock:
            records: list[models.Record] = []
            offset = None
            while True:
                page, offset = self.engine.scroll(
                    collection, limit=256, offset=offset, with_payload=True, with_vectors=True
                )
                records += page
                if offset is None:
                    return records

    # -- request handling ---------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def _record(
        self, method: str, path: str, params: dict[str, str], body: Any, key: str | None
    ) -> tuple[str, Route | None, dict[str, str], _Trouble | None]:
        operation, route, names = _resolve(method, path)
        with self._lock:
            self.requests.append(
                RecordedRequest(time.monotonic(), operation, method, path, params, body, key)
            )
            for i, trouble in enumerate(self._troubles):
                if trouble.operation in (None, operation):
                    if trouble.skip:
                        trouble.skip -= 1
                        break
                    return operation, route, names, self._troubles.pop(i)
        return operation, route, names, None

    def _run(
        self, operation: str, route: Route, names: dict[str, str], params: dict[str, str], body: Any
    ) -> Any:
        with self._lock:
            actions = self._actions.get(operation, [])
            action = actions.pop(0) if actions else None
        if action is not None:
            action()
        with self._engine_lock:
            try:
                return route(self, names.get("name", ""), params, body)
            except ValidationError as exc:
                raise QdrantError(400, f"Format error in JSON body: {exc}") from exc
            except ValueError as exc:
                if "not found" in str(exc):
                    raise QdrantError(404, f"Not found: {exc}") from exc
                raise QdrantError(400, f"Bad request: {exc}") from exc
            except RuntimeError as exc:  # a stalled request outlived `stop()`
                if not self.engine.closed:
                    raise
                raise QdrantError(503, "The fake server has stopped.") from exc

    # -- operations (called with the engine lock held) ----------------------------------

    def _root(self, name: str, params: dict[str, str], body: Any) -> Any:
        return {"title": "qdrant - vector search engine (fake)", "version": "1.16.0"}

    def _collections(self, name: str, params: dict[str, str], body: Any) -> Any:
        return self.engine.get_collections()

    def _exists(self, name: str, params: dict[str, str], body: Any) -> Any:
        return models.CollectionExistence(exists=self.engine.collection_exists(name))

    def _get_collection(self, name: str, params: dict[str, str], body: Any) -> Any:
        info = self.engine.get_collection(name)
        count = info.points_count or 0
        info.payload_schema = {
            field: models.PayloadIndexInfo(
                data_type=models.PayloadSchemaType(schema), params=None, points=count
            )
            for field, schema in self.payload_indexes.get(name, {}).items()
        }
        return info

    def _create_collection(self, name: str, params: dict[str, str], body: Any) -> Any:
        request = models.CreateCollection.model_validate(body or {})
        if self.engine.collection_exists(name):
            raise QdrantError(409, f"Wrong input: Collection `{name}` already exists!")
        return self.engine.create_collection(
            name,
            vectors_config=request.vectors,  # type: ignore[arg-type]
            sparse_vectors_config=request.sparse_vectors,
            metadata=request.metadata,
        )

    def _delete_collection(self, name: str, params: dict[str, str], body: Any) -> Any:
        self.payload_indexes.pop(name, None)
        return self.engine.delete_collection(name)

    def _create_index(self, name: str, params: dict[str, str], body: Any) -> Any:
        request = models.CreateFieldIndex.model_validate(body)
        self.engine.get_collection(name)  # 404 if missing
        schema = request.field_schema
        value = schema.value if isinstance(schema, models.PayloadSchemaType) else "keyword"
        self.payload_indexes.setdefault(name, {})[request.field_name] = value
        return _completed()

    def _upsert(self, name: str, params: dict[str, str], body: Any) -> Any:
        request: Any = TypeAdapter(models.PointInsertOperations).validate_python(body)
        points = request.points if isinstance(request, models.PointsList) else request.batch
        self.engine.upsert(name, points)
        return _completed()

    def _delete(self, name: str, params: dict[str, str], body: Any) -> Any:
        selector: Any = TypeAdapter(models.PointsSelector).validate_python(body)
        self.engine.delete(name, selector)
        return _completed()

    def _query_batch(self, name: str, params: dict[str, str], body: Any) -> Any:
        request = models.QueryRequestBatch.model_validate(body)
        # the embedded engine is always exact, and warns about search params
        searches = [s.model_copy(update={"params": None}) for s in request.searches]
        return self.engine.query_batch_points(name, searches)

    def _query(self, name: str, params: dict[str, str], body: Any) -> Any:
        return self._query_batch(name, params, {"searches": [body]})[0]

    def _scroll(self, name: str, params: dict[str, str], body: Any) -> Any:
        request = models.ScrollRequest.model_validate(body or {})
        records, offset = self.engine.scroll(
            name,
            scroll_filter=request.filter,
            limit=request.limit or 10,
            offset=request.offset,
            with_payload=True if request.with_payload is None else request.with_payload,
            with_vectors=request.with_vector or False,
        )
        return models.ScrollResult(points=records, next_page_offset=offset)

    def _count(self, name: str, params: dict[str, str], body: Any) -> Any:
        request = models.CountRequest.model_validate(body or {})
        return self.engine.count(name, count_filter=request.filter)

    def _retrieve(self, name: str, params: dict[str, str], body: Any) -> Any:
        request = models.PointRequest.model_validate(body)
        return self.engine.retrieve(
            name,
            request.ids,
            with_payload=True if request.with_payload is None else request.with_payload,
            with_vectors=request.with_vector or False,
        )


def _completed() -> models.UpdateResult:
    return models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED)


# (method, path pattern, operation name, handler)
_ROUTES: list[tuple[str, re.Pattern[str], str, Route]] = [
    (method, re.compile(f"^{pattern}$"), operation, handler)
    for method, pattern, operation, handler in (
        ("GET", r"/", "root", FakeQdrantServer._root),
        ("GET", r"/collections", "get_collections", FakeQdrantServer._collections),
        ("GET", _COLLECTION + "/exists", "collection_exists", FakeQdrantServer._exists),
        ("GET", _COLLECTION, "get_collection", FakeQdrantServer._get_collection),
        ("PUT", _COLLECTION, "create_collection", FakeQdrantServer._create_collection),
        ("DELETE", _COLLECTION, "delete_collection", FakeQdrantServer._delete_collection),
        ("PUT", _COLLECTION + "/index", "create_payload_index", FakeQdrantServer._create_index),
        ("PUT", _COLLECTION + "/points", "upsert", FakeQdrantServer._upsert),
        ("POST", _COLLECTION + "/points", "retrieve", FakeQdrantServer._retrieve),
        ("POST", _COLLECTION + "/points/delete", "delete", FakeQdrantServer._delete),
        ("POST", _COLLECTION + "/points/query", "query", FakeQdrantServer._query),
        ("POST", _COLLECTION + "/points/query/batch", "query_batch", FakeQdrantServer._query_batch),
        ("POST", _COLLECTION + "/points/scroll", "scroll", FakeQdrantServer._scroll),
        ("POST", _COLLECTION + "/points/count", "count", FakeQdrantServer._count),
    )
]


def _resolve(method: str, path: str) -> tuple[str, Route | None, dict[str, str]]:
    if path in ("/readyz", "/healthz", "/livez"):
        return path.strip("/"), None, {}
    for route_method, pattern, operation, handler in _ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return operation, handler, {k: unquote(v) for k, v in match.groupdict().items()}
    return "unknown", None, {}


def _jsonable(value: Any) -> Any:
    """A result as Qdrant serialises it (pydantic models as JSON, nulls left out)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _handler_for(server: FakeQdrantServer) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            started = time.perf_counter()
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            key = self.headers.get("api-key")
            operation, route, names, trouble = server._record(method, parts.path, params, body, key)
            if trouble is not None and trouble.delay:
                time.sleep(trouble.delay)
            if trouble is not None and trouble.status is not None:
                extra = {"Retry-After": trouble.retry_after} if trouble.retry_after else {}
                self._error(trouble.status, "The fake server was told to fail.", started, extra)
            elif trouble is not None and trouble.garbage:
                self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            elif server.api_key is not None and key != server.api_key:
                self._error(
                    401, "Must provide an API key or an Authorization bearer token", started
                )
            elif operation in ("readyz", "healthz", "livez"):
                self._send(200, b"all shards are ready", "text/plain")
            elif route is None:
                self._error(404, f"Unknown path {method} {parts.path}", started)
            else:
                try:
                    result = server._run(operation, route, names, params, body)
                except QdrantError as exc:
                    self._error(exc.status, str(exc), started)
                    return
                payload = {
                    "result": _jsonable(result),
                    "status": "ok",
                    "time": time.perf_counter() - started,
                }
                self._send(200, json.dumps(payload).encode(), "application/json")

        def _error(
            self, status: int, message: str, started: float, headers: dict[str, str] | None = None
        ) -> None:
            payload = {"status": {"error": message}, "time": time.perf_counter() - started}
            self._send(status, json.dumps(payload).encode(), "application/json", headers)

    return Handler
