"""Socket Mode, the default way `paperbot serve --slack` receives: the real bolt App and
slack_sdk's built-in Socket Mode client against a fake Socket Mode server (WebSockets on
127.0.0.1) and the fake Slack Web API. In process through `SocketModeRunner`, then a real
`paperbot serve --slack` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_bolt import App
from slack_sdk import WebClient

from assistant.embedding import SentenceTransformerEmbedder
from assistant.settings import Settings
from connectors.slack import translate as tr
from connectors.slack.serve import SocketModeRunner
from tests.conftest import ROOT
from tests.errorlog import ErrorLog, watch_errors
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlackAPI, texts
from tests.fakes.slack_socket import FakeSocketMode
from tests.test_answering import FA3, Stack
from tests.test_slack import TOKEN, Bot, command_body, event_body, user_message
from tests.test_slack_serve import free_port

APP_TOKEN = "xapp-1-test-app-token"
SEARCH = "search faster attention kernels on Hopper GPUs"
STALE = "Socket Mode connection stopped answering pings (reconnecting)"


@pytest.fixture(autouse=True)
def _no_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLACK_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def error_log() -> Iterator[ErrorLog]:
    yield from watch_errors()


@pytest.fixture
def socket() -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as fake:
        yield fake


@pytest.fixture
def api(socket: FakeSocketMode) -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(bot_token=TOKEN, app_token=APP_TOKEN, socket_url=socket.issue_url) as fake:
        yield fake


@pytest.fixture
def stack(settings: Settings, real_embedder: SentenceTransformerEmbedder) -> Iterator[Stack]:
    settings.openai.timeout = 10
    settings.openai.max_retries = 0
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


class SocketBot:
    """The connector's bolt App received through `SocketModeRunner`."""

    def __init__(self, stack: Stack, api: FakeSlackAPI, socket: FakeSocketMode, ping: float):
        self.bot = Bot(stack, api)
        self.api = api
        self.socket = socket
        self.runner = SocketModeRunner(self.bot.app, APP_TOKEN, ping_interval=ping)

    def command(self, text: str, user: str = "U1", channel: str = "C1") -> str:
        form = dict(parse_qsl(command_body(text, user, channel, self.api.response_url())))
        return self.socket.slash_command(form)

    def wait_ready(self, timeout: float = 10.0) -> None:
        wait_until(lambda: self.runner.ready()[0], timeout, "the runner to be ready")

    def close(self) -> None:
        self.runner.stop()
        self.bot.settle()


@pytest.fixture
def slack(stack: Stack, api: FakeSlackAPI, socket: FakeSocketMode) -> Iterator[SocketBot]:
    bot = SocketBot(stack, api, socket, ping=1.0)
    yield bot
    bot.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def to_user(user: str) -> Callable[[Any], bool]:
    return lambda c: c.params.get("user") == user


def share_click(value: str, message_ts: str, user: str = "U1") -> dict[str, Any]:
    """The block_actions payload of a click on an answer's Share button."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "9.8.7",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C1"},
        "channel": {"id": "C1"},
        "message": {"type": "message", "ts": message_ts, "user": BOT_USER_ID, "bot_id": BOT_ID},
        "actions": [
            {"action_id": tr.SHARE_ACTION, "block_id": "b1", "type": "button", "value": value}
        ],
    }


# -- in process ------------------------------------------------------------------------------


def test_commands_events_and_clicks_arrive_over_the_socket_and_are_acked_at_once(
    slack: SocketBot, socket: FakeSocketMode, api: FakeSlackAPI, stack: Stack
) -> None:
    assert slack.runner.ready() == (False, "Socket Mode is not connected to Slack (reconnecting)")
    slack.runner.start()
    socket.wait_connected()
    slack.wait_ready()
    opened = api.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].token == APP_TOKEN  # not the bot token

    envelope = slack.command(SEARCH)
    assert socket.ack_seconds(envelope) < 1.0  # Slack wants it within 3 s
    answer = api.wait_for("chat.postEphemeral")[0]
    assert answer.params["user"] == "U1" and answer.params["channel"] == "C1"
    assert "FlashAttention-3" in "\n".join(texts([answer]))

    clicked = socket.interactive(share_click(SEARCH, "1.1"))  # the command to share
    assert socket.ack_seconds(clicked) < 1.0
    shared = api.wait_for("chat.postMessage")[0]
    assert "Shared by <@U1>" in "\n".join(texts([shared]))

    root = "1720000000.000100"
    stack.conversations.open("slack", "C1", root)
    reply = user_message("What does FlashAttention-3 change?", "1720000001.000001", root)
    delivered = socket.events_api(json.loads(event_body(reply, "EvSOCKET1")))
    assert socket.ack_seconds(delivered) < 1.0
    in_thread = api.wait_for("chat.postMessage", where=lambda c: "thread_ts" in c.params)
    assert in_thread[0].params["thread_ts"] == root
    assert all(a.payload is None for a in socket.acks)  # plain acks: answers go by Web API

    started = time.monotonic()
    slack.runner.stop()
    assert time.monotonic() - started < 5.0
    assert not slack.runner.ready()[0]
    socket.wait_closed(socket.connections[0], timeout=2)


def test_the_runner_reconnects_however_the_connection_ends_and_says_when_it_is_down(
    slack: SocketBot,
    socket: FakeSocketMode,
    api: FakeSlackAPI,
    error_log: ErrorLog,
) -> None:
    slack.runner.start()
    socket.wait_connected()
    slack.wait_ready()
    answered = 0

    def command_is_answered() -> None:
        nonlocal answered
        envelope = slack.command(f"show {FA3}")
        assert socket.ack_seconds(envelope) < 1.0
        answered += 1
        api.wait_for("chat.postEphemeral", count=answered)

    command_is_answered()
    # Slack recycles a server: the client opens a new connection, then leaves the old one.
    old = socket.disconnect()
    socket.wait_closed(old)
    assert socket.wait_connected(2).ticket == "ticket-2"
    slack.wait_ready()
    command_is_answered()

    # A close frame: reconnected at the client's next check (the ping interval).
    socket.close()
    socket.wait_connected(3)
    slack.wait_ready()
    command_is_answered()

    # The TCP connection is cut without a close frame, and Slack cannot hand out a new URL
    # at first: not ready as soon as pings go unanswered (the client takes five failed
    # pings to give up on the connection), and back on a fourth connection later.
    api.error_next("apps.connections.open", "internal_error", count=2)
    dropped = time.monotonic()
    socket.drop()
    reasons: list[str] = []

    def down() -> bool:
        ok, reason = slack.runner.ready()
        reasons.append(reason)
        return not ok

    wait_until(down, 5.0, "the runner to notice the drop")
    assert reasons[-1] == STALE
    socket.wait_connected(4, timeout=15)
    slack.wait_ready()
    assert time.monotonic() - dropped < 15.0
    command_is_answered()
    assert socket.issued == 4 and len(api.calls_to("apps.connections.open")) == 4 + 2
    assert not socket.refused_tickets
    # the built-in client logs the failed pings and reconnects as errors: those only
    assert {r.name for r in error_log.records} <= {"connectors.slack.bolt"}
    error_log.expected = len(error_log.records)


def bare_app(api: FakeSlackAPI) -> App:
    return App(client=WebClient(token=TOKEN, base_url=api.base_url), signing_secret="x")


def test_a_connection_slack_has_not_greeted_is_not_ready(api: FakeSlackAPI) -> None:
    with FakeSocketMode(greet=False) as silent:
        api.socket_url = silent.issue_url
        runner = SocketModeRunner(bare_app(api), APP_TOKEN, ping_interval=1.0)
        runner.start()
        try:
            silent.wait_connected()
            time.sleep(0.5)
            assert runner.ready() == (False, "Socket Mode is connecting (no hello from Slack yet)")
        finally:
            runner.stop()


# -- `paperbot serve --slack` ----------------------------------------------------------------


def serve_env(data: Path, api: FakeSlackAPI, port: int, app_token: str) -> dict[str, str]:
    return {
        **os.environ,
        "PAPERBOT_DATA_DIR": str(data),
        "HF_HUB_OFFLINE": "1",
        "SLACK_API_BASE_URL": api.base_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_APP_TOKEN": app_token,
        "PAPERBOT_HTTP_HOST": "127.0.0.1",
        "PAPERBOT_HTTP_PORT": str(port),
    }


def readiness(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:  # 503 with the same body
        return dict(json.load(exc))
    except OSError:
        return {}


def wait_slack_ready(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    def ready() -> bool:
        assert process.poll() is None, f"paperbot serve exited with {process.returncode}"
        return bool(readiness(port).get("checks", {}).get("slack", {}).get("ok"))

    wait_until(ready, timeout, "/readyz to report slack ok")


def test_serve_slack_receives_over_socket_mode_end_to_end(
    tmp_path: Path,
    socket: FakeSocketMode,
    api: FakeSlackAPI,
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    data = tmp_path / "data"
    seeded = Stack(Settings(data_dir=data), real_embedder)
    seeded.ingest_sample()
    seeded.close()
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--slack"],
        env={**serve_env(data, api, port, APP_TOKEN), "PAPERBOT_LOG_LEVEL": "DEBUG"},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_slack_ready(port, process, timeout=120)
        envelope = socket.slash_command(
            dict(parse_qsl(command_body(SEARCH, "U1", "C1", api.response_url())))
        )
        assert socket.ack_seconds(envelope) < 3.0
        answer = api.wait_for("chat.postEphemeral", timeout=60)[0]
        assert "FlashAttention-3" in json.dumps(answer.params["blocks"])

        socket.wait_closed(socket.disconnect())
        socket.wait_connected(2)
        wait_slack_ready(port, process, timeout=15)
        envelope = socket.slash_command(
            dict(parse_qsl(command_body(f"show {FA3}", "U2", "C1", api.response_url())))
        )
        assert socket.ack_seconds(envelope) < 3.0
        api.wait_for("chat.postEphemeral", where=to_user("U2"), timeout=60)
        assert [c.token for c in api.calls_to("apps.connections.open")] == [APP_TOKEN] * 2
    finally:
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        stopped_in = time.monotonic() - stopping
        log.close()
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert process.returncode == 0, output
    assert stopped_in < 10.0, output
    assert "Slack connector on Socket Mode" in output and "Traceback" not in output
    assert " DEBUG " in output and APP_TOKEN not in output and TOKEN not in output
    assert not socket.connections[-1].is_open


@pytest.mark.parametrize("refused", ["SLACK_APP_TOKEN", "SLACK_BOT_TOKEN"])
def test_serve_slack_with_a_refused_token_says_which_setting_to_fix(
    tmp_path: Path, api: FakeSlackAPI, refused: str
) -> None:
    env = serve_env(tmp_path / "data", api, free_port(), APP_TOKEN)
    env[refused] = "xapp-revoked-1" if refused == "SLACK_APP_TOKEN" else "xoxb-revoked-1"
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--slack"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 2, err
    assert f"Slack refused {refused} (invalid_auth)" in " ".join(err.split())
    assert "Traceback" not in err and "revoked-1" not in err
