"""The Discord connector over a real gateway connection: discord.py's own WebSocket client
against a fake Discord gateway (tests/fakes/discord_gateway.py) beside the fake REST API.
Connecting and readiness, events received over the WebSocket, resuming after the
connection drops, identifying again when the session is gone, a token or an intent the
gateway refuses, and `paperbot serve --discord` end to end.

The core is the real one over the bundled sample week (real embedding model, embedded
Qdrant, SQLite), built once for the module as in test_discord.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest

from assistant.embedding import SentenceTransformerEmbedder
from assistant.errors import ConfigError
from assistant.settings import DiscordSettings, Settings
from connectors.discord.app import DiscordConnector
from connectors.discord.serve import BAD_TOKEN, NO_INTENT, DiscordRunning, start_discord
from tests.conftest import ROOT
from tests.errorlog import ErrorLog, watch_errors
from tests.fakes.discord_api import BOT_ID, TOKEN, ApiCall, FakeDiscordAPI
from tests.fakes.discord_gateway import (
    GUILD_MESSAGES,
    GUILDS,
    HEARTBEAT,
    IDENTIFY,
    MESSAGE_CONTENT,
    RESUME,
    FakeDiscordGateway,
)
from tests.test_answering import FA3, PEER, Stack
from tests.test_cli import run
from tests.test_serve import PAPERBOT, Served, get, offline_env

SAMPLE = ROOT / "assistant" / "data" / "sample_potw.md"
FOLLOWUP = "POST /webhooks/{app_id}/{token}"
THREAD = "POST /channels/{channel_id}/messages/{message_id}/threads"
POST = "POST /channels/{channel_id}/messages"
CONNECTED = "connected as paperbot to 1 guild(s)"
RECONNECTING = "not connected to the Discord gateway (reconnecting)"


@pytest.fixture(autouse=True)
def error_log() -> Iterator[ErrorLog]:
    yield from watch_errors()


@pytest.fixture(autouse=True)
def _process_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connector points discord.py's REST base and gateway (one per process) at the
    fakes: put them back afterwards. No DISCORD_* variable of the developer's leaks in."""
    for name in list(os.environ):
        if name.startswith("DISCORD_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    websocket = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(websocket, "DEFAULT_GATEWAY", websocket.DEFAULT_GATEWAY)


@pytest.fixture(scope="module")
def shared_stack(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Iterator[Stack]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("discord-gateway") / "data")
    settings.arxiv.download_pdfs = False
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


@pytest.fixture
def stack(shared_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setattr(shared_stack.settings, "discord", shared_stack.settings.discord)
    return shared_stack


@pytest.fixture
def api() -> Iterator[FakeDiscordAPI]:
    with FakeDiscordAPI() as fake:
        yield fake


@pytest.fixture
def gateway(api: FakeDiscordAPI) -> Iterator[FakeDiscordGateway]:
    with FakeDiscordGateway(api, heartbeat_interval=500) as fake:
        yield fake


def start_bot(stack: Stack, api: FakeDiscordAPI, **settings: Any) -> DiscordRunning:
    stack.settings.discord = DiscordSettings(bot_token=TOKEN, api_base_url=api.base_url, **settings)
    return start_discord(stack.assistant(), stack.store, stack.settings, grace_seconds=5)


def wait_until(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"still not so after {timeout} s"
        time.sleep(0.02)
    return found


def to(token: str) -> Callable[[ApiCall], bool]:
    return lambda c: f"/{token}" in c.path


def stopped_within(running: DiscordRunning) -> float:
    began = time.monotonic()
    running.stop()
    return time.monotonic() - began


# -- in-process: start_discord against the fakes ------------------------------------------


def test_the_bot_answers_over_the_gateway_and_resumes_after_the_connection_drops(
    stack: Stack, api: FakeDiscordAPI, gateway: FakeDiscordGateway
) -> None:
    channel = api.add_channel()  # before connecting: GUILD_CREATE lists it
    running = start_bot(stack, api)
    try:
        (identify,) = gateway.ops(IDENTIFY)  # start returned after READY
        assert identify.data["token"] == TOKEN and identify.path == "/"
        assert identify.data["intents"] == GUILDS | GUILD_MESSAGES  # no privileged intent
        assert wait_until(lambda: running.ready()[0]) and running.ready() == (True, CONNECTED)
        assert [c["name"] for c in api.commands[None]] == ["paper"]  # registered when ready

        query = "faster attention kernels on Hopper GPUs"
        search = api.command("search", channel, query=query)
        gateway.dispatch("INTERACTION_CREATE", search)
        (results,) = api.wait_for(FOLLOWUP, where=to(search["token"]))
        assert api.callback(search["token"]) == {"type": 5, "data": {"flags": 64}}
        assert results.json["flags"] == 64 and "FlashAttention-3" in json.dumps(results.json)

        # the connection drops, and Discord is slow to take the bot back
        gateway.hold()
        gateway.drop()
        wait_until(lambda: not running.ready()[0])
        assert running.ready() == (False, RECONNECTING)
        missed = api.command("search", channel, query="a million tiny experts")
        gateway.dispatch("INTERACTION_CREATE", missed)  # kept for the session's resume
        gateway.release()
        wait_until(lambda: running.ready()[0])
        (resume,) = gateway.ops(RESUME)
        assert resume.path == "/resume" and resume.data["session_id"] == gateway.session_id
        assert len(gateway.ops(IDENTIFY)) == 1  # the same session, resumed
        (replayed,) = api.wait_for(FOLLOWUP, where=to(missed["token"]))
        assert PEER in json.dumps(replayed.json)

        question = "What does FlashAttention-3 change on Hopper GPUs?"
        ask = api.command("ask", channel, question=question)
        gateway.dispatch("INTERACTION_CREATE", ask)
        (opened,) = api.wait_for(THREAD)
        (answer,) = api.history(channel)
        assert opened.path.endswith(f"/messages/{answer['id']}/threads")
        assert answer["content"].endswith(f"asked: {question}")
        assert f"arxiv.org/abs/{FA3}" in json.dumps(answer["embeds"])
        assert len(gateway.ops(HEARTBEAT)) >= 2  # heartbeats went on (every 0.5 s here)

        gateway.reconnect()  # Discord asks for it before restarting a gateway node
        gateway.wait_for(RESUME, count=2)
        wait_until(lambda: running.ready() == (True, CONNECTED))
        assert len(gateway.ops(IDENTIFY)) == 1
    finally:
        seconds = stopped_within(running)
    assert seconds < 5 and running.ready() == (False, "stopped")
    assert running.client.is_closed()
    last = max(o.connection for o in gateway.received)
    assert gateway.wait_closed(last) is not None  # the bot closed its socket, with a frame


def test_ready_means_the_commands_are_registered_even_when_discord_is_slow_to_take_them(
    stack: Stack, api: FakeDiscordAPI, gateway: FakeDiscordGateway
) -> None:
    """READY arrives, then the command sync takes a while: /readyz must not say ready (and
    route traffic to a bot whose `/paper` does not exist yet) before the sync is done."""
    api.delay("PUT /applications/{app_id}/commands", 1.0)
    running = start_bot(stack, api)
    try:
        wait_until(lambda: running.ready()[0])
        assert [c["name"] for c in api.commands[None]] == ["paper"]
    finally:
        assert stopped_within(running) < 5


def test_a_session_discord_forgot_is_identified_again_and_messages_arrive_over_it(
    stack: Stack, api: FakeDiscordAPI, gateway: FakeDiscordGateway, error_log: ErrorLog
) -> None:
    channel = api.add_channel()
    running = start_bot(stack, api)
    try:
        wait_until(lambda: running.ready()[0])
        first = gateway.session_id
        gateway.invalidate()  # e.g. the bot was away too long
        gateway.drop(code=4000)
        wait_until(lambda: not running.ready()[0])
        # discord.py waits 5 s before identifying again (Discord's rate limit)
        wait_until(lambda: running.ready()[0], timeout=30)
        assert running.ready() == (True, CONNECTED)
        assert len(gateway.ops(RESUME)) == 1 and len(gateway.ops(IDENTIFY)) == 2
        assert gateway.session_id != first
        assert len(api.calls_to("PUT /applications/{app_id}/commands")) == 1  # once

        # MESSAGE_CREATE over the gateway: without the content intent, only mentions count
        gateway.dispatch("MESSAGE_CREATE", api.user_message(channel, "how do experts scale?"))
        question = "how does the million-experts layer pick experts?"
        asked = api.user_message(channel, f"<@{BOT_ID}> {question}", mention=True)
        gateway.dispatch("MESSAGE_CREATE", asked)
        api.wait_for(POST, where=lambda c: f"/channels/{asked['id']}/" in c.path)
        (thread,) = api.threads(channel)
        assert thread["id"] == asked["id"]  # a thread on the question, and only that one
        (reply,) = api.history(thread["id"])
        assert reply["author"]["id"] == BOT_ID and PEER in json.dumps(reply["embeds"])

        # the token is reset in the Developer Portal: Discord refuses the resume for good
        gateway.token = "the-reset-token"
        gateway.drop()
        wait_until(lambda: running.ready()[1] == BAD_TOKEN)
        assert running.client.is_closed()
    finally:
        assert stopped_within(running) < 5
    error_log.expected = 1  # the refusal, once, without a traceback
    assert error_log.records[0].getMessage() == f"discord: {BAD_TOKEN}"
    assert error_log.records[0].exc_info is None


def test_a_token_or_intent_the_gateway_refuses_fails_start_with_what_to_do(
    stack: Stack, api: FakeDiscordAPI
) -> None:
    # the token was reset after the login: the gateway closes with 4004
    with FakeDiscordGateway(api, token="the-reset-token") as gateway:
        with pytest.raises(ConfigError) as refused:
            start_bot(stack, api)
        assert str(refused.value) == BAD_TOKEN and "DISCORD_BOT_TOKEN" in BAD_TOKEN
        assert gateway.closes and not gateway.connected
    # Message Content asked for, not granted in the Developer Portal: 4014
    with FakeDiscordGateway(api) as gateway:
        with pytest.raises(ConfigError) as refused:
            start_bot(stack, api, message_content=True)
        assert str(refused.value) == NO_INTENT
        (identify,) = gateway.ops(IDENTIFY)
        assert identify.data["intents"] == GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT
    # not logged as well: `paperbot serve` says it once, as for any setting (below)


def test_stopping_before_the_gateway_says_hello_is_prompt_and_quiet(
    stack: Stack, api: FakeDiscordAPI, gateway: FakeDiscordGateway
) -> None:
    gateway.hold()  # Discord does not answer yet: `start` gives up waiting
    stack.settings.discord = DiscordSettings(bot_token=TOKEN, api_base_url=api.base_url)
    connector = DiscordConnector(stack.assistant(), stack.store, stack.settings)
    running = DiscordRunning(connector.client, TOKEN, connector, 5).start(login_wait=0.5)
    assert running.ready() == (False, RECONNECTING)
    assert stopped_within(running) < 5
    assert running.ready() == (False, "stopped") and not gateway.received


# -- end to end: `paperbot serve --discord` -------------------------------------------------


def serve_env(data: Path, api: FakeDiscordAPI) -> dict[str, str]:
    env = {k: v for k, v in offline_env(data).items() if not k.startswith("DISCORD_")}
    return env | {"DISCORD_BOT_TOKEN": TOKEN, "DISCORD_API_BASE_URL": api.base_url}


def discord_check(served: Served) -> tuple[int, dict[str, Any]]:
    """/readyz's status and its `discord` check."""
    status, body, _ = get(f"{served.url}/readyz")
    return status, json.loads(body)["checks"]["discord"]


@pytest.mark.slow
def test_serve_discord_is_ready_answers_reconnects_and_stops_on_sigterm(
    tmp_path: Path,
    api: FakeDiscordAPI,
    gateway: FakeDiscordGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(data))
    code, _, err = run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--offline")
    assert code == 0, err
    channel = api.add_channel()
    served = Served(["--discord"], serve_env(data, api), tmp_path / "serve.log").start()
    try:
        assert served.wait_ready()["checks"]["discord"] == {"ok": True, "reason": CONNECTED}

        search = api.command("search", channel, query="faster attention kernels on Hopper")
        gateway.dispatch("INTERACTION_CREATE", search)
        (results,) = api.wait_for(FOLLOWUP, where=to(search["token"]), timeout=60)
        assert "FlashAttention-3" in json.dumps(results.json)

        gateway.hold()
        gateway.drop()
        wait_until(lambda: discord_check(served)[0] == 503)
        assert discord_check(served) == (503, {"ok": False, "reason": RECONNECTING})
        gateway.release()
        assert served.wait_ready()["checks"]["discord"]["ok"]
        assert len(gateway.ops(RESUME)) == 1 and len(gateway.ops(IDENTIFY)) == 1
        code, seconds = served.terminate()
    finally:
        served.kill()
    assert code == 0, served.output
    assert seconds < 5, f"took {seconds:.1f} s to stop"
    assert gateway.wait_closed(max(o.connection for o in gateway.received)) is not None
    assert "Traceback" not in served.output


def test_serve_discord_with_a_token_the_gateway_refuses_exits_saying_what_to_set(
    tmp_path: Path, api: FakeDiscordAPI
) -> None:
    with FakeDiscordGateway(api, token="the-reset-token"):
        refused = subprocess.run(
            [*PAPERBOT, "serve", "--discord"],
            env={**serve_env(tmp_path / "data", api), "PAPERBOT_HTTP_PORT": "0"},
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
    said = " ".join(refused.stderr.decode().split())  # rich wraps at 80 columns
    assert refused.returncode == 2, said
    assert f"error: {BAD_TOKEN}" in said and said.count("DISCORD_BOT_TOKEN") == 1
    assert "Traceback" not in said
