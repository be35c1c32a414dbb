"""`start_discord` for `paperbot serve`: settings, the bot on its own thread and event loop,
digest posts from another loop (the scheduler's), readiness, and stopping."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import discord
import pytest
import yarl

from assistant.conversations import ConversationStore
from assistant.digest.model import Digest, DigestCard, QAPair
from assistant.digest.publisher import DigestPublisher
from assistant.errors import ConfigError
from assistant.settings import DiscordSettings, Settings, load_settings
from assistant.state import StateStore
from connectors.discord.serve import start_discord
from tests.conftest import ROOT
from tests.fakes.discord_api import TOKEN, FakeDiscordAPI
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_cli import run
from tests.test_slack import TOKEN as SLACK_TOKEN

SAMPLE = ROOT / "assistant" / "data" / "sample_potw.md"
THREAD = "POST /channels/{channel_id}/messages/{message_id}/threads"


@pytest.fixture(autouse=True)
def _no_discord_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DISCORD_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)


@pytest.fixture
def api() -> Iterator[FakeDiscordAPI]:
    with FakeDiscordAPI() as fake:
        yield fake


def small_digest() -> Digest:
    def card(rank: int, paper_id: str, title: str) -> DigestCard:
        qa = tuple(QAPair(f"Question {n}?", f"Answer {n}.", True) for n in range(1, 6))
        return DigestCard(
            rank, paper_id, title, f"https://arxiv.org/abs/{paper_id}", None, ("A. Author",),
            date(2024, 7, 11), None, ("cs.LG",), f"{title} in one line.", "A summary.", qa,
        )  # fmt: skip

    cards = (card(1, "2407.08608", "FlashAttention-3"), card(2, "2407.04153", "PEER"))
    return Digest(date(2024, 7, 8), "en", "potw", cards)


def test_discord_settings_name_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN"):
        DiscordSettings().require()
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "secret-token")
    monkeypatch.setenv("DISCORD_ALLOWED_CHANNELS", " 11, 12 ,")
    monkeypatch.setenv("DISCORD_GUILD_IDS", "5,3")
    monkeypatch.setenv("DISCORD_MESSAGE_CONTENT", "true")
    discord_settings = load_settings().discord
    assert discord_settings.require() == "secret-token"
    assert discord_settings.allowed_channel_ids == {"11", "12"}
    assert discord_settings.guild_id_list == [3, 5] and discord_settings.message_content
    assert discord_settings.api_base_url == "https://discord.com/api/v10"
    assert "secret-token" not in repr(discord_settings)  # secrets stay out of logs
    monkeypatch.setenv("DISCORD_GUILD_IDS", "5, #papers")
    with pytest.raises(ConfigError, match=r"DISCORD_GUILD_IDS.*Copy ID"):
        load_settings()


def test_rest_only_posts_a_digest_from_another_event_loop_then_stops(
    settings: Settings, store: StateStore, api: FakeDiscordAPI
) -> None:
    settings.discord = DiscordSettings(bot_token=TOKEN, api_base_url=api.base_url)
    channel = api.add_channel()
    running = start_discord(None, store, settings, listen=False, grace_seconds=5)  # type: ignore[arg-type]
    try:
        assert running.name == "discord"
        assert running.ready() == (True, "posting digests only (not receiving)")
        assert running.digest_channel is not None
        publisher = DigestPublisher(store, ConversationStore(store))
        digest = small_digest()
        report = asyncio.run(publisher.publish(digest, running.digest_channel, channel))
    finally:
        running.stop()
    assert report.posted == len(api.calls_to("POST /channels/{channel_id}/messages")) > 3
    assert len(api.calls_to(THREAD, ok_only=True)) == 1 + len(digest.cards)
    assert {c.route for c in api.calls} >= {
        "GET /users/@me",
        "POST /channels/{channel_id}/messages",
    }
    assert running.ready() == (False, "stopped") and running.client.is_closed()
    running.stop()  # a second stop does nothing


def test_a_rejected_token_fails_at_start_with_what_to_do(
    settings: Settings, store: StateStore
) -> None:
    with FakeDiscordAPI(token="the-real-token") as api:
        settings.discord = DiscordSettings(bot_token="a-wrong-token", api_base_url=api.base_url)
        with pytest.raises(ConfigError, match="Reset Token"):
            start_discord(None, store, settings, listen=False)  # type: ignore[arg-type]


def test_without_a_gateway_it_is_not_ready_and_still_stops_promptly(
    settings: Settings, store: StateStore, api: FakeDiscordAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nothing listens on port 9: every gateway connection fails, and is retried
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL("ws://127.0.0.1:9/")
    )
    settings.discord = DiscordSettings(bot_token=TOKEN, api_base_url=api.base_url)
    running = start_discord(None, store, settings, grace_seconds=2)  # type: ignore[arg-type]
    time.sleep(0.5)
    ready, why = running.ready()
    assert not ready and "gateway" in why
    began = time.monotonic()
    running.stop()
    assert time.monotonic() - began < 5
    assert running.ready() == (False, "stopped") and running.client.is_closed()


def test_serve_posts_the_digest_to_slack_and_discord_from_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperbot serve --slack --discord`: one scheduler, both platforms' subscribers."""
    data = tmp_path / "data"
    with FakeDiscordAPI() as discord_api, FakeSlackAPI() as slack_api:
        discord_channel = discord_api.add_channel()
        for name, value in {
            "PAPERBOT_DATA_DIR": str(data),
            "PAPERBOT_INGEST_POTW_URL": str(SAMPLE),  # the "online" list, locally
            "PAPERBOT_ARXIV_API_URL": "http://127.0.0.1:9/api",  # arXiv is down
            "PAPERBOT_ARXIV_MAX_RETRIES": "0",
            "PAPERBOT_DIGEST_TOP_N": "2",
            "PAPERBOT_DIGEST_QA_PAIRS": "3",
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_API_BASE_URL": slack_api.base_url,
            "DISCORD_BOT_TOKEN": TOKEN,
            "DISCORD_API_BASE_URL": discord_api.base_url,
        }.items():
            monkeypatch.setenv(name, value)
        store = StateStore.open(data / "paperbot.sqlite3")
        ConversationStore(store).subscribe("slack", "CDIGEST", "UADMIN")
        ConversationStore(store).subscribe("discord", discord_channel, "42")
        store.close()
        code, _, err = run(capsys, "serve", "--slack", "--discord", "--catch-up-only")
        assert code == 0, err
        assert len(slack_api.calls_to("chat.postMessage")) == 3  # header + 2 cards
        roots = [m for m in discord_api.history(discord_channel) if m.get("thread")]
        assert len(roots) == 3  # header + 2 cards, each the root of its own thread
        assert "FlashAttention-3" in json.dumps(discord_api.history(discord_channel))
        # posting again (a restart, a second replica) posts nothing more
        code, _, err = run(capsys, "serve", "--slack", "--discord", "--catch-up-only")
        assert code == 0, err
        assert len(slack_api.calls_to("chat.postMessage")) == 3
        assert len([m for m in discord_api.history(discord_channel) if m.get("thread")]) == 3
