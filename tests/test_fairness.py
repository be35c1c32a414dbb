"""Fairness under load, on both platforms: one user's slow answers never hold up another
user's help or search (issue 15: "10 slow asks from one user made another user's /paper
help wait 17.5 s").

User A sends 20 `/paper ask` whose answers the (fake) LLM takes 2.5 s each to write; while
A's questions fill the work queue, user B asks for help and searches. B's replies must
reach the platform within 1 s of B's command, and A's answers all arrive in the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import discord
import pytest

from assistant.embedding import SentenceTransformerEmbedder
from assistant.settings import Settings
from tests.fakes.discord_api import FakeDiscordAPI
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_answering import Stack
from tests.test_discord import FOLLOWUP, started
from tests.test_discord import Bot as DiscordBot
from tests.test_slack import TOKEN as SLACK_TOKEN
from tests.test_slack import Bot as SlackBot

SLOW_ANSWERS = 20
LLM_SECONDS = 2.5
QUESTION = "How does FlashAttention-3 use FP8 on Hopper GPUs (variant {n})?"
ALLOWED = 1.0  # seconds B may wait for a reply, whatever A has queued


@pytest.fixture
def stack(settings: Settings, real_embedder: SentenceTransformerEmbedder) -> Iterator[Stack]:
    settings.openai.timeout = 30
    settings.openai.max_retries = 0
    settings.answer.user_per_minute = 1000  # the queue is under test, not the rate limit
    settings.answer.channel_per_minute = 1000
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


def wait_until_busy(llm: FakeOpenAIServer, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(llm.chat_requests) < count:
        assert time.monotonic() < deadline, f"only {len(llm.chat_requests)} answers started"
        time.sleep(0.05)


def test_on_slack_one_users_twenty_slow_asks_do_not_delay_another_users_help_or_search(
    stack: Stack,
) -> None:
    with FakeSlackAPI(bot_token=SLACK_TOKEN) as api, FakeOpenAIServer() as llm:
        llm.delay_next(SLOW_ANSWERS, LLM_SECONDS)
        bot = SlackBot(stack, api, llm=llm, workers=4)
        try:
            for n in range(SLOW_ANSWERS):
                assert bot.command(f"ask {QUESTION.format(n=n)}", user="UA")[1] < 1.0
            wait_until_busy(llm, 2)  # A's answers are being written, the rest wait
            waits = {}
            for verb in ("help", "search million experts", "help"):
                asked = time.monotonic()
                before = len(api.calls_to("chat.postEphemeral"))
                bot.command(verb, user="UB")
                reply = api.wait_for("chat.postEphemeral", count=before + 1, timeout=20)[-1]
                assert reply.params["user"] == "UB"
                waits[verb] = reply.at - asked
            assert len(llm.chat_requests) < SLOW_ANSWERS  # A's work was still queued
            answered = api.wait_for(
                "chat.update",
                count=SLOW_ANSWERS,
                where=lambda c: "writing…" not in json.dumps(c.params, ensure_ascii=False),
                timeout=120,
            )
        finally:
            bot.settle()
    assert all(took < ALLOWED for took in waits.values()), waits
    assert len({c.params["ts"] for c in answered}) == SLOW_ANSWERS  # every ask answered


async def test_on_discord_one_users_twenty_slow_asks_do_not_delay_another_users_help_or_search(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    with FakeDiscordAPI() as api, FakeOpenAIServer() as llm:
        llm.delay_next(SLOW_ANSWERS, LLM_SECONDS)
        bot = await started(DiscordBot(stack, api, llm=llm, workers=4))
        try:
            user_a, user_b = "2000000000000000071", "2000000000000000072"
            for n in range(SLOW_ANSWERS):
                ask = api.command("ask", bot.channel, user_a, question=QUESTION.format(n=n))
                await bot.interact(ask, settle=False)
            await asyncio.to_thread(wait_until_busy, llm, 2)
            waits = {}
            for verb, options in (("help", {}), ("search", {"query": "million experts"})):
                payload = api.command(verb, bot.channel, user_b, **options)
                fed = await bot.interact(payload, settle=False)
                token = payload["token"]
                (reply,) = await asyncio.to_thread(
                    api.wait_for, FOLLOWUP, 1, lambda c, t=token: f"/{t}" in c.path, 20
                )
                waits[verb] = reply.at - fed
            assert len(llm.chat_requests) < SLOW_ANSWERS  # A's work was still queued
            assert await bot.connector.drain(120)
        finally:
            await bot.connector.close()
    assert all(took < ALLOWED for took in waits.values()), waits
    answers = [m for m in api.history(bot.channel) if "asked: How does" in m["content"]]
    assert len(answers) == SLOW_ANSWERS and all(m["embeds"] for m in answers)
    assert not api.refused()
