"""A fake Slack Web API: real HTTP on 127.0.0.1, enough methods for the connector.

Point `slack_sdk.WebClient(base_url=api.base_url)` (or `SLACK_API_BASE_URL`) at it. It
answers `auth.test` (bolt calls it when an App is built), `chat.postMessage`,
`chat.postEphemeral`, `chat.update`, `chat.delete`, `reactions.add/remove`,
`conversations.history/replies` (with message metadata), `users.info` (configurable
admins), `views.open` and `apps.connections.open` (for Socket Mode: only with the app-level
token, returning `socket_url()`, see tests/fakes/slack_socket.py), plus response URLs
(`api.response_url()`). Bodies may be form
or JSON, as the SDK sends them. Every call is recorded; the next calls can be told to
fail with 429 + Retry-After or with a Slack error.

It refuses what Slack refuses (tests/fakes/slack_rules.py): blocks and views outside Block
Kit's rules (`invalid_blocks`, `invalid_arguments` with the JSON pointers Slack gives),
`text` over 40,000 characters (`msg_too_long`), posts where the bot is not a member
(`not_in_channel`, or `channel_not_found` for a private channel; `chat:write.public` is
honoured only if the app asks for it: the scopes are read from our manifest), reading a
channel's history without membership, a `trigger_id` older than 3 s (`expired_trigger_id`).
`deliver` times how long the app took to acknowledge a request Slack sent it (Slack gives
up after 3 s: `late_acks`). `distribution="distributed"` is a non-Marketplace app installed
elsewhere: since 2025-05-29 its `conversations.history`/`replies` give at most 15 messages
a request and one request a minute (429 + Retry-After); internal apps keep the old limits.

Run it alone (`python -m tests.fakes.slack_api --port 8099`) to try `paperbot serve --slack
--http` by hand: it prints every call as a JSON line.

>>> with FakeSlackAPI(bot_token="xoxb-test", admins={"UADMIN"}) as api:
...     client = WebClient(token="xoxb-test", base_url=api.base_url)
...     api.fail_next(1, status=429, retry_after=1)
...     client.chat_postMessage(channel="C1", text="hi")   # with a retry handler: retried
...     api.calls_to("chat.postMessage")
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import yaml

from tests.fakes import slack_rules
from tests.fakes.http import LocalServer

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
_JSON_FIELDS = ("blocks", "metadata", "view", "attachments")
MANIFEST = Path(__file__).resolve().parents[2] / "connectors" / "slack" / "manifest.yml"
ACK_SECONDS = 3.0  # Slack's wait for an acknowledgement, and a trigger_id's life
DISTRIBUTED_PAGE = 15  # messages a request for non-Marketplace distributed apps
# Errors that mean the app sent Slack something it refuses (a bug in the app, not a
# state of the workspace): the connector tests assert none happened.
REQUEST_ERRORS = frozenset(
    {"invalid_blocks", "invalid_arguments", "msg_too_long", "no_text", "invalid_trigger_id",
     "expired_trigger_id", "invalid_metadata_format"}
)  # fmt: skip


def manifest_scopes(path: Path = MANIFEST) -> set[str]:
    """The bot scopes our app asks for (what a workspace grants it on install)."""
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    return set(manifest["oauth_config"]["scopes"]["bot"])


@dataclass(frozen=True)
class ApiCall:
    """One request: when (time.monotonic()), which method, its parameters, the status."""

    at: float
    method: str
    params: dict[str, Any]
    status: int
    token: str | None


@dataclass(frozen=True)
class Refusal:
    """A request Slack would refuse: the method, the error code and Slack's messages."""

    method: str
    error: str
    messages: tuple[str, ...] = ()


@dataclass
class _Channel:
    private: bool = False
    bot_member: bool = True


T = TypeVar("T")


@dataclass
class _Failure:
    method: str | None
    status: int = 429
    retry_after: int | None = 1
    error: str | None = None  # with status 200: {"ok": false, "error": error}


@dataclass
class FakeSlackAPI(LocalServer):
    """The fake server. Use as a context manager; `base_url` ends in `/api/`."""

    bot_token: str | None = None
    admins: set[str] = field(default_factory=set)
    owners: set[str] = field(default_factory=set)
    calls: list[ApiCall] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    reactions: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    port: int = 0
    echo: bool = False
    app_token: str | None = None  # the only app-level token apps.connections.open accepts
    socket_url: Callable[[], str] | None = None  # a new Socket Mode URL for each open
    scopes: set[str] = field(default_factory=manifest_scopes)
    distribution: str = "internal"  # or "distributed": a non-Marketplace app elsewhere
    history_window: float = 60.0  # distributed apps: one history/replies call per window
    refusals: list[Refusal] = field(default_factory=list)
    acks: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._failures: list[_Failure] = []
        self._last_ts = 0.0
        self._channels: dict[str, _Channel] = {}
        self._triggers: dict[str, float] = {}
        self._last_read: dict[str, float] = {}

    # -- control -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "cmd") -> str:
        return f"{self.url}/respond/{name}"

    def fail_next(
        self, count: int, status: int = 429, retry_after: int | None = 1, method: str | None = None
    ) -> None:
        """Answer the next `count` calls (to `method`, or any) with an HTTP error."""
        with self._lock:
            self._failures += [_Failure(method, status, retry_after) for _ in range(count)]

    def error_next(self, method: str, error: str, count: int = 1) -> None:
        """Answer the next `count` calls to `method` with `{"ok": false, "error": error}`."""
        with self._lock:
            self._failures += [_Failure(method, 200, None, error) for _ in range(count)]

    def add_channel(self, channel: str, private: bool = False, bot_member: bool = True) -> str:
        """A channel, and whether the bot is in it (a channel never added is a public one
        the bot was invited to)."""
        with self._lock:
            self._channels[channel] = _Channel(private, bot_member)
        return channel

    def trigger_id(self) -> str:
        """A trigger_id as Slack puts in an interaction: views.open takes it for 3 s."""
        with self._lock:
            trigger = f"{len(self._triggers) + 1}.{time.monotonic_ns()}.fake"
            self._triggers[trigger] = time.monotonic()
        return trigger

    def deliver(self, kind: str, send: Callable[[], T]) -> T:
        """Send the app a request (`send()` returns its response) and time the
        acknowledgement, as Slack does: past 3 s the user sees a timeout."""
        started = time.monotonic()
        try:
            return send()
        finally:
            with self._lock:
                self.acks.append((kind, time.monotonic() - started))

    @property
    def late_acks(self) -> list[tuple[str, float]]:
        with self._lock:
            return [(kind, took) for kind, took in self.acks if took > ACK_SECONDS]

    def delivers(self, event: dict[str, Any]) -> bool:
        """Whether Slack sends the app this event: message and mention events come only
        from conversations the bot is a member of."""
        with self._lock:
            return self._channel(str(event.get("channel", ""))).bot_member

    def invalid_requests(self) -> list[Refusal]:
        """Refusals that mean the app sent something malformed or too late."""
        with self._lock:
            return [r for r in self.refusals if r.error in REQUEST_ERRORS]

    def calls_to(self, method: str, ok_only: bool = False) -> list[ApiCall]:
        with self._lock:
            return [
                c for c in self.calls if c.method == method and (not ok_only or c.status == 200)
            ]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        where: Callable[[ApiCall], bool] = lambda c: True,
        timeout: float = 30.0,
    ) -> list[ApiCall]:
        """Block until `count` successful calls to `method` match `where`; return them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    c for c in self.calls if c.method == method and c.status == 200 and where(c)
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.status) for c in self.calls]
                    raise AssertionError(f"no {count} x {method} within {timeout} s; saw {seen}")
                self._lock.wait(left)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        with self._lock:
            return next(m for m in self.messages if m["channel"] == channel and m["ts"] == ts)

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The replies in a thread (the root excluded), oldest first."""
        with self._lock:
            return [
                m
                for m in self.messages
                if m["channel"] == channel and m.get("thread_ts") == thread_ts != m["ts"]
            ]

    def _bind_port(self) -> int:
        return self.port

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # -- serving -------------------------------------------------------------------------

    def handle(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, headers) for one call, recording it."""
        with self._lock:
            failure = next(
                (f for f in self._failures if f.method in (None, method)),
                None,
            )
            if failure is not None:
                self._failures.remove(failure)
            status = failure.status if failure is not None else 200
            self.calls.append(ApiCall(time.monotonic(), method, params, status, token))
            self._lock.notify_all()
            if self.echo:
                print(json.dumps({"method": method, **params}, ensure_ascii=False), flush=True)
            if failure is not None and failure.error is None:
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
                return status, {"ok": False, "error": "ratelimited"}, headers
            if failure is not None:
                return 200, {"ok": False, "error": failure.error}, {}
            refused = self._refused_token(method, token)
            if refused is not None:
                return 200, {"ok": False, "error": refused}, {}
            route = _ROUTES.get(method)
            if route is None:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            wait = self._history_wait(method)
            if wait is not None:
                self.refusals.append(Refusal(method, "ratelimited"))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": wait}
            body = route(self, params)
            if not body.get("ok"):
                messages = tuple((body.get("response_metadata") or {}).get("messages") or ())
                self.refusals.append(Refusal(method, str(body.get("error")), messages))
            return 200, body, {}

    def _history_wait(self, method: str) -> str | None:
        """Distributed apps: the Retry-After of a history call made too soon, else None."""
        if self.distribution != "distributed" or method not in _PAGED:
            return None
        now = time.monotonic()
        last = self._last_read.get(method)
        if last is not None and now - last < self.history_window:
            return str(max(1, round(self.history_window - (now - last))))
        self._last_read[method] = now
        return None

    def _channel(self, channel: str) -> _Channel:
        return self._channels.setdefault(channel, _Channel())

    def _cannot_post(self, channel: str) -> str | None:
        """Slack's error for posting in `channel`, or None when the bot may."""
        found = self._channel(channel)
        if found.bot_member:
            return None
        if found.private:
            return "channel_not_found"
        return None if "chat:write.public" in self.scopes else "not_in_channel"

    def _cannot_read(self, channel: str) -> str | None:
        found = self._channel(channel)
        if found.bot_member:
            return None
        return "channel_not_found" if found.private else "not_in_channel"

    def _refused_token(self, method: str, token: str | None) -> str | None:
        """Slack's error for a call with the wrong kind of token or a wrong one, else None."""
        if method == "response_url":
            return None
        if method == "apps.connections.open":
            if not (token or "").startswith("xapp-"):
                return "not_allowed_token_type"
            return "invalid_auth" if self.app_token and token != self.app_token else None
        if (token or "").startswith("xapp-"):
            return "not_allowed_token_type"
        return "invalid_auth" if self.bot_token and token != self.bot_token else None

    def _next_ts(self) -> str:
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"


# -- methods (called with the lock held) ------------------------------------------------


def _auth_test(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": "https://fake.slack.test/",
        "team": "Fake",
        "user": "paperbot",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
    }


def _refused_message(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's answer to a message body it refuses (any chat.* method), else None."""
    if not p.get("channel"):
        return {"ok": False, "error": "channel_not_found"}
    if not (p.get("text") or p.get("blocks") or p.get("attachments")):
        return {"ok": False, "error": "no_text"}
    if slack_rules.text_too_long(p):
        return {"ok": False, "error": "msg_too_long"}
    problems = slack_rules.message_problems(p)
    if problems:
        return {
            "ok": False,
            "error": "invalid_blocks",
            "errors": problems,
            "response_metadata": {"messages": [f"[ERROR] {m}" for m in problems]},
        }
    metadata = p.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        return {"ok": False, "error": "invalid_metadata_format"}
    return None


def _post_message(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    refused = _refused_message(api, p)
    if refused is not None:
        return refused
    cannot = api._cannot_post(str(p["channel"]))
    if cannot is not None:
        return {"ok": False, "error": cannot}
    ts = api._next_ts()
    message = {
        "type": "message",
        "channel": p["channel"],
        "ts": ts,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "text": p.get("text", ""),
        "blocks": p.get("blocks") or [],
    }
    if p.get("thread_ts"):
        message["thread_ts"] = p["thread_ts"]
    if p.get("metadata"):
        message["metadata"] = p["metadata"]
    api.messages.append(message)
    return {"ok": True, "channel": p["channel"], "ts": ts, "message": dict(message)}


def _post_ephemeral(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    if not p.get("user"):
        return {"ok": False, "error": "user_not_in_channel"}
    refused = _refused_message(api, p)
    if refused is not None:
        return refused
    cannot = api._cannot_post(str(p["channel"]))
    if cannot is not None:
        return {"ok": False, "error": cannot}
    return {"ok": True, "message_ts": api._next_ts()}


def _update(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    refused = _refused_message(api, p)
    if refused is not None:
        return refused
    for m in api.messages:
        if m["channel"] == p.get("channel") and m["ts"] == p.get("ts"):
            m["text"] = p.get("text", m["text"])
            m["blocks"] = p.get("blocks", m["blocks"])
            return {"ok": True, "channel": m["channel"], "ts": m["ts"], "text": m["text"]}
    return {"ok": False, "error": "message_not_found"}


def _delete(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    before = len(api.messages)
    api.messages[:] = [
        m for m in api.messages if not (m["channel"] == p.get("channel") and m["ts"] == p.get("ts"))
    ]
    if len(api.messages) == before:
        return {"ok": False, "error": "message_not_found"}
    return {"ok": True, "channel": p["channel"], "ts": p["ts"]}


def _reaction(add: bool) -> Callable[[FakeSlackAPI, dict[str, Any]], dict[str, Any]]:
    def handle(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
        names = api.reactions.setdefault((p.get("channel", ""), p.get("timestamp", "")), set())
        name = p.get("name", "")
        if add and name in names:
            return {"ok": False, "error": "already_reacted"}
        if not add and name not in names:
            return {"ok": False, "error": "no_reaction"}
        (names.add if add else names.discard)(name)
        return {"ok": True}

    return handle


def _page(api: FakeSlackAPI, items: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
    limit = int(p.get("limit") or 100)
    if api.distribution == "distributed":
        limit = min(limit, DISTRIBUTED_PAGE)
    start = int(p.get("cursor") or 0)
    page = items[start : start + limit]
    more = start + limit < len(items)
    with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
    shown = [m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in page]
    return {
        "ok": True,
        "messages": shown,
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def _history(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    cannot = api._cannot_read(str(p.get("channel", "")))
    if cannot is not None:
        return {"ok": False, "error": cannot}
    oldest = float(p.get("oldest") or 0)
    roots = [
        dict(m)
        for m in reversed(api.messages)
        if m["channel"] == p.get("channel")
        and m.get("thread_ts") in (None, m["ts"])
        and float(m["ts"]) >= oldest
    ]
    return _page(api, roots, p)


def _replies(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    cannot = api._cannot_read(str(p.get("channel", "")))
    if cannot is not None:
        return {"ok": False, "error": cannot}
    ts = p.get("ts")
    found = [
        dict(m)
        for m in api.messages
        if m["channel"] == p.get("channel") and (m["ts"] == ts or m.get("thread_ts") == ts)
    ]
    if not found:
        return {"ok": False, "error": "thread_not_found"}
    return _page(api, found, p)


def _permalink(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    channel, ts = p.get("channel"), p.get("message_ts")
    if not channel:
        return {"ok": False, "error": "channel_not_found"}
    if not any(m["channel"] == channel and m["ts"] == ts for m in api.messages):
        return {"ok": False, "error": "message_not_found"}
    return {
        "ok": True,
        "channel": channel,
        "permalink": f"https://fake.slack.test/archives/{channel}/p{str(ts).replace('.', '')}",
    }


def _users_info(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    user = str(p.get("user", ""))
    return {
        "ok": True,
        "user": {
            "id": user,
            "name": user.lower(),
            "is_admin": user in api.admins,
            "is_owner": user in api.owners,
            "is_primary_owner": False,
            "is_bot": False,
        },
    }


def _views_open(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    issued = api._triggers.get(str(p.get("trigger_id")))
    if issued is None:
        return {"ok": False, "error": "invalid_trigger_id"}
    if time.monotonic() - issued > ACK_SECONDS:
        return {"ok": False, "error": "expired_trigger_id"}
    problems = slack_rules.view_problems(p.get("view"))
    if problems:
        messages = [f"[ERROR] {m}" for m in problems]
        return {
            "ok": False,
            "error": "invalid_arguments",
            "response_metadata": {"messages": messages},
        }
    return {"ok": True, "view": {"id": "V1", **p["view"]}}


def _connections_open(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    if api.socket_url is None:
        return {"ok": False, "error": "fake_has_no_socket_mode_server"}
    return {"ok": True, "url": api.socket_url()}


def _response_url(api: FakeSlackAPI, p: dict[str, Any]) -> dict[str, Any]:
    api.responses.append(p)
    return {"ok": True}


_PAGED = frozenset({"conversations.history", "conversations.replies"})
_ROUTES: dict[str, Callable[[FakeSlackAPI, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.postEphemeral": _post_ephemeral,
    "chat.update": _update,
    "chat.delete": _delete,
    "chat.getPermalink": _permalink,
    "reactions.add": _reaction(True),
    "reactions.remove": _reaction(False),
    "conversations.history": _history,
    "conversations.replies": _replies,
    "users.info": _users_info,
    "views.open": _views_open,
    "apps.connections.open": _connections_open,
    "response_url": _response_url,
}


def _params(raw: bytes, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            params = {}
    else:
        params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(params[name])
    return params


def _handler_for(api: FakeSlackAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            self._serve(_params(raw, self.headers.get("Content-Type") or ""))

        def do_GET(self) -> None:  # Web API methods take their arguments as a query too
            self._serve(dict(parse_qsl(self.path.partition("?")[2], keep_blank_values=True)))

        def _serve(self, params: dict[str, Any]) -> None:
            auth = self.headers.get("Authorization") or ""
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            token = token or params.pop("token", None)
            if self.path.startswith("/respond/"):
                method = "response_url"
            elif self.path.startswith("/api/"):
                method = self.path.removeprefix("/api/").split("?")[0]
            else:
                self._send(404, {"ok": False, "error": "not_found"}, {})
                return
            status, body, headers = api.handle(method, params, token)
            self._send(status, body, headers)

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def shown(text: str) -> str:
    """What a Slack client shows for a message's `text` (a notification, a screen reader):
    Slack's three entities decoded, once."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def texts(calls: Iterable[ApiCall]) -> list[str]:
    """Every text a set of calls carried: `text` and all text inside `blocks`."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "text" and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for call in calls:
        walk({"text": call.params.get("text"), "blocks": call.params.get("blocks")})
    return [t for t in found if t]


def main(argv: list[str] | None = None) -> None:
    """Serve the fake until Ctrl-C, printing every call."""
    parser = argparse.ArgumentParser(description="A fake Slack Web API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--token", default=None, help="The only bot token accepted.")
    parser.add_argument("--admin", action="append", default=[], help="A user id that is admin.")
    args = parser.parse_args(argv)
    api = FakeSlackAPI(bot_token=args.token, admins=set(args.admin), port=args.port, echo=True)
    with api:
        print(f"fake Slack Web API on {api.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
