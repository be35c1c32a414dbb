"""Slack HTTP mode's front (connectors/slack/http.py) as Slack and attackers reach it: real
HTTP on 127.0.0.1, aiohttp's server, a real bolt `App` against the fake Web API.

Junk gets 4xx and one log line; bodies are bounded in size and time; a replayed signature is
refused; and a burst of 500 signed slash commands is acknowledged and answered in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import resource
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from slack_bolt import Ack, App
from slack_sdk import WebClient

from connectors.slack.http import HttpLimits, SlackHttpServer, raise_open_file_limit
from tests.conftest import ROOT
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_answering import Stack, stack
from tests.test_slack import SECRET, TOKEN, command_body, signed
from tests.test_slack import Bot as SlackBot

__all__ = ["stack"]  # the fixture

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(bot_token=TOKEN) as server:
        yield server


class Front:
    """A bare bolt App (its /paper listener acks and counts) behind SlackHttpServer."""

    def __init__(self, api: FakeSlackAPI, limits: HttpLimits | None = None) -> None:
        self.commands: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self._lock = threading.Lock()
        app = App(client=WebClient(token=TOKEN, base_url=api.base_url), signing_secret=SECRET)
        app.command("/paper")(self._on_command)
        self.server = SlackHttpServer(
            app, "127.0.0.1", 0, SECRET, first_time=self._first_time, limits=limits
        )
        self.url = ""

    def _on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        with self._lock:
            self.commands.append(body)

    def _first_time(self, key: str) -> bool:
        with self._lock:
            fresh = key not in self.seen
            self.seen.add(key)
            return fresh

    def __enter__(self) -> Front:
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.port}/slack/events"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async def send() -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    return asyncio.run(send())


def sign_bytes(body: bytes, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    import hashlib
    import hmac

    ts = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={digest}",
    }


GOOD = command_body("help", "U1", "C1", "http://127.0.0.1:9/respond")
JUNK = [
    # (what, body, headers, status); {"sign": content type}: signed when the test runs
    (
        "malformed JSON, unsigned",
        b'{"type": "event_callback", ',
        {"content-type": "application/json"},
        401,
    ),
    ("malformed form, unsigned", b"payload=%7B%7B%7B&&=", {"content-type": FORM}, 401),
    ("non-UTF-8, unsigned", b"\xff\xfe\xfa" * 10, {"content-type": FORM}, 401),
    ("no timestamp", GOOD.encode(), {"content-type": FORM, "x-slack-signature": "v0=00"}, 401),
    (
        "non-numeric timestamp",
        GOOD.encode(),
        {"content-type": FORM, "x-slack-request-timestamp": "soon", "x-slack-signature": "v0=0"},
        401,
    ),
    (
        "huge timestamp",
        GOOD.encode(),
        {"content-type": FORM, "x-slack-request-timestamp": "9" * 400, "x-slack-signature": "v0=0"},
        401,
    ),
    (
        "stale signature",
        GOOD.encode(),
        sign_bytes(GOOD.encode(), FORM, int(time.time()) - 600),
        401,
    ),
    (
        "forged signature",
        GOOD.encode(),
        {**sign_bytes(GOOD.encode(), FORM), "x-slack-signature": "v0=" + "0" * 64},
        401,
    ),
    ("signed non-UTF-8", b"\xff\xfe\xfa", {"sign": FORM}, 400),
    ("signed malformed JSON", b'{"type": ', {"sign": "application/json"}, 400),
    ("signed malformed payload", b"payload=%7B%7B", {"sign": FORM}, 400),
    ("signed JSON list", b"[1, 2]", {"sign": "application/json"}, 400),
]


@pytest.mark.parametrize(("what", "body", "headers", "status"), JUNK, ids=[j[0] for j in JUNK])
def test_junk_gets_a_4xx_and_one_log_line(
    api: FakeSlackAPI,
    caplog: pytest.LogCaptureFixture,
    what: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    if "sign" in headers:
        headers = sign_bytes(body, headers["sign"])
    with Front(api) as front, caplog.at_level(logging.WARNING):
        got, _ = post(front.url, body, headers)
        assert got == status, what
        assert front.commands == []
        # the server still answers a good request afterwards
        assert post(front.url, GOOD.encode(), signed(GOOD, FORM))[0] == 200
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None and "\n" not in records[0].getMessage()
    assert str(status) in records[0].getMessage()


def test_a_replayed_slash_command_is_refused(api: FakeSlackAPI) -> None:
    headers = signed(GOOD, FORM)
    with Front(api) as front:
        assert post(front.url, GOOD.encode(), headers)[0] == 200
        status, text = post(front.url, GOOD.encode(), headers)  # same body and timestamp
        assert status == 401 and "replayed" in text
        assert len(front.commands) == 1
        fresh = signed(GOOD, FORM, timestamp=int(time.time()) + 1)  # a new request
        assert post(front.url, GOOD.encode(), fresh)[0] == 200
        assert len(front.commands) == 2


def test_an_oversized_body_is_refused_without_being_read(api: FakeSlackAPI) -> None:
    limits = HttpLimits(max_body_bytes=64 * 1024)
    big = b"text=" + b"x" * (10 * 1024 * 1024)
    with Front(api, limits) as front:
        started = time.monotonic()
        status, _ = post(front.url, big, sign_bytes(big, FORM))
        assert status == 413
        assert time.monotonic() - started < 5
        assert post(front.url, GOOD.encode(), signed(GOOD, FORM))[0] == 200


def test_fifty_concurrent_ten_mb_bodies_do_not_delay_a_valid_ack(api: FakeSlackAPI) -> None:
    big = b"text=" + b"x" * (10 * 1024 * 1024)

    async def flood(url: str) -> tuple[list[int], float]:
        async with aiohttp.ClientSession() as session:

            async def one(body: bytes, headers: dict[str, str]) -> int:
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        return response.status
                except aiohttp.ClientError:
                    return -1  # the server closed a connection it refused mid-upload

            bigs = [asyncio.create_task(one(big, sign_bytes(big, FORM))) for _ in range(50)]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            assert await one(GOOD.encode(), signed(GOOD, FORM)) == 200
            ack = time.monotonic() - started
            return list(await asyncio.gather(*bigs)), ack

    with Front(api) as front:
        statuses, ack = asyncio.run(flood(front.url))
    assert set(statuses) <= {413, -1} and 413 in statuses
    assert ack < 1.0


def test_a_connection_that_does_not_send_its_request_in_time_is_closed(
    api: FakeSlackAPI,
) -> None:
    limits = HttpLimits(read_timeout=1.0)
    with Front(api, limits) as front:
        port = front.server.port
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        body_slow = socket.create_connection(("127.0.0.1", port))
        body_slow.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntext=a"
        )
        started = time.monotonic()
        slow.settimeout(10)
        assert slow.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 5
        body_slow.settimeout(10)
        assert b" 408 " in body_slow.recv(1024).split(b"\r\n")[0] + b" "
        slow.close()
        body_slow.close()


# -- many slow connections, with the open-file limits services often start with ------------


def serve_bare(port: int, read_timeout: float) -> None:
    """In a child process: a bare App behind SlackHttpServer on `port` until stdin closes."""
    with FakeSlackAPI(bot_token=TOKEN) as api:
        app = App(client=WebClient(token=TOKEN, base_url=api.base_url), signing_secret=SECRET)
        app.command("/paper")(lambda ack: ack())
        limits = HttpLimits(read_timeout=read_timeout)
        server = SlackHttpServer(app, "127.0.0.1", port, SECRET, limits=limits)
        server.start()
        print("ready", flush=True)
        sys.stdin.read()
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("soft", "hard", "within"),
    [
        (1024, None, 1.0),  # a soft limit of 1,024 (common): raised at start, no wait
        (1024, 1024, 9.0),  # a hard one: slow connections are dropped after 5 s, then served
    ],
)
def test_a_valid_command_gets_through_a_thousand_slow_connections(
    soft: int, hard: int | None, within: float
) -> None:
    """Issue 15: 1,000 slow connections with a 1,024 file limit stalled a valid command."""
    raise_open_file_limit(4096)  # this test process holds the 1,000 connections
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2100:
        pytest.skip("the test process cannot open 1,000 connections here")
    port = free_port()

    current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard is None and current_hard != resource.RLIM_INFINITY and current_hard < 2100:
        pytest.skip("no hard limit above 1,024 to raise to here")

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard or current_hard))

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from tests.test_slack_http import serve_bare; serve_bare({port}, 5.0)",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=limit_files,
    )
    slow: list[socket.socket] = []
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        for _ in range(1_000):
            conn = socket.socket()
            conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                conn.connect(("127.0.0.1", port))
            slow.append(conn)
        time.sleep(0.5)
        for conn in slow:
            with contextlib.suppress(OSError):
                conn.send(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")  # never finished
        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/slack/events"
        started = time.monotonic()
        status, _ = post(url, GOOD.encode(), signed(GOOD, FORM))
        assert status == 200
        assert time.monotonic() - started < within
    finally:
        for conn in slow:
            conn.close()
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


# -- a burst of signed slash commands through the real connector ---------------------------


def fire(url: str, bodies: list[str], out: Any) -> None:
    """In a client process: send every body at once, each on its own connection, signed;
    put [(status or error name, seconds)] on `out`."""

    async def one(session: aiohttp.ClientSession, body: str) -> tuple[str, float]:
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=signed(body, FORM)) as response:
                await response.read()
                return str(response.status), time.perf_counter() - started
        except (aiohttp.ClientError, OSError) as exc:
            return type(exc).__name__, time.perf_counter() - started

    async def main() -> list[tuple[str, float]]:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            return list(await asyncio.gather(*(one(session, b) for b in bodies)))

    out.put(asyncio.run(main()))


def burst(url: str, bodies: list[str]) -> list[tuple[str, float]]:
    """`fire` from a separate process (so the client does not share this one's GIL)."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    client = ctx.Process(target=fire, args=(url, bodies, results))
    client.start()
    replies: list[tuple[str, float]] = results.get(timeout=300)
    client.join(timeout=30)
    return replies


@pytest.mark.slow
def test_five_hundred_concurrent_slash_commands_are_all_acked_and_answered(
    stack: Stack, api: FakeSlackAPI
) -> None:
    """Issue 15: 200 concurrent signed `/paper search` -> 163 connection resets."""
    stack.settings.answer.user_per_minute = stack.settings.answer.channel_per_minute = 10_000
    bot = SlackBot(stack, api)
    server = SlackHttpServer(bot.app, "127.0.0.1", 0, SECRET, first_time=stack.store.first_time)
    server.start()
    try:
        bot.stack.embedder.embed(["warm up"])
        topics = ["flash attention on Hopper", "mixture of experts", "weather forecasts"]
        bodies = [
            command_body(f"search {topics[i % 3]}", f"U{i}", f"C{i % 50}", api.response_url())
            for i in range(500)
        ]
        replies = burst(f"http://127.0.0.1:{server.port}/slack/events", bodies)
        statuses = Counter(status for status, _ in replies)
        assert statuses == {"200": 500}  # no connection errors, no timeouts, no 5xx
        acks = sorted(seconds for _, seconds in replies)
        p99 = acks[round(0.99 * (len(acks) - 1))]
        # Slack shows the user an error when the ack takes over 3 s. The target, p99
        # under 1 s, is what bench/slack_http.py measures and reports; this test shares 2
        # cores with its own client process (and, in CI, other jobs), so it holds the
        # platform's deadline: measured here 1.0-2.0 s p99 while other jobs ran.
        assert p99 < 3.0, f"ack p50 {acks[250]:.2f} s, p99 {p99:.2f} s"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            users = {c.params.get("user") for c in api.calls_to("chat.postEphemeral")}
            if len(users) == 500:
                break
            time.sleep(0.5)
        assert users == {f"U{i}" for i in range(500)}  # every command answered, once
        assert len(api.calls_to("chat.postEphemeral")) == 500
    finally:
        server.stop()
        bot.connector.close()
