"""A fake Discord REST API on 127.0.0.1 (aiohttp in a background thread), for real
discord.py clients: point them at it with `discord.http.Route.BASE = api.base_url` (the
connector does that from DISCORD_API_BASE_URL).

It keeps text channels, threads and messages and behaves like Discord where the
connector relies on it:
- interaction callbacks (`POST /interactions/{id}/{token}/callback`): a deferred response
  is a "thinking…" message that the first follow-up replaces; ephemeral messages (flag 64)
  never appear in channel history; a second callback fails with 40060;
- webhook follow-ups and `@original` get / edit / delete;
- channel messages with `enforce_nonce` deduplication, history (`before`), edits;
- threads started on messages (the thread's id is the message's; a second one fails with
  160004 and the message then carries `thread`);
- typing, channels, command registration (`PUT .../commands`), login (`/users/@me`);
- `GET /gateway` and `GET /gateway/bot`: `gateway_url` (a FakeDiscordGateway sets it; by
  default a port where nothing listens);
- 429 with `retry_after` on demand (`fail_next`); every body is checked against
  Discord's rules (tests/fakes/discord_rules.py: messages, embeds, buttons and action
  rows, modals, autocomplete choices, command registration, threads): a violation is a
  400 with code 50035 and Discord's `errors` tree (an empty message: 50006);
- an interaction's first response must come within 3 s of the interaction, or Discord has
  forgotten it: 404 with code 10062 "Unknown interaction" (`late_responses`).
Every call is recorded (`calls`, `wait_for`). The payload builders (`command`,
`click`, `submit`, `autocomplete`, `user_message`) make gateway payloads as Discord
sends them, registered with the fake so callbacks find their channel.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes import discord_rules
from tests.fakes.discord_rules import Problem
from tests.fakes.http import AiohttpServer

BOT_ID = "1100000000000000001"
APP_ID = "1100000000000000002"
GUILD_ID = "1100000000000000003"
TOKEN = "fake-bot-token"
EPHEMERAL = 64
LOADING = 128
MANAGE_GUILD = 1 << 5
MEMBER = 1 << 10 | 1 << 11 | 1 << 16  # view channel, send messages, read history
# Snowflakes, unique across every fake in a process (tests may share one state database).
_IDS = itertools.count(1_250_000_000_000_000_000)
INITIAL_RESPONSE = 3.0  # seconds Discord waits for an interaction's first response


@dataclass(frozen=True)
class ApiCall:
    """One request: when (time.monotonic()), which route, its query and JSON body, the
    status answered, and whether it carried the bot token."""

    at: float
    method: str
    route: str  # e.g. "POST /channels/{channel_id}/messages"
    path: str
    query: dict[str, str]
    json: Any
    status: int
    authorized: bool


@dataclass
class _Interaction:
    id: str
    token: str
    channel_id: str
    original: dict[str, Any] | None = None
    replaced: bool = False  # the deferred response got its first follow-up
    callback: dict[str, Any] | None = None
    created: float = field(default_factory=time.monotonic)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: str, name: str | None = None, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name or f"user{user_id[-4:]}",
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
    }


BOT_USER = user(BOT_ID, "paperbot", bot=True)


@dataclass
class FakeDiscordAPI(AiohttpServer):
    """The fake. Use as a context manager; `base_url` ends in `/api/v10`."""

    thread_name = "fake-discord"

    token: str = TOKEN
    calls: list[ApiCall] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    commands: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)
    gateway_url: str = "ws://127.0.0.1:9/"  # nothing listens there

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._interactions: dict[str, _Interaction] = {}
        self._failures: list[tuple[str, int, float]] = []
        self._delays: dict[str, float] = {}

    # -- running -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    # -- setup and inspection ------------------------------------------------------------

    def new_id(self) -> str:
        return str(next(_IDS))

    def add_channel(self, channel_id: str | None = None, name: str = "papers") -> str:
        channel_id = channel_id or self.new_id()
        with self._lock:
            self.channels[channel_id] = {
                "id": channel_id,
                "type": 0,
                "guild_id": GUILD_ID,
                "name": name,
                "position": 0,
                "parent_id": None,
                "permission_overwrites": [],
                "nsfw": False,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
            }
            self.messages.setdefault(channel_id, [])
        return channel_id

    def fail_next(
        self, route: str, count: int = 1, status: int = 429, retry_after: float = 0.5
    ) -> None:
        """Answer the next `count` calls to `route` (e.g. "POST /channels/{channel_id}/messages")
        with `status` (429: `retry_after` seconds, as Discord says it)."""
        with self._lock:
            self._failures += [(route, status, retry_after)] * count

    def delay(self, route: str, seconds: float) -> None:
        """Answer every call to `route` `seconds` late (a slow Discord)."""
        with self._lock:
            self._delays[route] = seconds

    @property
    def late_responses(self) -> list[ApiCall]:
        """First responses Discord refused because they came after its 3 s (10062)."""
        with self._lock:
            return [c for c in self.calls if c.route == _CALLBACK and c.status == 404]

    def refused(self) -> list[ApiCall]:
        """Requests refused as malformed (400), or too late (10062)."""
        with self._lock:
            bad = [c for c in self.calls if c.status == 400 and c.route != _THREAD]
        return bad + self.late_responses

    def calls_to(self, route: str, ok_only: bool = False) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if c.route == route and (not ok_only or c.status < 300)]

    def wait_for(
        self,
        route: str,
        count: int = 1,
        where: Callable[[ApiCall], bool] = lambda c: True,
        timeout: float = 20.0,
    ) -> list[ApiCall]:
        """Block until `count` successful calls to `route` match `where`; return them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls if c.route == route and c.status < 300 and where(c)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.route, c.status) for c in self.calls]
                    raise AssertionError(f"no {count} x {route} within {timeout} s; saw {seen}")
                self._lock.wait(left)

    def history(self, channel_id: str) -> list[dict[str, Any]]:
        """The channel's (or thread's) messages, oldest first (ephemeral ones are not)."""
        with self._lock:
            return [dict(m) for m in self.messages.get(channel_id, [])]

    def message(self, message_id: str) -> dict[str, Any]:
        with self._lock:
            for m in itertools.chain(*self.messages.values(), self.ephemeral):
                if m["id"] == message_id:
                    return dict(m)
        raise KeyError(message_id)

    def threads(self, parent_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.channels.values() if c.get("parent_id") == parent_id]

    def interaction_messages(self, token: str) -> list[dict[str, Any]]:
        """Every message an interaction produced (its response and follow-ups)."""
        with self._lock:
            return [
                dict(m)
                for m in itertools.chain(*self.messages.values(), self.ephemeral)
                if m.get("_token") == token
            ]

    def callback(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._interactions.get(token)
            return found.callback if found else None

    # -- gateway payloads ------------------------------------------------------------------

    def member(self, user_id: str, permissions: int = MEMBER) -> dict[str, Any]:
        return {
            "user": user(user_id),
            "roles": [],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(permissions),
        }

    def _interaction(
        self, kind: int, data: dict[str, Any], user_id: str, channel_id: str, permissions: int
    ) -> dict[str, Any]:
        interaction_id = self.new_id()
        token = f"tok-{interaction_id}"
        with self._lock:
            channel = dict(self.channels[channel_id])
            self._interactions[token] = _Interaction(interaction_id, token, channel_id)
        return {
            "id": interaction_id,
            "application_id": APP_ID,
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": GUILD_ID,
            "guild": {"id": GUILD_ID, "locale": "en-US", "features": []},
            "channel_id": channel_id,
            "channel": channel,
            "member": self.member(user_id, permissions),
            "data": data,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(MEMBER | 1 << 35 | 1 << 38),
            "entitlements": [],
            "authorizing_integration_owners": {"0": GUILD_ID},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }

    def command(
        self,
        verb: str,
        channel_id: str,
        user_id: str = "2000000000000000001",
        permissions: int = MEMBER,
        **options: str | bool,
    ) -> dict[str, Any]:
        """A used `/paper <verb> <options>` (INTERACTION_CREATE type 2; a bool option is
        Discord's BOOLEAN, type 5, the rest STRING, type 3)."""
        sub = {
            "name": verb,
            "type": 1,
            "options": [
                {"name": k, "type": 5 if isinstance(v, bool) else 3, "value": v}
                for k, v in options.items()
            ],
        }
        data = {"id": "1100000000000000009", "name": "paper", "type": 1, "options": [sub]}
        return self._interaction(2, data, user_id, channel_id, permissions)

    def autocomplete(
        self,
        verb: str,
        option: str,
        value: str,
        channel_id: str,
        user_id: str = "2000000000000000001",
    ) -> dict[str, Any]:
        """Typing in an option with autocomplete (INTERACTION_CREATE type 4)."""
        focused = {"name": option, "type": 3, "value": value, "focused": True}
        sub = {"name": verb, "type": 1, "options": [focused]}
        data = {"id": "1100000000000000009", "name": "paper", "type": 1, "options": [sub]}
        return self._interaction(4, data, user_id, channel_id, MEMBER)

    def click(
        self, message_id: str, custom_id: str, user_id: str = "2000000000000000001"
    ) -> dict[str, Any]:
        """A button click on a message (INTERACTION_CREATE type 3)."""
        message = self.message(message_id)
        data = {"custom_id": custom_id, "component_type": 2}
        payload = self._interaction(3, data, user_id, message["channel_id"], MEMBER)
        payload["message"] = {k: v for k, v in message.items() if not k.startswith("_")}
        return payload

    def submit(
        self,
        token: str,
        values: dict[str, str],
        message_id: str,
        user_id: str = "2000000000000000001",
    ) -> dict[str, Any]:
        """Submitting the modal the interaction `token` opened (INTERACTION_CREATE type 5);
        `values` by text input custom id."""
        modal = self.callback(token)
        assert modal is not None and modal["type"] == 9, "that interaction opened no modal"
        components = [
            {"type": 18, "id": i, "component": {"type": 4, "custom_id": cid, "value": value}}
            for i, (cid, value) in enumerate(values.items(), start=1)
        ]
        data = {"custom_id": modal["data"]["custom_id"], "components": components}
        message = self.message(message_id)
        payload = self._interaction(5, data, user_id, message["channel_id"], MEMBER)
        payload["message"] = {k: v for k, v in message.items() if not k.startswith("_")}
        return payload

    def user_message(
        self,
        channel_id: str,
        content: str,
        user_id: str = "2000000000000000002",
        mention: bool = False,
    ) -> dict[str, Any]:
        """A person's message, stored in the channel, as MESSAGE_CREATE sends it (without
        the message-content intent Discord sends the content only when we are mentioned)."""
        message = self._message(channel_id, {"content": content}, user(user_id))
        message["mentions"] = [BOT_USER] if mention else []
        with self._lock:
            self.messages.setdefault(channel_id, []).append(message)
        payload = dict(message)
        payload["member"] = {k: v for k, v in self.member(user_id).items() if k != "user"}
        return payload

    # -- the server ------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        api = "/api/v10"
        for method, path, handler in (
            ("GET", "/users/@me", self._me),
            ("GET", "/gateway", self._gateway),
            ("GET", "/gateway/bot", self._gateway),
            ("GET", "/oauth2/applications/@me", self._application),
            ("PUT", "/applications/{app_id}/commands", self._put_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app_id}/{token}", self._followup),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_message),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_message),
            ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_message),
            ("GET", "/channels/{channel_id}", self._channel),
            ("GET", "/channels/{channel_id}/messages", self._history),
            ("POST", "/channels/{channel_id}/messages", self._create),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._one),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._one),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._one),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._new_thread),
            ("POST", "/channels/{channel_id}/typing", self._typing),
        ):
            app.router.add_route(method, api + path, handler)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        info = request.match_info.route.resource
        canonical = info.canonical.removeprefix("/api/v10") if info else request.path
        route = f"{request.method} {canonical}"
        body = await request.json() if request.can_read_body else None
        authorized = request.headers.get("Authorization") == f"Bot {self.token}"
        with self._lock:
            failure = next((f for f in self._failures if f[0] == route), None)
            if failure is not None:
                self._failures.remove(failure)
            delay = self._delays.get(route, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if info is None or request.match_info.http_exception is not None:
            response = _error(404, 0, "404: Not Found")  # a route the fake does not know
        elif failure is not None:
            response = (
                _rate_limited(failure[2]) if failure[1] == 429 else _error(failure[1], 0, "fail")
            )
        elif _needs_auth(route) and not authorized:
            response = _error(401, 0, "401: Unauthorized")
        else:
            response = await handler(request, body)
        with self._lock:
            self.calls.append(
                ApiCall(time.monotonic(), request.method, route, request.path, dict(request.query),
                        body, response.status, authorized)
            )  # fmt: skip
            self._lock.notify_all()
        return response

    async def _me(self, request: web.Request, body: Any) -> web.Response:
        return _json(BOT_USER)

    async def _gateway(self, request: web.Request, body: Any) -> web.Response:
        found: dict[str, Any] = {"url": self.gateway_url}
        if request.path.endswith("/bot"):
            limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            found |= {"shards": 1, "session_start_limit": limit}
        return _json(found)

    async def _application(self, request: web.Request, body: Any) -> web.Response:
        return _json(
            {
                "id": APP_ID,
                "name": "paperbot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": user("2000000000000000009", "owner"),
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _put_commands(self, request: web.Request, body: Any) -> web.Response:
        if problems := discord_rules.commands_problems(body):
            return _invalid(problems)
        guild = request.match_info.get("guild_id")
        stored = [
            {**c, "id": self.new_id(), "application_id": APP_ID, "version": "1"}
            | ({"guild_id": guild} if guild else {})
            for c in body
        ]
        with self._lock:
            self.commands[guild] = stored
        return _json(stored)

    async def _callback(self, request: web.Request, body: Any) -> web.Response:
        with self._lock:
            found = self._interactions.get(request.match_info["token"])
            if found is None or found.id != request.match_info["interaction_id"]:
                return _error(404, 10062, "Unknown interaction")
            if found.callback is not None:
                return _error(400, 40060, "Interaction has already been acknowledged.")
            if time.monotonic() - found.created > INITIAL_RESPONSE:
                return _error(404, 10062, "Unknown interaction")
            if problems := discord_rules.callback_problems(body):
                return _invalid(problems)
            kind, data = body["type"], body.get("data") or {}
            found.callback = body
            flags = int(data.get("flags") or 0)
            message = None
            if kind in (4, 5):
                content = data if kind == 4 else {"content": ""}
                loading = LOADING if kind == 5 else 0
                message = self._message(found.channel_id, content, BOT_USER, flags | loading)
                message["_token"] = found.token
                message["type"] = 20
                self._store(message)
                found.original = message
        answer: dict[str, Any] = {
            "interaction": {
                "id": found.id,
                "type": 2,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            },
            "resource": {"type": kind} | ({"message": _public(message)} if message else {}),
        }
        return _json(answer)

    async def _followup(self, request: web.Request, body: Any) -> web.Response:
        with self._lock:
            found = self._interactions.get(request.match_info["token"])
            if found is None:
                return _error(404, 10015, "Unknown Webhook")
            if problems := discord_rules.message_problems(body):
                return _invalid(problems)
            original = found.original
            if original is not None and original["flags"] & LOADING and not found.replaced:
                found.replaced = True  # the first follow-up replaces "thinking…"
                _edit(original, body)
                original["flags"] &= ~LOADING
                return _json(_public(original))
            flags = int(body.get("flags") or 0) & EPHEMERAL
            message = self._message(found.channel_id, body, BOT_USER, flags)
            message["_token"] = found.token
            self._store(message)
            return _json(_public(message))

    async def _webhook_message(self, request: web.Request, body: Any) -> web.Response:
        with self._lock:
            found = self._interactions.get(request.match_info["token"])
            wanted = request.match_info["message_id"]
            message = None
            if found is not None and wanted == "@original":
                message = found.original
            elif found is not None:
                message = next(
                    (
                        m
                        for m in self._all()
                        if m["id"] == wanted and m.get("_token") == found.token
                    ),
                    None,
                )
            if message is None:
                return _error(404, 10008, "Unknown Message")
            if request.method == "DELETE":
                self._remove(message)
                return web.Response(status=204)
            if request.method == "PATCH":
                if problems := discord_rules.message_problems(body, edit=True):
                    return _invalid(problems)
                _edit(message, body)
                message["flags"] &= ~LOADING
                found.replaced = True  # type: ignore[union-attr]
            return _json(_public(message))

    async def _channel(self, request: web.Request, body: Any) -> web.Response:
        with self._lock:
            channel = self.channels.get(request.match_info["channel_id"])
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        return _json(channel)

    async def _history(self, request: web.Request, body: Any) -> web.Response:
        channel_id = request.match_info["channel_id"]
        limit = min(int(request.query.get("limit", 50)), 100)
        before = int(request.query.get("before") or 1 << 63)
        with self._lock:
            if channel_id not in self.channels:
                return _error(404, 10003, "Unknown Channel")
            found = [m for m in reversed(self.messages[channel_id]) if int(m["id"]) < before]
            return _json([_public(m) for m in found[:limit]])

    async def _create(self, request: web.Request, body: Any) -> web.Response:
        channel_id = request.match_info["channel_id"]
        with self._lock:
            if channel_id not in self.channels:
                return _error(404, 10003, "Unknown Channel")
            if problems := discord_rules.message_problems(body):
                return _invalid(problems)
            nonce = body.get("nonce")
            if nonce and body.get("enforce_nonce"):
                for m in self.messages[channel_id]:
                    if m.get("nonce") == nonce and m["author"]["id"] == BOT_ID:
                        return _json(_public(m))  # Discord: the same message
            message = self._message(channel_id, body, BOT_USER)
            if nonce:
                message["nonce"] = nonce
            self._store(message)
            return _json(_public(message))

    async def _one(self, request: web.Request, body: Any) -> web.Response:
        channel_id, message_id = request.match_info["channel_id"], request.match_info["message_id"]
        with self._lock:
            message = self._in_channel(channel_id, message_id)
            if message is None:
                return _error(404, 10008, "Unknown Message")
            if request.method == "DELETE":
                self._remove(message)
                return web.Response(status=204)
            if request.method == "PATCH":
                if problems := discord_rules.message_problems(body, edit=True):
                    return _invalid(problems)
                _edit(message, body)
            return _json(_public(message))

    async def _new_thread(self, request: web.Request, body: Any) -> web.Response:
        channel_id, message_id = request.match_info["channel_id"], request.match_info["message_id"]
        with self._lock:
            message = self._in_channel(channel_id, message_id)
            if message is None:
                return _error(404, 10008, "Unknown Message")
            if message.get("thread"):
                return _error(400, 160004, "A thread has already been created for this message")
            if problems := discord_rules.thread_problems(body):
                return _invalid(problems)
            name = str(body["name"])
            thread = {
                "id": message_id,  # a thread started on a message has the message's id
                "type": 11,
                "guild_id": GUILD_ID,
                "parent_id": channel_id,
                "owner_id": BOT_ID,
                "name": name,
                "last_message_id": None,
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": int(body.get("auto_archive_duration") or 1440),
                    "archive_timestamp": _now(),
                    "locked": False,
                    "create_timestamp": _now(),
                },
            }
            self.channels[message_id] = thread
            self.messages[message_id] = []
            message["thread"] = thread
            return _json(thread, status=201)

    async def _typing(self, request: web.Request, body: Any) -> web.Response:
        return web.Response(status=204)

    # -- state (with the lock held) --------------------------------------------------------

    def _message(
        self, channel_id: str, body: dict[str, Any], author: dict[str, Any], flags: int = 0
    ) -> dict[str, Any]:
        return {
            "id": self.new_id(),
            "channel_id": channel_id,
            "guild_id": GUILD_ID,
            "author": author,
            "content": body.get("content") or "",
            "embeds": list(body.get("embeds") or []),
            "components": list(body.get("components") or []),
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "type": 0,
            "timestamp": _now(),
            "edited_timestamp": None,
            "flags": flags,
        }

    def _in_channel(self, channel_id: str, message_id: str) -> dict[str, Any] | None:
        """The stored message `message_id` of `channel_id` (callers hold the lock)."""
        return next((m for m in self.messages.get(channel_id, []) if m["id"] == message_id), None)

    def _store(self, message: dict[str, Any]) -> None:
        if message["flags"] & EPHEMERAL:
            self.ephemeral.append(message)
        else:
            self.messages.setdefault(message["channel_id"], []).append(message)

    def _remove(self, message: dict[str, Any]) -> None:
        for stored in (*self.messages.values(), self.ephemeral):
            if message in stored:
                stored.remove(message)

    def _all(self) -> list[dict[str, Any]]:
        return [*itertools.chain(*self.messages.values()), *self.ephemeral]


_CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
_THREAD = "POST /channels/{channel_id}/messages/{message_id}/threads"


def _needs_auth(route: str) -> bool:
    if route == "GET /gateway":
        return False
    return not route.split(" ", 1)[1].startswith(("/interactions/", "/webhooks/"))


def _edit(message: dict[str, Any], body: dict[str, Any]) -> None:
    for key in ("content", "embeds", "components"):
        if key in body:
            message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
    message["edited_timestamp"] = _now()


def _public(message: dict[str, Any] | None) -> dict[str, Any]:
    assert message is not None
    return {k: v for k, v in message.items() if not k.startswith("_") and k != "nonce"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with Discord's exact content type (discord.py parses only `application/json`)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def _error(status: int, code: int, text: str) -> web.Response:
    return _json({"code": code, "message": text}, status=status)


def _invalid(problems: list[Problem]) -> web.Response:
    """Discord's 400 for a body it refuses: 50035 and the errors tree (50006: empty)."""
    if [p[1] for p in problems] == ["MESSAGE_EMPTY"]:
        return _error(400, 50006, "Cannot send an empty message")
    body = {"code": 50035, "message": "Invalid Form Body"}
    return _json(body | {"errors": discord_rules.error_tree(problems)}, status=400)


def _rate_limited(retry_after: float) -> web.Response:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    headers = {"Retry-After": str(max(1, round(retry_after))), "Via": "1.1 google"}
    return _json(body, status=429, headers=headers)
