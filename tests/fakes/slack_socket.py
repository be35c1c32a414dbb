"""A fake Slack Socket Mode server: real WebSockets on 127.0.0.1, aiohttp in its own thread.

It speaks the protocol the way Slack does: `apps.connections.open` (on `FakeSlackAPI`,
given `socket_url=socket.issue_url`) hands out a `ws://.../link/?ticket=N` URL; a client
that connects with a ticket it was issued gets `{"type": "hello", ...}`; envelopes
(`slash_commands`, `events_api`, `interactive`) go to the newest open connection, and the
client's acks (`{"envelope_id": ..., "payload": ...}`) are recorded. `disconnect()` asks
the client to move to a new connection as Slack does before it recycles a server;
`close()` sends a WebSocket close frame and `drop()` cuts the TCP connection without one.
WebSocket pings are answered (aiohttp's autoping).

>>> with FakeSocketMode() as socket, FakeSlackAPI(app_token="xapp-1",
...                                              socket_url=socket.issue_url) as api:
...     ...                                       # start the app under test against both
...     socket.wait_connected()
...     envelope = socket.slash_command({"command": "/paper", "text": "help", ...})
...     socket.wait_for_ack(envelope, timeout=1.0)
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.http import AiohttpServer

LINK_PATH = "/link/"


@dataclass
class SocketConnection:
    """One WebSocket a client opened: with which ticket, when, and whether it is open."""

    number: int
    ticket: str
    opened_at: float
    greeted: bool = False
    closed_at: float | None = None
    ws: web.WebSocketResponse | None = field(default=None, repr=False)
    request: web.Request | None = field(default=None, repr=False)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class EnvelopeAck:
    """A client's acknowledgement of an envelope, and the response payload if any."""

    envelope_id: str
    payload: dict[str, Any] | None
    at: float  # time.monotonic()
    connection: int


class FakeSocketMode(AiohttpServer):
    """The fake server. Use as a context manager (or `start()`/`stop()`).

    `greet=False` makes it accept connections without ever sending `hello` (a server
    that is not ready for the app)."""

    thread_name = "fake-socket-mode"

    def __init__(self, app_id: str = "A1", greet: bool = True) -> None:
        self.app_id = app_id
        self.greet = greet
        self.connections: list[SocketConnection] = []
        self.acks: list[EnvelopeAck] = []
        self.sent: dict[str, float] = {}  # envelope id -> when it was sent
        self.other_messages: list[str] = []  # client text frames that are not acks
        self.refused_tickets: list[str | None] = []
        self._tickets: list[str] = []
        self._numbers = itertools.count(1)
        self._cond = threading.Condition()

    # -- what apps.connections.open hands out --------------------------------------------

    def issue_url(self) -> str:
        """A new WebSocket URL with a fresh ticket (what `apps.connections.open` returns)."""
        with self._cond:
            ticket = f"ticket-{len(self._tickets) + 1}"
            self._tickets.append(ticket)
        return f"ws://127.0.0.1:{self.port}{LINK_PATH}?ticket={ticket}&app_id={self.app_id}"

    @property
    def issued(self) -> int:
        """How many URLs were handed out (one per `apps.connections.open`)."""
        with self._cond:
            return len(self._tickets)

    # -- waiting -------------------------------------------------------------------------

    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> SocketConnection:
        """Block until `count` connections were opened in all and the newest is open (and
        greeted); return it."""

        def ready() -> SocketConnection | None:
            if len(self.connections) < count:
                return None
            newest = self.connections[-1]
            return newest if newest.is_open and (newest.greeted or not self.greet) else None

        return self._wait(ready, timeout, f"{count} connection(s)")

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> EnvelopeAck:
        """Block until the client acknowledged `envelope_id`; return the ack."""

        def acked() -> EnvelopeAck | None:
            return next((a for a in self.acks if a.envelope_id == envelope_id), None)

        return self._wait(acked, timeout, f"an ack of {envelope_id}")

    def ack_seconds(self, envelope_id: str, timeout: float = 5.0) -> float:
        """How long the client took to acknowledge `envelope_id` (waiting for the ack)."""
        ack = self.wait_for_ack(envelope_id, timeout)
        return ack.at - self.sent[envelope_id]

    def wait_closed(self, connection: SocketConnection, timeout: float = 10.0) -> None:
        """Block until `connection` is closed (by either side)."""
        self._wait(lambda: True if not connection.is_open else None, timeout, "a close")

    def _wait(self, found: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = found()
                if result is not None:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {what} within {timeout} s; connections: {self.connections}, "
                        f"acks: {[a.envelope_id for a in self.acks]}"
                    )
                self._cond.wait(left)

    # -- sending ---------------------------------------------------------------------------

    def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        accepts_response_payload: bool = False,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> str:
        """Send an envelope to the newest open connection; return its envelope id."""
        envelope_id = f"env-{next(self._numbers):04d}"
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            message["retry_attempt"] = retry_attempt or 0
            message["retry_reason"] = retry_reason or ""
        connection = self._newest_open()
        with self._cond:
            self.sent[envelope_id] = time.monotonic()
        self._send(connection, message)
        return envelope_id

    def slash_command(self, form: dict[str, str]) -> str:
        """A slash command: `form` is what Slack would POST (command, text, user_id, ...)."""
        return self.send_envelope("slash_commands", form, accepts_response_payload=True)

    def events_api(self, body: dict[str, Any], retry_attempt: int | None = None) -> str:
        """An Events API delivery: `body` is the `event_callback` payload."""
        return self.send_envelope("events_api", body, retry_attempt=retry_attempt)

    def interactive(self, payload: dict[str, Any]) -> str:
        """A button click, modal submission, ...: `payload` is the interaction payload."""
        accepts = payload.get("type") in ("view_submission", "block_suggestion")
        return self.send_envelope("interactive", payload, accepts_response_payload=accepts)

    # -- ending connections --------------------------------------------------------------

    def disconnect(self, reason: str = "refresh_requested") -> SocketConnection:
        """Tell the client on the newest connection to move to a new one (Slack's
        `{"type": "disconnect"}`); the old socket stays open until the client closes it."""
        connection = self._newest_open()
        self._send(
            connection,
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-applink"}},
        )
        return connection

    def close(self, code: int = 1001) -> SocketConnection:
        """Close the newest connection with a WebSocket close frame."""
        connection = self._newest_open()
        assert connection.ws is not None
        self._call(connection.ws.close(code=code, message=b"going away"))
        return connection

    def drop(self) -> SocketConnection:
        """Cut the newest connection's TCP stream without a close frame (a network drop)."""
        connection = self._newest_open()
        assert connection.request is not None and connection.request.transport is not None
        transport = connection.request.transport
        assert self._loop is not None
        self._loop.call_soon_threadsafe(transport.abort)
        return connection

    # -- internals -----------------------------------------------------------------------

    def _newest_open(self) -> SocketConnection:
        with self._cond:
            for connection in reversed(self.connections):
                if connection.is_open:
                    return connection
        raise AssertionError("no open Socket Mode connection")

    def _send(self, connection: SocketConnection, message: dict[str, Any]) -> None:
        assert connection.ws is not None
        self._call(connection.ws.send_str(json.dumps(message)))

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(LINK_PATH, self._link)
        return app

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket")
        with self._cond:
            known = ticket in self._tickets
            if not known:
                self.refused_tickets.append(ticket)
        if not known or ticket is None:
            return web.Response(status=401, text="invalid or missing ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._cond:
            connection = SocketConnection(
                len(self.connections) + 1, ticket, time.monotonic(), ws=ws, request=request
            )
            self.connections.append(connection)
            self._cond.notify_all()
        try:
            if self.greet:
                await ws.send_str(json.dumps(self._hello()))
                with self._cond:
                    connection.greeted = True
                    self._cond.notify_all()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._receive(connection, message.data)
        finally:
            with self._cond:
                connection.closed_at = time.monotonic()
                self._cond.notify_all()
        return ws

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": sum(1 for c in self.connections if c.is_open),
            "debug_info": {
                "host": "fake-applink",
                "build_number": 1,
                "approximate_connection_time": 3600,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _receive(self, connection: SocketConnection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        with self._cond:
            if isinstance(message, dict) and "envelope_id" in message:
                payload = message.get("payload")
                self.acks.append(
                    EnvelopeAck(
                        str(message["envelope_id"]),
                        payload if isinstance(payload, dict) else None,
                        time.monotonic(),
                        connection.number,
                    )
                )
            else:
                self.other_messages.append(data)
            self._cond.notify_all()
