"""A fake Discord gateway (v10) on 127.0.0.1 (aiohttp in a background thread), for a real
discord.py client: `FakeDiscordGateway(api)` makes the fake REST API's `GET /gateway/bot`
name it, so a client logged in to that API connects here.

It speaks what discord.py uses of the protocol, as Discord does:
- transport compression `zlib-stream` (one zlib stream per connection, each message
  ending in a Z_SYNC_FLUSH), or plain text frames without `compress`;
- HELLO (op 10), heartbeats (op 1) answered with HEARTBEAT_ACK (op 11);
- IDENTIFY (op 2): the token is checked (4004 "Authentication failed"), a privileged
  intent not granted closes with 4014; then READY (the guild unavailable, `session_id`,
  `resume_gateway_url`) and, with the Guilds intent, GUILD_CREATE with the fake API's
  text channels;
- RESUME (op 6) on `resume_gateway_url`: the events the client missed are replayed,
  then RESUMED; an unknown session gets INVALID_SESSION (op 9, not resumable);
- `dispatch(event, payload)` sends an event (INTERACTION_CREATE, MESSAGE_CREATE, ... as
  the REST fake's payload builders make them) to the session, or keeps it for the
  resume when the client is not connected; events of intents the client did not ask
  for are not sent, and MESSAGE_CREATE loses its content without Message Content
  (unless it mentions the bot).

Faults: `drop()` cuts the connection (no close frame, like a network failure) or closes
it with a code; `hold()` / `release()` keep new connections waiting for HELLO (Discord
is slow to take the bot back); `invalidate()` forgets the session, so the next RESUME
is refused; `reconnect()` asks the client to reconnect (op 7). Everything the client
sends is recorded (`received`, `wait_for`), with how each connection ended (`closes`).

    with FakeDiscordAPI() as api, FakeDiscordGateway(api) as gateway:
        ...  # start the bot; it logs in to `api.base_url`
        gateway.wait_connected()
        gateway.dispatch("INTERACTION_CREATE", api.command("search", channel, query="moe"))
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from aiohttp import WSMsgType, web

from tests.fakes.discord_api import APP_ID, BOT_ID, BOT_USER, GUILD_ID, TOKEN, FakeDiscordAPI
from tests.fakes.http import AiohttpServer

T = TypeVar("T")

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT = 0, 1, 2, 6, 7
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11
GUILDS, GUILD_MEMBERS, GUILD_PRESENCES = 1 << 0, 1 << 1, 1 << 8
GUILD_MESSAGES, MESSAGE_CONTENT = 1 << 9, 1 << 15
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
# Events the client gets only with an intent (guild events; interactions need none).
_INTENT_OF = {
    "GUILD_CREATE": GUILDS,
    "THREAD_CREATE": GUILDS,
    "CHANNEL_CREATE": GUILDS,
    "MESSAGE_CREATE": GUILD_MESSAGES,
    "MESSAGE_UPDATE": GUILD_MESSAGES,
    "MESSAGE_DELETE": GUILD_MESSAGES,
}
_SESSIONS = itertools.count(1)


@dataclass(frozen=True)
class GatewayOp:
    """One payload the client sent: when (time.monotonic()), on which connection (1 for
    the first) and path ("/" or "/resume"), its op code and data."""

    at: float
    connection: int
    path: str
    op: int
    data: Any


@dataclass(eq=False)
class _Session:
    id: str
    intents: int
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # every dispatch, for resumes
    live: _Connection | None = None  # the connection receiving its events now
    resumable: bool = True

    def add(self, event: str, data: Any) -> dict[str, Any]:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.events.append(frame)
        return frame


@dataclass(eq=False)
class _Connection:
    number: int
    path: str
    ws: web.WebSocketResponse
    request: web.Request
    deflate: Any  # a zlib compressobj for zlib-stream, else None (text frames)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, frame: dict[str, Any]) -> bool:
        """Send one gateway message (False if the connection is gone)."""
        text = json.dumps(frame)
        async with self.lock:  # one zlib stream: messages leave in the order compressed
            if self.ws.closed:
                return False
            try:
                if self.deflate is None:
                    await self.ws.send_str(text)
                else:
                    data = self.deflate.compress(text.encode()) + self.deflate.flush(
                        zlib.Z_SYNC_FLUSH
                    )
                    await self.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                return False
        return True

    def cut(self) -> None:
        """End the TCP connection without a close frame (the client sees 1006)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class FakeDiscordGateway(AiohttpServer):
    """The fake. Use as a context manager; `url` is what `GET /gateway/bot` answers."""

    thread_name = "fake-discord-gateway"

    def __init__(
        self,
        api: FakeDiscordAPI | None = None,
        token: str = TOKEN,
        heartbeat_interval: int = 41_250,
        privileged_intents: int = 0,
    ) -> None:
        """`token`: the one IDENTIFY and RESUME must carry; `heartbeat_interval` in ms;
        `privileged_intents`: the privileged intents the bot is granted (e.g.
        MESSAGE_CONTENT), the others close the connection with 4014."""
        self.api = api
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.privileged_intents = privileged_intents
        self.received: list[GatewayOp] = []
        # (connection, the code of the client's close frame; None: it sent none)
        self.closes: list[tuple[int, int | None]] = []
        self.problems: list[str] = []  # what the fake refused, for failure messages
        self._lock = threading.Condition()
        self._numbers = itertools.count(1)
        self._session: _Session | None = None
        self._connections: set[_Connection] = set()
        self._closing: set[asyncio.Task[Any]] = set()
        self._live = False  # a connection receives the session's events (for waiting threads)
        self._opened: asyncio.Event | None = None

    # -- running -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def resume_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/resume"

    def start(self) -> Self:
        super().start()
        if self.api is not None:  # the REST fake's GET /gateway/bot answers this address
            self.api.gateway_url = self.url
        return self

    def _app(self) -> web.Application:
        self._opened = asyncio.Event()
        self._opened.set()
        app = web.Application()
        app.router.add_get("/", self._serve_connection)
        app.router.add_get("/resume", self._serve_connection)
        return app

    async def _before_shutdown(self) -> None:
        for connection in list(self._connections):
            connection.cut()
        if self._opened is not None:
            self._opened.set()  # held connections end too

    # -- driving the client --------------------------------------------------------------

    def dispatch(self, event: str, payload: dict[str, Any]) -> int | None:
        """Send `event` to the session (kept for its resume if the client is away); its
        sequence number, or None when the session's intents do not cover it."""
        return self._call(self._dispatch(event, payload))

    def drop(self, code: int | None = None) -> None:
        """End the live connection: cut it (`code` None: no close frame, as a network
        failure does) or close it with `code` (4000: "unknown error", resumable)."""
        self._call(self._drop(code))

    def hold(self) -> None:
        """From now on, new connections wait for HELLO until `release()`."""
        self._call(self._set_open(False))

    def release(self) -> None:
        self._call(self._set_open(True))

    def invalidate(self) -> None:
        """Forget the session (its live connection stays up): the client's next RESUME
        gets INVALID_SESSION (op 9), and it has to IDENTIFY again."""
        self._call(self._forget())

    def reconnect(self) -> None:
        """Ask the client to reconnect and resume (op 7), as Discord does before a restart."""
        self._call(self._send_live({"op": RECONNECT, "d": None, "s": None, "t": None}))

    # -- inspection ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A connection is receiving the session's events (after READY or RESUMED)."""
        with self._lock:
            return self._live

    @property
    def session_id(self) -> str | None:
        session = self._session
        return session.id if session else None

    def ops(self, op: int) -> list[GatewayOp]:
        with self._lock:
            return [o for o in self.received if o.op == op]

    def wait_for(
        self,
        op: int,
        count: int = 1,
        where: Callable[[GatewayOp], bool] = lambda o: True,
        timeout: float = 20.0,
    ) -> list[GatewayOp]:
        """Block until the client sent `count` payloads of `op` matching `where`."""
        return self._wait(
            lambda: [o for o in self.received if o.op == op and where(o)],
            lambda found: len(found) >= count,
            f"{count} x op {op}",
            timeout,
        )

    def wait_closed(self, connection: int, timeout: float = 10.0) -> int | None:
        """Block until connection number `connection` ended; the code of the client's
        close frame (None: it sent none, e.g. the fake cut it)."""
        ended = self._wait(
            lambda: [code for number, code in self.closes if number == connection],
            bool,
            f"the end of connection {connection}",
            timeout,
        )
        code: int | None = ended[0]
        return code

    def wait_connected(self, timeout: float = 20.0) -> None:
        """Block until a connection receives the session's events (READY or RESUMED sent)."""
        self._wait(lambda: self._live, bool, "a live connection", timeout)

    # -- the server (on the gateway's loop) ----------------------------------------------

    async def _serve_connection(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        number = next(self._numbers)
        query = request.query
        compress = query.get("compress")
        if query.get("v") != "10" or query.get("encoding", "json") != "json":
            return await self._refuse(ws, 4012, f"connection {number}: query {dict(query)}")
        if compress not in (None, "zlib-stream"):
            return await self._refuse(ws, 4000, f"connection {number}: compress={compress}")
        deflate = zlib.compressobj() if compress else None
        connection = _Connection(number, request.path, ws, request, deflate)
        self._connections.add(connection)
        code: int | None = None
        try:
            assert self._opened is not None
            await self._opened.wait()
            hello = {"heartbeat_interval": self.heartbeat_interval, "_trace": ["fake"]}
            await connection.send({"op": HELLO, "d": hello, "s": None, "t": None})
            while True:
                message = await ws.receive()
                if message.type is WSMsgType.CLOSE:
                    code = message.data  # the client's close frame (aiohttp answers it)
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                self._record(GatewayOp(time.monotonic(), number, request.path, frame.get("op"),
                                       frame.get("d")))  # fmt: skip
                await self._on_payload(connection, frame)
        finally:
            self._connections.discard(connection)
            session = self._session
            if session is not None and session.live is connection:
                session.live = None
                self._set_live(False)
            with self._lock:
                self.closes.append((number, code))
                self._lock.notify_all()
        return ws

    async def _refuse(self, ws: web.WebSocketResponse, code: int, problem: str) -> Any:
        with self._lock:
            self.problems.append(problem)
        await ws.close(code=code, message=problem.encode()[:120])
        return ws

    async def _on_payload(self, connection: _Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d") or {}
        if op == HEARTBEAT:
            await connection.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(connection, data)
        elif op == RESUME:
            await self._resume(connection, data)
        elif op not in (3, 4, 8):  # presence, voice state, request members: recorded only
            await self._close(connection, 4001, f"unknown opcode {op}")

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await self._close(connection, 4004, "Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED & ~self.privileged_intents:
            await self._close(connection, 4014, "Disallowed intent(s).")
            return
        old = self._session
        if old is not None and old.live is not None and old.live is not connection:
            old.live.cut()  # Discord ends the previous session's connection
        session = _Session(f"fake-session-{next(_SESSIONS)}", intents)
        self._session = session
        ready = {
            "v": 10,
            "user": {**BOT_USER, "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": GUILD_ID, "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_url,
            "application": {"id": APP_ID, "flags": 0},
            "private_channels": [],
            "_trace": ["fake-gateway"],
        }
        await self._go_live(session, connection, [session.add("READY", ready)])
        if intents & GUILDS:
            await self._dispatch("GUILD_CREATE", self._guild())

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await self._close(connection, 4004, "Authentication failed.")
            return
        session = self._session
        if session is None or not session.resumable or data.get("session_id") != session.id:
            await connection.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        seen = int(data.get("seq") or 0)
        missed = [frame for frame in session.events if frame["s"] > seen]
        await self._go_live(session, connection, [*missed, session.add("RESUMED", {})])

    async def _go_live(
        self, session: _Session, connection: _Connection, frames: list[dict[str, Any]]
    ) -> None:
        for frame in frames:
            await connection.send(frame)
        session.live = connection
        self._set_live(True)

    async def _dispatch(self, event: str, payload: dict[str, Any]) -> int | None:
        session = self._session
        if session is None:
            raise AssertionError("no gateway session: the client has not identified")
        needed = _INTENT_OF.get(event, 0)
        if needed and not session.intents & needed:
            return None
        data = dict(payload)
        mentioned = any(u.get("id") == BOT_ID for u in data.get("mentions", []))
        if event.startswith("MESSAGE_") and not session.intents & MESSAGE_CONTENT and not mentioned:
            data.update(content="", embeds=[], attachments=[], components=[])  # as Discord does
        frame = session.add(event, data)
        if session.live is not None:
            await session.live.send(frame)
        return int(frame["s"])

    async def _drop(self, code: int | None) -> None:
        session = self._session
        connection = session.live if session else None
        if connection is None:
            raise AssertionError("no live gateway connection to drop")
        assert session is not None
        session.live = None
        self._set_live(False)
        if code is None:
            connection.cut()
        else:
            await self._close(connection, code, "dropped by the test")

    async def _close(self, connection: _Connection, code: int, reason: str) -> None:
        # the client answers the close frame when it reads it: do not wait for that here
        task = asyncio.get_running_loop().create_task(
            connection.ws.close(code=code, message=reason.encode())
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        await asyncio.sleep(0)

    async def _set_open(self, opened: bool) -> None:
        assert self._opened is not None
        if opened:
            self._opened.set()
        else:
            self._opened.clear()

    async def _forget(self) -> None:
        if self._session is not None:
            self._session.resumable = False

    async def _send_live(self, frame: dict[str, Any]) -> None:
        session = self._session
        if session is None or session.live is None:
            raise AssertionError("no live gateway connection")
        await session.live.send(frame)

    def _guild(self) -> dict[str, Any]:
        channels = []
        if self.api is not None:
            channels = [
                dict(c) for c in self.api.channels.values() if c["type"] == 0
            ]  # threads arrive with THREAD_CREATE, not here
        everyone = {
            "id": GUILD_ID, "name": "@everyone", "permissions": str(1 << 10 | 1 << 11 | 1 << 16),
            "position": 0, "color": 0, "hoist": False, "managed": False, "mentionable": False,
            "flags": 0,
        }  # fmt: skip
        bot = {"user": BOT_USER, "roles": [], "joined_at": "2024-07-01T00:00:00+00:00",
               "deaf": False, "mute": False, "flags": 0}  # fmt: skip
        return {
            "id": GUILD_ID,
            "name": "ML reading group",
            "icon": None,
            "owner_id": "2000000000000000009",
            "unavailable": False,
            "large": False,
            "member_count": 2,
            "joined_at": "2024-07-01T00:00:00+00:00",
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "features": [],
            "members": [bot],
            "channels": channels,
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "preferred_locale": "en-US",
        }

    # -- plumbing ------------------------------------------------------------------------

    def _record(self, op: GatewayOp) -> None:
        with self._lock:
            self.received.append(op)
            self._lock.notify_all()

    def _set_live(self, live: bool) -> None:
        with self._lock:
            self._live = live
            self._lock.notify_all()

    def _wait(
        self, found: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float
    ) -> Any:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = found()
                if done(result):
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(o.connection, o.op) for o in self.received]
                    raise AssertionError(
                        f"no {what} within {timeout} s; received {seen}, closes {self.closes}, "
                        f"problems {self.problems}"
                    )
                self._lock.wait(left)
